"""Mailings: how are our mailings doing, over a period, per platform and type."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from mail_warehouse.dashboard.data import Published, number, percent
from mail_warehouse.dashboard.pages.common import (
    RATE_AXIS,
    colours,
    draw,
    metrics,
    show_query,
    style,
)

PLATFORMS = {"all": "All platforms", "clang": "Clang / Deployteq", "spotler": "Spotler Mail+"}
MACHINES_LINE = (
    "Machines open and click too: Apple's privacy proxy opens every mail delivered to an Apple Mail "
    "user, and corporate link scanners follow every link. Human rates count what people did "
    "themselves; the raw rates match the platforms' own screens."
)
# how each platform's mailings are drawn in the rate charts: (stroke dash, point shape)
PLATFORM_LINES = {"clang": ([1, 0], "circle"), "spotler": ([6, 3], "square")}
TEXT_MESSAGE_TYPES = {"SMS"}


MAILINGS_FILTER = """
    from marts.mailing_statistics
    where cast(sent_at as date) between $first_day and $last_day
      and ($platform = 'all' or source_system = $platform)
      and list_contains($mailing_types, mailing_type)"""

MAILINGS_HEADLINE = (
    """
select
    count(*) as mailings,
    sum(sent_count) as sent,
    sum(delivered_count) / nullif(sum(sent_count), 0) as delivery_rate,
    sum(unique_open_count) / nullif(sum(delivered_count), 0) as open_rate,
    sum(unique_click_count) / nullif(sum(delivered_count), 0) as click_rate,
    sum(unique_human_open_count) / nullif(sum(delivered_count), 0) as human_open_rate,
    sum(unique_human_click_count) / nullif(sum(delivered_count), 0) as human_click_rate,
    sum(unique_machine_open_count) / nullif(sum(unique_open_count), 0) as machine_open_share,
    sum(hard_bounce_count + soft_bounce_count) / nullif(sum(sent_count), 0) as bounce_rate,
    sum(unsubscribe_count) / nullif(sum(delivered_count), 0) as unsubscribe_rate"""
    + MAILINGS_FILTER
)

MAILINGS_PER_MAILING = (
    """
select
    mailing_name, source_system, mailing_type, sent_at, sent_count, delivered_count,
    open_rate, human_open_rate, click_rate, human_click_rate, bounce_rate, unsubscribe_rate,
    unique_open_count, unique_human_open_count, api_unique_open_count, unique_open_count_difference,
    unique_click_count, api_unique_click_count, unique_click_count_difference,
    is_settling, mailing_key"""
    + MAILINGS_FILTER
    + """
