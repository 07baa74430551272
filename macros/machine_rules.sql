{#
  Machine opens and clicks: the rules that tell them from people, written once (README, "Human engagement").
  int_email_events_classified (behind customer_activity) applies them to every open and click; every model
  downstream counts people through human_open() and human_click() below. Each rule's threshold is a dbt var (dbt_project.yml).

  In order of strength, the first that speaks decides:
  1. vendor_flag: the source says so. Clang's export can carry additional fields (Deployteq's newer events
     carry `machine_generated`): SOURCES__CLANG__MACHINE_FLAG_COLUMN names such a column of the activities
     file, and its value (1/0, true/false, yes/no, ja/nee) is taken as it is, for people too.
  2. link_scanner, a click: security gateways (Microsoft Defender Safe Links, Mimecast, Proofpoint,
     Barracuda) follow every link of a delivered mail within seconds of each other, seconds to minutes after
     it arrived. A click is a scanner's when, in the same mail of the same person,
     - clicks on at least `machine_click_burst_min_links` different links fall within
       `machine_click_burst_seconds` of it (a person needs longer than that to come back from the page the
       first link opened and click another), or
     - it came within `machine_click_max_seconds_after_send` of the send (too soon for a person to have
       received, opened and read the mail).
  3. link_scanner, an open: an open within `machine_click_burst_seconds` of a scanner's click of the same
     mail (the gateway fetches the images as it follows the links).
  4. apple_privacy_proxy, an open: Apple Mail Privacy Protection fetches the images of every mail delivered
     to an Apple Mail user, minutes to hours after delivery, whether or not the person reads it; the person's
     own reading then comes from the proxy's cache and is never seen. So this is a pattern of the person, not
     of one open: an open is the proxy's when, among the person's delivered mails sent within
     `apple_proxy_window_days` before or after it, at least `apple_proxy_min_mails` were counted and at
     least `apple_proxy_min_open_share` of them were opened within `apple_proxy_open_within_hours` of the
     send. The newest mails (sent less than apple_proxy_open_within_hours before the newest event of the
     data) count only once opened. A person who opens nearly every mail soon after it arrives is taken for
     a proxy: their opens then show nothing, and only their clicks show engagement.
  A machine open or click stays in customer_activity as data (is_machine, machine_reason); engagement,
  human statistics and segments count people only.
#}

