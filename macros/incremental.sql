{#
  Helpers of the incremental models (see README, "Incremental builds").

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
