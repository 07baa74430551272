{{ config(materialized='incremental', unique_key='email') }}
-- Per address with e-mail events: the mailings it received, and its own opens and clicks (a machine's are
-- no engagement, macros/machine_rules.sql), in the engagement
-- window (events from `engagement_window_days` days before as_of_date on); zero when none fall in it.
-- Incremental: counted again for the addresses whose window changed since this table's last build: those
-- with new events, and those with events on the days the window left (or took in) as it moved.
{%- set window_start = engagement_window_start() %}
{%- set events_model = ref('int_email_events_classified') %}
with

{% if is_incremental() %}
    previous_window as (
        select max(window_start) as window_start from {{ this }}
    ),

    changed_addresses as (
        select email
        from {{ events_model }}
        where built_at > {{ last_built_at() }} and email is not null
        union
        select e.email
        from {{ events_model }} as e
        cross join previous_window as p
        where e.email is not null
            and e.event_at >= least(p.window_start, {{ window_start }})
            and e.event_at < greatest(p.window_start, {{ window_start }})
    ),

    events as (
    -- every event of those addresses that can count: on or after the window's start
        select e.*
        from {{ events_model }} as e
        where e.event_at >= {{ window_start }} and e.email in (select email from changed_addresses)
    ),
{% else %}
    changed_addresses as (
        select distinct email from {{ events_model }}
        where email is not null
    ),

    events as (
        select * from {{ events_model }}
        where event_at >= {{ window_start }} and email is not null
    ),
{% endif %}

window_mailings as (
    -- per address and mailing first, so mailings count once without a costly count(distinct)
    select
        email,
        mailing_key,
        bool_or(event_type = 'sent') as was_sent,
        count(*) filter (where {{ human_open() }}) as opens,
        count(*) filter (where {{ human_click() }}) as clicks,
        count(*) filter (where {{ machine_open() }}) as machine_opens
    from events
    group by email, mailing_key
),

window_counts as (
    select
        email,
        count(*) filter (where was_sent) as mails,
        sum(opens) as opens,
        sum(clicks) as clicks,
        sum(machine_opens) as machine_opens
    from window_mailings
    group by email
),

final as (
    select
        a.email,
        {{ window_start }} as window_start,
        cast(coalesce(w.mails, 0) as {{ dbt.type_bigint() }}) as mails_in_window,
        cast(coalesce(w.opens, 0) as {{ dbt.type_bigint() }}) as opens_in_window,
        cast(coalesce(w.clicks, 0) as {{ dbt.type_bigint() }}) as clicks_in_window,
        cast(coalesce(w.machine_opens, 0) as {{ dbt.type_bigint() }}) as machine_opens_in_window,
        {{ built_at() }} as built_at
    from changed_addresses as a
    left join window_counts as w using (email)
)

select * from final
