-- One row per normalised e-mail address: every source id, names, consent (latest dated statement wins)
-- and engagement.
{% set window_start = dbt.dateadd('day', -var('engagement_window_days'), as_of_date()) %}
with

customers as (
    select * from {{ ref('stg_directo__customers') }} where email is not null
),

datafields as (
    select * from {{ ref('stg_directo__datafields') }}
),

events as (
    select * from {{ ref('customer_activity') }} where email is not null
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

clang as (
    select
        email,
        arg_max(clang_customer_id, activity_at) as clang_customer_id,
        arg_max(external_customer_id, activity_at) as clang_external_customer_id
    from {{ ref('stg_clang__activities') }}
    where email is not null
    group by email
),

spotler as (
    select email, min(external_customer_id) as spotler_external_id
    from events
    where source_system = 'spotler'
    group by email
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
    select email, event_at, false, source_system || '_unsubscribe'
    from events
    where event_type = 'unsubscribe'
),

latest_consent as (
    -- the latest dated statement wins; on the same moment an unsubscribe wins
    select email, is_opted_in, stated_at as consent_changed_at, consent_source
    from consent_statements
    qualify row_number() over (partition by email order by stated_at desc nulls last, is_opted_in) = 1
),

engagement as (
    select
        email,
        min(event_at) filter (where event_type = 'sent') as first_sent_at,
        max(event_at) filter (where event_type = 'sent') as last_sent_at,
        max(event_at) filter (where event_type = 'open') as last_opened_at,
        max(event_at) filter (where event_type = 'click') as last_clicked_at,
        max(event_at) filter (where event_type in ('open', 'click')) as last_engaged_at,
        bool_or(event_type = 'hard_bounce') as is_hard_bounced,
        bool_or(event_type = 'complaint') as has_complained,
        count(distinct mailing_key) filter (
            where event_type = 'sent'
              and event_at >= {{ window_start }}
        ) as mails_last_90_days,
        count(*) filter (
            where event_type = 'open'
              and event_at >= {{ window_start }}
        ) as opens_last_90_days,
        count(*) filter (
            where event_type = 'click'
              and event_at >= {{ window_start }}
        ) as clicks_last_90_days
    from events
    group by email
),

addresses as (
    select email from directo
    union
    select email from engagement
),

final as (
    select
        {{ dbt.hash('a.email') }} as contact_key,
        a.email,
        d.primary_customer_code as directo_customer_code,
        d.directo_customer_codes,
        coalesce(d.directo_customer_count, 0) as directo_customer_count,
        coalesce(d.directo_customer_count, 0) > 1 as is_shared_email,
        c.clang_customer_id,
        c.clang_external_customer_id,
        s.spotler_external_id,
        coalesce(d.primary_customer_code, c.clang_external_customer_id, s.spotler_external_id) as external_customer_id,
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
        coalesce(e.mails_last_90_days, 0) as mails_last_90_days,
        coalesce(e.opens_last_90_days, 0) as opens_last_90_days,
        coalesce(e.clicks_last_90_days, 0) as clicks_last_90_days,
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
    left join clang c using (email)
    left join spotler s using (email)
    left join latest_consent l using (email)
    left join engagement e using (email)
)

select * from final
