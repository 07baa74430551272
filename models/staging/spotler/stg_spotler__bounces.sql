-- Bounces of regular mailings (account-wide feed or per-mailing list), in the same shape as the campaign
-- mailings' (stg_spotler__campaign_bounces): int_spotler_interactions_unioned puts them together.
with

bounces as (
    select * from {{ source_or_empty('spotler', 'bounces') }}
),

renamed as (
    select
        'mailing' as mailing_kind,
        cast(interaction_id as {{ dbt.type_string() }}) as event_key,
        mailing_id,
        cast(null as {{ dbt.type_bigint() }}) as campaign_subscription_id,
        external_contact_id,
        bounced_at,
        case bounce_type when 'HARD' then 'hard' when 'SOFT' then 'soft' end as bounce_kind
    from bounces
)

select * from renamed
