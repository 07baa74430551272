{#
  Which sources a company has. A source is present when its raw tables are in the warehouse (a loader has
  loaded it), or when its variable says so: `clang_enabled`, `spotler_enabled`, `directo_enabled` take
  auto (the default: look at the warehouse), true (it must have been loaded: none of its tables is an
  error; `warehouse build` sets it for every configured source) or false (ignore it even when loaded).
  Staging reads a source table through source_or_empty(): an absent source's staging views are empty, with
  the column types its yml declares, so everything downstream builds for any subset of the three systems.
#}

{# The source's variable as true, false or none (auto). #}
{% macro source_enabled_setting(source_name) -%}
    {%- set setting = var(source_name ~ '_enabled', 'auto') -%}
    {%- if setting is string -%}
        {%- set setting = setting | lower | trim -%}
        {%- if setting in ('true', 'yes', '1') -%} {{ return(true) }}
        {%- elif setting in ('false', 'no', '0') -%} {{ return(false) }}
        {%- elif setting == 'auto' -%} {{ return(none) }}
        {%- else -%}
            {{ exceptions.raise_compiler_error("var " ~ source_name ~ "_enabled is " ~ setting ~ ": use auto, true or false") }}
        {%- endif -%}
    {%- endif -%}
    {{ return(setting) }}
{%- endmacro %}

{#
  Is a source's table (or, without table_name, any of its tables) in the warehouse? In a unit test the
  given rows stand for the source, so it counts as present unless its variable says false. A source whose
  variable says true (`warehouse build` sets it for every configured source) must have been loaded: when
  none of its tables exists the build stops, so a configured source whose first load failed never lets the
  models fall back to the rules for an absent one (without Directo, consent implied by mailing). A table
  it lacks (a Spotler account without campaigns) still reads as empty.
#}
{% macro source_is_present(source_name, table_name=none) -%}
    {%- set setting = source_enabled_setting(source_name) -%}
    {%- if setting is false -%} {{ return(false) }} {%- endif -%}
    {%- if not execute or model.resource_type == 'unit_test' -%} {{ return(true) }} {%- endif -%}
    {%- if table_name is not none and source_table_exists(source_name, table_name) -%} {{ return(true) }} {%- endif -%}
    {%- if table_name is not none and setting is none -%} {{ return(false) }} {%- endif -%}
    {%- set source_loaded = source_table_exists(source_name) -%}
    {%- if setting is true and not source_loaded -%}
        {{ exceptions.raise_compiler_error("source " ~ source_name ~ " is configured (" ~ source_name ~ "_enabled: true) but none of its tables is in the warehouse: it has never been loaded. Run `warehouse load " ~ source_name ~ "` and fix what stops it, or leave the source out of the configuration") }}
    {%- endif -%}
    {{ return(source_loaded and table_name is none) }}
{%- endmacro %}

{# Is the source's table (or, without table_name, any of its tables) in the warehouse? #}
{% macro source_table_exists(source_name, table_name=none) -%}
    {%- for node in graph.sources.values() if node.source_name == source_name and node.package_name == project_name -%}
        {%- if table_name is none or node.name == table_name -%}
            {%- if adapter.get_relation(database=node.database, schema=node.schema, identifier=node.identifier) is not none -%}
                {{ return(true) }}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(false) }}
{%- endmacro %}

{#
  A source table, or when it is absent an empty relation with the columns (and data_type) its yml declares.
  source() is called either way, so lineage shows the dependency.
#}
{% macro source_or_empty(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if source_is_present(source_name, table_name) -%}
        {{ relation }}
    {%- else -%}
        {%- set node = graph.sources['source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name] -%}
        {%- if not node.columns -%}
            {{ exceptions.raise_compiler_error("source " ~ source_name ~ "." ~ table_name ~ " is absent and its yml declares no columns to build an empty relation from") }}
        {%- endif -%}
        (select
        {%- for column in node.columns.values() %}
            cast(null as {{ engine_type(column.data_type) }}) as {{ adapter.quote(column.name) }}{{ "," if not loop.last }}
        {%- endfor %}
        where false)
    {%- endif -%}
{%- endmacro %}

{#
  list_source_schemas(): lists each source schema's tables once, before any model compiles (on-run-start).
  dbt's adapter marks a schema as listed as soon as it caches the first of its tables: with two threads
  compiling staging models at once, one could read a source schema that was half cached and take a present
  table for absent (source_or_empty's empty relation: a load's rows silently left out). Listed here, in the one
  thread of the hook, every later lookup sees the whole schema. Spark builds with one thread: nothing to do.
#}
{% macro list_source_schemas() -%}
    {%- if execute and target.type != 'spark' -%}
        {%- set listed = [] -%}
        {%- for node in graph.sources.values() if node.package_name == project_name -%}
            {%- if node.schema not in listed -%}
                {%- do listed.append(node.schema) -%}
                {%- do adapter.get_relation(database=node.database, schema=node.schema, identifier=node.identifier) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    select 1 as source_schemas_listed
{%- endmacro %}
