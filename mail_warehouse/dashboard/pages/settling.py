"""Settling mailings: where the figures of a mailing still coming in will end up."""

from __future__ import annotations

import altair as alt
import streamlit as st

from mail_warehouse.dashboard.data import Published, percent
from mail_warehouse.dashboard.pages.common import (
    LABEL_LIMIT,
    RATE_AXIS,
    draw,
    metrics,
    show_query,
    style,
)

PROJECTIONS = """
select mailing_key, mailing_name, source_system, sent_at, hours_since_send, delivered_count,
       open_rate, projected_open_rate, projected_open_rate_low, projected_open_rate_high,
       click_rate, projected_click_rate, projected_click_rate_low, projected_click_rate_high,
       reference_mailing_count
from marts.mailing_rate_projections
order by sent_at desc"""


def projections(db: Published) -> None:
    st.title("Where will our settling mailings end up?")
    if not db.has_table("marts", "mailing_rate_projections"):
        st.info("This copy has no projections yet; the next `warehouse build` and `warehouse publish` add them.")
        return
    projected = db.frame(PROJECTIONS)
    if projected.empty:
        st.info("No mailing is settling right now.")
        return
    newest = projected.iloc[0]
    st.caption(
        f"Newest: **{newest.mailing_name}** ({newest.source_system}), {newest.hours_since_send} hours after "
        f"its send, projected from {newest.reference_mailing_count} earlier settled mailings."
    )
    metrics(
        [
            ("Open rate so far", percent(newest.open_rate, style=style()), None),
            (
                "Projected open rate",
                percent(newest.projected_open_rate, style=style()),
                "where the unique open rate will settle: "
                "the rate so far × how earlier mailings grew after the same age",
            ),
            ("Click rate so far", percent(newest.click_rate, style=style()), None),
            (
                "Projected click rate",
                percent(newest.projected_click_rate, style=style()),
                "where the unique click rate will settle",
            ),
        ]
    )
    st.markdown(
        "A mailing's opens and clicks keep coming for weeks. Each earlier mailing says how much its "
        "figures still grew after the age this one has now; the projection applies the median of "
        "that growth to this mailing's rate so far, and the bar spans the 10th to 90th percentile of "
        "the earlier mailings."
    )
    rows = projected.assign(label=projected.mailing_name + " · " + projected.hours_since_send.astype(str) + " h")
    # one y encoding for every layer: layers that spell their axes differently each draw their own, on top of
    # each other; a step per mailing rather than a fixed height keeps one row per mailing however many settle
    mailing_row = alt.Y("label:N", title=None, sort=None, axis=alt.Axis(labelLimit=LABEL_LIMIT))
    for response in ("open", "click"):
        bars = (
            alt.Chart(rows)
            .mark_rule(strokeWidth=8, opacity=0.35, color="#4c78a8")
            .encode(
                y=mailing_row,
                x=alt.X(f"projected_{response}_rate_low:Q", axis=RATE_AXIS, scale=alt.Scale(zero=False)),
                x2=f"projected_{response}_rate_high:Q",
            )
        )
        expected = (
            alt.Chart(rows)
            .mark_tick(thickness=3, size=20, color="#4c78a8")
            .encode(
                y=mailing_row,
                x=f"projected_{response}_rate:Q",
                tooltip=[
                    "mailing_name",
                    "hours_since_send",
                    alt.Tooltip(f"projected_{response}_rate:Q", format=".1%"),
                    alt.Tooltip(f"projected_{response}_rate_low:Q", format=".1%"),
                    alt.Tooltip(f"projected_{response}_rate_high:Q", format=".1%"),
                ],
            )
        )
        so_far = (
            alt.Chart(rows)
            .mark_point(filled=True, size=80, color="#e45756")
            .encode(
                y=mailing_row,
                x=f"{response}_rate:Q",
                tooltip=["mailing_name", alt.Tooltip(f"{response}_rate:Q", format=".1%")],
            )
        )
        draw(
            st,
            alt.layer(bars, expected, so_far).properties(
                title=f"Unique {response} rate: so far (red dot) and projected (blue tick, spread)", height=alt.Step(36)
            ),
        )
    table = projected.drop(columns=["mailing_key"]).copy()
    for column in [c for c in table.columns if c.endswith("_rate") or "_rate_" in c]:
        table[column] = table[column] * 100
    st.dataframe(
        table,
        hide_index=True,
        use_container_width=True,
        column_config={
            "mailing_name": "Mailing",
            "source_system": "Platform",
            "sent_at": st.column_config.DatetimeColumn("Sent (UTC)", format="DD-MM-YYYY HH:mm"),
            "hours_since_send": "Hours since send",
            "delivered_count": "Delivered",
            **{
                c: st.column_config.NumberColumn(c.replace("_", " ").replace("rate", "%"), format="%.1f")
                for c in table.columns
                if c.endswith("_rate") or "_rate_" in c
            },
            "reference_mailing_count": "Earlier mailings",
        },
    )
    show_query(PROJECTIONS)
