{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}
-- One row per e-mail event of every source. Incremental: each run re-reads the last
-- `activity_lookback_days` of events (late files, late API events) and replaces them by event_id.

with

events as (
    select * from {{ ref('int_email_events_unioned') }}
    {% if is_incremental() %}
    where event_at >= (
        select {{ dbt.dateadd('day', -var('activity_lookback_days'), 'max(event_at)') }} from {{ this }}
    )
    {% endif %}
),

final as (
    select
        event_id,
        source_system,
        mailing_key,
        contact_key,
        email,
        external_customer_id,
        event_type,
        event_at,
        event_date,
        url,
        link_name,
        link_type,
        bounce_reason,
        source_activity_code,
        campaign_subscription_id
    from events
)

select * from final
