-- Spotler's recipients, opens, clicks and bounces of regular and campaign mailings as e-mail events, with
-- the address of each external contact id and the clicked link; a click on a mailing's unsubscribe link
-- is an `unsubscribe` event too. Spotler's API rows carry no load time (loaded_at is null).
with

addresses as (
    select * from {{ ref('int_contact_addresses_mapped') }}
),

links as (
    select * from {{ ref('stg_spotler__mailing_links') }}
),

sends as (
    select mailing_kind, event_key, mailing_id, campaign_subscription_id, external_contact_id,
           'sent' as event_type, sent_at as event_at, cast(null as {{ dbt.type_bigint() }}) as link_id,
           cast(null as {{ dbt.type_string() }}) as bounce_kind
    from {{ ref('stg_spotler__recipients') }}
),

opens as (
    select mailing_kind, event_key, mailing_id, campaign_subscription_id, external_contact_id,
           'open', opened_at, cast(null as {{ dbt.type_bigint() }}), cast(null as {{ dbt.type_string() }})
    from {{ ref('stg_spotler__opens') }}
),

clicks as (
    select mailing_kind, event_key, mailing_id, campaign_subscription_id, external_contact_id,
           'click', clicked_at, link_id, cast(null as {{ dbt.type_string() }})
    from {{ ref('stg_spotler__clicks') }}
),

bounces as (
    select mailing_kind, event_key, mailing_id, campaign_subscription_id, external_contact_id,
           bounce_kind || '_bounce', bounced_at, cast(null as {{ dbt.type_bigint() }}), bounce_kind
    from {{ ref('stg_spotler__bounces') }}
),

interactions as (
    select * from sends
    union all select * from opens
    union all select * from clicks
    union all select * from bounces
),

events as (
    select
        'spotler:' || e.event_type || ':' || e.event_key as event_ref,
        'spotler' as source_system,
        'spotler:' || e.mailing_id as mailing_key,
        m.email,
        e.external_contact_id as external_customer_id,
        e.event_type,
        e.event_at,
        l.url,
        l.link_name,
        l.link_type,
        cast(null as {{ dbt.type_string() }}) as bounce_reason,
        cast(null as {{ dbt.type_string() }}) as source_activity_code,
        e.campaign_subscription_id,
        cast(null as {{ dbt.type_string() }}) as source_contact_id,
        cast(null as timestamp with time zone) as loaded_at
    from interactions e
    left join addresses m on m.external_customer_id = e.external_contact_id
    left join links l
        on l.mailing_kind = e.mailing_kind and l.mailing_id = e.mailing_id and l.link_id = e.link_id
),

unsubscribes as (
    -- Spotler shows an unsubscribe as a click on the mailing's unsubscribe link
    select
        replace(event_ref, 'spotler:click:', 'spotler:unsubscribe:') as event_ref,
        source_system, mailing_key, email, external_customer_id,
        'unsubscribe' as event_type,
        event_at, url, link_name, link_type, bounce_reason, source_activity_code, campaign_subscription_id,
        source_contact_id, loaded_at
    from events
    where event_type = 'click' and link_type = 'unsubscribe'
)

select * from events
union all
select * from unsubscribes
