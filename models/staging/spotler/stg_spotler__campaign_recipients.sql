-- Recipients of campaign mailings, in the same shape as the regular mailings' (stg_spotler__recipients):
-- int_spotler_interactions_unioned puts them together.
with

campaign_recipients as (
    select * from {{ source_or_empty('spotler', 'campaign_recipients') }}
),

renamed as (
    select
        'campaign_mailing' as mailing_kind,
        event_key,
        mailing_id,
        campaign_subscription_id,
        external_contact_id,
        sent_at
    from campaign_recipients
)

select * from renamed
