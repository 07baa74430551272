{#- On Spark a table rebuilt every run: Spark inlines each reference to a CTE, and the classification's many
    references to the day's rows made the incremental plan exhaust the driver's heap; the models below then
    see every event as written anew and count every key again (correct, not incremental). -#}
{{ config(materialized=('table' if target.type == 'spark' else 'incremental'), unique_key='event_id') }}
-- depends_on: {{ ref('int_clang_files_read') }}
-- One row per e-mail event of every source. Incremental: the Clang rows of files loaded after the newest
-- file already here, and Spotler's events of the last `activity_lookback_days` days again (its API has
-- late events). A Spotler event read again as it is here is left alone; a new event, one that now reads
-- otherwise, and every event of a Clang file delivered again with other content are written (replacing
-- their earlier version by event_id) with this build's built_at. first_built_at is when the event was first
-- written: the models downstream add the events new to them to what they hold, and count again the keys of
-- an event written before.
-- Every open and click is classified as a person's or a machine's (is_machine, machine_reason; the rules in
-- macros/machine_rules.sql). An incremental build classifies the events it writes, and classifies again the
-- held opens and clicks of the people it touches within the reach of the rules, writing those whose verdict
-- changed: so it equals a full refresh, and reads a bounded stretch of the history, not all of it.
{%- set compared = ['source_system', 'mailing_key', 'contact_key', 'email', 'external_customer_id',
                    'source_contact_id', 'event_type', 'event_at', 'link_id', 'url', 'link_name', 'link_type',
                    'bounce_reason', 'source_activity_code', 'campaign_subscription_id', 'loaded_at',
                    'source_machine_flag'] %}
{%- set written_columns = ['event_id', 'source_system', 'mailing_key', 'contact_key', 'email',
                           'external_customer_id', 'source_contact_id', 'event_type', 'event_at', 'event_date',
                           'link_id', 'url', 'link_name', 'link_type', 'bounce_reason', 'source_activity_code',
                           'campaign_subscription_id', 'loaded_at', 'source_file', 'source_machine_flag'] %}

with

clang_events as (
    select * from {{ ref('int_clang_email_events') }}
    {% if is_incremental() %}
        where loaded_at > (
                select coalesce(max(loaded_at), {{ epoch() }}) from {{ this }}
                where source_system = 'clang'
            )
    {% endif %}
),

{% if is_incremental() %}
    files_read as (
        select * from {{ ref('int_clang_files_read') }}
    ),
{% endif %}

spotler_events as (
    select * from {{ ref('int_spotler_email_events') }}
    {% if is_incremental() %}
        where event_at >= (
                select
                    coalesce({{ dbt.dateadd('day', -var('activity_lookback_days'), 'max(event_at)') }}, {{ epoch() }})
                from {{ this }}
                where source_system = 'spotler'
            )
    {% endif %}
),

events as (
    select * from clang_events
    union all
    select * from spotler_events
),

shaped as (
    select
        {{ dbt.hash('event_ref') }} as event_id,
        source_system,
        mailing_key,
        case when email is not null then {{ dbt.hash('email') }} end as contact_key,
        email,
        external_customer_id,
        source_contact_id,
        event_type,
        event_at,
        cast(event_at as date) as event_date,
        link_id,
        url,
        link_name,
        link_type,
        bounce_reason,
        source_activity_code,
        campaign_subscription_id,
        loaded_at,
        source_file,
        machine_flag as source_machine_flag
    from events
),

{% if is_incremental() %}
    files_read_before as (
    -- a Clang file delivered again (with other content: the loader skips the same content) is written again
    -- whole, its events dated by the build that first read the file
        select
            source_file,
            first_built_at
        from files_read
        where first_built_at < {{ built_at() }}
    ),

    spotler_here as (
    -- Spotler's events of the lookback days as they are here, to leave alone those that read the same
        select event_id, first_built_at, {{ compared | join(', ') }}
        from {{ this }}
        where source_system = 'spotler' and event_id in (
                select event_id from shaped
                where source_system = 'spotler'
            )
    ),
{% endif %}

