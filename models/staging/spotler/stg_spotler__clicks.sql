-- Clicks of regular mailings (account-wide feed or per-mailing list), in the same shape as the campaign
-- mailings' (stg_spotler__campaign_clicks): int_spotler_interactions_unioned puts them together.
with

clicks as (
    select * from {{ source_or_empty('spotler', 'clicks') }}
),

renamed as (
    select
        'mailing' as mailing_kind,
        click_key as event_key,
        mailing_id,
        cast(null as {{ dbt.type_bigint() }}) as campaign_subscription_id,
        external_contact_id,
        clicked_at,
        link_id
    from clicks
)

select * from renamed
