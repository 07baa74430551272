"""Segments and exports: what goes to the mail platforms. Each delivery per target (a Deployteq CSV trigger file,
a Spotler campaign trigger or audience) with its outcome, and per segment its rules in words, its size over time,
its members and a CSV of them.

A segment's rules are its dbt model's description: from dbt's manifest of the build (`meta.description_nl` in
Dutch when the segment's yml has one), else from the copy's table comment (when the build persists the docs and
publish copies them). Its sizes over time are what each export measured (the contacts it sent plus those the
consent guard left out: the segment's size at that moment), and the published segment now.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from mail_warehouse.dashboard.data import Published
from mail_warehouse.dashboard.views.common import (
    DAY_FORMAT,
    TIME_FORMAT,
    Column,
    csv_download,
    draw,
    language,
    local,
    metrics,
    name_of,
    num,
    say,
    show_query,
    table,
    when,
)

PREVIEW_ROWS = 20
ROW_HEIGHT = 35  # st.dataframe's row, in pixels

# --- the deliveries ------------------------------------------------------------------------------------------

# one row per delivery: a CSV file to Deployteq, an export of a segment to a Spotler trigger or audience
CSV_DELIVERIES = """
    select coalesce(uploaded_at, recorded_at) as delivered_at, segment, 'csv_trigger' as target_kind,
           file_name as target, rows as contacts,
           -- a file counts as sent once it reached Deployteq and was not rejected
           case when status in ('uploaded', 'done') then rows else 0 end as sent,
           cast(null as bigint) as already_in_campaign, cast(null as bigint) as refused,
           excluded_by_consent, status
    from exports.csv_trigger_log"""

SPOTLER_DELIVERIES = """
    select coalesce(finished_at, recorded_at) as delivered_at, segment, target_kind, target, contacts,
           -- campaigns started (a trigger), members added (an audience)
           coalesce(triggered, 0) + coalesce(added, 0) as sent,
           already_in_campaign, refused, excluded_by_consent, status
    from exports.spotler_export_log"""

DELIVERY_COLUMNS = [
    "delivered_at",
    "segment",
    "target_kind",
    "target",
    "contacts",
    "sent",
    "already_in_campaign",
    "refused",
    "excluded_by_consent",
    "status",
]
UNFINISHED_OR_FAILED = ("intent", "failed", "not-sent")


def deliveries_sql(db: Published) -> str | None:
    """Every delivery to every target the copy has a log of, newest first; None when it has none."""
    parts = [
        sql
        for table_name, sql in (("csv_trigger_log", CSV_DELIVERIES), ("spotler_export_log", SPOTLER_DELIVERIES))
        if db.has_table("exports", table_name)
    ]
    return "\n    union all".join(parts) if parts else None


def headline_sql(deliveries: str) -> str:
    return f"""
with deliveries as ({deliveries}
)
select count(*) as deliveries,
       coalesce(sum(sent), 0) as sent,
       count(*) filter (where status in {UNFINISHED_OR_FAILED}) as failed_or_interrupted,
       coalesce(sum(refused), 0) as refused,
       coalesce(sum(excluded_by_consent), 0) as left_out,
       max(delivered_at) as last_delivered_at
from deliveries"""


def target_kind_name(kind) -> str:
    """A delivery's target in words, as the export logs (csv_trigger, campaign_trigger, audience) and the sends per
    contact (deployteq_csv_trigger, spotler_campaign_trigger) name it."""
    csv, campaign = (
        say("Deployteq CSV-trigger", "Deployteq CSV trigger"),
        say("Spotler-campagnetrigger", "Spotler campaign trigger"),
    )
    names = {
        "csv_trigger": csv,
        "deployteq_csv_trigger": csv,
        "campaign_trigger": campaign,
        "spotler_campaign_trigger": campaign,
        "audience": say("Spotler-doelgroep", "Spotler audience"),
    }
    return name_of(names, kind)


def outcome_name(kind, status) -> str:
    """A delivery's outcome in words: uploaded, done, failed, interrupted (the caption under the table says more)."""
    if kind == "csv_trigger":
        names = {
            "uploaded": say("geüpload", "uploaded"),
            "done": say("klaar (verwerkt)", "done (processed)"),
            "failed": say("mislukt (geweigerd)", "failed (rejected)"),
            "intent": say("onderbroken", "interrupted"),
            "not-sent": say("niet verstuurd (onderbroken)", "not sent (interrupted)"),
        }
    else:
        names = {"done": say("klaar", "done"), "intent": say("onderbroken", "interrupted")}
    return name_of(names, status)


