"""Segments and exports: what goes to the mail platform."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from mail_warehouse.dashboard.data import Published, number
from mail_warehouse.dashboard.pages.common import (
    draw,
    metrics,
    show_query,
    style,
)

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
