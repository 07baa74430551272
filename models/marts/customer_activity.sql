{#- The events as int_email_events_classified holds them (where the incremental logic lives), for BI and
    analysts. A view on DuckDB: the rows are stored once, and publish writes them into analytics.duckdb as a
    table, bringing it up to date by `unique_key` (the rows built since the copy's newest built_at). On Spark a
    table: the copy back into DuckDB reads the parquet files of tables. -#}
{{ config(materialized=('table' if target.type == 'spark' else 'view'), unique_key='event_id') }}
with

events as (
    select * from {{ ref('int_email_events_classified') }}
),

final as (
    select
        event_id,
        source_system,
        mailing_key,
        contact_key,
        email,
        external_customer_id,
        source_contact_id,
        event_type,
        event_at,
        event_date,
        link_id,
        url,
        link_name,
        link_type,
        bounce_reason,
        source_activity_code,
        campaign_subscription_id,
        loaded_at,
        source_file,
        source_machine_flag,
        first_built_at,
        is_machine,
        machine_reason,
        built_at
    from events
)

select * from final