# --- what dbt says of each segment ---------------------------------------------------------------------------


@dataclass
class SegmentDocs:
    """A segment as its dbt yml describes it."""

    description: str = ""
    meta: dict = field(default_factory=dict)

    def label(self, name: str) -> str:
        dutch = self.meta.get("label_nl")
        english = self.meta.get("label_en")
        plain = name.replace("_", " ").capitalize()
        return say(dutch or english or plain, english or plain)

    def rules(self) -> str:
        english = _in_words(" ".join(self.description.split()))
        return say(self.meta.get("description_nl") or english, english)

    def rules_in_english_only(self) -> bool:
        return bool(self.description) and not self.meta.get("description_nl")

    def targets(self) -> list[str]:
        """Where the segment goes, as its yml `meta` declares it."""
        found = []
        trigger = self.meta.get("csv_trigger") or {}
        if trigger.get("file_name"):
            file_name = re.sub(r"\{date:([^}]*)\}", lambda m: _date_pattern(m[1]), trigger["file_name"])
            found.append(
                say(
                    f"Deployteq: elke dag een CSV-trigger `{file_name}` in de Upload-map",
                    f"Deployteq: each day a CSV trigger `{file_name}` in the Upload folder",
                )
            )
        if self.meta.get("spotler_campaign_trigger"):
            found.append(
                say(
                    f"Spotler Mail+: de externe campagnetrigger `{self.meta['spotler_campaign_trigger']}`, per contact",
                    f"Spotler Mail+: the external campaign trigger `{self.meta['spotler_campaign_trigger']}`, "
                    "per contact",
                )
            )
        audience = self.meta.get("spotler_audience")
        if isinstance(audience, dict) and audience.get("external_id"):
            found.append(
                say(
                    f"Spotler Mail+: de doelgroep `{audience.get('name') or audience['external_id']}` (gespiegeld)",
                    f"Spotler Mail+: the audience `{audience.get('name') or audience['external_id']}` (mirrored)",
                )
            )
        return found


def _in_words(description: str) -> str:
    """An analyst's description for a marketer: the settings and columns it names (`reactivation_inactive_days`,
    contacts.is_mailable) as words."""
    return re.sub(r"`?\b(?:[a-z]+\.)?([a-z]+(?:_[a-z]+)+)\b`?", lambda found: found[1].replace("_", " "), description)


def _date_pattern(strftime: str) -> str:
    marks = {"%Y": say("JJJJ", "YYYY"), "%m": "MM", "%d": "DD"}
    for mark, shown in marks.items():
        strftime = strftime.replace(mark, shown)
    return strftime


def _manifest_path() -> Path:
    from mail_warehouse.build import dbt_target_path

    return dbt_target_path() / "manifest.json"


@st.cache_data(show_spinner=False)
def _manifest_segments(path: str, modified: float) -> dict[str, dict]:
    """name -> {description, meta} of every segment model in this manifest (read once per change of the file)."""
    del modified  # the cache's key: a new build writes a new manifest
    from mail_warehouse.build import project_models

    nodes = project_models(json.loads(Path(path).read_text()), "segments")
    return {
        node.get("alias") or node["name"]: {
            "description": node.get("description") or "",
            "meta": (node.get("config") or {}).get("meta") or node.get("meta") or {},
        }
        for node in nodes
    }


def segment_docs(db: Published, names: list[str]) -> dict[str, SegmentDocs]:
    """What the build's dbt manifest says of each segment, else the copy's table comment, else nothing."""
    path = _manifest_path()
    from_manifest = _manifest_segments(str(path), path.stat().st_mtime) if path.exists() else {}
    comments = dict(
        db.con.execute(
            "select table_name, comment from duckdb_tables() where schema_name = 'segments' and comment is not null"
        ).fetchall()
    )
    docs = {}
    for name in names:
        found = from_manifest.get(name) or {}
        docs[name] = SegmentDocs(found.get("description") or comments.get(name) or "", found.get("meta") or {})
    return docs