{# An open or click made by a person (an event that is no open or click is neither). #}
{% macro human_open(event_type='event_type', is_machine='is_machine') -%}
    ({{ event_type }} = 'open' and not coalesce({{ is_machine }}, false))
{%- endmacro %}

{% macro human_click(event_type='event_type', is_machine='is_machine') -%}
    ({{ event_type }} = 'click' and not coalesce({{ is_machine }}, false))
{%- endmacro %}

{# A machine's open or click. #}
{% macro machine_open(event_type='event_type', is_machine='is_machine') -%}
    ({{ event_type }} = 'open' and coalesce({{ is_machine }}, false))
{%- endmacro %}

{% macro machine_click(event_type='event_type', is_machine='is_machine') -%}
    ({{ event_type }} = 'click' and coalesce({{ is_machine }}, false))
{%- endmacro %}

{#
  How far back the rules look from an event, in seconds: a proxy pattern reaches apple_proxy_window_days each
  way around an open, and an open counts for its mail apple_proxy_open_within_hours after the send. An
  incremental build classifies again the held opens and clicks of the people it touches from
  machine_reclassify_seconds() before its earliest event on, reading what it holds from
  machine_context_seconds() before it.
#}
{% macro machine_reclassify_seconds() -%}
    {{ return(var('apple_proxy_open_within_hours') * 3600 + var('apple_proxy_window_days') * 86400
              + var('machine_click_max_seconds_after_send') + var('machine_click_burst_seconds')) }}
{%- endmacro %}

{% macro machine_context_seconds() -%}
    {{ return(machine_reclassify_seconds() + var('apple_proxy_window_days') * 86400
              + var('machine_click_max_seconds_after_send') + var('machine_click_burst_seconds')) }}
{%- endmacro %}

{#
  The CTEs that classify: `events` (a CTE the caller names) holds every event the rules may look at, with
  event_id, person_key, mailing_key, event_type, event_at, link_ref (the link's id or url) and
  machine_flag (the vendor's, or null); `newest_event_at` is the newest event of the data (an expression).
  Gives `machine_verdicts`: event_id, is_machine, machine_reason for every open and click of `events` that
  has a person.
#}
{% macro machine_verdict_ctes(events, newest_event_at) -%}
{%- set burst = var('machine_click_burst_seconds') -%}
machine_timed as (
    select
        event_id, person_key, mailing_key, event_type, link_ref, machine_flag,
        {{ epoch_seconds('event_at') }} as event_second
    from {{ events }}
    where person_key is not null
),

text_messages as (
    -- Spotler's SMS mailings: nothing in them can be opened, so no proxy pattern counts them
    select 'spotler:' || mailing_id as mailing_key
    from {{ ref('stg_spotler__mailings') }}
    where upper(mailing_type) = 'SMS'
    union all
    select 'spotler:' || mailing_id
    from {{ ref('stg_spotler__campaign_mailings') }}
    where upper(mailing_type) = 'SMS'
),

machine_sends as (
    -- per mail (mailing and person): when it was sent, and whether it bounced
    select
        person_key,
        mailing_key,
        min(event_second) filter (where event_type = 'sent') as sent_second,
        bool_or(event_type in ('hard_bounce', 'soft_bounce')) as bounced
    from machine_timed
    where event_type in ('sent', 'hard_bounce', 'soft_bounce')
      and mailing_key not in (select mailing_key from text_messages where mailing_key is not null)
    group by person_key, mailing_key
),

machine_clicks as (
    select c.*, s.sent_second
    from machine_timed c
    left join machine_sends s on s.person_key = c.person_key and s.mailing_key = c.mailing_key
    where c.event_type = 'click'
),

burst_clicks as (
    -- clicks on enough different links of the same mail within seconds of each other
    select c.event_id
    from machine_clicks c
    inner join machine_clicks o
        on o.person_key = c.person_key and o.mailing_key = c.mailing_key
       and o.event_second between c.event_second - {{ burst }} and c.event_second + {{ burst }}
    group by c.event_id
    having count(distinct o.link_ref) >= {{ var('machine_click_burst_min_links') }}
),

scanner_clicks as (
    select c.event_id, c.person_key, c.mailing_key, c.event_second
    from machine_clicks c
    left join burst_clicks b on b.event_id = c.event_id
    where b.event_id is not null
       or c.event_second - c.sent_second <= {{ var('machine_click_max_seconds_after_send') }}
),

scanner_opens as (
    -- the gateway's image fetch as it follows the links
    select distinct o.event_id
    from machine_timed o
    inner join scanner_clicks c
        on c.person_key = o.person_key and c.mailing_key = o.mailing_key
       and o.event_second between c.event_second - {{ burst }} and c.event_second + {{ burst }}
    where o.event_type = 'open'
),

people_opens as (
    -- the opens no scanner made (an anti join: Spark plans `not in` as a nested loop)
    select o.*
    from machine_timed o
    left join scanner_opens s on s.event_id = o.event_id
    where o.event_type = 'open' and s.event_id is null
),

first_opens as (
    -- per mail, its first open that no scanner made
    select person_key, mailing_key, min(event_second) as opened_second
    from people_opens
    group by person_key, mailing_key
),

newest_event as (
    select {{ epoch_seconds(newest_event_at) }} as newest_second
),

delivered_mails as (
    -- each delivered mail of a person, opened soon after its send or not; the newest count once opened
    select
        s.person_key,
        s.sent_second,
        case when o.opened_second - s.sent_second <= {{ var('apple_proxy_open_within_hours') * 3600 }}
             then 1 else 0 end as opened_soon
    from machine_sends s
    cross join newest_event n
    left join first_opens o on o.person_key = s.person_key and o.mailing_key = s.mailing_key
    where s.sent_second is not null
      and not s.bounced
      and (s.sent_second <= n.newest_second - {{ var('apple_proxy_open_within_hours') * 3600 }}
           or o.opened_second - s.sent_second <= {{ var('apple_proxy_open_within_hours') * 3600 }})
),

open_moments as (
    -- every open no scanner made, beside the person's delivered mails (a sent_second of null), in time order
    select person_key, event_id, event_second as moment, 0 as opened_soon, 1 as is_open
    from people_opens
    union all
    select person_key, cast(null as {{ dbt.type_string() }}), sent_second, opened_soon, 0
    from delivered_mails
),

proxy_patterns as (
    select
        event_id,
        sum(1 - is_open) over nearby as mails_around,
        sum(opened_soon) over nearby as opened_soon_around
    from open_moments
    window nearby as (
        partition by person_key order by moment
        range between {{ var('apple_proxy_window_days') * 86400 }} preceding
              and {{ var('apple_proxy_window_days') * 86400 }} following
    )
),

proxy_opens as (
    select event_id
    from proxy_patterns
    where event_id is not null
      and mails_around >= {{ var('apple_proxy_min_mails') }}
      and opened_soon_around >= {{ var('apple_proxy_min_open_share') }} * mails_around
),

machine_verdicts as (
    -- (joins, not `in (subquery)` inside a case: Spark accepts subqueries in filters only)
    select
        e.event_id,
        case
            when e.machine_flag is not null then e.machine_flag
            when sc.event_id is not null or so.event_id is not null or po.event_id is not null then true
            else false
        end as is_machine,
        case
            when e.machine_flag is not null then case when e.machine_flag then 'vendor_flag' end
            when sc.event_id is not null or so.event_id is not null then 'link_scanner'
            when po.event_id is not null then 'apple_privacy_proxy'
        end as machine_reason
    from machine_timed e
    left join scanner_clicks sc on sc.event_id = e.event_id
    left join scanner_opens so on so.event_id = e.event_id
    left join proxy_opens po on po.event_id = e.event_id
    where e.event_type in ('open', 'click')
)
{%- endmacro %}

{#
  clang_machine_flag(activities): the vendor's machine flag of a Clang activity, from the additional field
  SOURCES__CLANG__MACHINE_FLAG_COLUMN names (the loader keeps every column of sources.clang.activity_columns,
  named as dlt names them); null where no such field is set up. 1/true/yes/ja is a machine, 0/false/no/nee a
  person, anything else unknown (the rules decide).
#}
{% macro clang_machine_flag(activities) -%}
    {%- set configured = env_var('SOURCES__CLANG__MACHINE_FLAG_COLUMN', '') | trim -%}
    {%- if configured and source_is_present('clang', 'activities') -%}
        {%- set column = modules.re.sub('[^a-z0-9]+', '_', configured | lower) | trim('_') -%}
        {%- set value = 'lower(trim(' ~ field_or_null(activities, column) ~ '))' -%}
        case
            when {{ value }} in ('1', 'true', 'yes', 'ja', 'j', 'y') then true
            when {{ value }} in ('0', 'false', 'no', 'nee', 'n') then false
        end
    {%- else -%}
        cast(null as boolean)
    {%- endif -%}
{%- endmacro %}
