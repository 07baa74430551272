{{ config(materialized='incremental', unique_key='mailing_key') }}
-- Our counts of each mailing from customer_activity, as the vendors define them (Spotler's MailingStats:
-- "aantal unieke contacten"): opens, clicks, bounces, complaints and unsubscribes count people, once per
-- mailing however often they did it; delivered is sends minus the people who bounced. A person is the
-- contact, else the external customer id (person_key); an event with neither counts in the event totals
-- only. A click counts as an open. Incremental: the mailings with events written since this table's last
-- build are counted again from all their events.
with

events as (
    select * from {{ ref('customer_activity') }}
    {% if is_incremental() %}
    where mailing_key in (
        select mailing_key from {{ ref('customer_activity') }} where built_at > {{ last_built_at() }}
    )
    {% endif %}
),

per_person as (
    select
        mailing_key,
        {{ person_key() }} as person_key,
        count(*) filter (where event_type = 'sent') as sends,
        count(*) filter (where event_type = 'open') as opens,
        bool_or({{ shows_an_open() }}) as opened,
        count(*) filter (where event_type = 'click' and coalesce(link_type, '') <> 'unsubscribe') as clicks,
        bool_or(event_type = 'hard_bounce') as hard_bounced,
        bool_or(event_type = 'soft_bounce') as soft_bounced,
        bool_or(event_type = 'complaint') as complained,
        bool_or(event_type = 'unsubscribe') as unsubscribed,
        bool_or(event_type = 'click' and link_type = 'conversion') as clicked_conversion_link,
        bool_or(event_type = 'click' and link_type = 'webshop') as clicked_webshop_link
    from events
    group by 1, 2
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
        count(*) filter (where person_key is not null and hard_bounced) as hard_bounce_count,
        count(*) filter (where person_key is not null and soft_bounced) as soft_bounce_count,
        count(*) filter (where person_key is not null and complained) as complaint_count,
        count(*) filter (where person_key is not null and unsubscribed) as unsubscribe_count,
        count(*) filter (where person_key is not null and clicked_conversion_link) as conversion_click_count,
        count(*) filter (where person_key is not null and clicked_webshop_link) as webshop_click_count,
        {{ built_at() }} as built_at
    from per_person
    group by mailing_key
)

select * from final
