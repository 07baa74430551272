-- Opens of campaign mailings, in the same shape as the regular mailings' (stg_spotler__opens):
-- int_spotler_interactions_unioned puts them together.
with

campaign_opens as (
    select * from {{ source_or_empty('spotler', 'campaign_opens') }}
),

renamed as (
    select
        'campaign_mailing' as mailing_kind,
        event_key,
        mailing_id,
        campaign_subscription_id,
        external_contact_id,
        opened_at
    from campaign_opens
)

select * from renamed
