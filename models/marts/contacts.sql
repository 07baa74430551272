-- One row per normalised e-mail address: every source id, names, consent, whether it may be mailed (and
-- why not), and engagement. Rebuilt every run from small parts (Directo's customers, the per-address event
-- summary and engagement window), because the statuses move with the calendar.
--
-- Consent (GDPR): the latest dated statement wins. Statements: Directo's OPTIN (yes or no, dated by day
-- in Directo's time zone), an unsubscribe or a complaint on either platform (dated to the second), Spotler's
-- EMAIL channel off (dated by the contact's lastChanged; without that date it says nothing). Days
-- are compared first: an unsubscribe and an OPTIN=yes on the same Directo day resolve to unsubscribed.
-- An undated statement (an OPTIN without date; without Directo, having been mailed by a platform) counts
-- only when no dated statement exists, so no guess ever re-subscribes anyone. A customer deleted from
-- Directo carries no consent and no closed status.
{% set implied_consent = var('implied_consent_without_directo') and not source_is_present('directo') %}
with

customers as (
    select * from {{ ref('stg_directo__customers') }}
    where email is not null
),

live_customers as (
    select * from customers
    where not is_deleted
),

datafields as (
    select * from {{ ref('stg_directo__datafields') }}
),

summary as (
    select * from {{ ref('int_contact_event_summary') }}
),

engagement_window as (
    select * from {{ ref('int_contact_engagement_window') }}
),

spotler_contact_records as (
    select * from {{ ref('stg_spotler__contacts') }}
),

ranked_customers as (
    -- the open customer changed last speaks for the person; of customers changed at the same moment, the
    -- lowest code (a total order, so every engine and every evaluation picks the same one)
    select
        *,
        row_number() over (
            partition by email order by is_closed asc, changed_at desc nulls last, customer_code asc
        ) as customer_rank
    from live_customers
),

directo as (
    select
        email,
        {{ ordered_array_agg('customer_code', 'customer_code') }} as directo_customer_codes,
        count(*) as directo_customer_count,
        min(case when customer_rank = 1 then customer_code end) as primary_customer_code,
        bool_and(is_closed) as is_closed_in_directo
    from ranked_customers
    group by email
),

deleted_from_directo as (
    -- addresses Directo knew only through customers since deleted
    select email
    from customers
    group by email
    having bool_and(is_deleted)
),

primary_customer as (
    select c.*
    from live_customers as c
    inner join directo as d on c.email = d.email and c.customer_code = d.primary_customer_code
),

primary_datafields as (
    select
        datafields.customer_code,
        {{ json_object_agg('datafield_code', 'datafield_content', 'datafield_position') }} as directo_datafields
    from datafields
    group by datafields.customer_code
),

consent_statements as (
    -- Directo's OPTIN of every live customer with the address: dated by day (from that day's start in
    -- Directo's time zone), or undated
    select
        email,
        optin_date as stated_on,
        {{ local_to_utc('cast(optin_date as timestamp)', "'" ~ directo_timezone() ~ "'") }} as stated_at,
        is_opted_in,
        'directo_optin' as consent_source
    from live_customers
    where is_opted_in is not null
    union all
    -- the latest unsubscribe speaks for every earlier one; so does the latest complaint
    select
        email,
        {{ directo_day('last_unsubscribed_at') }},
        last_unsubscribed_at,
        false,
        last_unsubscribe_source || '_unsubscribe'
    from summary
    where last_unsubscribed_at is not null
    union all
    select
        email,
        {{ directo_day('last_complained_at') }},
        last_complained_at,
        false,
        last_complaint_source || '_complaint'
    from summary
    where last_complained_at is not null
    union all
    -- Spotler's EMAIL channel off is an opt-out as of the contact's last change; on, it states no date of its
    -- own (any change of the contact moves lastChanged), so it is no dated opt-in
    select
        email,
        {{ directo_day('last_changed_at') }},
        last_changed_at,
        false,
        'spotler_email_channel'
    from spotler_contact_records
    where email is not null and not email_opt_in and last_changed_at is not null
    {% if implied_consent %}
        union all
        -- no ERP: the platforms mail only opted-in contacts, so having been mailed is an (undated) opt-in
        select
            email,
            cast(null as date),
            cast(null as {{ type_timestamp_tz() }}),
            true,
            'implied_by_mailing'
        from summary
        where first_sent_at is not null
    {% endif %}
),

latest_consent as (
    -- dated before undated; the latest day; on one day an opt-out before an opt-in; then the latest moment
    select
        email,
        is_opted_in,
        stated_at as consent_changed_at,
        consent_source
    from consent_statements
    qualify row_number() over (
            partition by email
            order by
                stated_on is not null desc,
                stated_on desc,
                is_opted_in asc,
                stated_at desc nulls last,
                consent_source asc
        ) = 1
),

spotler_contacts as (
    -- the address's Spotler contact changed last (a total order: the lowest id among equals)
    select
        email,
        external_contact_id
    from spotler_contact_records
    where email is not null
    qualify row_number() over (partition by email order by last_changed_at desc nulls last, external_contact_id asc) = 1
),

addresses as (
    select email from directo
    union
    select email from deleted_from_directo
    union
    select email from summary
    union
    select email from spotler_contacts
),

statuses as (
    select
        a.email,
        coalesce(l.is_opted_in, false) as is_opted_in,
        coalesce(e.is_hard_bounced, false) as is_hard_bounced,
        coalesce(e.has_complained, false) as has_complained,
        coalesce(l.consent_source like '%_unsubscribe', false) as is_unsubscribed,
        coalesce(d.is_closed_in_directo, false) as is_closed_in_directo,
        x.email is not null as is_deleted_in_directo
    from addresses as a
    left join directo as d using (email)
    left join deleted_from_directo as x using (email)
    left join latest_consent as l using (email)
    left join summary as e using (email)
),

mailability as (
    -- the one definition of "may be mailed", used by every segment and by the export's consent guard
    select
        email,
        case
            when is_hard_bounced then 'hard_bounced'
            when has_complained then 'complained'
            when is_unsubscribed then 'unsubscribed'
            when is_closed_in_directo then 'closed_in_directo'
            when is_deleted_in_directo then 'deleted_in_directo'
            when not is_opted_in then 'not_opted_in'
        end as not_mailable_reason
    from statuses
),

final as (
    select
        {{ dbt.hash('a.email') }} as contact_key,
        a.email,
        d.primary_customer_code as directo_customer_code,
        d.directo_customer_codes,
        coalesce(d.directo_customer_count, 0) as directo_customer_count,
        coalesce(d.directo_customer_count, 0) > 1 as is_shared_email,
        e.clang_customer_id,
        e.clang_external_customer_id,
        coalesce(e.spotler_external_id, sc.external_contact_id) as spotler_external_id,
        coalesce(d.primary_customer_code, e.clang_external_customer_id, e.spotler_external_id, sc.external_contact_id)
            as external_customer_id,
        p.contact_name as first_name,
        p.customer_name as full_name,
        p.country_code,
        p.customer_class as directo_class,
        f.directo_datafields,
        m.not_mailable_reason is null as is_mailable,
        m.not_mailable_reason,
        s.is_opted_in,
        l.consent_changed_at,
        l.consent_source,
        s.is_hard_bounced,
        s.has_complained,
        s.is_unsubscribed,
        s.is_closed_in_directo,
        s.is_deleted_in_directo,
        e.first_sent_at,
        e.last_sent_at,
        e.last_opened_at,
        e.last_clicked_at,
        e.last_engaged_at,
        coalesce(w.mails_in_window, 0) as mails_last_90_days,
        coalesce(w.opens_in_window, 0) as opens_last_90_days,
        coalesce(w.clicks_in_window, 0) as clicks_last_90_days,
        coalesce(w.machine_opens_in_window, 0) as machine_opens_last_90_days,
        case
            when e.last_engaged_at >= {{ engagement_window_start() }} then 'active'
            when e.last_engaged_at is not null then 'dormant'
            when e.first_sent_at is null or e.first_sent_at >= {{ dbt.dateadd('day', -30, as_of_date()) }} then 'new'
            else 'never_engaged'
        end as engagement_status
    from addresses as a
    inner join statuses as s using (email)
    inner join mailability as m using (email)
    left join directo as d using (email)
    left join primary_customer as p using (email)
    left join primary_datafields as f on d.primary_customer_code = f.customer_code
    left join latest_consent as l using (email)
    left join summary as e using (email)
    left join engagement_window as w using (email)
    left join spotler_contacts as sc using (email)
)

select * from final
