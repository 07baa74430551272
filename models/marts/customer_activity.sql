{{ config(materialized='incremental', unique_key='event_id') }}
-- depends_on: {{ ref('int_clang_files_read') }}
-- One row per e-mail event of every source. Incremental: the Clang rows of files loaded after the newest
-- file already here, and Spotler's events of the last `activity_lookback_days` days again (its API has
-- late events). A Spotler event read again as it is here is left alone; a new event, one that now reads
-- otherwise, and every event of a Clang file delivered again with other content are written (replacing
-- their earlier version by event_id) with this build's built_at. first_built_at is when the event was first
-- written: the models downstream add the events new to them to what they hold, and count again the keys of
-- an event written before.
{%- set compared = ['source_system', 'mailing_key', 'contact_key', 'email', 'external_customer_id',
                    'source_contact_id', 'event_type', 'event_at', 'link_id', 'url', 'link_name', 'link_type',
                    'bounce_reason', 'source_activity_code', 'campaign_subscription_id', 'loaded_at'] %}

with

clang_events as (
    select * from {{ ref('int_clang_email_events') }}
    {% if is_incremental() %}
    where loaded_at > (
        select coalesce(max(loaded_at), {{ epoch() }}) from {{ this }} where source_system = 'clang'
    )
    {% endif %}
),

spotler_events as (
    select * from {{ ref('int_spotler_email_events') }}
    {% if is_incremental() %}
    where event_at >= (
        select coalesce({{ dbt.dateadd('day', -var('activity_lookback_days'), 'max(event_at)') }}, {{ epoch() }})
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
        source_file
    from events
),

{% if is_incremental() %}
files_read_before as (
    -- a Clang file delivered again (with other content: the loader skips the same content) is written again
    -- whole, its events dated by the build that first read the file
    select source_file, first_built_at
    from {{ ref('int_clang_files_read') }}
    where first_built_at < {{ built_at() }}
),

spotler_here as (
    -- Spotler's events of the lookback days as they are here, to leave alone those that read the same
    select event_id, first_built_at, {{ compared | join(', ') }}
    from {{ this }}
    where source_system = 'spotler' and event_id in (select event_id from shaped where source_system = 'spotler')
),
{% endif %}

final as (
    select
        s.*,
        {% if is_incremental() -%}
        coalesce(f.first_built_at, p.first_built_at, {{ built_at() }})
        {%- else -%}
        {{ built_at() }}
        {%- endif %} as first_built_at,
        {{ built_at() }} as built_at
    from shaped s
    {% if is_incremental() -%}
    left join files_read_before f on f.source_file = s.source_file
    left join spotler_here p on p.event_id = s.event_id
    where p.event_id is null
        {%- for column in compared %}
        or s.{{ column }} is distinct from p.{{ column }}
        {%- endfor %}
    {%- endif %}
)

select * from final
