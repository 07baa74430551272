{#
  The SQL that differs between the engines the project runs on, each behind adapter.dispatch with a DuckDB
  (default__) and a Spark (spark__) form. Models call these and stay free of engine-only SQL; the DuckDB
  forms are what the models always said, the Spark forms give the same answers (see README, "Spark").
#}

{# The type of a UTC instant: DuckDB's timestamp with time zone; Spark's timestamp (its session is UTC). #}
{% macro type_timestamp_tz() -%}
    {{ return(adapter.dispatch('type_timestamp_tz')()) }}
{%- endmacro %}

{% macro default__type_timestamp_tz() -%} timestamp with time zone {%- endmacro %}

{% macro spark__type_timestamp_tz() -%} timestamp {%- endmacro %}

{#
  A column type written in a yml (`data_type`, DuckDB's spelling) in the engine's spelling: what an absent
  source's empty relation is cast to.
#}
{% macro engine_type(data_type) -%}
    {{ return(adapter.dispatch('engine_type')(data_type)) }}
{%- endmacro %}

{% macro default__engine_type(data_type) -%} {{ return(data_type) }} {%- endmacro %}

{% macro spark__engine_type(data_type) -%}
    {%- set spelled = data_type | lower | trim -%}
    {%- set spark_types = {
        'varchar': 'string', 'text': 'string', 'json': 'string', 'varchar[]': 'array<string>',
        'timestamp with time zone': 'timestamp', 'timestamptz': 'timestamp', 'timestamp': 'timestamp_ntz',
        'hugeint': 'decimal(38, 0)', 'ubigint': 'decimal(20, 0)', 'integer': 'int'} -%}
    {{ return(spark_types.get(spelled, spelled)) }}
{%- endmacro %}

{#
  A UTC instant as the literal `instant_text` ('YYYY-MM-DD HH:MM:SS[.ffffff]', UTC), typed as an instant.
#}
{% macro utc_timestamp_literal(instant_text) -%}
    {{ return(adapter.dispatch('utc_timestamp_literal')(instant_text)) }}
{%- endmacro %}

{% macro default__utc_timestamp_literal(instant_text) -%}
    cast('{{ instant_text }}+00' as timestamp with time zone)
{%- endmacro %}

{% macro spark__utc_timestamp_literal(instant_text) -%}
    to_utc_timestamp(timestamp_ntz '{{ instant_text }}', 'UTC')
{%- endmacro %}

{#
  Aggregate: `value` of the row with the largest `ordering`, among the rows where `condition` holds (and
  value and ordering are not null: DuckDB's arg_max skips a null value, Spark's max_by would return it).
#}
{% macro value_of_max(value, ordering, condition=none) -%}
    {{ return(adapter.dispatch('value_of_max')(value, ordering, condition)) }}
{%- endmacro %}

{% macro default__value_of_max(value, ordering, condition) -%}
    arg_max({{ value }}, {{ ordering }}){% if condition %} filter (where {{ condition }}){% endif %}
{%- endmacro %}

{% macro spark__value_of_max(value, ordering, condition) -%}
    max_by({{ value }}, {{ ordering }}) filter (
        where {{ value }} is not null and {{ ordering }} is not null{% if condition %} and ({{ condition }}){% endif %})
{%- endmacro %}

{# Aggregate: the values of a group as an array, in the order of `order_by`. #}
{% macro ordered_array_agg(value, order_by) -%}
    {{ return(adapter.dispatch('ordered_array_agg')(value, order_by)) }}
{%- endmacro %}

{% macro default__ordered_array_agg(value, order_by) -%}
    list({{ value }} order by {{ order_by }})
{%- endmacro %}

{% macro spark__ordered_array_agg(value, order_by) -%}
    transform(array_sort(collect_list(struct({{ order_by }} as sort_by, {{ value }} as item))), entry -> entry.item)
{%- endmacro %}

{#
  Aggregate: a JSON object of key -> value over a group, keys in the order of `order_by`
  ({"A": "x", "B": null}); DuckDB's json type, a string on Spark.
#}
{% macro json_object_agg(key, value, order_by) -%}
    {{ return(adapter.dispatch('json_object_agg')(key, value, order_by)) }}
{%- endmacro %}

{% macro default__json_object_agg(key, value, order_by) -%}
    {#- a list_sort of (order, key, value) entries: 0.7 s over 1.5M datafields, where DuckDB's ordered aggregate took 1.1-1.3 s -#}
    to_json(map_from_entries(list_transform(
        list_sort(list(struct_pack(sort_by := {{ order_by }}, k := {{ key }}, v := {{ value }}))),
        lambda entry: struct_pack(k := entry.k, v := entry.v))))
{%- endmacro %}

{% macro spark__json_object_agg(key, value, order_by) -%}
    to_json(map_from_entries(transform(
        array_sort(collect_list(struct({{ order_by }} as sort_by, {{ key }} as k, {{ value }} as v))),
        entry -> struct(entry.k, entry.v))))
{%- endmacro %}

{# Integer division, truncating towards zero. #}
{% macro integer_divide(dividend, divisor) -%}
    {{ return(adapter.dispatch('integer_divide')(dividend, divisor)) }}
{%- endmacro %}

{% macro default__integer_divide(dividend, divisor) -%} ({{ dividend }}) // ({{ divisor }}) {%- endmacro %}

{% macro spark__integer_divide(dividend, divisor) -%} ({{ dividend }}) div ({{ divisor }}) {%- endmacro %}

{#
  dbt.datediff on Spark with DuckDB's meaning: the number of boundaries of `datepart` crossed from the first
  to the second time (10:00:50 to 10:01:10 is one minute; dbt-spark's own form would round 20 seconds up),
  null when either is null. Days are calendar days of the UTC session.
#}
{% macro spark__datediff(first_date, second_date, datepart) -%}
    {%- set seconds = {'second': 1, 'minute': 60, 'hour': 3600} -%}
    {%- if datepart == 'day' -%}
        datediff(cast({{ second_date }} as date), cast({{ first_date }} as date))
    {%- elif datepart in seconds -%}
        (floor(unix_micros(cast({{ second_date }} as timestamp)) / {{ seconds[datepart] * 1000000 }})
         - floor(unix_micros(cast({{ first_date }} as timestamp)) / {{ seconds[datepart] * 1000000 }}))
    {%- else -%}
        {{ exceptions.raise_compiler_error("datediff by " ~ datepart ~ " has no Spark form in macros/cross_engine.sql: add one") }}
    {%- endif -%}
{%- endmacro %}

{#
  The minutes between two UTC instants, as dbt.datediff(start, end, 'minute') counts them: minute boundaries
  crossed. DuckDB: from the instants' microseconds since the epoch (dbt-duckdb's datediff casts each
  instant to a local timestamp first, which costs about 6x more over a history's rows); the answer is the
  same, every session being UTC. Spark: dbt.datediff.
#}
{% macro minutes_between(start, end) -%}
    {{ return(adapter.dispatch('minutes_between')(start, end)) }}
{%- endmacro %}

{% macro default__minutes_between(start, end) -%}
    (epoch_us({{ end }}) // 60000000 - epoch_us({{ start }}) // 60000000)
{%- endmacro %}

{% macro spark__minutes_between(start, end) -%}
    {{ dbt.datediff(start, end, 'minute') }}
{%- endmacro %}

{#
  A key a table looks its own rows up by, never shown to users: the md5 of `text` as DuckDB's 128-bit number
  (md5_number; as unique as the md5 text, and found among 24M rows three to five times faster than the
  32-character text); the md5 text on engines without such a number.
#}
{% macro lookup_hash(text) -%}
    {{ return(adapter.dispatch('lookup_hash')(text)) }}
{%- endmacro %}

{% macro default__lookup_hash(text) -%} {{ dbt.hash(text) }} {%- endmacro %}

{% macro duckdb__lookup_hash(text) -%} md5_number(cast({{ text }} as varchar)) {%- endmacro %}

{# The type lookup_hash gives on this engine as the engine names it; none where it is the md5 text as before. #}
{% macro lookup_hash_type() -%}
    {{ return(adapter.dispatch('lookup_hash_type')()) }}
{%- endmacro %}

{% macro default__lookup_hash_type() -%} {{ return(none) }} {%- endmacro %}

{% macro duckdb__lookup_hash_type() -%} {{ return('UHUGEINT') }} {%- endmacro %}

{# Seconds since the epoch, a whole number. #}
{% macro epoch_seconds(ts) -%}
    {{ return(adapter.dispatch('epoch_seconds')(ts)) }}
{%- endmacro %}

{% macro default__epoch_seconds(ts) -%} (epoch_us({{ ts }}) // 1000000) {%- endmacro %}

{% macro spark__epoch_seconds(ts) -%} unix_timestamp({{ ts }}) {%- endmacro %}

{# The instant `seconds` (a whole number) before `ts`; null for null (dbt-spark's dateadd refuses a null). #}
{% macro seconds_before(ts, seconds) -%}
    {{ return(adapter.dispatch('seconds_before')(ts, seconds)) }}
{%- endmacro %}

{% macro default__seconds_before(ts, seconds) -%} ({{ ts }} - to_seconds({{ seconds }})) {%- endmacro %}

{% macro spark__seconds_before(ts, seconds) -%} ({{ ts }} - make_dt_interval(0, 0, 0, {{ seconds }})) {%- endmacro %}

{#
  A row's field as text, null where the relation has no such column (a dbt unit test's given rows carry the
  declared columns only), read through the row as JSON.
#}
{% macro field_or_null(relation_alias, column) -%}
    {{ return(adapter.dispatch('field_or_null')(relation_alias, column)) }}
{%- endmacro %}

{% macro default__field_or_null(relation_alias, column) -%}
    json_extract_string(to_json({{ relation_alias }}), '$.{{ column }}')
{%- endmacro %}

{% macro spark__field_or_null(relation_alias, column) -%}
    get_json_object(to_json(struct({{ relation_alias }}.*)), '$.{{ column }}')
{%- endmacro %}
