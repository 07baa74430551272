{{ config(materialized='incremental', unique_key='source_file') }}
-- One row per Clang activities file the warehouse has read, with the build that first read a version of it:
-- int_email_events_classified tells by it the events of a file delivered again (with other content) from new ones.
-- Incremental: the files loaded since, keeping when a build first read each.
with

clang_events as (
    select * from {{ ref('int_clang_email_events') }}
    {% if is_incremental() %}
        where loaded_at > (select coalesce(max(loaded_at), {{ epoch() }}) from {{ this }})
    {% endif %}
),

files as (
    select
        source_file,
        max(loaded_at) as loaded_at
    from clang_events
    group by source_file
),

final as (
    select
        f.source_file,
        {% if is_incremental() -%}
            coalesce(r.first_built_at, {{ built_at() }})
        {%- else -%}
            {{ built_at() }}
        {%- endif %} as first_built_at,
        f.loaded_at,
        {{ built_at() }} as built_at
    from files as f
    {% if is_incremental() -%}
        left join {{ this }} as r on f.source_file = r.source_file
    {%- endif %}
)

select * from final
