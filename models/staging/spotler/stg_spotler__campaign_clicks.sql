-- Clicks of campaign mailings, in the same shape as the regular mailings' (stg_spotler__clicks):
-- int_spotler_interactions_unioned puts them together.
with

campaign_clicks as (
    select * from {{ source_or_empty('spotler', 'campaign_clicks') }}
),

renamed as (
    select
        'campaign_mailing' as mailing_kind,
        event_key,
        mailing_id,
        campaign_subscription_id,
        external_contact_id,
        clicked_at,
        link_id
    from campaign_clicks
)

select * from renamed
