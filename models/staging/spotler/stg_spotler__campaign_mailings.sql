with

campaign_mailings as (
    select * from {{ source_or_empty('spotler', 'campaign_mailings') }}
),

spotler_campaigns as (
    select * from {{ source_or_empty('spotler', 'campaigns') }}
),

campaigns as (
    select
        encrypted_id as campaign_id,
        campaign_name
    from spotler_campaigns
),

renamed as (
    select
        campaign_mailings.encrypted_id as mailing_id,
        campaign_mailings.campaign_id,
        campaigns.campaign_name,
        campaign_mailings.mailing_name,
        campaign_mailings.mailing_type,
        campaign_mailings.subject,
        campaign_mailings.from_name,
        campaign_mailings.message_author as sender
    from campaign_mailings
    left join campaigns using (campaign_id)
)

select * from renamed
