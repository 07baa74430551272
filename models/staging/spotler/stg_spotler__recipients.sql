-- Recipients of regular mailings (account-wide feed or per-mailing list), in the same shape as the campaign
-- mailings' (stg_spotler__campaign_recipients): int_spotler_interactions_unioned puts them together.
with

recipients as (
    select * from {{ source_or_empty('spotler', 'recipients') }}
),

renamed as (
    select
        'mailing' as mailing_kind,
        cast(interaction_id as {{ dbt.type_string() }}) as event_key,
        mailing_id,
        cast(null as {{ dbt.type_bigint() }}) as campaign_subscription_id,
        external_contact_id,
        sent_at
    from recipients
)

select * from renamed
