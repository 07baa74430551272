{# The day recency is measured from: var as_of_date, or today. #}
{% macro as_of_date() -%}
    {%- if var('as_of_date') -%} cast('{{ var("as_of_date") }}' as date) {%- else -%} current_date {%- endif -%}
{%- endmacro %}

{# The first day of the engagement window: engagement_window_days before as_of_date (a date; midnight UTC). #}
{% macro engagement_window_start() -%}
    cast({{ dbt.dateadd('day', -var('engagement_window_days'), as_of_date()) }} as date)
{%- endmacro %}
