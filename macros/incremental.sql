{#
  Helpers of the incremental models (see README, "Incremental builds"): this file is the one place that says
  how an incremental build adds up; the rest of the machinery is the strategy on Spark
  (spark_incremental.sql: delete+insert on plain parquet) and the data tests on the rows a build wrote
  (get_where_subquery.sql: `where: __built_this_run__`).

  built_at(): when this build started (dbt's run_started_at), stamped on every row an incremental model
  writes. A model downstream rebuilds the keys of the rows stamped after its own newest stamp.
#}
{% macro built_at() -%}
    {{ utc_timestamp_literal(run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f")) }}
{%- endmacro %}

{# The newest built_at of this model's own rows (epoch when it has none): the watermark of an incremental build. #}
{% macro last_built_at() -%}
    (select coalesce(max(built_at), {{ epoch() }}) from {{ this }})
{%- endmacro %}

{# A time before any data: the watermark of a table that has none yet. #}
{% macro epoch() -%}
    {{ utc_timestamp_literal('1970-01-01 00:00:00') }}
{%- endmacro %}

{#
  counted_before(events): for an incremental model that adds the events int_email_events_classified wrote since its
  last build to what it holds, whether a written event (a row of `events`) may have been counted by it
  already, in an earlier version: first written before this model's last build (a Clang file delivered again
  with other content), or int_email_events_classified rebuilt since (a full refresh of it alone). The keys of such
  events are counted again from all their events; the keys of the others add the new events.
#}
{% macro counted_before(events) -%}
    (first_built_at <= {{ last_built_at() }}
     or (select min(first_built_at) from {{ events }}) > {{ last_built_at() }})
{%- endmacro %}

{#
  The CTEs of a model that keeps figures that add up (counts, minimums, maximums, "any", latest-of) per `key`
  of int_email_events_classified's events, `keyed` being those events with the key (`select *, <key> from ...`):
  - written: the events written since this model's last build;
  - recounted_keys: the keys with an event it may have counted before in another version (counted_before);
  - events: what to add up now: the new events of the other keys, and every event of the recounted keys.
  A full build adds up all events. The model then adds to its `events` figures the rows it holds for
  `written` keys that are not recounted (held_rows_to_add).
#}
{% macro events_to_add_up(events_model, key, keyed) -%}
{% if is_incremental() %}
written as (
    select * from ({{ keyed }}) where built_at > {{ last_built_at() }}
),

recounted_keys as (
    select distinct {{ key }} from written where {{ counted_before(events_model) }}
),

events as (
    select * from written where {{ key }} not in (select {{ key }} from recounted_keys)
    union all
    select * from ({{ keyed }}) where {{ key }} in (select {{ key }} from recounted_keys)
),
{% else %}
events as (
    {{ keyed }}
),
{% endif %}
{%- endmacro %}

{# Which of the rows a model holds join its new figures: those of keys with new events, not recounted. #}
{% macro held_rows_to_add(key) -%}
    {{ key }} in (select {{ key }} from written) and {{ key }} not in (select {{ key }} from recounted_keys)
{%- endmacro %}

{#
  Stops an incremental build of a table whose lookup_hash `column` an earlier version wrote as other values
  (its md5 text): the new keys would never meet the rows held, so the table needs a full refresh first.
#}
{% macro require_lookup_hashes_of_this_version(column) -%}
    {%- set expected = lookup_hash_type() -%}
    {%- if expected and execute and is_incremental() -%}
        {%- set held = adapter.get_columns_in_relation(this) | selectattr('name', 'equalto', column) | list -%}
        {%- if held and held[0].dtype | upper != expected -%}
            {{ exceptions.raise_compiler_error(this ~ "." ~ column ~ " holds keys an earlier version wrote: rebuild "
               ~ "it once with `warehouse build -- --full-refresh --select " ~ this.identifier ~ "+`") }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
