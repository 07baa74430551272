-- Contacts to win back: mailable (contacts.is_mailable), engaged once, but no open or click in the last
-- `reactivation_inactive_days` while they received at least `reactivation_min_mailings` mailings then,
-- and not sent to this trigger within `reactivation_cooldown_days`.
{% set inactive_since = dbt.dateadd('day', -var('reactivation_inactive_days'), as_of_date()) %}

with

contacts as (
    select * from {{ ref('contacts') }}
),

mail_history as (
    select * from {{ ref('contact_mail_history') }}
),

segment_sends as (
    select * from {{ ref('int_segment_sends_unioned') }}
),

candidates as (
    select *
    from contacts
    where
        is_mailable
        and last_engaged_at is not null
        and last_engaged_at < {{ inactive_since }}
),

mailings_received as (
    -- one pass over the mail history for both counts
    select
        c.contact_key,
        count(*) filter (where r.sent_at > c.last_engaged_at) as mailings_since_engagement,
        count(*) filter (where r.sent_at >= {{ inactive_since }}) as mailings_in_window
    from candidates as c
    inner join mail_history as r on c.contact_key = r.contact_key
    where r.sent_at is not null
    group by 1
),

recently_exported as (
    select distinct contact_key
    from segment_sends
    where
        segment = 'reactivation'
        and sent_at >= {{ dbt.dateadd('day', -var('reactivation_cooldown_days'), as_of_date()) }}
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
        m.mailings_since_engagement
    from candidates as c
    inner join mailings_received as m on c.contact_key = m.contact_key
    -- at least one mailing in the window, and at least reactivation_min_mailings
    where
        m.mailings_in_window >= greatest({{ var('reactivation_min_mailings') }}, 1)
        and c.contact_key not in (
            select contact_key from recently_exported
            where contact_key is not null
        )
)

select * from final
