{# A share that is null, not an error, when there is nothing to divide by. #}
{% macro safe_rate(numerator, denominator) -%}
    cast({{ numerator }} as double) / nullif({{ denominator }}, 0)
{%- endmacro %}
