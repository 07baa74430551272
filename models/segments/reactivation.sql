-- Contacts to win back: mailable (contacts.is_mailable), engaged once, but no open or click in the last
-- `reactivation_inactive_days` while they received at least `reactivation_min_mailings` mailings then,
-- and not sent to this trigger within `reactivation_cooldown_days`.
{% set inactive_since = dbt.dateadd('day', -var('reactivation_inactive_days'), as_of_date()) %}

with

contacts as (
    select * from {{ ref('contacts') }}
),

mailings_received as (
    select contact_key, sent_at
    from {{ ref('contact_mail_history') }}
    where sent_at is not null
),

candidates as (
    select *
    from contacts
    where is_mailable
      and last_engaged_at is not null
      and last_engaged_at < {{ inactive_since }}
),

mailings_since_engagement as (
    select c.contact_key, count(*) as mailings_since_engagement
    from candidates c
    inner join mailings_received r on r.contact_key = c.contact_key and r.sent_at > c.last_engaged_at
    group by 1
),

mailings_in_window as (
    select c.contact_key, count(*) as mailings_in_window
    from candidates c
    inner join mailings_received r on r.contact_key = c.contact_key
        and r.sent_at >= {{ inactive_since }}
    group by 1
),

recently_exported as (
    select distinct contact_key
    from {{ ref('stg_exports__segment_sends') }}
    where segment = 'reactivation'
      and uploaded_at >= {{ dbt.dateadd('day', -var('reactivation_cooldown_days'), as_of_date()) }}
),

final as (
    select
        c.contact_key,
        c.email,
        c.external_customer_id,
        c.first_name,
        c.full_name as name,
        c.last_engaged_at,
        {{ dbt.datediff('cast(c.last_engaged_at as date)', as_of_date(), 'day') }} as days_inactive,
        coalesce(m.mailings_since_engagement, 0) as mailings_since_engagement
    from candidates c
    inner join mailings_in_window w on w.contact_key = c.contact_key
    left join mailings_since_engagement m on m.contact_key = c.contact_key
    where w.mailings_in_window >= {{ var('reactivation_min_mailings') }}
      and c.contact_key not in (select contact_key from recently_exported where contact_key is not null)
)

select * from final
