{{ config(materialized='incremental', unique_key='link_click_key') }}
-- Clicks per link of each mailing: Spotler's links by their id (with name, url and type), Clang's by url
-- (its export names no link id). Clicks on the unsubscribe link are unsubscribes, not clicks, and do not
-- show here. The human_* counts leave out link scanners' clicks (macros/machine_rules.sql). Unique clicks
-- count people (person_key); a click without any contact identity counts in the total only. Incremental: the
-- mailings with clicks written since this table's last build are counted again.
{#- the events are read where they are used: DuckDB writes a CTE read twice out whole first #}
{%- set events = ref('int_email_events_classified') %}
with

clicks as (
    select
        mailing_key,
        link_id,
        coalesce(url, '(unknown link)') as url,
        link_name,
        link_type,
        coalesce('id:' || cast(link_id as {{ dbt.type_string() }}), 'url:' || url, '(unknown link)') as link_ref,
        {{ person_key() }} as person_key,
        is_machine
    from {{ events }}
    where
        event_type = 'click'
    {% if is_incremental() -%}
        and mailing_key in (
            select mailing_key from {{ events }}
            where built_at > {{ last_built_at() }} and event_type = 'click'
        )
    {%- endif %}
),

final as (
    select
        {{ dbt.hash("mailing_key || '|' || link_ref") }} as link_click_key,
        mailing_key,
        max(link_id) as link_id,
        -- a Spotler link's url, name and type come from its id: one each per link
        max(url) as url,
        max(link_name) as link_name,
        max(link_type) as link_type,
        count(*) as total_click_count,
        count(distinct person_key) as unique_click_count,
        count(*) filter (where not coalesce(is_machine, false)) as human_click_count,
        count(distinct case when not coalesce(is_machine, false) then person_key end) as unique_human_click_count,
        {{ built_at() }} as built_at
    from clicks
    group by mailing_key, link_ref
)

select * from final
