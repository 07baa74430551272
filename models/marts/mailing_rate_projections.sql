-- For each mailing still settling: where its unique open and click rates will end up, projected from how
-- this account's earlier, settled mailings grew after the same age. A small table rebuilt every run.
--
-- Age is counted in whole hours from the send to the newest response the warehouse holds (at most the end
-- of as_of_date, so a build with an earlier as_of_date replays that day exactly). An earlier mailing's
-- growth factor is its responses after `settle_days` divided by its responses at that age; the projection
-- is the mailing's rate so far times the median factor, with the 10th and 90th percentiles as its spread.
-- A projection above 1 (a mailing far ahead of the earlier ones) is capped at 1.
-- Campaign mailings go out to each contact over time and have no one age: they are left out.
{#- the mail history is read where it is used: DuckDB writes a CTE read twice out whole first (24M rows: 1.5 s) #}
{%- set history = ref('contact_mail_history') %}
with

all_mailings as (
    select * from {{ ref('mailings') }}
),

mailings as (
    select
        mailing_key,
        source_system,
        mailing_type,
        mailing_name,
        sent_at
    from all_mailings
    where not coalesce(is_campaign_mailing, false) and sent_at is not null
),

observed as (
    select
        least(
            cast({{ as_of_date() }} as {{ type_timestamp_tz() }}) + interval 1 day,
            max(greatest(sent_at, coalesce(first_opened_at, sent_at), coalesce(first_clicked_at, sent_at)))
        ) as observed_until
    from {{ history }}
),

-- Each delivered send with the whole hours to its first open and first click (null: none seen in time).
responses as (
    select
        h.mailing_key,
        case when h.first_opened_at < o.observed_until
                then {{ integer_divide(minutes_between('h.sent_at', 'h.first_opened_at'), 60) }}
        end as open_hour,
        case when h.first_clicked_at < o.observed_until
                then {{ integer_divide(minutes_between('h.sent_at', 'h.first_clicked_at'), 60) }}
        end as click_hour
    from {{ history }} as h
    inner join mailings using (mailing_key)
    cross join observed as o
    where h.bounce = 'none' and h.sent_at < o.observed_until
),

delivered as (
    select
        mailing_key,
        count(*) as delivered_count
    from responses
    group by mailing_key
),

-- How many first opens and first clicks each mailing had in each whole hour after its send.
response_hours as (
    select
        mailing_key,
        'open' as response,
        open_hour as response_hour,
        count(*) as response_count
    from responses
    where open_hour is not null
    group by mailing_key, open_hour
    union all
    select
        mailing_key,
        'click' as response,
        click_hour as response_hour,
        count(*) as response_count
    from responses
    where click_hour is not null
    group by mailing_key, click_hour
),

aged as (
    select
        m.*,
        o.observed_until,
        {{ integer_divide(minutes_between('m.sent_at', 'o.observed_until'), 60) }} as hours_since_send
    from mailings as m
    cross join observed as o
    where m.sent_at < o.observed_until
),

settling as (
    select
        a.*,
        d.delivered_count
    from aged as a
    inner join delivered as d using (mailing_key)
    where a.hours_since_send < {{ var('settle_days') }} * 24
),

settled_references as (
    select mailing_key from aged
    where hours_since_send >= {{ var('settle_days') }} * 24
),

-- Per settling mailing, earlier mailing and response: responses at the settling mailing's age and after
-- settle_days, as a factor.
growth as (
    select
        s.mailing_key,
        h.response,
        cast(sum(h.response_count) filter (where h.response_hour < {{ var('settle_days') }} * 24) as double)
        / nullif(sum(h.response_count) filter (where h.response_hour < s.hours_since_send), 0) as growth_factor
    from settling as s
    cross join settled_references as r
    inner join response_hours as h on r.mailing_key = h.mailing_key
    group by s.mailing_key, r.mailing_key, h.response
),

growth_factors as (
    select
        mailing_key,
        count(growth_factor) filter (where response = 'open') as reference_mailing_count,
    {%- for response in ['open', 'click'] %}
    {%- for suffix, share in [('', 0.5), ('_low', 0.1), ('_high', 0.9)] %}
        {%- set column = response ~ '_growth_factor' ~ suffix %}
        -- the comma is templated (none after the last column), so it cannot start a line of its own
        percentile_cont({{ share }}) within group (order by growth_factor)
        filter (where response = '{{ response }}') as {{ column }}{{ ',' if not loop.last or response == 'open' }}  -- noqa: LT02
    {%- endfor %}

    {%- endfor %}
    from growth
    group by mailing_key
),

so_far as (
    select
        s.*,
        coalesce(sum(h.response_count) filter (where h.response = 'open' and h.response_hour < s.hours_since_send), 0)
            as unique_open_count,
        coalesce(sum(h.response_count) filter (where h.response = 'click' and h.response_hour < s.hours_since_send), 0)
            as unique_click_count
    from settling as s
    left join response_hours as h using (mailing_key)
    group by all
),

rates as (
    select
        *,
        {{ safe_rate('unique_open_count', 'delivered_count') }} as open_rate,
        {{ safe_rate('unique_click_count', 'delivered_count') }} as click_rate
    from so_far
),

final as (
    select
        r.mailing_key,
        r.source_system,
        r.mailing_type,
        r.mailing_name,
        r.sent_at,
        r.observed_until,
        cast(r.hours_since_send as {{ dbt.type_bigint() }}) as hours_since_send,
        cast(r.delivered_count as {{ dbt.type_bigint() }}) as delivered_count,
        cast(r.unique_open_count as {{ dbt.type_bigint() }}) as unique_open_count,
        cast(r.unique_click_count as {{ dbt.type_bigint() }}) as unique_click_count,
        r.open_rate,
        r.click_rate,
        cast(coalesce(g.reference_mailing_count, 0) as {{ dbt.type_bigint() }}) as reference_mailing_count,
    {%- for response in ['open', 'click'] %}
        g.{{ response }}_growth_factor,
    {%- for suffix in ['', '_low', '_high'] %}
        {%- set projected = 'r.' ~ response ~ '_rate * g.' ~ response ~ '_growth_factor' ~ suffix %}
        {#- a case, not least(): DuckDB's least skips nulls and would turn "no projection" into 1 #}
        case when {{ projected }} > 1 then 1.0 else {{ projected }} end as projected_{{ response }}_rate{{ suffix }}
        {{- ',' if not (loop.last and response == 'click') }}
    {%- endfor %}
    {%- endfor %}
    from rates as r
    left join growth_factors as g using (mailing_key)
)

select * from final
