"""Mailings: how are our one-off mailings doing, over a period, per platform and type, against the period before.

Also what the other mailing pages share: which mailings are steps of an automation (`FLOW_MAILING`), the
Amsterdam send day and the line on machines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import altair as alt
import pandas as pd
import streamlit as st

from mail_warehouse.dashboard.data import Published
from mail_warehouse.dashboard.views.common import (
    COLOURS,
    LABEL_LIMIT,
    LOCAL_TIME_ZONE,
    TIME_FORMAT,
    Column,
    change_in_count,
    change_in_points,
    draw,
    euros,
    link_to_page,
    local,
    metrics_with_change,
    num,
    pct,
    platform_name,
    say,
    show_query,
    table,
    when,
)

# A mailing a Spotler campaign sends per contact, over time (a welcome series, a birthday mail, an abandoned
# cart reminder) is a step of an automation, not a one-off mailing: the Automations page shows those.
FLOW_MAILING = "mailing_key in (select mailing_key from marts.mailings where is_campaign_mailing)"
# the day a mailing went out, as a reader in Amsterdam names it
SEND_DAY = f"cast(timezone('{LOCAL_TIME_ZONE.key}', sent_at) as date)"
TEXT_MESSAGE_TYPES = {"SMS"}


def mailing_type_name(key) -> str:
    names = {
        "SINGLE": say("Mailing", "Mailing"),
        "CAMPAIGN": say("Campagne (Clang)", "Campaign (Clang)"),
        "QUICKMAIL": say("Quickmail", "Quickmail"),
        "SPLITRUN": say("A/B-test", "A/B test"),
        "EMAIL": say("E-mail", "E-mail"),
        "SMS": "SMS",
    }
    return names.get(key, "–" if key is None or pd.isna(key) else str(key).capitalize())


def machines_line() -> str:
    return say(
        "Machines openen en klikken ook: Apples privacyproxy opent elke mail die bij een Apple Mail-gebruiker "
        "aankomt, en bedrijfsscanners volgen elke link. 'Mensen' telt alleen wat mensen zelf deden; 'ruw' telt "
        "alles mee, zoals de platforms het zelf tonen.",
        "Machines open and click too: Apple's privacy proxy opens every mail delivered to an Apple Mail user, "
        "and corporate link scanners follow every link. 'People' counts only what people did themselves; 'raw' "
        "counts everything, as the platforms' own screens do.",
    )


# --- queries ------------------------------------------------------------------------------------------------

MAILINGS_FILTER = f"""
    from marts.mailing_statistics
    where {SEND_DAY} between $first_day and $last_day
      and ($platform = 'all' or source_system = $platform)
      and list_contains($mailing_types, mailing_type)
      and not {FLOW_MAILING}"""

MAILINGS_HEADLINE = (
    """
select
    count(*) as mailings,
    sum(sent_count) as sent,
    sum(delivered_count) / nullif(sum(sent_count), 0) as delivery_rate,
    sum(unique_open_count) / nullif(sum(delivered_count), 0) as open_rate,
    sum(unique_human_open_count) / nullif(sum(delivered_count), 0) as human_open_rate,
    sum(unique_click_count) / nullif(sum(delivered_count), 0) as click_rate,
    sum(unique_human_click_count) / nullif(sum(delivered_count), 0) as human_click_rate,
    sum(unique_click_count) / nullif(sum(unique_open_count), 0) as click_to_open_rate,
    sum(unique_machine_open_count) / nullif(sum(unique_open_count), 0) as machine_open_share,
    sum(hard_bounce_count + soft_bounce_count) / nullif(sum(sent_count), 0) as bounce_rate,
    sum(unsubscribe_count) / nullif(sum(delivered_count), 0) as unsubscribe_rate,
    sum(complaint_count) / nullif(sum(delivered_count), 0) as complaint_rate,
    sum(revenue) as revenue,
    sum(conversion_click_count) as conversions,
    sum(carts_created_count) as carts_created,
    sum(carts_paid_count) as carts_paid"""
    + MAILINGS_FILTER
)

MAILINGS_PER_MAILING = (
    """
