-- Spotler's recipients, opens, clicks and bounces of regular and campaign mailings as e-mail events, with
-- the address of each external contact id and the clicked link. A click on a mailing's unsubscribe link
-- is an `unsubscribe` event (with the link), not a click: unsubscribing is no engagement. Spotler's API
-- rows carry no load time (loaded_at is null).
with

addresses as (
    select * from {{ ref('int_contact_addresses_mapped') }}
),

links as (
    select * from {{ ref('stg_spotler__mailing_links') }}
),

interactions as (
    select * from {{ ref('int_spotler_interactions_unioned') }}
),

with_links as (
    select
        i.*,
        l.url,
        l.link_name,
        l.link_type,
        case when i.event_type = 'click' and l.link_type = 'unsubscribe' then 'unsubscribe' else i.event_type end
            as final_event_type
    from interactions as i
    left join links as l
        on i.mailing_kind = l.mailing_kind and i.mailing_id = l.mailing_id and i.link_id = l.link_id
),

events as (
    select
        'spotler:' || e.final_event_type || ':' || e.event_key as event_ref,
        'spotler' as source_system,
        'spotler:' || e.mailing_id as mailing_key,
        m.email,
        e.external_contact_id as external_customer_id,
        e.final_event_type as event_type,
        e.event_at,
        e.link_id,
        e.url,
        e.link_name,
        e.link_type,
        cast(null as {{ dbt.type_string() }}) as bounce_reason,
        cast(null as {{ dbt.type_string() }}) as source_activity_code,
        e.campaign_subscription_id,
        cast(null as {{ dbt.type_string() }}) as source_contact_id,
        cast(null as {{ type_timestamp_tz() }}) as loaded_at,
        cast(null as {{ dbt.type_string() }}) as source_file,
        -- Spotler's feeds carry no machine flag: its opens and clicks are judged by the rules alone
        cast(null as boolean) as machine_flag
    from with_links as e
    left join addresses as m on e.external_contact_id = m.external_customer_id
)

select * from events