# --- a segment's members -------------------------------------------------------------------------------------

MEMBER_LABELS = {
    "email": ("E-mailadres", "E-mail address"),
    "first_name": ("Voornaam", "First name"),
    "name": ("Naam", "Name"),
    "external_customer_id": ("Klantnummer", "Customer number"),
    "last_engaged_at": ("Laatste open of klik", "Last open or click"),
    "days_inactive": ("Dagen inactief", "Days inactive"),
    "mailings_since_engagement": ("Mailings sinds laatste reactie", "Mailings since last response"),
}
HIDDEN_MEMBER_COLUMNS = {"contact_key"}  # the warehouse's own key: nothing a marketer looks up


def member_columns(frame: pd.DataFrame) -> dict[str, Column]:
    """The columns of a segment as a marketer reads them: address and name first, then why they were selected."""
    first = [c for c in ("email", "first_name", "name", "external_customer_id") if c in frame.columns]
    rest = [c for c in frame.columns if c not in first and c not in HIDDEN_MEMBER_COLUMNS]
    columns = {}
    for name in [*first, *rest]:
        dutch, english = MEMBER_LABELS.get(name, (name.replace("_", " ").capitalize(),) * 2)
        dtype = frame[name].dtype
        if pd.api.types.is_datetime64_any_dtype(dtype):
            kind = "time"
        elif pd.api.types.is_bool_dtype(dtype):
            kind = "yes_no"
        elif pd.api.types.is_integer_dtype(dtype):
            kind = "count"
        elif pd.api.types.is_float_dtype(dtype):
            kind = "decimal"
        else:
            kind = "text"
        columns[name] = Column(say(dutch, english), kind)
    return columns


def members_sql(db: Published, segment: str, limit: int | None = None) -> str:
    order = "email" if "email" in db.columns("segments", segment) else "all"
    return f'select * from segments."{segment}" order by {order}' + (f" limit {limit}" if limit else "")


def members_for_download(frame: pd.DataFrame, columns: dict[str, Column]) -> pd.DataFrame:
    """The members as the table shows them: its labels, times in Amsterdam."""
    shown = frame[list(columns)].copy()
    for name, column in columns.items():
        if column.kind == "time":
            shown[name] = local(shown[name])
    return shown.rename(columns={name: column.label for name, column in columns.items()})


def sizes_sql(db: Published) -> str | None:
    """The segment's size as each export measured it (sent plus left out), one point per export run."""
    parts = []
    if db.has_table("exports", "csv_trigger_log"):
        parts.append(
            "select coalesce(uploaded_at, recorded_at) as measured_at, rows + excluded_by_consent as members "
            "from exports.csv_trigger_log where segment = $segment"
        )
    if db.has_table("exports", "spotler_export_log"):
        parts.append(
            "select recorded_at as measured_at, contacts + excluded_by_consent as members "
            "from exports.spotler_export_log where segment = $segment and target_kind = 'campaign_trigger'"
        )
    if not parts:
        return None
    return f"""
with measured as ({" union all ".join(parts)})
-- a run sends a segment to each of its targets within seconds: one point per minute
select date_trunc('minute', measured_at) as measured_at, max(members) as members
from measured
group by 1
order by 1"""


# --- the page ------------------------------------------------------------------------------------------------


