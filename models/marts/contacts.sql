-- One row per normalised e-mail address: every source id, names, consent (latest dated statement wins)
-- and engagement. Rebuilt every run from small parts (Directo's customers, the per-address event summary
-- and the events of the engagement window), because the window and the statuses move with the calendar.
{% set window_start = dbt.dateadd('day', -var('engagement_window_days'), as_of_date()) %}
with

customers as (
    select * from {{ ref('stg_directo__customers') }} where email is not null
),

datafields as (
    select * from {{ ref('stg_directo__datafields') }}
),

summary as (
    select * from {{ ref('int_contact_event_summary') }}
),

window_mailings as (
    -- per address and mailing first, so mailings count once without a costly count(distinct)
    select
        email,
        mailing_key,
        bool_or(event_type = 'sent') as was_sent,
        count(*) filter (where event_type = 'open') as opens,
        count(*) filter (where event_type = 'click') as clicks
    from {{ ref('customer_activity') }}
    where event_at >= {{ window_start }} and email is not null
    group by email, mailing_key
),

directo as (
    select
        email,
        list(customer_code order by customer_code) as directo_customer_codes,
        count(*) as directo_customer_count,
        -- the open customer changed last speaks for the person
        arg_max(customer_code, struct_pack(open := not is_closed, changed := changed_at)) as primary_customer_code,
        bool_and(is_closed) as is_closed_in_directo
    from customers
    group by email
),

primary_customer as (
    select c.*
    from customers c
    inner join directo d on d.email = c.email and d.primary_customer_code = c.customer_code
),

primary_datafields as (
    select
        customer_code,
        to_json(map_from_entries(list(struct_pack(k := datafield_code, v := datafield_content)
                                      order by datafield_position))) as directo_datafields
    from datafields
    group by customer_code
),

consent_statements as (
    select
        email,
        coalesce(cast(optin_date as timestamp with time zone), changed_at) as stated_at,
        is_opted_in,
        'directo_optin' as consent_source
    from customers
    where is_opted_in is not null
    union all
    -- the latest unsubscribe speaks for every earlier one
    select email, last_unsubscribed_at, false, last_unsubscribe_source || '_unsubscribe'
    from summary
    where last_unsubscribed_at is not null
),

latest_consent as (
    -- the latest dated statement wins; on the same moment an unsubscribe wins
    select email, is_opted_in, stated_at as consent_changed_at, consent_source
    from consent_statements
    qualify row_number() over (partition by email order by stated_at desc nulls last, is_opted_in) = 1
),

engagement_window as (
    select
        email,
        count(*) filter (where was_sent) as mails_last_90_days,
        cast(sum(opens) as {{ dbt.type_bigint() }}) as opens_last_90_days,
        cast(sum(clicks) as {{ dbt.type_bigint() }}) as clicks_last_90_days
    from window_mailings
    group by email
),

addresses as (
    select email from directo
    union
    select email from summary
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
        e.spotler_external_id,
        coalesce(d.primary_customer_code, e.clang_external_customer_id, e.spotler_external_id) as external_customer_id,
        p.contact_name as first_name,
        p.customer_name as full_name,
        p.country_code,
        p.customer_class as directo_class,
        f.directo_datafields,
        coalesce(l.is_opted_in, false) as is_opted_in,
        l.consent_changed_at,
        l.consent_source,
        coalesce(e.is_hard_bounced, false) as is_hard_bounced,
        coalesce(e.has_complained, false) as has_complained,
        coalesce(l.consent_source like '%_unsubscribe', false) as is_unsubscribed,
        coalesce(d.is_closed_in_directo, false) as is_closed_in_directo,
        e.first_sent_at,
        e.last_sent_at,
        e.last_opened_at,
        e.last_clicked_at,
        e.last_engaged_at,
        coalesce(w.mails_last_90_days, 0) as mails_last_90_days,
        coalesce(w.opens_last_90_days, 0) as opens_last_90_days,
        coalesce(w.clicks_last_90_days, 0) as clicks_last_90_days,
        case
            when e.last_engaged_at >= {{ window_start }} then 'active'
            when e.last_engaged_at is not null then 'dormant'
            when e.first_sent_at is null or e.first_sent_at >= {{ dbt.dateadd('day', -30, as_of_date()) }} then 'new'
            else 'never_engaged'
        end as engagement_status
    from addresses a
    left join directo d using (email)
    left join primary_customer p using (email)
    left join primary_datafields f on f.customer_code = d.primary_customer_code
    left join latest_consent l using (email)
    left join summary e using (email)
    left join engagement_window w using (email)
)

select * from final
