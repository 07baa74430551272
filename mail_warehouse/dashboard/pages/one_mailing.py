"""One mailing: how did this mailing do, its response curve and its links."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from mail_warehouse.dashboard.data import Published, number, percent
from mail_warehouse.dashboard.pages.common import (
    LABEL_LIMIT,
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


ONE_MAILING = "select * from marts.mailing_statistics where mailing_key = $mailing_key"

RESPONSE_CURVE = """
with first_responses as (
    select 'unique opens' as response,
           ceil(date_diff('second', sent_at, first_opened_at) / 3600.0) as hour
    from marts.contact_mail_history
    where mailing_key = $mailing_key and first_opened_at is not null
    union all
    select 'unique clicks', ceil(date_diff('second', sent_at, first_clicked_at) / 3600.0)
    from marts.contact_mail_history
    where mailing_key = $mailing_key and first_clicked_at is not null
),
per_hour as (
    select response, greatest(hour, 0) as hour, count(*) as responses from first_responses group by all
)
select response, hour, sum(responses) over (partition by response order by hour) as cumulative
from per_hour
order by response, hour"""

SNAPSHOTS = """
select hours_since_send as hour, open_count as "unique opens", click_count as "unique clicks", fetched_at
from marts.mailing_statistics_snapshots
where mailing_key = $mailing_key
order by fetched_at"""

LINKS = """
select coalesce(link_name, url) as link, url, link_type, unique_human_click_count, unique_click_count,
       total_click_count
from marts.mailing_link_clicks
where mailing_key = $mailing_key
order by unique_human_click_count desc, unique_click_count desc, total_click_count desc"""


def one_mailing(db: Published) -> None:
    st.title("How did this mailing do?")
    choices = db.frame(
        "select mailing_key, mailing_name, source_system, sent_at from marts.mailing_statistics "
        "where sent_count > 0 order by sent_at desc"
    )
    if choices.empty:
        st.info("No mailing with sends in the published copy yet.")
        return
    labels = {  # mailing_key is a varchar that is never null
        str(row.mailing_key): f"{row.mailing_name} · {row.source_system} · {row.sent_at:%d-%m-%Y}"
        for row in choices.itertuples()
    }
    keys = list(labels)
    wanted = st.query_params.get("mailing")
    chosen = st.selectbox(
        "Mailing", keys, index=keys.index(wanted) if wanted in labels else 0, format_func=lambda key: labels[key]
    )
    st.query_params["mailing"] = chosen
    params = {"mailing_key": chosen}
    stats = db.frame(ONE_MAILING, params).iloc[0]
    metrics(
        [
            ("Sent", number(stats.sent_count, style=style()), None),
            ("Delivered", number(stats.delivered_count, style=style()), None),
            (
                "Open rate (raw)",
                percent(stats.open_rate, style=style()),
                f"{number(stats.unique_open_count, style=style())} unique opens / delivered, machines included",
            ),
            (
                "Human open rate",
                percent(stats.human_open_rate, style=style()),
                f"{number(stats.unique_human_open_count, style=style())} people who opened or clicked themselves"
                " / delivered",
            ),
            (
                "Click rate (raw)",
                percent(stats.click_rate, style=style()),
                f"{number(stats.unique_click_count, style=style())} unique clicks / delivered, link scanners included",
            ),
            (
                "Human click rate",
                percent(stats.human_click_rate, style=style()),
                f"{number(stats.unique_human_click_count, style=style())} people who clicked themselves / delivered",
            ),
            ("Bounces", number(stats.hard_bounce_count + stats.soft_bounce_count, style=style()), "hard + soft"),
            ("Unsubscribes", number(stats.unsubscribe_count, style=style()), None),
        ]
    )
    st.caption(
        f"A machine alone opened for {number(stats.unique_machine_open_count, style=style())} people and "
        f"clicked for {number(stats.unique_machine_click_count, style=style())}. {MACHINES_LINE}"
    )
    if stats.is_settling:
        st.caption(
            f"Sent {stats.days_since_send} days ago: still settling, its figures still grow "
            "(see Settling mailings for where they will end up)."
        )
    show_query(ONE_MAILING, params)

    st.subheader("Response curve")
    horizon = st.select_slider("Hours after the send", [24, 72, 168, 336, 720], value=168)
    curve = db.frame(RESPONSE_CURVE, params)
    curve = curve[curve.hour <= horizon]
    # each line runs on to the mailing's age (or the chart's edge): no new responses is a flat line, not an end
    age = min(horizon, int(stats.days_since_send or 0) * 24)
    ends = curve.groupby("response", as_index=False).agg(hour=("hour", "max"), cumulative=("cumulative", "max"))
    curve = pd.concat([curve, ends[ends.hour < age].assign(hour=age)], ignore_index=True)
    snapshots = db.frame(SNAPSHOTS, params)
    snapshots = snapshots[snapshots.hour <= horizon]
    if curve.empty:
        st.info("No opens or clicks yet.")
    else:
        chart = (
            alt.Chart(curve)
            .mark_line(interpolate="step-after")
            .encode(
                x=alt.X("hour:Q", title="Hours since the send", scale=alt.Scale(domain=[0, horizon], nice=False)),
                y=alt.Y("cumulative:Q", title="Contacts (cumulative)"),
                color=alt.Color("response:N", title="From our events", scale=colours("unique opens", "unique clicks")),
            )
        )
        if not snapshots.empty:
            points = snapshots.melt(
                id_vars=["hour"],
                value_vars=["unique opens", "unique clicks"],
                var_name="response",
                value_name="cumulative",
            )
            chart += (
                alt.Chart(points)
                .mark_point(filled=True, size=70, shape="diamond")
                .encode(
                    x="hour:Q",
                    y="cumulative:Q",
                    color=alt.Color("response:N", scale=colours("unique opens", "unique clicks")),
                    tooltip=["response", "hour", "cumulative"],
                )
            )
        draw(st, chart.properties(height=300))
        st.caption(
            "Lines: contacts who opened (or clicked) and who clicked, by hours since their send, from the "
            "events. Diamonds: Spotler's own statistics at each fetch while the mailing settled."
            if not snapshots.empty
            else "Contacts who opened (or clicked) and who clicked, by hours since their send, from the events."
        )
    show_query(RESPONSE_CURVE, params)
    if not snapshots.empty:
        show_query(SNAPSHOTS, params)

    st.subheader("Links")
    links = db.frame(LINKS, params)
    if links.empty:
        st.info("No clicks on any link.")
    else:
        left, right = st.columns([3, 2])
        draw(
            left,
            alt.Chart(links.head(15))
            .mark_bar()
            .encode(
                x=alt.X("unique_human_click_count:Q", title="People who clicked themselves"),
                y=alt.Y("link:N", sort="-x", title=None, axis=alt.Axis(labelLimit=LABEL_LIMIT)),
                color=alt.Color("link_type:N", title="Link type"),
                tooltip=["url", "link_type", "unique_human_click_count", "unique_click_count", "total_click_count"],
            )
            .properties(height=300),
        )
        right.dataframe(
            links,
            hide_index=True,
            use_container_width=True,
            column_config={
                "link": "Link",
                "url": st.column_config.LinkColumn("Url"),
                "link_type": "Type",
                "unique_human_click_count": "People who clicked",
                "unique_click_count": "Clickers (raw)",
                "total_click_count": "Clicks (raw)",
            },
        )
    show_query(LINKS, params)