def segments_and_exports(db: Published) -> None:
    st.title(say("Wat gaat er naar de mailplatforms?", "What goes to the mail platforms?"))
    st.caption(
        say(
            "Segmenten zijn de groepen contacten die het warehouse elke dag selecteert; de export stuurt ze naar "
            "Deployteq (een CSV-bestand dat een campagne start) en Spotler Mail+ (een campagnetrigger per "
            "contact of een doelgroep). Alleen contacten die gemaild mogen worden gaan mee.",
            "Segments are the groups of contacts the warehouse selects each day; the export sends them to "
            "Deployteq (a CSV file that starts a campaign) and Spotler Mail+ (a campaign trigger per contact or an "
            "audience). Only contacts who may be mailed go.",
        )
    )
    names = db.frame(
        "select table_name from information_schema.tables where table_schema = 'segments' order by 1"
    ).table_name.tolist()
    sizes_now_sql = (
        "\nunion all ".join(
            f"select '{name}' as segment, count(*) as members from segments.\"{name}\"" for name in names
        )
        or "select null as segment, 0 as members where false"
    )
    sizes_now = db.frame(sizes_now_sql)
    delivered = deliveries_sql(db)
    if delivered:
        headline = db.frame(headline_sql(delivered)).iloc[0]
        deliveries = db.frame(f"{delivered}\n    order by delivered_at desc")
    else:
        headline = pd.Series({"deliveries": 0, "sent": 0, "failed_or_interrupted": 0, "refused": 0, "left_out": 0})
        headline["last_delivered_at"] = None
        deliveries = pd.DataFrame(columns=DELIVERY_COLUMNS)
    metrics(
        [
            (say("Segmenten", "Segments"), num(len(names)), say("in de gepubliceerde kopie", "in the published copy")),
            (
                say("Nu in segmenten", "In segments now"),
                num(sizes_now.members.sum()),
                say("contacten, opgeteld over de segmenten", "contacts, summed over the segments"),
            ),
            (
                say("Leveringen", "Deliveries"),
                num(headline["deliveries"]),
                say(
                    "CSV-bestanden naar Deployteq en exports naar een Spotler-trigger of -doelgroep",
                    "CSV files to Deployteq and exports to a Spotler trigger or audience",
                ),
            ),
            (
                say("Contacten verstuurd", "Contacts sent"),
                num(headline["sent"]),
                say(
                    "in CSV-bestanden die Deployteq bereikten (niet geweigerd), Spotler-campagnes gestart en "
                    "doelgroepleden toegevoegd",
                    "in CSV files that reached Deployteq (not rejected), Spotler campaigns started and audience "
                    "members added",
                ),
            ),
            (
                say("Mislukt of onderbroken", "Failed or interrupted"),
                num(headline["failed_or_interrupted"]),
                say(
                    "leveringen die Deployteq weigerde of die een onderbroken run achterliet",
                    "deliveries Deployteq rejected or an interrupted run left",
                ),
            ),
            (
                say("Geweigerd door Spotler", "Refused by Spotler"),
                num(headline["refused"]),
                say("contacten (onbekend, of niet in de selectie)", "contacts (unknown, or not in the selection)"),
            ),
            (
                say("Weggelaten (toestemming)", "Left out (consent)"),
                num(headline["left_out"]),
                say(
                    "contacten die een segment koos maar die niet gemaild mogen worden (of geen contact op het "
                    "platform hebben): niet verstuurd",
                    "contacts a segment chose who may not be mailed (or have no contact on the platform): not sent",
                ),
            ),
        ]
    )
    if headline["deliveries"]:
        st.caption(
            say(
                f"Laatste levering: {when(headline['last_delivered_at'])} (Nederlandse tijd).",
                f"Last delivery: {when(headline['last_delivered_at'])} (Amsterdam time).",
            )
        )
    show_query(sizes_now_sql + (f";\n{headline_sql(delivered)}" if delivered else ""))

    st.subheader(say("Leveringen per doel", "Deliveries per target"))
    if deliveries.empty:
        st.info(
            say(
                "Nog niets geëxporteerd. `warehouse run` (of `warehouse export`) stuurt elk segment naar de doelen "
                "die het noemt: een CSV-trigger naar Deployteq, een campagnetrigger of doelgroep in Spotler Mail+.",
                "Nothing exported yet. `warehouse run` (or `warehouse export`) sends each segment to the targets it "
                "names: a CSV trigger to Deployteq, a campaign trigger or audience in Spotler Mail+.",
            )
        )
    else:
        docs = segment_docs(db, sorted(set(names) | set(deliveries.segment)))
        shown = deliveries.assign(
            segment=[docs[name].label(name) for name in deliveries.segment],
            outcome=[outcome_name(k, s) for k, s in zip(deliveries.target_kind, deliveries.status, strict=True)],
            target_kind=deliveries.target_kind.map(target_kind_name),
        )
        table(
            shown,
            {
                "delivered_at": Column(say("Tijdstip", "When"), "time"),
                "segment": Column(say("Segment", "Segment")),
                "target_kind": Column(say("Doel", "Target")),
                "target": Column(say("Bestand, trigger of doelgroep", "File, trigger or audience")),
                "outcome": Column(say("Uitkomst", "Outcome")),
                "contacts": Column(say("Contacten", "Contacts"), "count"),
                "sent": Column(say("Verstuurd", "Sent"), "count"),
                "already_in_campaign": Column(say("Al in de campagne", "Already in the campaign"), "count"),
                "refused": Column(say("Geweigerd", "Refused"), "count"),
                "excluded_by_consent": Column(say("Weggelaten (toestemming)", "Left out (consent)"), "count"),
            },
        )
        st.caption(
            say(
                "Deployteq: geüpload = het bestand staat in de Upload-map; klaar of mislukt = Deployteq heeft het "
                "verwerkt of geweigerd (`warehouse export --status` kijkt dat na); onderbroken = een run stopte "
                "halverwege, de volgende export kijkt of het bestand aankwam en stuurt het anders opnieuw. Spotler: "
                "verstuurd = campagnes gestart (of doelgroepleden toegevoegd); onderbroken = de volgende export gaat "
                "verder waar deze stopte. Verstuurd telt alleen wat aankwam; weggelaten = niet verstuurd omdat het "
                "contact niet gemaild mag worden. Tijden in Nederlandse tijd.",
                "Deployteq: uploaded = the file is in the Upload folder; done or failed = Deployteq processed or "
                "rejected it (`warehouse export --status` checks); interrupted = a run stopped midway, the next "
                "export checks whether the file arrived and sends it again if not. Spotler: sent = campaigns started "
                "(or audience members added); interrupted = the next export carries on where this one stopped. Sent "
                "counts only what arrived; left out = not sent because the contact may not be mailed. Times in "
                "Amsterdam time.",
            )
        )
        show_query(f"{delivered}\n    order by delivered_at desc")

    if not names:
        st.info(
            say(
                "Er zijn nog geen segmenten gepubliceerd: een segment is een dbt-model in `models/segments/`; "
                "`warehouse run` bouwt en publiceert het.",
                "No segments published yet: a segment is a dbt model in `models/segments/`; `warehouse run` builds "
                "and publishes it.",
            )
        )
        return
    docs = segment_docs(db, names)
    st.subheader(say("Per segment", "Per segment"))
    segment = (
        st.selectbox(say("Segment", "Segment"), names, format_func=lambda name: docs[name].label(name))
        if len(names) > 1
        else names[0]
    )
    one_segment(db, segment, docs[segment], int(sizes_now.set_index("segment").members[segment]))


