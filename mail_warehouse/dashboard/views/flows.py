"""Automations and campaigns: flows of mails (welcome series, birthdays, abandoned carts) per step, over time.

A step of an automation goes out every day, to each contact when their moment comes; in marts.mailings its
`sent_at` is only its first send. The sends over time come from the send events themselves (every send, also a
second reminder to the same contact), the responses from each contact's mail history.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from mail_warehouse.dashboard.data import Published
from mail_warehouse.dashboard.views.common import (
    LOCAL_TIME_ZONE,
    Column,
    change_in_count,
    change_in_points,
    draw,
    euros,
    link_to_page,
    metrics_with_change,
    num,
    pct,
    platform_name,
    say,
    show_query,
    table,
    when,
)
from mail_warehouse.dashboard.views.mailings import SEND_DAY, machines_line, mailing_type_name, previous_period

EVENT_DAY = f"cast(timezone('{LOCAL_TIME_ZONE.key}', event_at) as date)"
# a step is a mailing a Spotler campaign sends; its flow is the campaign (a step without one is a flow of its own)
STEPS = """
    steps as (
        select mailing_key, source_system, coalesce(campaign_name, mailing_name) as flow_name,
               mailing_name as step_name, mailing_type, sent_at as first_sent_at
        from marts.mailings
        where is_campaign_mailing
    )"""

FLOW_STEPS = f"""
with {STEPS},
sends as (
    select mailing_key, count(*) as period_sent_count
    from marts.customer_activity
    where event_type = 'sent'
      and mailing_key in (select mailing_key from steps)
      and {EVENT_DAY} between $first_day and $last_day
    group by all
),
responses as (
    -- the contacts the step reached in the period and what they did themselves
    select mailing_key,
           count(*) filter (where bounce = 'none') as period_delivered_count,
           count(*) filter (where bounce = 'none' and was_opened) as period_human_open_count,
           count(*) filter (where bounce = 'none' and was_clicked) as period_human_click_count
    from marts.contact_mail_history
    where mailing_key in (select mailing_key from steps)
      and {SEND_DAY} between $first_day and $last_day
    group by all
),
final as (
    select
        steps.mailing_key, steps.flow_name, steps.step_name, steps.source_system, steps.mailing_type,
        steps.first_sent_at,
        coalesce(sends.period_sent_count, 0) as period_sent_count,
        coalesce(responses.period_delivered_count, 0) as period_delivered_count,
        coalesce(responses.period_human_open_count, 0) as period_human_open_count,
        coalesce(responses.period_human_click_count, 0) as period_human_click_count,
        responses.period_human_open_count / nullif(responses.period_delivered_count, 0) as period_human_open_rate,
        responses.period_human_click_count / nullif(responses.period_delivered_count, 0) as period_human_click_rate,
        stats.sent_count, stats.open_rate, stats.human_open_rate, stats.click_rate, stats.human_click_rate,
        stats.revenue, stats.conversion_click_count
    from steps
    left join sends using (mailing_key)
    left join responses using (mailing_key)
    left join marts.mailing_statistics as stats using (mailing_key)
)
select * from final
order by flow_name, first_sent_at, step_name, mailing_key"""

FLOW_HEADLINE = f"""
with steps_in_period as ({FLOW_STEPS.strip()})
select
    count(distinct flow_name) filter (where period_sent_count > 0) as flows,
    count(*) filter (where period_sent_count > 0) as steps,
    sum(period_sent_count) as sent,
    -- a text message has no opens or clicks: the rates are the e-mails'
    sum(period_human_open_count) filter (where is_email)
        / nullif(sum(period_delivered_count) filter (where is_email), 0) as human_open_rate,
    sum(period_human_click_count) filter (where is_email)
        / nullif(sum(period_delivered_count) filter (where is_email), 0) as human_click_rate,
    sum(revenue) filter (where period_sent_count > 0) as revenue
from (select *, coalesce(mailing_type, '') <> 'SMS' as is_email from steps_in_period)"""

GRAINS = {"week": ("week", "Per week", "Per week"), "month": ("month", "Per maand", "Per month")}


def sends_over_time(grain: str) -> str:
    return f"""
