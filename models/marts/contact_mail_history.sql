{{ config(materialized='incremental', unique_key='contact_mailing_key') }}
-- One row per contact per mailing: the "customer card" of what each person got and did. Opened and clicked
-- mean the person (their own open or click); what a privacy proxy or link scanner did is shown beside it
-- (was_machine_opened, machine_open_count, machine_click_count; macros/machine_rules.sql).
-- Every figure is a count, minimum or "any", so a history of some events and a history of others add up to
-- the history of all (`partials`). Incremental: the contact-mailing pairs with new events add them to what
-- this table holds; a pair with an event counted before in another version is summed up again.
{%- set events_model = ref('int_email_events_classified') %}
{%- set pair_key = dbt.hash("contact_key || '|' || mailing_key") %}
with

{{ events_to_add_up(events_model, 'contact_mailing_key',
                    'select *, ' ~ pair_key ~ ' as contact_mailing_key from ' ~ events_model ~ ' where contact_key is not null') }}

partials as (
    select
        contact_mailing_key,
        contact_key,
        mailing_key,
        min(email) as email,
        min(event_at) filter (where event_type = 'sent') as sent_at,
        bool_or({{ shows_a_human_open() }}) as was_opened,
        bool_or({{ human_click() }}) as was_clicked,
        bool_or({{ machine_open() }} or {{ machine_click() }}) as was_machine_opened,
        bool_or(event_type = 'hard_bounce') as had_hard_bounce,
        bool_or(event_type = 'soft_bounce') as had_soft_bounce,
        bool_or(event_type = 'unsubscribe') as was_unsubscribed,
        bool_or(event_type = 'complaint') as has_complained,
        min(event_at) filter (where {{ shows_a_human_open() }}) as first_opened_at,
        min(event_at) filter (where {{ human_click() }}) as first_clicked_at,
        count(*) filter (where {{ human_open() }}) as open_count,
        count(*) filter (where {{ human_click() }}) as click_count,
        count(*) filter (where {{ machine_open() }}) as machine_open_count,
        count(*) filter (where {{ machine_click() }}) as machine_click_count
    from events
    group by contact_mailing_key, contact_key, mailing_key
    {% if is_incremental() %}
        union all
        -- what this table holds of the other pairs with new events
        select
            contact_mailing_key,
            contact_key,
            mailing_key,
            email,
            sent_at,
            was_opened,
            was_clicked,
            was_machine_opened,
            bounce = 'hard',
            bounce = 'soft',
            was_unsubscribed,
            has_complained,
            first_opened_at,
            first_clicked_at,
            open_count,
            click_count,
            machine_open_count,
            machine_click_count
        from {{ this }}
        where {{ held_rows_to_add('contact_mailing_key') }}
    {% endif %}
),

per_contact_mailing as (
    select
        contact_mailing_key,
        contact_key,
        mailing_key,
        min(email) as email,
        min(sent_at) as sent_at,
        bool_or(was_opened) as was_opened,
        bool_or(was_clicked) as was_clicked,
        bool_or(was_machine_opened) as was_machine_opened,
        bool_or(had_hard_bounce) as had_hard_bounce,
        bool_or(had_soft_bounce) as had_soft_bounce,
        bool_or(was_unsubscribed) as was_unsubscribed,
        bool_or(has_complained) as has_complained,
        min(first_opened_at) as first_opened_at,
        min(first_clicked_at) as first_clicked_at,
        cast(sum(open_count) as {{ dbt.type_bigint() }}) as open_count,
        cast(sum(click_count) as {{ dbt.type_bigint() }}) as click_count,
        cast(sum(machine_open_count) as {{ dbt.type_bigint() }}) as machine_open_count,
        cast(sum(machine_click_count) as {{ dbt.type_bigint() }}) as machine_click_count
    from partials
    group by contact_mailing_key, contact_key, mailing_key
),

final as (
    select
        contact_mailing_key,
        contact_key,
        mailing_key,
        email,
        sent_at,
        was_opened,
        was_clicked,
        was_machine_opened,
        case when had_hard_bounce then 'hard' when had_soft_bounce then 'soft' else 'none' end as bounce,
        was_unsubscribed,
        has_complained,
        first_opened_at,
        first_clicked_at,
        {{ minutes_between('sent_at', 'first_opened_at') }} as minutes_to_open,
        open_count,
        click_count,
        machine_open_count,
        machine_click_count,
        {{ built_at() }} as built_at
    from per_contact_mailing
)

select * from final
