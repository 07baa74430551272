{#
  The rules every model counts e-mail events by, written once.

  person_key(): who an event belongs to when counting unique people: the contact (a hash of the address),
  else the external customer id the platform gave (address unknown). An event with neither is anonymous:
  it counts in event totals (sends, open and click events) and in no unique count.
#}
{% macro person_key(contact_key='contact_key', external_customer_id='external_customer_id') -%}
    coalesce({{ contact_key }}, 'external:' || {{ external_customer_id }})
{%- endmacro %}

{#
  shows_an_open(): the event proves the mail was opened: an open, a click, or a click on the unsubscribe
  link (an `unsubscribe` event with link_type unsubscribe). Such a click is no engagement (it sets no
  last_clicked_at nor last_engaged_at), but the mail was open, and Spotler counts it so.
#}
{% macro shows_an_open(event_type='event_type', link_type='link_type') -%}
    ({{ event_type }} in ('open', 'click') or ({{ event_type }} = 'unsubscribe' and {{ link_type }} = 'unsubscribe'))
{%- endmacro %}

{# shows_a_human_open(): the same evidence from a person: their open or click (macros/machine_rules.sql), or an
   unsubscribe through the link (the platform's unsubscribe page asks a person to confirm). #}
{% macro shows_a_human_open(event_type='event_type', link_type='link_type', is_machine='is_machine') -%}
    ({{ human_open(event_type, is_machine) }} or {{ human_click(event_type, is_machine) }}
     or ({{ event_type }} = 'unsubscribe' and {{ link_type }} = 'unsubscribe'))
{%- endmacro %}

{#
  directo_day(ts): the calendar day of a UTC time in Directo's time zone (the loader's setting
  SOURCES__DIRECTO__TIMEZONE, passed on by `warehouse build`; default Europe/Tallinn). Directo dates its
  OPTIN statements by day, so the warehouse compares them with unsubscribes on that day.
#}
{% macro directo_day(ts) -%}
    cast({{ local_from_utc(ts, "'" ~ directo_timezone() ~ "'") }} as date)
{%- endmacro %}

{% macro directo_timezone() -%}
    {{- return(env_var('SOURCES__DIRECTO__TIMEZONE', 'Europe/Tallinn') | replace("'", "")) -}}
{%- endmacro %}
