{#
  The Spark target reads the sources from the lake: the parquet folders dlt's filesystem destination writes,
  <bucket_url>/<dataset>/<table>/<load_id>.<file_id>.parquet (bucket_url: DESTINATION__FILESYSTEM__BUCKET_URL,
  default var/lake; s3://... is read as s3a://). Before every run (on-run-start) each source table found in
  the lake becomes a view <schema>.<table> over its folder, so the models read it as source() as on DuckDB.
  The filesystem destination appends where the DuckDB load merges: a table whose yml meta names `latest_by`
  keys shows only the rows of the latest load of each key (what dlt's merge keeps; or of the latest value of
  its `latest_version` column: Clang's rows carry their file's version, `file_loaded_at`), without the rows its
  `deleted_by` column flags (a Clang file's version without rows: dlt's merge deletes by them). dlt's load log
  (`_dlt_loads`, JSON lines) becomes a view too, for source freshness. A table the lake lacks stays
  absent: its staging view is empty (see sources_present.sql). On DuckDB this does nothing.
#}
{% macro register_lake_sources() -%}
    {{ return(adapter.dispatch('register_lake_sources')()) }}
{%- endmacro %}

{% macro default__register_lake_sources() -%}
    select 1 as lake_not_used_on_this_engine
{%- endmacro %}

{% macro lake_url() -%}
    {%- set url = env_var('DESTINATION__FILESYSTEM__BUCKET_URL', 'var/lake') | trim -%}
    {%- if url.startswith('s3://') -%} {%- set url = 's3a://' ~ url[5:] -%} {%- endif -%}
    {{ return(url.rstrip('/')) }}
{%- endmacro %}

{% macro spark__register_lake_sources() -%}
    {%- if not execute -%} {{ return('select 1') }} {%- endif -%}
    {%- set lake = lake_url() -%}
    {#- only file names are read: binaryFile leaves the content unread when it is not selected -#}
    {%- set folders_query -%}
        select distinct
            regexp_extract(path, '/([^/]+)/([^/]+)/[^/]+[.](parquet|jsonl)$', 1) as dataset_name,
            regexp_extract(path, '/([^/]+)/([^/]+)/[^/]+[.](parquet|jsonl)$', 2) as table_name
        from binaryFile.`{{ lake }}/*/*/*`
        where path rlike '[.](parquet|jsonl)$'
    {%- endset -%}
    {%- set folders = [] -%}
    {%- for row in run_query(folders_query) -%}
        {%- do folders.append(row[0] ~ '/' ~ row[1]) -%}
    {%- endfor -%}
    {%- for node in graph.sources.values() if node.package_name == project_name -%}
        {%- if (node.schema ~ '/' ~ node.identifier) in folders -%}
            {%- set folder = lake ~ '/' ~ node.schema ~ '/' ~ node.identifier -%}
            {%- set meta = node.config.meta or node.meta or {} -%}
            {%- set latest_by = meta.get('latest_by') or [] -%}
            {#- the latest by the load's id, or by a version column the rows carry (Clang's file_loaded_at) -#}
            {%- set version = meta.get('latest_version') or '_dlt_load_id' -%}
            {#- a flag column is in the lake only once a flagged row was loaded -#}
            {%- set deleted_by = meta.get('deleted_by') -%}
            {%- if deleted_by and deleted_by not in run_query('select * from parquet.`' ~ folder ~ '` limit 0').column_names -%}
                {%- set deleted_by = none -%}
            {%- endif -%}
            {%- set view = api.Relation.create(schema=node.schema, identifier=node.identifier, type='view') -%}
            {%- do run_query('create database if not exists ' ~ node.schema) -%}
            {%- set view_sql -%}
                create or replace view {{ view }} as
                {% if node.identifier == '_dlt_loads' -%}
                {#- dlt's load log, which source freshness reads: JSON lines, its times ISO strings -#}
                select load_id, schema_name, status, cast(inserted_at as timestamp) as inserted_at
                from json.`{{ folder }}`
                {%- else -%}
                select lake.*
                from parquet.`{{ folder }}` lake
                {%- if latest_by %}
                left semi join (
                    select {{ latest_by | join(', ') }}, max({{ version }}) as {{ version }}
                    from parquet.`{{ folder }}`
                    group by {{ latest_by | join(', ') }}
                ) latest
                    on {% for key in latest_by %}lake.{{ key }} <=> latest.{{ key }} and {% endfor %}lake.{{ version }} = latest.{{ version }}
                {%- endif %}
                {%- if deleted_by %}
                where not coalesce(lake.{{ deleted_by }}, false)
                {%- endif %}
                {%- endif %}
            {%- endset -%}
            {%- do run_query(view_sql) -%}
            {%- do adapter.cache_added(view) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return('select 1') }}
{%- endmacro %}