with {STEPS}
select steps.flow_name, steps.step_name, steps.first_sent_at,
       date_trunc('{GRAINS[grain][0]}', timezone('{LOCAL_TIME_ZONE.key}', sent.event_at)) as period_start,
       count(*) as sends
from marts.customer_activity as sent
join steps using (mailing_key)
where sent.event_type = 'sent' and {EVENT_DAY} between $first_day and $last_day
group by all
order by steps.flow_name, period_start, steps.first_sent_at"""


def opens_over_time(grain: str) -> str:
    return f"""
with {STEPS}
select steps.flow_name, steps.step_name, steps.mailing_type, steps.first_sent_at,
       date_trunc('{GRAINS[grain][0]}', timezone('{LOCAL_TIME_ZONE.key}', history.sent_at)) as period_start,
       count(*) filter (where history.bounce = 'none') as delivered,
       count(*) filter (where history.bounce = 'none' and history.was_opened)
           / nullif(count(*) filter (where history.bounce = 'none'), 0) as human_open_rate
from marts.contact_mail_history as history
join steps using (mailing_key)
where cast(timezone('{LOCAL_TIME_ZONE.key}', history.sent_at) as date) between $first_day and $last_day
group by all
order by steps.flow_name, period_start, steps.first_sent_at"""


BOUNDS = f"""
select min({EVENT_DAY}) as first_day, max({EVENT_DAY}) as last_day
from marts.customer_activity
where event_type = 'sent' and mailing_key in (select mailing_key from marts.mailings where is_campaign_mailing)"""


def flows(db: Published) -> None:
    st.title(say("Hoe doen onze automations het?", "How are our automations doing?"))
    st.markdown(
        say(
            "Een automation (Spotler-campagne) stuurt elke stap per contact, op het moment dat die aan de beurt "
            "is: een welkomstreeks na de inschrijving, een felicitatie op de verjaardag, een herinnering bij een "
            "verlaten winkelwagen. Zo'n stap gaat elke dag uit; hier staat wat elke stap in de gekozen periode "
            "verstuurde en wat mensen ermee deden.",
            "An automation (a Spotler campaign) sends each step per contact, when their moment comes: a welcome "
            "series after signing up, congratulations on a birthday, a reminder for an abandoned cart. Such a "
            "step goes out every day; this page shows what each step sent in the chosen period and what people "
            "did with it.",
        )
    )
    bounds = db.frame(BOUNDS).iloc[0]
    if bounds.first_day is None or pd.isna(bounds.first_day):
        st.metric(say("Automations", "Automations"), num(0))
        st.info(
            say(
                "Nog geen automations of campagnemailings in de gepubliceerde kopie: alle mailings zijn losse "
                "mailings (zie Mailings).",
                "No automations or campaign mailings in the published copy yet: every mailing is a one-off "
                "mailing (see Mailings).",
            )
        )
        link_to_page("overview", say("→ Mailings", "→ Mailings"))
        return
    first_day, last_day = bounds.first_day, bounds.last_day
    period_column, grain_column = st.columns([1, 2])
    period = period_column.date_input(
        say("Periode (verzenddag)", "Period (send day)"),
        (first_day, last_day),
        min_value=first_day,
        max_value=last_day,
        format="DD-MM-YYYY",
    )
    grain = grain_column.radio(
        say("Over de tijd", "Over time"),
        list(GRAINS),
        index=list(GRAINS).index("month"),  # a week of one step is often too few people for a steady rate
        format_func=lambda key: say(GRAINS[key][1], GRAINS[key][2]),
        horizontal=True,
    )
    if not isinstance(period, (tuple, list)) or len(period) != 2:
        st.info(say("Kies ook de laatste dag van de periode.", "Pick the last day of the period."))
        return
    params = {"first_day": period[0], "last_day": period[1]}
    before_first, before_last = previous_period(period[0], period[1])
    now = db.frame(FLOW_HEADLINE, params).iloc[0]
    before = db.frame(FLOW_HEADLINE, {"first_day": before_first, "last_day": before_last}).iloc[0]
    if not before.sent:
        before = before.map(lambda _: None)
    metrics_with_change(
        [
            (
                say("Automations", "Automations"),
                num(now.flows),
                say("automations met verzendingen in de periode", "automations with sends in the period"),
                change_in_count(now.flows, before.flows),
                "normal",
            ),
            (
                say("Stappen", "Steps"),
                num(now.steps),
                say("mailings van automations met verzendingen in de periode", "automation mailings that sent"),
                change_in_count(now.steps, before.steps),
                "normal",
            ),
            (
                say("Verzonden in de periode", "Sent in the period"),
                num(now.sent),
                say("elke verzending telt, ook een tweede aan hetzelfde contact", "every send counts"),
                change_in_count(now.sent, before.sent),
                "normal",
            ),
            (
                say("Omzet (totaal)", "Revenue (total)"),
                euros(now.revenue),
                say(
                    "webshopomzet na een klik (Spotler eCommerce), sinds de eerste verzending van elke stap: "
                    "Spotler telt omzet per mailing, niet per dag",
                    "webshop revenue after a click (Spotler eCommerce) since each step's first send: Spotler "
                    "counts revenue per mailing, not per day",
                ),
                None,
                "off",
            ),
            (
                say("Openratio (mensen)", "Open rate (people)"),
                pct(now.human_open_rate),
                say(
                    "contacten die in de periode een stap kregen en zelf openden of klikten / afgeleverd",
                    "contacts who got a step in the period and opened or clicked themselves / delivered",
                ),
                change_in_points(now.human_open_rate, before.human_open_rate),
                "normal",
            ),
            (
                say("Klikratio (mensen)", "Click rate (people)"),
                pct(now.human_click_rate),
                say("contacten die zelf klikten / afgeleverd", "contacts who clicked themselves / delivered"),
                change_in_points(now.human_click_rate, before.human_click_rate),
                "normal",
            ),
        ]
    )
    st.caption(
        say(
            f"Verandering tegenover de even lange periode ervoor ({when(before_first, False)} t/m "
            f"{when(before_last, False)}). ",
            f"Change against the period of the same length before ({when(before_first, False)} to "
            f"{when(before_last, False)}). ",
        )
        + machines_line()
    )
    show_query(FLOW_HEADLINE, params)

    steps = db.frame(FLOW_STEPS, params)
    steps["platform"] = steps.source_system.map(platform_name)
    steps["type"] = steps.mailing_type.map(mailing_type_name)
    text_messages = steps.mailing_type == "SMS"  # no opens or clicks to count: "–", not 0 %
    for rate in (
        "period_human_open_rate",
        "period_human_click_rate",
        "open_rate",
        "human_open_rate",
        "human_click_rate",
    ):
        steps[rate] = steps[rate].astype(float).mask(text_messages)
    st.subheader(say("Per stap", "Per step"))
    table(
        steps,
        {
            "flow_name": Column(say("Automation", "Automation")),
            "step_name": Column(say("Stap", "Step")),
            "type": Column(say("Soort", "Type")),
            "platform": Column(say("Platform", "Platform")),
            "first_sent_at": Column(say("Eerste verzending", "First send"), "time"),
            "period_sent_count": Column(say("Verzonden (periode)", "Sent (period)"), "count"),
            "period_human_open_rate": Column(say("Openratio mensen (periode)", "Open rate people (period)"), "percent"),
            "period_human_click_rate": Column(
                say("Klikratio mensen (periode)", "Click rate people (period)"), "percent"
            ),
            "sent_count": Column(say("Verzonden (totaal)", "Sent (total)"), "count"),
            "open_rate": Column(say("Openratio ruw (totaal)", "Open rate raw (total)"), "percent"),
            "human_open_rate": Column(say("Openratio mensen (totaal)", "Open rate people (total)"), "percent"),
            "human_click_rate": Column(say("Klikratio mensen (totaal)", "Click rate people (total)"), "percent"),
            "revenue": Column(say("Omzet (totaal)", "Revenue (total)"), "euros"),
            "conversion_click_count": Column(say("Conversies (totaal)", "Conversions (total)"), "count"),
        },
    )
    st.caption(
        say(
            "Periode: verzendingen in de gekozen periode; de ratio's van de contacten die de stap toen kregen. "
            "Totaal: sinds de eerste verzending, zoals Spotler de mailing telt. Open een stap op de pagina "
            "Eén mailing voor zijn responscurve en links.",
            "Period: sends in the chosen period; the rates of the contacts who got the step then. Total: since "
            "the first send, as Spotler counts the mailing. Open a step on the One mailing page for its response "
            "curve and links.",
        )
    )
    show_query(FLOW_STEPS, params)
    over_time(db, params, grain, steps)


def over_time(db: Published, params: dict, grain: str, steps: pd.DataFrame) -> None:
    sends = db.frame(sends_over_time(grain), params)
    opens = db.frame(opens_over_time(grain), params)
    if sends.empty:
        st.info(say("Geen verzendingen in deze periode.", "No sends in this period."))
        return
    # the periods start on Amsterdam days already (DuckDB truncated Amsterdam wall-clock times)
    period_title = say("Week", "Week") if grain == "week" else say("Maand", "Month")
    period_format = "%d-%m-%Y" if grain == "week" else "%b %Y"
    for flow_name, flow_steps in steps.groupby("flow_name", sort=True):
        st.subheader(str(flow_name))
        in_order = flow_steps.sort_values("first_sent_at")
        order = list(in_order.step_name)
        st.markdown(
            say("Stappen, verzonden in de periode: ", "Steps, sent in the period: ")
            + " → ".join(f"**{row.step_name}**: {num(row.period_sent_count)}" for row in in_order.itertuples())
        )
        step_scale = alt.Scale(domain=order)
        left, right = st.columns(2)
        draw(
            left,
            alt.Chart(sends[sends.flow_name == flow_name])
            .mark_bar()
            .encode(
                x=alt.X(
                    "period_start:T",
                    title=period_title,
                    timeUnit="yearweek" if grain == "week" else "yearmonth",
                    axis=alt.Axis(format=period_format),
                ),
                y=alt.Y("sum(sends):Q", title=say("Verzonden", "Sent"), stack=True),
                color=alt.Color("step_name:N", title=say("Stap", "Step"), scale=step_scale, sort=order),
                order=alt.Order("first_sent_at:T"),
                tooltip=[
                    alt.Tooltip("step_name:N", title=say("Stap", "Step")),
                    alt.Tooltip("period_start:T", title=period_title, format=period_format),
                    alt.Tooltip("sends:Q", title=say("Verzonden", "Sent"), format=",d"),
                ],
            )
            .properties(title=say("Verzonden per stap", "Sent per step"), height=260),
        )
        # one line per step: a line joins the same step over time, never two different mailings
        draw(
            right,
            alt.Chart(opens[(opens.flow_name == flow_name) & (opens.delivered > 0) & (opens.mailing_type != "SMS")])
            .mark_line(point=True)
            .encode(
                x=alt.X(
                    "period_start:T",
                    title=period_title,
                    timeUnit="yearweek" if grain == "week" else "yearmonth",
                    axis=alt.Axis(format=period_format),
                ),
                y=alt.Y("human_open_rate:Q", axis=alt.Axis(format="%", title=None), scale=alt.Scale(zero=True)),
                color=alt.Color("step_name:N", title=say("Stap", "Step"), scale=step_scale, sort=order),
                tooltip=[
                    alt.Tooltip("step_name:N", title=say("Stap", "Step")),
                    alt.Tooltip("period_start:T", title=period_title, format=period_format),
                    alt.Tooltip(
                        "human_open_rate:Q", title=say("Openratio (mensen)", "Open rate (people)"), format=".1%"
                    ),
                    alt.Tooltip("delivered:Q", title=say("Afgeleverd", "Delivered"), format=",d"),
                ],
            )
            .properties(
                title=say("Openratio (mensen) per stap (e-mail)", "Open rate (people) per step (e-mail)"), height=260
            ),
        )
    show_query(sends_over_time(grain), params)
    show_query(opens_over_time(grain), params)
