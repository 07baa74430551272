{{ config(materialized='incremental', unique_key='email') }}
-- Per address, what its e-mail events say whatever the day: first and last mails, a person's own opens and
-- clicks (a machine's are no engagement, macros/machine_rules.sql; a click on the unsubscribe link is an
-- unsubscribe, no click), bounces, the latest complaint and
-- unsubscribe, and the ids the mail platforms know it by.
-- Every figure is a minimum, maximum, "any" or latest-of, so a summary of some events and a summary of
-- others add up to the summary of all (`partials`). Incremental: the addresses with new events add them to
-- what this table holds; an address with an event counted before in another version is summed up again.
{%- set events_model = ref('int_email_events_classified') %}
with

{{ events_to_add_up(events_model, 'email', 'select * from ' ~ events_model ~ ' where email is not null') }}

partials as (
    select
        email,
        min(event_at) filter (where event_type = 'sent') as first_sent_at,
        max(event_at) filter (where event_type = 'sent') as last_sent_at,
        max(event_at) filter (where {{ human_open() }}) as last_opened_at,
        max(event_at) filter (where {{ human_click() }}) as last_clicked_at,
        max(event_at) filter (where {{ human_open() }} or {{ human_click() }}) as last_engaged_at,
        bool_or(event_type = 'hard_bounce') as is_hard_bounced,
        bool_or(event_type = 'complaint') as has_complained,
        max(event_at) filter (where event_type = 'complaint') as last_complained_at,
        {{ value_of_max('source_system', 'event_at', "event_type = 'complaint'") }} as last_complaint_source,
        max(event_at) filter (where event_type = 'unsubscribe') as last_unsubscribed_at,
        {{ value_of_max('source_system', 'event_at', "event_type = 'unsubscribe'") }} as last_unsubscribe_source,
        {{ value_of_max('source_contact_id', 'event_at', "source_system = 'clang'") }} as clang_customer_id,
        max(event_at) filter (where source_system = 'clang' and source_contact_id is not null)
            as clang_customer_id_seen_at,
        {{ value_of_max('external_customer_id', 'event_at', "source_system = 'clang'") }} as clang_external_customer_id,
        max(event_at) filter (where source_system = 'clang' and external_customer_id is not null)
            as clang_external_customer_id_seen_at,
        min(external_customer_id) filter (where source_system = 'spotler') as spotler_external_id
    from events
    group by email
    {% if is_incremental() %}
        union all
        -- what this table holds of the other addresses with new events
        select
            email,
            first_sent_at,
            last_sent_at,
            last_opened_at,
            last_clicked_at,
            last_engaged_at,
            is_hard_bounced,
            has_complained,
            last_complained_at,
            last_complaint_source,
            last_unsubscribed_at,
            last_unsubscribe_source,
            clang_customer_id,
            clang_customer_id_seen_at,
            clang_external_customer_id,
            clang_external_customer_id_seen_at,
            spotler_external_id
        from {{ this }}
        where {{ held_rows_to_add('email') }}
    {% endif %}
),

final as (
    select
        email,
        min(first_sent_at) as first_sent_at,
        max(last_sent_at) as last_sent_at,
        max(last_opened_at) as last_opened_at,
        max(last_clicked_at) as last_clicked_at,
        max(last_engaged_at) as last_engaged_at,
        bool_or(is_hard_bounced) as is_hard_bounced,
        bool_or(has_complained) as has_complained,
        max(last_complained_at) as last_complained_at,
        {{ value_of_max('last_complaint_source', 'last_complained_at') }} as last_complaint_source,
        max(last_unsubscribed_at) as last_unsubscribed_at,
        {{ value_of_max('last_unsubscribe_source', 'last_unsubscribed_at') }} as last_unsubscribe_source,
        {{ value_of_max('clang_customer_id', 'clang_customer_id_seen_at') }} as clang_customer_id,
        max(clang_customer_id_seen_at) as clang_customer_id_seen_at,
        {{ value_of_max('clang_external_customer_id', 'clang_external_customer_id_seen_at') }}
            as clang_external_customer_id,
        max(clang_external_customer_id_seen_at) as clang_external_customer_id_seen_at,
        min(spotler_external_id) as spotler_external_id,
        {{ built_at() }} as built_at
    from partials
    group by email
)

select * from final
