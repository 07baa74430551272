"""One page per question a marketer asks; each shows the query its numbers come from.

Headline numbers are `st.metric`s computed by one SQL query on the marts, so anyone can check them
against the same SQL in their own DuckDB client.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from mail_warehouse.dashboard.data import NUMBER_FORMATS, Published, number, percent

PLATFORMS = {"all": "All platforms", "clang": "Clang / Deployteq", "spotler": "Spotler Mail+"}
RATE_AXIS = alt.Axis(format="%", title=None)
# One colour per kind of response on every page: opens blue, clicks orange, bounces red, unsubscribes grey.
# A person's own opens and clicks in the darker shade of the same colour.
COLOURS = {
    "open": "#9ecae9",
    "click": "#ffbf79",
    "human open": "#4c78a8",
    "human click": "#f58518",
    "bounce": "#e45756",
    "unsubscribe": "#79706e",
    "unique opens": "#4c78a8",
    "unique clicks": "#f58518",
}
MACHINES_LINE = (
    "Machines open and click too: Apple's privacy proxy opens every mail delivered to an Apple Mail "
    "user, and corporate link scanners follow every link. Human rates count what people did "
    "themselves; the raw rates match the platforms' own screens."
)


def colours(*names: str) -> alt.Scale:
    """The colour scale of a chart that shows these responses (its legend lists only them)."""
    return alt.Scale(domain=list(names), range=[COLOURS[name] for name in names])


LABEL_LIMIT = 320
# how each platform's mailings are drawn in the rate charts: (stroke dash, point shape)
PLATFORM_LINES = {"clang": ([1, 0], "circle"), "spotler": ([6, 3], "square")}
TEXT_MESSAGE_TYPES = {"SMS"}


def style() -> str:
    return st.session_state.get("number_format", "nl")


def draw(target, chart) -> None:
    """A chart whose axes and tooltips write numbers as the numbers above them (Vega-Lite's own locale)."""
    marks = NUMBER_FORMATS[style()]
    locale = {
        "number": {
            "decimal": marks["decimal"],
            "thousands": marks["thousands"],
            "grouping": [3],
            "currency": ["€\u00a0", ""],
        }
    }
    target.altair_chart(chart.configure(locale=locale))


def show_query(sql: str, params: dict | None = None) -> None:
    with st.expander("Query"):
        st.code(sql.strip(), language="sql")
        if params:
            st.caption("Parameters: " + ", ".join(f"${k} = {v!r}" for k, v in params.items()))


def metrics(values: list[tuple[str, str, str | None]], per_row: int = 4) -> None:
    """Headline numbers, at most four a row so that no label is cut off."""
    for start in range(0, len(values), per_row):
        for column, (label, value, help_text) in zip(
            st.columns(per_row), values[start : start + per_row], strict=False
        ):
            column.metric(label, value, help=help_text)


# --- Mailings ------------------------------------------------------------------------------------------

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


# --- One mailing ---------------------------------------------------------------------------------------

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


# --- Contacts ------------------------------------------------------------------------------------------

CONTACTS_HEADLINE = """
select
    count(*) as contacts,
    count(*) filter (where is_mailable) as mailable,
    count(*) filter (where is_opted_in) as opted_in,
    count(*) filter (where is_shared_email) as shared_addresses,
    count(*) filter (where is_hard_bounced) as hard_bounced,
    count(*) filter (where engagement_status = 'active') as active
from marts.contacts"""

ENGAGEMENT = """
select replace(engagement_status, '_', ' ') as engagement_status, count(*) as contacts
from marts.contacts
group by all
order by contacts desc"""

NOT_MAILABLE = """
select replace(not_mailable_reason, '_', ' ') as reason, count(*) as contacts
from marts.contacts
where not is_mailable
group by all
order by contacts desc"""

GROWTH = """
with first_mails as (
    select date_trunc('month', first_sent_at) as month, count(*) as new_contacts
    from marts.contacts
    where first_sent_at is not null
    group by all
)
select month, new_contacts, sum(new_contacts) over (order by month) as contacts_mailed
from first_mails
order by month"""

BOUNCES = """
select date_trunc('month', sent_at) as month, sum(hard_bounce_count) as hard, sum(soft_bounce_count) as soft
from marts.mailing_statistics
group by all
order by month"""

SHARED = """
select email, directo_customer_count as customers, directo_customer_codes as customer_codes, is_mailable
from marts.contacts
where is_shared_email
order by directo_customer_count desc, email
limit 200"""


def contacts(db: Published) -> None:
    st.title("Who can we mail?")
    if "is_mailable" not in db.columns("marts", "contacts"):
        st.warning(
            "This copy was published before contacts said who is mailable: run `warehouse build` and "
            "`warehouse publish` again."
        )
        return
    headline = db.frame(CONTACTS_HEADLINE).iloc[0]
    metrics(
        [
            ("Contacts", number(headline.contacts, style=style()), "unique normalised e-mail addresses"),
            (
                "Mailable",
                number(headline.mailable, style=style()),
                "opted in and not hard-bounced, complained, unsubscribed, closed or deleted in Directo",
            ),
            ("Opted in", number(headline.opted_in, style=style()), None),
            ("Active", number(headline.active, style=style()), "opened or clicked in the engagement window"),
            ("Hard bounced", number(headline.hard_bounced, style=style()), None),
            (
                "Shared addresses",
                number(headline.shared_addresses, style=style()),
                "addresses several Directo customers share",
            ),
        ]
    )
    show_query(CONTACTS_HEADLINE)

    left, right = st.columns(2)
    with left:
        st.subheader("Engagement")
        engagement = db.frame(ENGAGEMENT)
        draw(
            st,
            alt.Chart(engagement)
            .mark_bar()
            .encode(
                x=alt.X("contacts:Q", title="Contacts"),
                y=alt.Y("engagement_status:N", sort="-x", title=None),
                tooltip=["engagement_status", "contacts"],
            )
            .properties(height=200),
        )
        show_query(ENGAGEMENT)
    with right:
        st.subheader("Why not mailable")
        reasons = db.frame(NOT_MAILABLE)
        draw(
            st,
            alt.Chart(reasons)
            .mark_bar(color="#c44e52")
            .encode(
                x=alt.X("contacts:Q", title="Contacts"),
                y=alt.Y("reason:N", sort="-x", title=None),
                tooltip=["reason", "contacts"],
            )
            .properties(height=200),
        )
        st.caption(
            "The first reason that applies, in this order: hard bounced, complained, unsubscribed, "
            "closed in Directo, deleted in Directo, not opted in."
        )
        show_query(NOT_MAILABLE)

    left, right = st.columns(2)
    with left:
        st.subheader("Growth: contacts mailed")
        growth = db.frame(GROWTH)
        bars = (
            alt.Chart(growth)
            .mark_bar(opacity=0.5)
            .encode(
                x=alt.X("yearmonth(month):T", title="Month of the first mail"), y=alt.Y("new_contacts:Q", title="New")
            )
        )
        line = (
            alt.Chart(growth)
            .mark_line(point=True)
            .encode(x="yearmonth(month):T", y=alt.Y("contacts_mailed:Q", title="Mailed so far"))
        )
        draw(st, alt.layer(bars, line).resolve_scale(y="independent").properties(height=240))
        show_query(GROWTH)
    with right:
        st.subheader("Bounces per month")
        bounces = db.frame(BOUNCES).melt(id_vars=["month"], var_name="bounce", value_name="count")
        draw(
            st,
            alt.Chart(bounces)
            .mark_bar()
            .encode(
                x=alt.X("yearmonth(month):T", title="Month sent"),
                y=alt.Y("count:Q", title="Bounces"),
                color=alt.Color("bounce:N", title=None),
            )
            .properties(height=240),
        )
        show_query(BOUNCES)

    st.subheader("Shared addresses")
    st.dataframe(db.frame(SHARED), hide_index=True)
    show_query(SHARED)


# --- Segments and exports ------------------------------------------------------------------------------

CSV_TRIGGER_HISTORY = """
select uploaded_at as sent_at, segment, 'Deployteq CSV trigger' as target, file_name as sent_as,
       rows as contacts_sent, cast(null as bigint) as already_in_campaign, cast(null as bigint) as refused,
       excluded_by_consent, status
from exports.csv_trigger_log"""

SPOTLER_HISTORY = """
select coalesce(finished_at, recorded_at) as sent_at, segment,
       case target_kind when 'campaign_trigger' then 'Spotler campaign trigger' else 'Spotler audience' end as target,
       target as sent_as,
       case target_kind when 'campaign_trigger' then triggered else added end as contacts_sent,
       already_in_campaign, refused, excluded_by_consent,
       case status when 'intent' then 'interrupted (resumed by the next export)' else status end as status
from exports.spotler_export_log"""

HISTORY_COLUMNS = [
    "sent_at",
    "segment",
    "target",
    "sent_as",
    "contacts_sent",
    "already_in_campaign",
    "refused",
    "excluded_by_consent",
    "status",
]


def export_history_sql(db: Published) -> str | None:
    """Every export to every target (Deployteq CSV files, Spotler triggers and audiences), newest first."""
    parts = [
        sql
        for table, sql in (("csv_trigger_log", CSV_TRIGGER_HISTORY), ("spotler_export_log", SPOTLER_HISTORY))
        if db.has_table("exports", table)
    ]
    return " union all ".join(parts) + "\norder by sent_at desc" if parts else None


def segments_and_exports(db: Published) -> None:
    st.title("What goes to the mail platform?")
    segments = db.frame(
        "select table_name from information_schema.tables where table_schema = 'segments' order by 1"
    ).table_name.tolist()
    current_sql = (
        " union all ".join(
            f"select '{name}' as segment, count(*) as contacts from segments.\"{name}\"" for name in segments
        )
        or "select null as segment, 0 as contacts where false"
    )
    current = db.frame(current_sql)
    history_sql = export_history_sql(db)
    log = db.frame(history_sql) if history_sql else pd.DataFrame(columns=HISTORY_COLUMNS)
    metrics(
        [
            ("Segments", number(len(segments), style=style()), None),
            ("In segments now", number(current.contacts.sum(), style=style()), "contacts, summed over the segments"),
            ("Exports", number(len(log), style=style()), "CSV files to Deployteq and Spotler trigger or audience runs"),
            (
                "Contacts sent",
                number(log.contacts_sent.fillna(0).sum(), style=style()),
                "in CSV files, Spotler campaigns started and audience members added",
            ),
            (
                "Failed or refused",
                number(int((log.status == "failed").sum() + log.refused.fillna(0).sum()), style=style()),
                "CSV files Deployteq rejected, plus contacts Spotler refused",
            ),
            (
                "Left out (consent)",
                number(log.excluded_by_consent.fillna(0).sum(), style=style()),
                "contacts a segment selected but the export did not send: not mailable (or no contact on the platform)",
            ),
        ]
    )
    show_query(current_sql)

    st.subheader("Segment size over time")
    published_at = pd.Timestamp(db.path.stat().st_mtime, unit="s", tz="UTC")
    sizes = current.assign(at=published_at, measured="now")
    if not log.empty:
        at_exports = log.assign(
            contacts=log.contacts_sent.fillna(0)
            + log.already_in_campaign.fillna(0)
            + log.refused.fillna(0)
            + log.excluded_by_consent.fillna(0),
            measured="at an export",
            at=log.sent_at,
        )
        at_exports = at_exports[log.target != "Spotler audience"][["segment", "at", "contacts", "measured"]]
        sizes = pd.concat([at_exports, sizes], ignore_index=True)
    draw(
        st,
        alt.Chart(sizes)
        .mark_line(point=True)
        .encode(
            x=alt.X("at:T", title=None, axis=alt.Axis(format="%d-%m-%Y %H:%M", tickCount=4, labelAngle=0)),
            y=alt.Y("contacts:Q", title="Contacts"),
            color=alt.Color("segment:N"),
            shape=alt.Shape("measured:N", title=None),
            tooltip=["segment", alt.Tooltip("at:T", format="%d-%m-%Y %H:%M"), "contacts", "measured"],
        )
        .properties(height=260),
    )
    st.caption(
        "Each export records the segment's size (sent plus left out by the consent guard); the last "
        "point is the segment as published now. A segment shrinks after an export while the contacts it "
        "sent wait out the segment's cooldown."
    )

    st.subheader("Every export, per target")
    if log.empty:
        st.info(
            "Nothing exported yet: `warehouse export` sends the segments to the targets they declare "
            "(a Deployteq CSV trigger, a Spotler campaign trigger or audience)."
        )
    else:
        st.caption(
            "Deployteq: uploaded = in its Upload folder; done / failed = processed or rejected (`warehouse "
            "export --status` checks). Spotler: contacts whose campaign was started, who were in it already, "
            "or whom Spotler refused (not found, not in the selection)."
        )
        st.dataframe(
            log,
            hide_index=True,
            use_container_width=True,
            column_config={
                "sent_at": st.column_config.DatetimeColumn("Sent (UTC)", format="DD-MM-YYYY HH:mm"),
                "segment": "Segment",
                "target": "Target",
                "sent_as": "File, trigger or audience",
                "contacts_sent": "Contacts sent",
                "already_in_campaign": "Already in campaign",
                "refused": "Refused",
                "excluded_by_consent": "Left out",
                "status": "Status",
            },
        )
    if history_sql:
        show_query(history_sql)


# --- Settling mailings: where they will end up ---------------------------------------------------------

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