select
    mailing_key, mailing_name, source_system, mailing_type, sent_at, sent_count, delivered_count,
    open_rate, human_open_rate, click_rate, human_click_rate, click_to_open_rate,
    bounce_rate, unsubscribe_rate, complaint_rate, revenue, conversion_click_count, carts_created_count,
    carts_paid_count, unique_open_count, api_unique_open_count, unique_open_count_difference,
    unique_click_count, api_unique_click_count, unique_click_count_difference, is_settling"""
    + MAILINGS_FILTER
    + """
order by sent_at desc, mailing_key"""
)

BOUNDS = f"""
select min({SEND_DAY}) as first_day, max({SEND_DAY}) as last_day,
       list(distinct mailing_type order by mailing_type) filter (where mailing_type is not null) as mailing_types,
       count(*) filter (where {FLOW_MAILING}) as flow_mailings
from marts.mailing_statistics"""


def previous_period(first_day: dt.date, last_day: dt.date) -> tuple[dt.date, dt.date]:
    """The period of the same length just before: 1-30 Nov gives 2-31 Oct."""
    length = (last_day - first_day).days + 1
    return first_day - dt.timedelta(days=length), first_day - dt.timedelta(days=1)


def mailings(db: Published) -> None:
    st.title(say("Hoe doen onze mailings het?", "How are our mailings doing?"))
    bounds = db.frame(BOUNDS).iloc[0]
    first_day, last_day = bounds.first_day, bounds.last_day
    if first_day is None or pd.isna(first_day):
        st.info(say("Nog geen mailings in de gepubliceerde kopie.", "No mailings in the published copy yet."))
        return
    all_types = list(bounds.mailing_types) if bounds.mailing_types is not None else []
    period_column, platform_column = st.columns([1, 2])
    period = period_column.date_input(
        say("Periode (verzenddag)", "Period (send day)"),
        (first_day, last_day),
        min_value=first_day,
        max_value=last_day,
        format="DD-MM-YYYY",
    )
    platforms = {"all": say("Alle platforms", "All platforms"), "clang": platform_name("clang")}
    platforms["spotler"] = platform_name("spotler")
    platform = platform_column.radio(
        say("Platform", "Platform"), list(platforms), format_func=platforms.get, horizontal=True
    )
    # SMS has no opens or clicks: left out by default so it does not pull the e-mail rates down
    mailing_types = st.pills(
        say("Soort mailing", "Mailing type"),
        all_types,
        default=[t for t in all_types if t not in TEXT_MESSAGE_TYPES],
        selection_mode="multi",
        format_func=mailing_type_name,
    )
    if bounds.flow_mailings:
        st.caption(
            say(
                "Hier staan losse mailings. Mailings die een automation per contact verstuurt (welkomstreeks, "
                "verjaardag, verlaten winkelwagen) staan op de pagina Automations en campagnes.",
                "These are one-off mailings. Mailings an automation sends per contact (welcome series, birthday, "
                "abandoned cart) are on the Automations and campaigns page.",
            )
        )
        link_to_page("flows", say("→ Automations en campagnes", "→ Automations and campaigns"))
    if not isinstance(period, (tuple, list)) or len(period) != 2:
        st.info(say("Kies ook de laatste dag van de periode.", "Pick the last day of the period."))
        return
    params = {"first_day": period[0], "last_day": period[1], "platform": platform, "mailing_types": mailing_types}
    before_first, before_last = previous_period(period[0], period[1])
    before_params = {**params, "first_day": before_first, "last_day": before_last}

    now = db.frame(MAILINGS_HEADLINE, params).iloc[0]
    before = db.frame(MAILINGS_HEADLINE, before_params).iloc[0]
    if not before.mailings:  # no mailings then: no change to show, rather than a change against zero
        before = before.map(lambda _: None)

    def rate(column: str, decimals: int = 1, colour: str = "normal"):
        return pct(now[column], decimals), change_in_points(now[column], before[column]), colour

    def count(column: str, shown: Callable = num):
        return shown(now[column]), change_in_count(now[column], before[column], shown), "normal"

    def row(label: str, help_text: str, shown: tuple) -> tuple:
        value, change, colour = shown
        return label, value, help_text, change, colour

    metrics_with_change(
        [
            row(
                say("Mailings", "Mailings"), say("losse mailings in de periode", "one-off mailings"), count("mailings")
            ),
            row(say("Verzonden", "Sent"), say("verzonden berichten", "messages sent"), count("sent")),
            row(
                say("Afleverratio", "Delivery rate"),
                say("afgeleverd / verzonden", "delivered / sent"),
                rate("delivery_rate"),
            ),
            row(
                say("Omzet", "Revenue"),
                say(
                    "webshopomzet na een klik (Spotler eCommerce); Clang / Deployteq meet geen omzet",
                    "webshop revenue after a click (Spotler eCommerce); Clang / Deployteq measures none",
                ),
                count("revenue", euros),
            ),
            row(
                say("Openratio (ruw)", "Open rate (raw)"),
                say(
                    "unieke opens / afgeleverd, met opens door machines; een klik telt als open",
                    "unique opens / delivered, machines' opens included; a click counts as an open",
                ),
                rate("open_rate"),
            ),
            row(
                say("Openratio (mensen)", "Open rate (people)"),
                say(
                    "mensen die zelf openden of klikten / afgeleverd",
                    "people who opened or clicked themselves / delivered",
                ),
                rate("human_open_rate"),
            ),
            row(
                say("Klikratio (ruw)", "Click rate (raw)"),
                say(
                    "unieke klikkers / afgeleverd, met linkscanners (afmeldlinks niet meegeteld)",
                    "unique clicks / delivered, link scanners included (unsubscribe links not counted)",
                ),
                rate("click_rate"),
            ),
            row(
                say("Klikratio (mensen)", "Click rate (people)"),
                say("mensen die zelf klikten / afgeleverd", "people who clicked themselves / delivered"),
                rate("human_click_rate"),
            ),
            row(
                say("Click-to-open", "Click-to-open"),
                say("unieke klikkers / unieke openers (ruw)", "unique clicks / unique opens (raw)"),
                rate("click_to_open_rate"),
            ),
            row(
                say("Conversies", "Conversions"),
                say(
                    "contacten die op een conversielink klikten (Spotler)",
                    "contacts who clicked a conversion link (Spotler)",
                ),
                count("conversions"),
            ),
            row(
                say("Winkelwagens aangemaakt", "Carts created"),
                say("winkelwagens na een klik (Spotler eCommerce)", "carts after a click (Spotler eCommerce)"),
                count("carts_created"),
            ),
            row(
                say("Winkelwagens betaald", "Carts paid"),
                say("betaalde winkelwagens na een klik (Spotler eCommerce)", "paid carts after a click"),
                count("carts_paid"),
            ),
            row(
                say("Bounceratio", "Bounce rate"),
                say("harde + zachte bounces / verzonden", "hard + soft bounces / sent"),
                rate("bounce_rate", 2, "inverse"),
            ),
            row(
                say("Afmeldratio", "Unsubscribe rate"),
                say("afmeldingen / afgeleverd", "unsubscribes / delivered"),
                rate("unsubscribe_rate", 2, "inverse"),
            ),
            row(
                say("Klachtratio", "Complaint rate"),
                say("spamklachten / afgeleverd", "spam complaints / delivered"),
                rate("complaint_rate", 3, "inverse"),
            ),
        ]
    )
    st.caption(
        say(
            f"Verandering tegenover de even lange periode ervoor ({when(before_first, False)} t/m "
            f"{when(before_last, False)}); – als er toen geen mailings waren.",
            f"Change against the period of the same length before ({when(before_first, False)} to "
            f"{when(before_last, False)}); – when there were no mailings then.",
        )
    )
    st.caption(
        say(
            f"Mensen en machines apart: bij {pct(now.machine_open_share)} van de openers opende alleen een machine. ",
            f"People and machines told apart: for {pct(now.machine_open_share)} of the openers only a machine opened. ",
        )
        + machines_line()
    )
    show_query(MAILINGS_HEADLINE, params)

    per_mailing = db.frame(MAILINGS_PER_MAILING, params)
    if per_mailing.empty:
        st.info(say("Geen mailings bij deze filters.", "No mailings match these filters."))
        return
    per_mailing["platform"] = per_mailing.source_system.map(platform_name)
    per_mailing["type"] = per_mailing.mailing_type.map(mailing_type_name)
    per_mailing["sent_local"] = local(per_mailing.sent_at)
    rates_per_mailing(per_mailing)
    revenue_per_mailing(per_mailing)
    every_mailing(per_mailing)
    show_query(MAILINGS_PER_MAILING, params)


def rates_per_mailing(per_mailing: pd.DataFrame) -> None:
    st.subheader(say("Ratio's per mailing", "Rates per mailing"))
    rates = {  # column: (label, colour)
        "open_rate": (say("open (ruw)", "open (raw)"), COLOURS["open"]),
        "human_open_rate": (say("open (mensen)", "open (people)"), COLOURS["human open"]),
        "click_rate": (say("klik (ruw)", "click (raw)"), COLOURS["click"]),
        "human_click_rate": (say("klik (mensen)", "click (people)"), COLOURS["human click"]),
        "bounce_rate": (say("bounce", "bounce"), COLOURS["bounce"]),
        "unsubscribe_rate": (say("afmelding", "unsubscribe"), COLOURS["unsubscribe"]),
        "complaint_rate": (say("klacht", "complaint"), COLOURS["complaint"]),
    }
    long = per_mailing.melt(
        id_vars=["mailing_name", "sent_local", "platform", "type"],
        value_vars=list(rates),
        var_name="rate",
        value_name="share",
    )
    long["rate"] = long.rate.map(lambda column: rates[column][0])

    def chart(title: str, *columns: str):
        names = [rates[column][0] for column in columns]
        # one point per mailing and rate: a line would join mailings that have nothing to do with each other
        return (
            alt.Chart(long[long.rate.isin(names)])
            .mark_point(filled=True, size=70, opacity=0.85)
            .encode(
                x=alt.X("sent_local:T", title=say("Verzonden", "Sent"), axis=alt.Axis(format="%d %b")),
                y=alt.Y("share:Q", axis=alt.Axis(format="%", title=None), scale=alt.Scale(zero=True)),
                color=alt.Color(
                    "rate:N",
                    title=None,
                    scale=alt.Scale(domain=names, range=[rates[column][1] for column in columns]),
                ),
                shape=alt.Shape("platform:N", title=say("Platform", "Platform")),
                tooltip=[
                    alt.Tooltip("mailing_name:N", title=say("Mailing", "Mailing")),
                    alt.Tooltip("platform:N", title=say("Platform", "Platform")),
                    alt.Tooltip("type:N", title=say("Soort", "Type")),
                    alt.Tooltip("sent_local:T", title=say("Verzonden", "Sent"), format=TIME_FORMAT),
                    alt.Tooltip("rate:N", title=say("Ratio", "Rate")),
                    alt.Tooltip("share:Q", title=say("Waarde", "Value"), format=".2%"),
                ],
            )
            .properties(title=title, height=300)
        )

    left, right = st.columns(2)
    draw(
        left,
        chart(
            say("Opens en kliks: ruw en door mensen", "Opens and clicks: raw and by people"),
            "open_rate",
            "human_open_rate",
            "click_rate",
            "human_click_rate",
        ),
    )
    draw(
        right,
        chart(
            say("Bounces, afmeldingen en klachten (ratio's)", "Bounces, unsubscribes and complaints (rates)"),
            "bounce_rate",
            "unsubscribe_rate",
            "complaint_rate",
        ),
    )
    st.caption(
        say(
            "Eén punt per mailing: bounces als deel van de verzonden berichten, afmeldingen en klachten als deel "
            "van de afgeleverde.",
            "One point per mailing: bounces as a share of the messages sent, unsubscribes and complaints of those "
            "delivered.",
        )
    )


def revenue_per_mailing(per_mailing: pd.DataFrame) -> None:
    with_revenue = per_mailing[per_mailing.revenue.notna()].copy()
    if with_revenue.empty:
        return
    with_revenue["revenue"] = with_revenue.revenue.astype(float)
    with_revenue["label"] = with_revenue.mailing_name + " · " + with_revenue.sent_local.dt.strftime("%d-%m-%Y")
    st.subheader(say("Omzet per mailing (Spotler eCommerce)", "Revenue per mailing (Spotler eCommerce)"))
    draw(
        st,
        alt.Chart(with_revenue)
        .mark_bar(color=COLOURS["human click"])
        .encode(
            x=alt.X("revenue:Q", title=say("Omzet", "Revenue"), axis=alt.Axis(format="$,.0f")),
            y=alt.Y(
                "label:N",
                title=None,
                sort=alt.EncodingSortField("sent_local", order="descending"),
                axis=alt.Axis(labelLimit=LABEL_LIMIT),
            ),
            tooltip=[
                alt.Tooltip("mailing_name:N", title=say("Mailing", "Mailing")),
                alt.Tooltip("sent_local:T", title=say("Verzonden", "Sent"), format=TIME_FORMAT),
                alt.Tooltip("revenue:Q", title=say("Omzet", "Revenue"), format="$,.2f"),
                alt.Tooltip("conversion_click_count:Q", title=say("Conversies", "Conversions"), format=",d"),
                alt.Tooltip("carts_paid_count:Q", title=say("Winkelwagens betaald", "Carts paid"), format=",d"),
            ],
        )
        .properties(height=alt.Step(22)),
    )


def every_mailing(per_mailing: pd.DataFrame) -> None:
    st.subheader(say("Alle mailings, met Spotlers eigen cijfers ernaast", "Every mailing, with Spotler's own figures"))
    st.caption(
        say(
            "Spotlers kolommen komen uit zijn statistiek-API (laatste ophaalmoment); het verschil is het onze min "
            "dat van Spotler. Een mailing van de laatste dagen loopt nog: zijn cijfers groeien nog.",
            "Spotler's columns come from its statistics API (latest fetch); the difference is ours minus "
            "Spotler's. A mailing sent in the last days is still settling: its figures still grow.",
        )
    )
    table(
        per_mailing,
        {
            "mailing_name": Column(say("Mailing", "Mailing")),
            "platform": Column(say("Platform", "Platform")),
            "type": Column(say("Soort", "Type")),
            "sent_at": Column(say("Verzonden op", "Sent at"), "time"),
            "sent_count": Column(say("Verzonden", "Sent"), "count"),
            "delivered_count": Column(say("Afgeleverd", "Delivered"), "count"),
            "open_rate": Column(say("Openratio (ruw)", "Open rate (raw)"), "percent"),
            "human_open_rate": Column(say("Openratio (mensen)", "Open rate (people)"), "percent"),
            "click_rate": Column(say("Klikratio (ruw)", "Click rate (raw)"), "percent"),
            "human_click_rate": Column(say("Klikratio (mensen)", "Click rate (people)"), "percent"),
            "click_to_open_rate": Column(say("Click-to-open", "Click-to-open"), "percent"),
            "bounce_rate": Column(say("Bounceratio", "Bounce rate"), "percent2"),
            "unsubscribe_rate": Column(say("Afmeldratio", "Unsubscribe rate"), "percent2"),
            "complaint_rate": Column(say("Klachtratio", "Complaint rate"), "percent2"),
            "revenue": Column(say("Omzet", "Revenue"), "euros"),
            "conversion_click_count": Column(say("Conversies", "Conversions"), "count"),
            "carts_created_count": Column(say("Winkelwagens aangemaakt", "Carts created"), "count"),
            "carts_paid_count": Column(say("Winkelwagens betaald", "Carts paid"), "count"),
            "unique_open_count": Column(say("Unieke opens", "Unique opens"), "count"),
            "api_unique_open_count": Column(say("Opens (Spotler)", "Opens (Spotler)"), "count"),
            "unique_open_count_difference": Column(say("Verschil opens", "Opens difference"), "count"),
            "unique_click_count": Column(say("Unieke kliks", "Unique clicks"), "count"),
            "api_unique_click_count": Column(say("Kliks (Spotler)", "Clicks (Spotler)"), "count"),
            "unique_click_count_difference": Column(say("Verschil kliks", "Clicks difference"), "count"),
            "is_settling": Column(say("Loopt nog", "Settling"), "yes_no"),
        },
    )
