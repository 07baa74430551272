{# One spelling per address: trimmed, lower-case, empty as null. #}
{% macro normalize_email(column) -%}
    nullif(lower(trim({{ column }})), '')
{%- endmacro %}
