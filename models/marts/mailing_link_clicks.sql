{{ config(materialized='incremental', unique_key='link_click_key') }}
-- Clicks per link of each mailing: Spotler links by id (name, url, type), Clang links by url.
-- Incremental: the mailings with clicks written since this table's last build are counted again.
with

clicks as (
    select
        mailing_key,
        coalesce(url, '(unknown link)') as url,
        link_name,
        link_type,
        coalesce(contact_key, 'external:' || external_customer_id) as person
    from {{ ref('customer_activity') }}
    where event_type = 'click'
    {% if is_incremental() %}
      and mailing_key in (
          select mailing_key from {{ ref('customer_activity') }}
          where built_at > {{ last_built_at() }} and event_type = 'click'
      )
    {% endif %}
),

final as (
    select
        {{ dbt.hash("mailing_key || '|' || url") }} as link_click_key,
        mailing_key,
        url,
        max(link_name) as link_name,
        max(link_type) as link_type,
        count(*) as total_click_count,
        count(distinct person) as unique_click_count,
        {{ built_at() }} as built_at
    from clicks
    group by mailing_key, url
)

select * from final
