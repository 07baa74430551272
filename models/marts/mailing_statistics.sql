-- One row per mailing: our counts (int_mailing_event_counts), rates, and for Spotler the API's own figures.
-- A small table rebuilt every run: days_since_send and is_settling move with the calendar. The raw counts
-- are the vendors' (they match their screens and Spotler's API); the human_* counts and rates count what
-- people did themselves, the machine_* counts the people only a privacy proxy or link scanner opened or
-- clicked for (macros/machine_rules.sql).
with

counts as (
    select * from {{ ref('int_mailing_event_counts') }}
),

mailings as (
    select * from {{ ref('mailings') }}
),

api_snapshots as (
    select * from {{ ref('stg_spotler__mailing_statistics_snapshots') }}
),

latest_api_figures as (
    select *
    from api_snapshots
    qualify row_number() over (partition by mailing_id order by fetched_at desc) = 1
),

joined as (
    select
        m.mailing_key,
        m.source_system,
        m.mailing_type,
        m.mailing_name,
        m.sent_at,
        coalesce(c.sent_count, 0) as sent_count,
        coalesce(c.sent_count, 0) - coalesce(c.bounced_count, 0) as delivered_count,
        coalesce(c.unique_open_count, 0) as unique_open_count,
        coalesce(c.total_open_count, 0) as total_open_count,
        coalesce(c.unique_click_count, 0) as unique_click_count,
        coalesce(c.total_click_count, 0) as total_click_count,
        coalesce(c.unique_human_open_count, 0) as unique_human_open_count,
        coalesce(c.unique_human_click_count, 0) as unique_human_click_count,
        coalesce(c.unique_machine_open_count, 0) as unique_machine_open_count,
        coalesce(c.unique_machine_click_count, 0) as unique_machine_click_count,
        coalesce(c.hard_bounce_count, 0) as hard_bounce_count,
        coalesce(c.soft_bounce_count, 0) as soft_bounce_count,
        coalesce(c.complaint_count, 0) as complaint_count,
        coalesce(c.unsubscribe_count, 0) as unsubscribe_count,
        coalesce(c.conversion_click_count, 0) as conversion_click_count,
        coalesce(c.webshop_click_count, 0) as webshop_click_count,
        a.carts_created_count,
        a.carts_paid_count,
        a.revenue,
        a.sent_count as api_sent_count,
        a.open_count as api_unique_open_count,
        a.click_count as api_unique_click_count,
        a.fetched_at as api_fetched_at
    from mailings as m
    left join counts as c using (mailing_key)
    left join latest_api_figures as a on m.source_system = 'spotler' and m.source_mailing_id = a.mailing_id
),

final as (
    select
        mailing_key,
        source_system,
        mailing_type,
        mailing_name,
        sent_at,
        sent_count,
        delivered_count,
        unique_open_count,
        total_open_count,
        unique_click_count,
        total_click_count,
        unique_human_open_count,
        unique_human_click_count,
        unique_machine_open_count,
        unique_machine_click_count,
        hard_bounce_count,
        soft_bounce_count,
        complaint_count,
        unsubscribe_count,
        conversion_click_count,
        webshop_click_count,
        carts_created_count,
        carts_paid_count,
        revenue,
        {{ safe_rate('delivered_count', 'sent_count') }} as delivery_rate,
        {{ safe_rate('unique_open_count', 'delivered_count') }} as open_rate,
        {{ safe_rate('unique_click_count', 'delivered_count') }} as click_rate,
        {{ safe_rate('unique_click_count', 'unique_open_count') }} as click_to_open_rate,
        {{ safe_rate('unique_human_open_count', 'delivered_count') }} as human_open_rate,
        {{ safe_rate('unique_human_click_count', 'delivered_count') }} as human_click_rate,
        {{ safe_rate('sent_count - delivered_count', 'sent_count') }} as bounce_rate,
        {{ safe_rate('unsubscribe_count', 'delivered_count') }} as unsubscribe_rate,
        {{ safe_rate('complaint_count', 'delivered_count') }} as complaint_rate,
        {{ dbt.datediff('cast(sent_at as date)', as_of_date(), 'day') }} as days_since_send,
        coalesce({{ dbt.datediff('cast(sent_at as date)', as_of_date(), 'day') }} < {{ var('settle_days') }}, false)
            as is_settling,
        api_sent_count,
        api_unique_open_count,
        api_unique_click_count,
        unique_open_count - api_unique_open_count as unique_open_count_difference,
        unique_click_count - api_unique_click_count as unique_click_count_difference,
        api_fetched_at
    from joined
)

select * from final
