{#
  The incremental models' strategy, delete+insert on unique_key (dbt_project.yml), on Spark with plain
  parquet tables (Delta's merge needs jars from Maven). dbt-spark offers append, insert_overwrite and merge
  (Delta, Iceberg, Hudi only). insert_overwrite by partition does not fit: the keys a build replaces (an
  event, an address, a mailing, a contact-mailing pair) are spread over any partition one could choose, and
  Spark refuses to overwrite a parquet table a query reads, which the models' watermarks do. So on Spark
  delete+insert rewrites: the new rows are written once, then the table is rebuilt from its rows whose key
  is not among them plus the new rows, and takes the old one's place. The models still compute only what
  changed (the expensive part); the write is the whole table, which parquet cannot avoid. A run that dies
  between the drop and the rename leaves the table absent, and the next run builds it in full.
#}
{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) -%}
    {%- if raw_strategy == 'delete+insert' -%} {{ return(raw_strategy) }} {%- endif -%}
    {{ return(dbt_spark.dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format)) }}
{%- endmacro %}

{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) -%}
    {%- if strategy == 'delete+insert' -%}
        {{ return(spark_rewrite_delete_insert_sql(source, target, unique_key)) }}
    {%- endif -%}
    {{ return(dbt_spark.dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates)) }}
{%- endmacro %}

{% macro spark_rewrite_delete_insert_sql(source, target, unique_key) -%}
    {%- if not unique_key -%}
        {{ exceptions.raise_compiler_error("incremental model " ~ target ~ " has no unique_key: delete+insert needs one") }}
    {%- endif -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set new_rows = target.incorporate(path={'identifier': target.identifier ~ '__dbt_new_rows'}) -%}
    {%- set rebuilt = target.incorporate(path={'identifier': target.identifier ~ '__dbt_rebuilt'}) -%}
    {%- do run_query('drop table if exists ' ~ new_rows) -%}
    {%- do run_query('drop table if exists ' ~ rebuilt) -%}
    {%- do run_query('create table ' ~ new_rows ~ ' using parquet as select * from ' ~ source) -%}
    {%- set rebuild_sql -%}
        create table {{ rebuilt }} using parquet as
        select kept.* from {{ target }} kept
        left anti join {{ new_rows }} replaced
            on {% for key in keys %}kept.{{ key }} = replaced.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
        union all
        select * from {{ new_rows }}
    {%- endset -%}
    {%- do run_query(rebuild_sql) -%}
    {%- do run_query('drop table ' ~ new_rows) -%}
    {%- do run_query('drop table ' ~ target) -%}
    {{ return('alter table ' ~ rebuilt ~ ' rename to ' ~ target) }}
{%- endmacro %}