def one_segment(db: Published, segment: str, docs: SegmentDocs, members_now: int) -> None:
    label = docs.label(segment)
    st.markdown(f"#### {label}")
    if docs.rules():
        st.markdown(f"**{say('Wie erin komt', 'Who is in it')}:** {docs.rules()}")
        if docs.rules_in_english_only() and language() == "nl":
            st.caption("De beschrijving van het segment in het dbt-project; er is nog geen Nederlandse versie.")
    else:
        st.info(
            say(
                "Geen beschrijving gevonden: de beschrijving staat in het dbt-project (de `description` in de yml "
                "van het segment), en het dashboard vindt dbt's manifest van de laatste build niet.",
                "No description found: it is in the dbt project (the segment yml's `description`), and the "
                "dashboard cannot find dbt's manifest of the last build.",
            )
        )
    targets = docs.targets()
    if targets:
        st.markdown(f"**{say('Gaat naar', 'Goes to')}:**\n" + "\n".join(f"- {target}" for target in targets))

    st.markdown(f"##### {say('Grootte door de tijd', 'Size over time')}")
    history_sql = sizes_sql(db)
    history = (
        db.frame(history_sql, {"segment": segment})
        if history_sql
        else pd.DataFrame({"measured_at": pd.Series(dtype="datetime64[us, UTC]"), "members": []})
    )
    at_export, now = say("bij een export", "at an export"), say("nu (gepubliceerd)", "now (published)")
    sizes = pd.concat(
        [
            history.assign(measured=at_export),
            pd.DataFrame({"measured_at": [pd.Timestamp(db.published_at)], "members": [members_now], "measured": [now]}),
        ],
        ignore_index=True,
    )
    sizes["measured_at"] = local(sizes.measured_at)
    # within a few days the hours tell the points apart, over months the days do; a few points get a tick each
    span = sizes.measured_at.max() - sizes.measured_at.min()
    axis = alt.Axis(format=TIME_FORMAT if span < pd.Timedelta(days=3) else DAY_FORMAT, tickCount=5, labelAngle=0)
    moments = sorted(set(sizes.measured_at.dt.floor("min")))
    if len(moments) <= 6:
        axis = alt.Axis(
            format=axis.format,
            labelAngle=0,
            values=[
                alt.DateTime(year=t.year, month=t.month, date=t.day, hours=t.hour, minutes=t.minute) for t in moments
            ],
        )
    contacts = say("Contacten", "Contacts")
    draw(
        st,
        alt.Chart(sizes)
        .mark_line(point=alt.OverlayMarkDef(size=70))
        .encode(
            x=alt.X("measured_at:T", title=None, axis=axis),
            y=alt.Y("members:Q", title=contacts, axis=alt.Axis(format=",d", tickMinStep=1)),
            shape=alt.Shape("measured:N", title=None, legend=alt.Legend(orient="bottom")),
            tooltip=[
                alt.Tooltip("measured_at:T", title=say("Tijdstip", "When"), format=TIME_FORMAT),
                alt.Tooltip("members:Q", title=contacts, format=",d"),
                alt.Tooltip("measured:N", title=say("Gemeten", "Measured")),
            ],
        )
        .properties(height=260),
    )
    st.caption(
        say(
            "Elke export meet de grootte van het segment (verstuurd plus weggelaten om toestemming); het laatste "
            "punt is het segment zoals het nu gepubliceerd is. Na een export krimpt een segment zolang zijn "
            "contacten in de wachttijd van het segment zitten.",
            "Each export measures the segment's size (sent plus left out for consent); the last point is the segment "
            "as published now. A segment shrinks after an export while its contacts wait out the segment's cooldown.",
        )
        if not history.empty
        else say(
            "Nog geen export van dit segment: alleen de grootte van nu.",
            "No export of this segment yet: only its size now.",
        )
    )
    if history_sql:
        show_query(history_sql, {"segment": segment})

    st.markdown(f"##### {say('Leden', 'Members')}")
    if members_now == 0:
        st.info(
            say(
                "Dit segment heeft nu geen leden: niemand voldoet vandaag aan de regels (of wie eraan voldeed kreeg "
                "de export al en zit in de wachttijd).",
                "This segment has no members now: nobody meets its rules today (or those who did were exported "
                "already and wait out the cooldown).",
            )
        )
        return
    preview_sql = members_sql(db, segment, PREVIEW_ROWS)
    preview = db.frame(preview_sql)
    columns = member_columns(preview)
    st.caption(
        say(
            f"De eerste {num(min(PREVIEW_ROWS, members_now))} van {num(members_now)} leden, op e-mailadres; "
            "de kolommen na de naam zeggen waarom ze erin zitten.",
            f"The first {num(min(PREVIEW_ROWS, members_now))} of {num(members_now)} members, by e-mail address; "
            "the columns after the name say why they were selected.",
        )
    )
    table(preview, columns, height=ROW_HEIGHT * (len(preview) + 1) + 3)  # every row, no scrolling
    everyone = db.frame(members_sql(db, segment))
    csv_download(
        members_for_download(everyone, member_columns(everyone)),
        f"{segment}_{local(pd.Timestamp(db.published_at)):%Y%m%d}.csv",
        say(f"Alle {num(members_now)} leden als CSV", f"All {num(members_now)} members as CSV"),
    )
    show_query(preview_sql)
