"""Settling mailings: where the figures of a mailing still coming in will end up."""

from __future__ import annotations

import altair as alt
import streamlit as st

from mail_warehouse.dashboard.data import Published
from mail_warehouse.dashboard.views.common import (
    LABEL_LIMIT,
    TIME_FORMAT,
    Column,
    age,
    draw,
    local,
    metrics,
    num,
    pct,
    platform_name,
    say,
    show_query,
    table,
    when,
)

PROJECTIONS = """
select mailing_key, mailing_name, source_system, sent_at, observed_until, hours_since_send, delivered_count,
       open_rate, projected_open_rate, projected_open_rate_low, projected_open_rate_high,
       click_rate, projected_click_rate, projected_click_rate_low, projected_click_rate_high,
       reference_mailing_count
from marts.mailing_rate_projections
order by sent_at desc, mailing_key"""


def projections(db: Published) -> None:
    st.title(say("Waar komen onze lopende mailings uit?", "Where will our settling mailings end up?"))
    if not db.has_table("marts", "mailing_rate_projections"):
        st.info(
            say(
                "Deze kopie heeft nog geen verwachtingen; de volgende `warehouse build` en `warehouse publish` "
                "voegen ze toe.",
                "This copy has no projections yet; the next `warehouse build` and `warehouse publish` add them.",
            )
        )
        return
    projected = db.frame(PROJECTIONS)
    if projected.empty:
        st.metric(say("Lopende mailings", "Settling mailings"), num(0))
        st.info(say("Er loopt nu geen mailing.", "No mailing is settling right now."))
        return
    projected["platform"] = projected.source_system.map(platform_name)
    projected["age"] = projected.sent_at.map(age)
    newest = projected.iloc[0]
    st.caption(
        say(
            f"Nieuwste: **{newest.mailing_name}** ({newest.platform}), verzonden {when(newest.sent_at)}, "
            f"{newest.age}; gemeten tot {when(newest.observed_until)}, verwacht uit "
            f"{num(newest.reference_mailing_count)} eerdere mailings die uitgelopen zijn.",
            f"Newest: **{newest.mailing_name}** ({newest.platform}), sent {when(newest.sent_at)}, {newest.age}; "
            f"measured until {when(newest.observed_until)}, projected from {num(newest.reference_mailing_count)} "
            "earlier settled mailings.",
        )
    )
    metrics(
        [
            (
                say("Openratio tot nu", "Open rate so far"),
                pct(newest.open_rate),
                say("unieke opens / afgeleverd", "unique opens / delivered"),
            ),
            (
                say("Verwachte openratio", "Projected open rate"),
                pct(newest.projected_open_rate),
                say(
                    "waar de unieke openratio uitkomt: de ratio tot nu × hoe eerdere mailings na dezelfde leeftijd "
                    "nog groeiden",
                    "where the unique open rate will settle: the rate so far × how earlier mailings grew after "
                    "the same age",
                ),
            ),
            (
                say("Klikratio tot nu", "Click rate so far"),
                pct(newest.click_rate),
                say("unieke kliks / afgeleverd", "unique clicks / delivered"),
            ),
            (
                say("Verwachte klikratio", "Projected click rate"),
                pct(newest.projected_click_rate),
                say("waar de unieke klikratio uitkomt", "where the unique click rate will settle"),
            ),
        ]
    )
    st.markdown(
        say(
            "De opens en kliks van een mailing blijven weken binnenkomen. Elke eerdere mailing laat zien hoeveel "
            "zijn cijfers nog groeiden na de leeftijd die deze nu heeft; de verwachting past de mediaan van die "
            "groei toe op de ratio tot nu, en de balk loopt van het 10e tot het 90e percentiel van de eerdere "
            "mailings.",
            "A mailing's opens and clicks keep coming for weeks. Each earlier mailing says how much its figures "
            "still grew after the age this one has now; the projection applies the median of that growth to this "
            "mailing's rate so far, and the bar spans the 10th to 90th percentile of the earlier mailings.",
        )
    )
    # the platform in every label: two mailings of one name on two platforms are two rows
    labels = [f"{row.mailing_name} · {row.platform} · {row.age}" for row in projected.itertuples()]
    labels = [  # and the send time where that is not yet enough
        f"{label} · {when(sent_at)}" if labels.count(label) > 1 else label
        for label, sent_at in zip(labels, projected.sent_at, strict=True)
    ]
    rows = projected.assign(label=labels, sent_local=local(projected.sent_at))
    # one y encoding for every layer: layers that spell their axes differently each draw their own, on top of
    # each other; a step per mailing rather than a fixed height keeps one row per mailing however many settle
    mailing_row = alt.Y("label:N", title=None, sort=None, axis=alt.Axis(labelLimit=LABEL_LIMIT))
    names = {"open": say("Unieke openratio", "Unique open rate"), "click": say("Unieke klikratio", "Unique click rate")}
    for response in ("open", "click"):
        rate_axis = alt.X(
            f"projected_{response}_rate_low:Q",
            axis=alt.Axis(format="%", title=None),
            scale=alt.Scale(zero=True),  # a rate from 0: an axis starting at 18 % makes small gaps look large
        )
        tooltip = [
            alt.Tooltip("mailing_name:N", title=say("Mailing", "Mailing")),
            alt.Tooltip("platform:N", title=say("Platform", "Platform")),
            alt.Tooltip("sent_local:T", title=say("Verzonden", "Sent"), format=TIME_FORMAT),
            alt.Tooltip(f"{response}_rate:Q", title=say("Tot nu", "So far"), format=".1%"),
            alt.Tooltip(f"projected_{response}_rate:Q", title=say("Verwacht", "Projected"), format=".1%"),
            alt.Tooltip(
                f"projected_{response}_rate_low:Q", title=say("Verwacht, laag", "Projected, low"), format=".1%"
            ),
            alt.Tooltip(
                f"projected_{response}_rate_high:Q", title=say("Verwacht, hoog", "Projected, high"), format=".1%"
            ),
        ]
        bars = (
            alt.Chart(rows)
            .mark_rule(strokeWidth=8, opacity=0.35, color="#4c78a8")
            .encode(y=mailing_row, x=rate_axis, x2=f"projected_{response}_rate_high:Q", tooltip=tooltip)
        )
        expected = (
            alt.Chart(rows)
            .mark_tick(thickness=3, size=20, color="#4c78a8")
            .encode(y=mailing_row, x=f"projected_{response}_rate:Q", tooltip=tooltip)
        )
        so_far = (
            alt.Chart(rows)
            .mark_point(filled=True, size=80, color="#e45756")
            .encode(y=mailing_row, x=f"{response}_rate:Q", tooltip=tooltip)
        )
        draw(
            st,
            alt.layer(bars, expected, so_far).properties(
                title=say(
                    f"{names[response]}: tot nu (rode stip) en verwacht (blauw streepje, spreiding)",
                    f"{names[response]}: so far (red dot) and projected (blue tick, spread)",
                ),
                height=alt.Step(36),
            ),
        )
    table(
        projected,
        {
            "mailing_name": Column(say("Mailing", "Mailing")),
            "platform": Column(say("Platform", "Platform")),
            "sent_at": Column(say("Verzonden op", "Sent at"), "time"),
            "age": Column(say("Leeftijd", "Age")),
            "delivered_count": Column(say("Afgeleverd", "Delivered"), "count"),
            "open_rate": Column(say("Openratio tot nu", "Open rate so far"), "percent"),
            "projected_open_rate": Column(say("Verwachte openratio", "Projected open rate"), "percent"),
            "projected_open_rate_low": Column(say("Verwacht open, laag", "Projected open, low"), "percent"),
            "projected_open_rate_high": Column(say("Verwacht open, hoog", "Projected open, high"), "percent"),
            "click_rate": Column(say("Klikratio tot nu", "Click rate so far"), "percent"),
            "projected_click_rate": Column(say("Verwachte klikratio", "Projected click rate"), "percent"),
            "projected_click_rate_low": Column(say("Verwacht klik, laag", "Projected click, low"), "percent"),
            "projected_click_rate_high": Column(say("Verwacht klik, hoog", "Projected click, high"), "percent"),
            "observed_until": Column(say("Gemeten tot", "Measured until"), "time"),
            "reference_mailing_count": Column(say("Eerdere mailings", "Earlier mailings"), "count"),
        },
    )
    show_query(PROJECTIONS)
