{#
  Data tests on the big incremental tables check only the rows this build wrote: a test's `where` may say
  `__built_this_run__`, which becomes `built_at = <this build's start>`. A full refresh stamps every row,
  so it tests them all. (dbt's own get_where_subquery, plus the placeholder.)
#}
{% macro default__get_where_subquery(relation) -%}
    {% set where = config.get('where', '') %}
    {% if where %}
        {% set where = where | replace('__built_this_run__', 'built_at = ' ~ built_at()) %}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {% do return(filtered) %}
    {%- else -%}
        {% do return(relation) %}
    {%- endif -%}
{%- endmacro %}
