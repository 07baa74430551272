{{ config(materialized='incremental', unique_key='event_id') }}
-- One row per e-mail event of every source. Incremental: the Clang rows of files loaded after the newest
-- file already here, and Spotler's events of the last `activity_lookback_days` days again (its API has
-- late events), replacing earlier versions by event_id. Every row written carries this build's built_at.

with

clang_events as (
    select * from {{ ref('int_clang_email_events') }}
    {% if is_incremental() %}
    where loaded_at > (
        select coalesce(max(loaded_at), {{ epoch() }}) from {{ this }} where source_system = 'clang'
    )
    {% endif %}
),

spotler_events as (
    select * from {{ ref('int_spotler_email_events') }}
    {% if is_incremental() %}
    where event_at >= (
        select coalesce({{ dbt.dateadd('day', -var('activity_lookback_days'), 'max(event_at)') }}, {{ epoch() }})
        from {{ this }}
        where source_system = 'spotler'
    )
    {% endif %}
),

events as (
    select * from clang_events
    union all
    select * from spotler_events
),

final as (
    select
        {{ dbt.hash('event_ref') }} as event_id,
        source_system,
        mailing_key,
        case when email is not null then {{ dbt.hash('email') }} end as contact_key,
        email,
        external_customer_id,
        source_contact_id,
        event_type,
        event_at,
        cast(event_at as date) as event_date,
        link_id,
        url,
        link_name,
        link_type,
        bounce_reason,
        source_activity_code,
        campaign_subscription_id,
        loaded_at,
        {{ built_at() }} as built_at
    from events
)

select * from final
