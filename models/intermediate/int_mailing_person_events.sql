{{ config(materialized='incremental', unique_key='mailing_person_key') }}
-- Per mailing and person, what they got and did, as the vendors count (Spotler's MailingStats: "aantal
-- unieke contacten"). A person is the contact, else the external customer id (person_key); the events with
-- neither are one row per mailing without a person, counted in the event totals only. A click on the
-- unsubscribe link shows an open and is no click.
-- Every figure is a count or "any", so the rows of some events and of others add up to the row of all
-- (`partials`). Beside the vendors' counts, a person's own (human_*) and machines' (machine_*, see
-- macros/machine_rules.sql). Incremental: the mailing-person pairs with new events add them to what this table holds; a
-- pair with an event counted before in another version is counted again.
{%- set events_model = ref('int_email_events_classified') %}
{{- require_lookup_hashes_of_this_version('mailing_person_key') }}
{%- set pair_key = lookup_hash("mailing_key || '|' || coalesce(" ~ person_key() ~ ", '')") %}
with

{{ events_to_add_up(events_model, 'mailing_person_key',
                    'select *, ' ~ pair_key ~ ' as mailing_person_key, ' ~ person_key() ~ ' as person_key from ' ~ events_model) }}

partials as (
    select
        mailing_person_key,
        mailing_key,
        person_key,
        count(*) filter (where event_type = 'sent') as sends,
        count(*) filter (where event_type = 'open') as opens,
        bool_or({{ shows_an_open() }}) as opened,
        count(*) filter (where event_type = 'click' and coalesce(link_type, '') <> 'unsubscribe') as clicks,
        bool_or({{ shows_a_human_open() }}) as human_opened,
        count(*) filter (where {{ human_open() }}) as human_opens,
        count(*) filter (where {{ human_click() }} and coalesce(link_type, '') <> 'unsubscribe') as human_clicks,
        count(*) filter (where {{ machine_open() }}) as machine_opens,
        count(*) filter (where {{ machine_click() }}) as machine_clicks,
        bool_or(event_type = 'hard_bounce') as hard_bounced,
        bool_or(event_type = 'soft_bounce') as soft_bounced,
        bool_or(event_type = 'complaint') as complained,
        bool_or(event_type = 'unsubscribe') as unsubscribed,
        bool_or(event_type = 'click' and link_type = 'conversion') as clicked_conversion_link,
        bool_or(event_type = 'click' and link_type = 'webshop') as clicked_webshop_link
    from events
    group by mailing_person_key, mailing_key, person_key
    {% if is_incremental() %}
        union all
        -- what this table holds of the other pairs with new events
        select
            mailing_person_key,
            mailing_key,
            person_key,
            sends,
            opens,
            opened,
            clicks,
            human_opened,
            human_opens,
            human_clicks,
            machine_opens,
            machine_clicks,
            hard_bounced,
            soft_bounced,
            complained,
            unsubscribed,
            clicked_conversion_link,
            clicked_webshop_link
        from {{ this }}
        where {{ held_rows_to_add('mailing_person_key') }}
    {% endif %}
),

final as (
    select
        mailing_person_key,
        mailing_key,
        person_key,
        cast(sum(sends) as {{ dbt.type_bigint() }}) as sends,
        cast(sum(opens) as {{ dbt.type_bigint() }}) as opens,
        bool_or(opened) as opened,
        cast(sum(clicks) as {{ dbt.type_bigint() }}) as clicks,
        bool_or(human_opened) as human_opened,
        cast(sum(human_opens) as {{ dbt.type_bigint() }}) as human_opens,
        cast(sum(human_clicks) as {{ dbt.type_bigint() }}) as human_clicks,
        cast(sum(machine_opens) as {{ dbt.type_bigint() }}) as machine_opens,
        cast(sum(machine_clicks) as {{ dbt.type_bigint() }}) as machine_clicks,
        bool_or(hard_bounced) as hard_bounced,
        bool_or(soft_bounced) as soft_bounced,
        bool_or(complained) as complained,
        bool_or(unsubscribed) as unsubscribed,
        bool_or(clicked_conversion_link) as clicked_conversion_link,
        bool_or(clicked_webshop_link) as clicked_webshop_link,
        {{ built_at() }} as built_at
    from partials
    group by mailing_person_key, mailing_key, person_key
)

select * from final
