{#
  A local wall-clock timestamp in `zone` as a UTC timestamp with time zone. DuckDB's rule, the one the
  Directo loader uses too: a time in the spring-forward gap moves forward by the gap, a time in the
  repeated autumn hour is read as the later (standard-time) one. Other engines override this macro.
#}
{% macro local_to_utc(column, zone) -%}
    {{ return(adapter.dispatch('local_to_utc')(column, zone)) }}
{%- endmacro %}

{% macro default__local_to_utc(column, zone) -%}
    timezone({{ zone }}, {{ column }})
{%- endmacro %}

{# The other way: a UTC timestamp with time zone as wall-clock time in `zone`. #}
{% macro local_from_utc(column, zone) -%}
    {{ return(adapter.dispatch('local_from_utc')(column, zone)) }}
{%- endmacro %}

{% macro default__local_from_utc(column, zone) -%}
    timezone({{ zone }}, {{ column }})
{%- endmacro %}
