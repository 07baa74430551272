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

{#
  Spark's to_utc_timestamp moves a time in the gap forward by the gap too, but reads a time in the repeated
  hour as the earlier (summer-time) one: when the time an hour later still shows the same wall clock, the
  later reading is DuckDB's. (Zones whose clocks move by an hour, as Europe's.)
#}
{% macro spark__local_to_utc(column, zone) -%}
    (case
        when from_utc_timestamp(to_utc_timestamp({{ column }}, {{ zone }}) + interval 1 hour, {{ zone }})
             = cast({{ column }} as timestamp)
        then to_utc_timestamp({{ column }}, {{ zone }}) + interval 1 hour
        else to_utc_timestamp({{ column }}, {{ zone }})
    end)
{%- endmacro %}

{# The other way: a UTC timestamp with time zone as wall-clock time in `zone`. #}
{% macro local_from_utc(column, zone) -%}
    {{ return(adapter.dispatch('local_from_utc')(column, zone)) }}
{%- endmacro %}

{% macro default__local_from_utc(column, zone) -%}
    timezone({{ zone }}, {{ column }})
{%- endmacro %}

{% macro spark__local_from_utc(column, zone) -%}
    from_utc_timestamp({{ column }}, {{ zone }})
{%- endmacro %}
