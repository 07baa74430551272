-- Spotler's sends, opens, clicks and bounces of regular and campaign mailings, one row per interaction in one
-- shape: what int_spotler_email_events turns into e-mail events and marts.mailings dates campaign mails by.
with

recipients as (
    select * from {{ ref('stg_spotler__recipients') }}
    union all
    select * from {{ ref('stg_spotler__campaign_recipients') }}
),

opens as (
    select * from {{ ref('stg_spotler__opens') }}
    union all
    select * from {{ ref('stg_spotler__campaign_opens') }}
),

clicks as (
    select * from {{ ref('stg_spotler__clicks') }}
    union all
    select * from {{ ref('stg_spotler__campaign_clicks') }}
),

bounces as (
    select * from {{ ref('stg_spotler__bounces') }}
    union all
    select * from {{ ref('stg_spotler__campaign_bounces') }}
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
