-- Opens of regular mailings (account-wide feed or per-mailing list) and of campaign mailings, in one shape.
with

regular as (
    select
        'mailing' as mailing_kind,
        cast(interaction_id as {{ dbt.type_string() }}) as event_key,
        mailing_id,
        cast(null as {{ dbt.type_bigint() }}) as campaign_subscription_id,
        external_contact_id,
        opened_at
    from {{ source_or_empty('spotler', 'opens') }}
),

campaign as (
    select
        'campaign_mailing' as mailing_kind,
        event_key,
        mailing_id,
        campaign_subscription_id,
        external_contact_id,
        opened_at
    from {{ source_or_empty('spotler', 'campaign_opens') }}
),

unioned as (
    select * from regular
    union all
    select * from campaign
)

select * from unioned
