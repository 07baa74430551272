{{ config(materialized='incremental', unique_key='mailing_key') }}
-- Our counts of each mailing from customer_activity. A person is the contact, or the external customer
-- id when the address is unknown; a click counts as an open. Incremental: the mailings with events
-- written since this table's last build are counted again from all their events.
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
        contact_key,
        case when contact_key is null then external_customer_id end as unknown_address_customer_id,
        count(*) filter (where event_type = 'sent') as sends,
        count(*) filter (where event_type = 'open') as opens,
        bool_or(event_type = 'click') as clicked_any_link,
        count(*) filter (where event_type = 'click' and coalesce(link_type, '') <> 'unsubscribe') as clicks,
        count(*) filter (where event_type = 'hard_bounce') as hard_bounces,
        count(*) filter (where event_type = 'soft_bounce') as soft_bounces,
        bool_or(event_type = 'complaint') as complained,
        bool_or(event_type = 'unsubscribe') as unsubscribed,
        bool_or(event_type = 'click' and link_type = 'conversion') as clicked_conversion_link,
        bool_or(event_type = 'click' and link_type = 'webshop') as clicked_webshop_link
    from events
    group by 1, 2, 3
),

final as (
    select
        mailing_key,
        cast(sum(sends) as {{ dbt.type_bigint() }}) as sent_count,
        count(*) filter (where opens > 0 or clicked_any_link) as unique_open_count,
        cast(sum(opens) as {{ dbt.type_bigint() }}) + count(*) filter (where opens = 0 and clicked_any_link)
            as total_open_count,
        count(*) filter (where clicks > 0) as unique_click_count,
        cast(sum(clicks) as {{ dbt.type_bigint() }}) as total_click_count,
        cast(sum(hard_bounces) as {{ dbt.type_bigint() }}) as hard_bounce_count,
        cast(sum(soft_bounces) as {{ dbt.type_bigint() }}) as soft_bounce_count,
        count(*) filter (where complained) as complaint_count,
        count(*) filter (where unsubscribed) as unsubscribe_count,
        count(*) filter (where clicked_conversion_link) as conversion_click_count,
        count(*) filter (where clicked_webshop_link) as webshop_click_count,
        {{ built_at() }} as built_at
    from per_person
    group by mailing_key
)

select * from final
