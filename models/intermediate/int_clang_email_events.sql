-- Clang's activities as e-mail events: canonical event types from the editable seed (an unmapped code
-- becomes `other`), bounce and complaint reasons, and when each row's file was loaded.
with

activities as (
    select * from {{ ref('stg_clang__activities') }}
),

activity_types as (
    select * from {{ ref('clang_activity_types') }}
),

events as (
    select
        'clang:' || a.activity_id as event_ref,
        'clang' as source_system,
        'clang:' || a.broadcast_id as mailing_key,
        a.email,
        a.external_customer_id,
        coalesce(t.event_type, 'other') as event_type,
        a.activity_at as event_at,
        cast(null as {{ dbt.type_bigint() }}) as link_id,
        case when t.event_type = 'click' then a.activity_description end as url,
        cast(null as {{ dbt.type_string() }}) as link_name,
        cast(null as {{ dbt.type_string() }}) as link_type,
        case when t.event_type in ('hard_bounce', 'soft_bounce', 'complaint') then a.activity_description end
            as bounce_reason,
        a.activity_code as source_activity_code,
        cast(null as {{ dbt.type_bigint() }}) as campaign_subscription_id,
        a.clang_customer_id as source_contact_id,
        a.file_loaded_at as loaded_at,
        a.source_file,
        a.machine_flag
    from activities as a
    left join activity_types as t using (activity_code)
)

select * from events
