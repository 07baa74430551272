{{ config(materialized='incremental', unique_key='contact_mailing_key') }}
-- One row per contact per mailing: the "customer card" of what each person got and did. Incremental: the
-- contact-mailing pairs with events written since this table's last build are summed up again.
with

{% if is_incremental() %}
changed_pairs as (
    select distinct contact_key, mailing_key
    from {{ ref('customer_activity') }}
    where built_at > {{ last_built_at() }} and contact_key is not null
),
{% endif %}

events as (
    select e.*
    from {{ ref('customer_activity') }} e
    {% if is_incremental() %}
    inner join changed_pairs using (contact_key, mailing_key)
    {% endif %}
    where e.contact_key is not null
),

per_contact_mailing as (
    select
        contact_key,
        mailing_key,
        min(email) as email,
        min(event_at) filter (where event_type = 'sent') as sent_at,
        bool_or({{ shows_an_open() }}) as was_opened,
        bool_or(event_type = 'click') as was_clicked,
        bool_or(event_type = 'hard_bounce') as had_hard_bounce,
        bool_or(event_type = 'soft_bounce') as had_soft_bounce,
        bool_or(event_type = 'unsubscribe') as was_unsubscribed,
        bool_or(event_type = 'complaint') as has_complained,
        min(event_at) filter (where {{ shows_an_open() }}) as first_opened_at,
        min(event_at) filter (where event_type = 'click') as first_clicked_at,
        count(*) filter (where event_type = 'open') as open_count,
        count(*) filter (where event_type = 'click') as click_count
    from events
    group by contact_key, mailing_key
),

final as (
    select
        {{ dbt.hash("contact_key || '|' || mailing_key") }} as contact_mailing_key,
        contact_key,
        mailing_key,
        email,
        sent_at,
        was_opened,
        was_clicked,
        case when had_hard_bounce then 'hard' when had_soft_bounce then 'soft' else 'none' end as bounce,
        was_unsubscribed,
        has_complained,
        first_opened_at,
        first_clicked_at,
        {{ dbt.datediff('sent_at', 'first_opened_at', 'minute') }} as minutes_to_open,
        open_count,
        click_count,
        {{ built_at() }} as built_at
    from per_contact_mailing
)

select * from final
