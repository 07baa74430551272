{{ config(materialized='table') }}
-- Our counts of each mailing, as the vendors define them (Spotler's MailingStats: "aantal unieke
-- contacten"): opens, clicks, bounces, complaints and unsubscribes count people, once per mailing however
-- often they did it (int_mailing_person_events); delivered is sends minus the people who bounced. Events
-- without a person count in the event totals only. A click counts as an open. Beside them the same people
-- counted by what they did themselves (unique_human_*), and those whom only a machine opened or clicked for
-- (unique_machine_*: a proxy or scanner, and no open or click of their own). A table of one row per
-- mailing, counted again every run from the per-person rows (a pass over one narrow table).
with

people as (
    select * from {{ ref('int_mailing_person_events') }}
),

final as (
    select
        mailing_key,
        cast(sum(sends) as {{ dbt.type_bigint() }}) as sent_count,
        count(*) filter (where person_key is not null and (hard_bounced or soft_bounced)) as bounced_count,
        count(*) filter (where person_key is not null and opened) as unique_open_count,
        -- open events, plus one for each person whose open shows only in a click
        cast(sum(opens) as {{ dbt.type_bigint() }})
        + count(*) filter (where person_key is not null and opens = 0 and opened) as total_open_count,
        count(*) filter (where person_key is not null and clicks > 0) as unique_click_count,
        cast(sum(clicks) as {{ dbt.type_bigint() }}) as total_click_count,
        count(*) filter (where person_key is not null and human_opened) as unique_human_open_count,
        count(*) filter (where person_key is not null and human_clicks > 0) as unique_human_click_count,
        count(*) filter (where person_key is not null and machine_opens > 0 and not human_opened)
            as unique_machine_open_count,
        count(*) filter (where person_key is not null and machine_clicks > 0 and human_clicks = 0)
            as unique_machine_click_count,
        count(*) filter (where person_key is not null and hard_bounced) as hard_bounce_count,
        count(*) filter (where person_key is not null and soft_bounced) as soft_bounce_count,
        count(*) filter (where person_key is not null and complained) as complaint_count,
        count(*) filter (where person_key is not null and unsubscribed) as unsubscribe_count,
        count(*) filter (where person_key is not null and clicked_conversion_link) as conversion_click_count,
        count(*) filter (where person_key is not null and clicked_webshop_link) as webshop_click_count
    from people
    group by mailing_key
)

select * from final
