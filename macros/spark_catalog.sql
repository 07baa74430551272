{#
  Where the Spark target's tables are, as Spark itself reports them: `warehouse build` with the spark engine runs
  this as a dbt operation on the same target (the session or the cluster's Thrift server) and copies the marts and
  segments it lists into the warehouse file (mail_warehouse/lake.py). One debug log line, `spark_tables <json>`: per
  table its schema, name and location (Spark's `describe table extended`).
#}
{% macro spark_table_locations(schemas) -%}
    {%- set found = [] -%}
    {%- set databases = run_query('show databases').columns[0].values() | list -%}
    {%- for schema in schemas if schema in databases -%}
        {%- for row in run_query('show tables in ' ~ schema) if not row[2] -%}
            {%- set described = namespace(location=none, kind=none) -%}
            {%- for line in run_query('describe table extended ' ~ schema ~ '.' ~ row[1]) -%}
                {%- if line[0] == 'Location' -%} {%- set described.location = line[1] -%} {%- endif -%}
                {%- if line[0] == 'Type' -%} {%- set described.kind = line[1] -%} {%- endif -%}
            {%- endfor -%}
            {%- if described.kind != 'VIEW' -%}
                {%- do found.append({'schema': schema, 'table': row[1], 'location': described.location}) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ log('spark_tables ' ~ tojson(found)) }}
{%- endmacro %}
