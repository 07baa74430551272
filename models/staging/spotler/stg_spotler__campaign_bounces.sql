-- Bounces of campaign mailings, in the same shape as the regular mailings' (stg_spotler__bounces):
-- int_spotler_interactions_unioned puts them together.
with

campaign_bounces as (
    select * from {{ source_or_empty('spotler', 'campaign_bounces') }}
),

renamed as (
    select
        'campaign_mailing' as mailing_kind,
        event_key,
        mailing_id,
        campaign_subscription_id,
        external_contact_id,
        bounced_at,
        case bounce_type when 'HARDBOUNCE' then 'hard' when 'SOFTBOUNCE' then 'soft' end as bounce_kind
    from campaign_bounces
)

select * from renamed