order by sent_at desc"""
)


def mailings(db: Published) -> None:
    st.title("How are our mailings doing?")
    bounds = db.frame(
        "select min(cast(sent_at as date)) as first_day, max(cast(sent_at as date)) as last_day, "
        "list(distinct mailing_type order by mailing_type) as mailing_types from marts.mailing_statistics"
    )
    first_day, last_day = bounds.first_day[0], bounds.last_day[0]
    all_types = [t for t in bounds.mailing_types[0] if t is not None] if bounds.mailing_types[0] is not None else []
    if pd.isna(first_day):
        st.info("No mailings in the published copy yet.")
        return
    period_column, platform_column = st.columns([1, 2])
    period = period_column.date_input(
        "Period (send date)", (first_day, last_day), min_value=first_day, max_value=last_day, format="DD-MM-YYYY"
    )
    platform = platform_column.radio("Platform", list(PLATFORMS), format_func=PLATFORMS.get, horizontal=True)
    # SMS has no opens or clicks: left out by default so it does not pull the e-mail rates down
    mailing_types = st.pills(
        "Mailing type", all_types, default=[t for t in all_types if t not in TEXT_MESSAGE_TYPES], selection_mode="multi"
    )
    if not isinstance(period, (tuple, list)) or len(period) != 2:
        st.info("Pick the last day of the period.")
        return
    params = {"first_day": period[0], "last_day": period[1], "platform": platform, "mailing_types": mailing_types}

    headline = db.frame(MAILINGS_HEADLINE, params).iloc[0]
    metrics(
        [
            ("Mailings", number(headline.mailings, style=style()), None),
            ("Sent", number(headline.sent, style=style()), None),
            ("Delivery rate", percent(headline.delivery_rate, style=style()), "delivered / sent"),
            ("Bounce rate", percent(headline.bounce_rate, 2, style=style()), "hard + soft bounces / sent"),
            (
                "Open rate (raw)",
                percent(headline.open_rate, style=style()),
                "unique opens / delivered, machines' opens included; a click counts as an open",
            ),
            (
                "Human open rate",
                percent(headline.human_open_rate, style=style()),
                "people who opened or clicked themselves / delivered",
            ),
            (
                "Click rate (raw)",
                percent(headline.click_rate, style=style()),
                "unique clicks / delivered, link scanners included (unsubscribe links not counted)",
            ),
            (
                "Human click rate",
                percent(headline.human_click_rate, style=style()),
                "people who clicked themselves / delivered",
            ),
            ("Unsubscribe rate", percent(headline.unsubscribe_rate, 2, style=style()), "unsubscribes / delivered"),
        ]
    )
    st.caption(
        f"{percent(headline.machine_open_share, style=style())} of the people counted as opening were only "
        f"opened for by a machine. {MACHINES_LINE}"
    )
    show_query(MAILINGS_HEADLINE, params)

    per_mailing = db.frame(MAILINGS_PER_MAILING, params)
    if per_mailing.empty:
        st.info("No mailings match these filters.")
        return
    st.subheader("Rates per mailing, over time")
    long = per_mailing.melt(
        id_vars=["mailing_name", "sent_at", "source_system", "mailing_type"],
        value_vars=[
            "open_rate",
            "human_open_rate",
            "click_rate",
            "human_click_rate",
            "bounce_rate",
            "unsubscribe_rate",
        ],
        var_name="rate",
        value_name="share",
    )
    long["rate"] = long.rate.str.replace("_rate", "").str.replace("_", " ")

    def rates_chart(title: str, *rates: str):
        return (
            alt.Chart(long[long.rate.isin(rates)])
            .mark_line(point=True)
            .encode(
                x=alt.X("sent_at:T", title="Sent"),
                y=alt.Y("share:Q", axis=RATE_AXIS),
                color=alt.Color("rate:N", title=None, scale=colours(*rates)),
                # a platform is a line style and a point shape; the legend shows the shapes, the caption the lines
                strokeDash=alt.StrokeDash(
                    "source_system:N",
                    legend=None,
                    scale=alt.Scale(domain=list(PLATFORM_LINES), range=[dash for dash, _ in PLATFORM_LINES.values()]),
                ),
                shape=alt.Shape(
                    "source_system:N",
                    title="Platform",
                    scale=alt.Scale(domain=list(PLATFORM_LINES), range=[shape for _, shape in PLATFORM_LINES.values()]),
                ),
                tooltip=[
                    "mailing_name",
                    "source_system",
                    "mailing_type",
                    alt.Tooltip("sent_at:T", format="%d-%m-%Y %H:%M"),
                    "rate",
                    alt.Tooltip("share:Q", format=".2%"),
                ],
            )
            .properties(title=title, height=280)
        )

    left, right = st.columns(2)
    draw(left, rates_chart("Opens and clicks: raw and by people", "open", "human open", "click", "human click"))
    draw(right, rates_chart("Bounces and unsubscribes", "bounce", "unsubscribe"))
    st.caption("Solid lines and dots: Clang/Deployteq mailings; dashed lines and squares: Spotler Mail+.")

    st.subheader("Every mailing, with Spotler's own figures beside ours")
    st.caption(
        "Spotler's columns come from its statistics API (latest fetch); the difference is ours minus "
        "Spotler's. A mailing sent in the last days is still settling: its figures still grow."
    )
    table = per_mailing.drop(columns=["mailing_key"])
    for rate in ["open_rate", "human_open_rate", "click_rate", "human_click_rate", "bounce_rate", "unsubscribe_rate"]:
        table[rate] = table[rate] * 100
    st.dataframe(
        table,
        hide_index=True,
        use_container_width=True,
        column_config={
            "mailing_name": "Mailing",
            "source_system": "Platform",
            "mailing_type": "Type",
            "sent_at": st.column_config.DatetimeColumn("Sent (UTC)", format="DD-MM-YYYY HH:mm"),
            "sent_count": "Sent",
            "delivered_count": "Delivered",
            "open_rate": st.column_config.NumberColumn("Open % (raw)", format="%.1f"),
            "human_open_rate": st.column_config.NumberColumn("Human open %", format="%.1f"),
            "click_rate": st.column_config.NumberColumn("Click % (raw)", format="%.1f"),
            "human_click_rate": st.column_config.NumberColumn("Human click %", format="%.1f"),
            "unique_human_open_count": "Human opens",
            "bounce_rate": st.column_config.NumberColumn("Bounce %", format="%.2f"),
            "unsubscribe_rate": st.column_config.NumberColumn("Unsub. %", format="%.2f"),
            "unique_open_count": "Unique opens",
            "api_unique_open_count": "Opens (Spotler)",
            "unique_open_count_difference": "Opens diff.",
            "unique_click_count": "Unique clicks",
            "api_unique_click_count": "Clicks (Spotler)",
            "unique_click_count_difference": "Clicks diff.",
            "is_settling": "Settling",
        },
    )
    show_query(MAILINGS_PER_MAILING, params)