to_write as (
    select
        s.*,
        {% if is_incremental() -%}
            coalesce(f.first_built_at, p.first_built_at, {{ built_at() }})
        {%- else -%}
            {{ built_at() }}
        {%- endif %} as first_built_at
    from shaped as s
    {% if is_incremental() -%}
        left join files_read_before as f on s.source_file = f.source_file
        left join spotler_here as p on s.event_id = p.event_id
        where p.event_id is null
            {%- for column in compared %}
                or s.{{ column }} is distinct from p.{{ column }}
            {%- endfor %}
    {%- endif %}
),

{% set rule_columns %}
    event_id, {{ person_key() }} as person_key, mailing_key, event_type, event_at,
    coalesce(cast(link_id as {{ dbt.type_string() }}), url) as link_ref, source_machine_flag as machine_flag
{% endset %}

{% if is_incremental() %}
    held_newest as (
        select max(event_at) as newest_at from {{ this }}
    ),

    classify_from as (
    -- the earliest moment whose classification the new events can change: the earliest event written, or
    -- the newest held (mails sent just before it count in a proxy pattern now that time went on)
        select
            {{ seconds_before('least(min(t.event_at), min(h.newest_at))', machine_reclassify_seconds()) }}
                as reclassify_from,
            {{ seconds_before('least(min(t.event_at), min(h.newest_at))', machine_context_seconds()) }}
                as context_from
        from held_newest as h
        left join to_write as t on true
    ),

    newest as (
        select greatest(coalesce(max(t.event_at), min(h.newest_at)), min(h.newest_at)) as newest_at
        from held_newest as h
        left join to_write as t on true
    ),

    touched_people as (
    -- the people with events written, and those with a mail sent just before the newest held event, which
    -- now counts in their proxy pattern (see macros/machine_rules.sql)
        select {{ person_key() }} as person_key from to_write
        union
        select {{ person_key('h.contact_key', 'h.external_customer_id') }}
        from {{ this }} as h
        cross join held_newest as n
        where h.event_type = 'sent'
            and h.event_at > {{ seconds_before('n.newest_at', var('apple_proxy_open_within_hours') * 3600) }}
    ),

    held_context as (
    -- what this table holds of those people, as far back as the rules look
    -- (an anti join for the events written again: Spark plans `not in` as a nested loop)
        select h.*
        from {{ this }} as h
        cross join classify_from as c
        left join to_write as w on h.event_id = w.event_id
        where h.event_at >= c.context_from
            and h.event_type in ('sent', 'open', 'click', 'hard_bounce', 'soft_bounce')
            and {{ person_key('h.contact_key', 'h.external_customer_id') }} in (select person_key from touched_people)
            and w.event_id is null
    ),

    rule_input as (
        select {{ rule_columns }} from to_write
        union all
        select {{ rule_columns }} from held_context
    ),

    {{ machine_verdict_ctes('rule_input', '(select newest_at from newest)') }},

    reclassified as (
    -- held opens and clicks whose verdict changed, written again as they are with the new verdict
        select
            {% for column in written_columns %}h.{{ column }},
            {% endfor %}
            h.first_built_at,
            v.is_machine,
            v.machine_reason
        from held_context as h
        inner join machine_verdicts as v on h.event_id = v.event_id
        cross join classify_from as c
        where h.event_at >= c.reclassify_from
            and (h.is_machine is distinct from v.is_machine or h.machine_reason is distinct from v.machine_reason)
    ),
{% else %}
    rule_input as (
        select {{ rule_columns }} from to_write
    ),

    {{ machine_verdict_ctes('rule_input', '(select max(event_at) from rule_input)') }},
{% endif %}

classified as (
    select
        {% for column in written_columns %}t.{{ column }},
        {% endfor %}
        t.first_built_at,
        case when t.event_type in ('open', 'click') then coalesce(v.is_machine, t.source_machine_flag, false) end
            as is_machine,
        case when t.event_type in ('open', 'click') then
                coalesce(v.machine_reason, case when t.source_machine_flag then 'vendor_flag' end)
        end
            as machine_reason
    from to_write as t
    left join machine_verdicts as v on t.event_id = v.event_id
    {% if is_incremental() %}
        union all
        select * from reclassified
    {% endif %}
),

final as (
    select
        *,
        {{ built_at() }} as built_at
    from classified
)

select * from final
