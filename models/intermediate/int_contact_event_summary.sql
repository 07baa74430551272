{{ config(materialized='incremental', unique_key='email') }}
-- Per address, what its e-mail events say whatever the day: first and last mails, opens and clicks (a
-- click on the unsubscribe link is an unsubscribe, no click), bounces, the latest complaint and
-- unsubscribe, and the ids the mail platforms know it by.
-- Incremental: the addresses with events written since this table's last build are summed up again.
with

{% if is_incremental() %}
changed_addresses as (
    select distinct email
    from {{ ref('customer_activity') }}
    where built_at > {{ last_built_at() }} and email is not null
),
{% endif %}

events as (
    select e.*
    from {{ ref('customer_activity') }} e
    {% if is_incremental() %}
    inner join changed_addresses using (email)
    {% endif %}
    where e.email is not null
),

final as (
    select
        email,
        min(event_at) filter (where event_type = 'sent') as first_sent_at,
        max(event_at) filter (where event_type = 'sent') as last_sent_at,
        max(event_at) filter (where event_type = 'open') as last_opened_at,
        max(event_at) filter (where event_type = 'click') as last_clicked_at,
        max(event_at) filter (where event_type in ('open', 'click')) as last_engaged_at,
        bool_or(event_type = 'hard_bounce') as is_hard_bounced,
        bool_or(event_type = 'complaint') as has_complained,
        max(event_at) filter (where event_type = 'complaint') as last_complained_at,
        {{ value_of_max('source_system', 'event_at', "event_type = 'complaint'") }} as last_complaint_source,
        max(event_at) filter (where event_type = 'unsubscribe') as last_unsubscribed_at,
        {{ value_of_max('source_system', 'event_at', "event_type = 'unsubscribe'") }} as last_unsubscribe_source,
        {{ value_of_max('source_contact_id', 'event_at', "source_system = 'clang'") }} as clang_customer_id,
        {{ value_of_max('external_customer_id', 'event_at', "source_system = 'clang'") }} as clang_external_customer_id,
        min(external_customer_id) filter (where source_system = 'spotler') as spotler_external_id,
        {{ built_at() }} as built_at
    from events
    group by email
)

select * from final
