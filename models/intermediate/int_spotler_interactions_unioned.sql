-- Spotler's sends, opens, clicks and bounces of regular and campaign mailings, one row per interaction in one
-- shape: what int_spotler_email_events turns into e-mail events and marts.mailings dates campaign mails by.
with

regular_recipients as (
    select * from {{ ref('stg_spotler__recipients') }}
),

campaign_recipients as (
    select * from {{ ref('stg_spotler__campaign_recipients') }}
),

recipients as (
    select * from regular_recipients
    union all
    select * from campaign_recipients
),

regular_opens as (
    select * from {{ ref('stg_spotler__opens') }}
),

campaign_opens as (
    select * from {{ ref('stg_spotler__campaign_opens') }}
),

opens as (
    select * from regular_opens
    union all
    select * from campaign_opens
),

regular_clicks as (
    select * from {{ ref('stg_spotler__clicks') }}
),

campaign_clicks as (
    select * from {{ ref('stg_spotler__campaign_clicks') }}
),

clicks as (
    select * from regular_clicks
    union all
    select * from campaign_clicks
),

regular_bounces as (
    select * from {{ ref('stg_spotler__bounces') }}
),

campaign_bounces as (
    select * from {{ ref('stg_spotler__campaign_bounces') }}
),

bounces as (
    select * from regular_bounces
    union all
    select * from campaign_bounces
),

interactions as (
    select
        mailing_kind, event_key, mailing_id, campaign_subscription_id, external_contact_id,
        'sent' as event_type,
        sent_at as event_at,
        cast(null as {{ dbt.type_bigint() }}) as link_id,
        cast(null as {{ dbt.type_string() }}) as bounce_kind
    from recipients
    union all
    select
        mailing_kind, event_key, mailing_id, campaign_subscription_id, external_contact_id,
        'open', opened_at, cast(null as {{ dbt.type_bigint() }}), cast(null as {{ dbt.type_string() }})
    from opens
    union all
    select
        mailing_kind, event_key, mailing_id, campaign_subscription_id, external_contact_id,
        'click', clicked_at, link_id, cast(null as {{ dbt.type_string() }})
    from clicks
    union all
    select
        mailing_kind, event_key, mailing_id, campaign_subscription_id, external_contact_id,
        bounce_kind || '_bounce', bounced_at, cast(null as {{ dbt.type_bigint() }}), bounce_kind
    from bounces
)

select * from interactions
