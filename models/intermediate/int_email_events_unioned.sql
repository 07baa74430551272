-- Every e-mail event of every source in one shape, with canonical event types.
with

clang_activities as (
    select * from {{ ref('stg_clang__activities') }}
),

clang_types as (
    select * from {{ ref('clang_activity_types') }}
),

clang_events as (
    select
        'clang:' || a.activity_id as event_ref,
        'clang' as source_system,
        'clang:' || a.broadcast_id as mailing_key,
        a.email,
        a.external_customer_id,
        coalesce(t.event_type, 'other') as event_type,
        a.activity_at as event_at,
        case when t.event_type = 'click' then a.activity_description end as url,
        cast(null as {{ dbt.type_string() }}) as link_name,
        cast(null as {{ dbt.type_string() }}) as link_type,
        case when t.event_type in ('hard_bounce', 'soft_bounce', 'complaint') then a.activity_description end
            as bounce_reason,
        a.activity_code as source_activity_code,
        cast(null as {{ dbt.type_bigint() }}) as campaign_subscription_id
    from clang_activities a
    left join clang_types t using (activity_code)
),

addresses as (
    select * from {{ ref('int_contact_addresses_mapped') }}
),

links as (
    select * from {{ ref('stg_spotler__mailing_links') }}
),

spotler_sent as (
    select mailing_kind, event_key, mailing_id, campaign_subscription_id, external_contact_id,
           'sent' as event_type, sent_at as event_at, cast(null as {{ dbt.type_bigint() }}) as link_id,
           cast(null as {{ dbt.type_string() }}) as bounce_kind
    from {{ ref('stg_spotler__recipients') }}
),

spotler_opens as (
    select mailing_kind, event_key, mailing_id, campaign_subscription_id, external_contact_id,
           'open', opened_at, cast(null as {{ dbt.type_bigint() }}), cast(null as {{ dbt.type_string() }})
    from {{ ref('stg_spotler__opens') }}
),

spotler_clicks as (
    select mailing_kind, event_key, mailing_id, campaign_subscription_id, external_contact_id,
           'click', clicked_at, link_id, cast(null as {{ dbt.type_string() }})
    from {{ ref('stg_spotler__clicks') }}
),

spotler_bounces as (
    select mailing_kind, event_key, mailing_id, campaign_subscription_id, external_contact_id,
           bounce_kind || '_bounce', bounced_at, cast(null as {{ dbt.type_bigint() }}), bounce_kind
    from {{ ref('stg_spotler__bounces') }}
),

spotler_raw as (
    select * from spotler_sent
    union all select * from spotler_opens
    union all select * from spotler_clicks
    union all select * from spotler_bounces
),

spotler_events as (
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
        e.campaign_subscription_id
    from spotler_raw e
    left join addresses m on m.external_customer_id = e.external_contact_id
    left join links l
        on l.mailing_kind = e.mailing_kind and l.mailing_id = e.mailing_id and l.link_id = e.link_id
),

spotler_unsubscribes as (
    -- Spotler shows an unsubscribe as a click on the mailing's unsubscribe link
    select
        replace(event_ref, 'spotler:click:', 'spotler:unsubscribe:') as event_ref,
        source_system, mailing_key, email, external_customer_id,
        'unsubscribe' as event_type,
        event_at, url, link_name, link_type, bounce_reason, source_activity_code, campaign_subscription_id
    from spotler_events
    where event_type = 'click' and link_type = 'unsubscribe'
),

unioned as (
    select * from clang_events
    union all select * from spotler_events
    union all select * from spotler_unsubscribes
),

final as (
    select
        {{ dbt.hash('event_ref') }} as event_id,
        source_system,
        mailing_key,
        case when email is not null then {{ dbt.hash('email') }} end as contact_key,
        email,
        external_customer_id,
        event_type,
        event_at,
        cast(event_at as date) as event_date,
        url,
        link_name,
        link_type,
        bounce_reason,
        source_activity_code,
        campaign_subscription_id
    from unioned
)

select * from final
