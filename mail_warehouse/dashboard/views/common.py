"""What every page shares: the reader's language, number format and time zone, charts and tables written in
them, headline numbers, and each number's query beside it.

Every text a page shows is written in both languages where it is shown: `say("Verzonden", "Sent")` (Dutch
first, the default). Times come out of the copy in UTC and are shown in Europe/Amsterdam (`local`); charts get
Vega-Lite's locale of the chosen number format and language (`draw`), so their axes say "mrt" and "1.234".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import altair as alt
import pandas as pd
import streamlit as st

from mail_warehouse.dashboard.data import DEFAULT_NUMBER_FORMAT, NUMBER_FORMATS, number, percent

LOCAL_TIME_ZONE = ZoneInfo("Europe/Amsterdam")
LANGUAGES = {"nl": "Nederlands", "en": "English"}
DEFAULT_LANGUAGE = "nl"

# --- language, numbers and times ---------------------------------------------------------------------


def language() -> str:
    return st.session_state.get("language", DEFAULT_LANGUAGE)


def say(dutch: str, english: str) -> str:
    """The text in the reader's language."""
    return english if language() == "en" else dutch


def style() -> str:
    """The chosen number format (`data.NUMBER_FORMATS`)."""
    return st.session_state.get("number_format", DEFAULT_NUMBER_FORMAT)


def num(value, decimals: int = 0) -> str:
    return number(value, decimals, style())


def pct(share, decimals: int = 1) -> str:
    return percent(share, decimals, style())


def euros(value, decimals: int = 0) -> str:
    return "–" if value is None or pd.isna(value) else f"€\u00a0{num(value, decimals)}"


def yes_no(value) -> str:
    if value is None or (not isinstance(value, bool) and pd.isna(value)):
        return "–"
    return say("ja", "yes") if value else say("nee", "no")


def local(value):
    """A UTC instant (a Timestamp, or a Series or column of them) in Europe/Amsterdam, without its zone: a chart
    draws a zone-less time as it is written, whatever the browser's own zone."""
    if isinstance(value, pd.Series):
        if value.empty:
            return value
        stamps = pd.to_datetime(value, utc=True)
        return stamps.dt.tz_convert(LOCAL_TIME_ZONE).dt.tz_localize(None)
    if value is None or pd.isna(value):
        return value
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return stamp.tz_convert(LOCAL_TIME_ZONE).tz_localize(None)


def when(value, with_time: bool = True) -> str:
    """An instant as a Dutch reader writes it, in Amsterdam time: 07-06-2026 16:20."""
    if value is None or pd.isna(value):
        return "–"
    shown = local(value)
    return f"{shown:%d-%m-%Y %H:%M}" if with_time else f"{shown:%d-%m-%Y}"


def hours_since(value, now: dt.datetime | None = None) -> int | None:
    """Whole hours from an instant to now: the one age of a mailing on every page."""
    if value is None or pd.isna(value):
        return None
    now = now or dt.datetime.now(dt.UTC)
    return int((now - pd.Timestamp(value).to_pydatetime()).total_seconds() // 3600)


def age(value) -> str:
    """A mailing's age, in hours for its first three days, else in days."""
    hours = hours_since(value)
    if hours is None:
        return "–"
    if hours < 72:
        return say(f"{hours} uur geleden", f"{hours} h ago")
    return say(f"{hours // 24} dagen geleden", f"{hours // 24} days ago")


def text(value) -> str:
    """A value as a reader sees it: "–" for nothing."""
    return "–" if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)) else str(value)


def name_of(names: Mapping, key) -> str:
    """A code (a status, a kind) by the name a marketer uses for it; an unknown code as it is, nothing as "–"."""
    return names[key] if key in names else text(key)


PLATFORM_NAMES = {"clang": "Clang / Deployteq", "spotler": "Spotler Mail+"}


def platform_name(key) -> str:
    return name_of(PLATFORM_NAMES, key)


# --- charts ----------------------------------------------------------------------------------------------

RATE_AXIS = alt.Axis(format="%", title=None)
LABEL_LIMIT = 320
# One colour per kind of response on every page: opens blue, clicks orange, bounces red, unsubscribes grey.
# A person's own opens and clicks in the darker shade of the same colour.
COLOURS = {
    "open": "#9ecae9",
    "click": "#ffbf79",
    "human open": "#4c78a8",
    "human click": "#f58518",
    "bounce": "#e45756",
    "unsubscribe": "#79706e",
    "complaint": "#b279a2",
    "unique opens": "#4c78a8",
    "unique clicks": "#f58518",
}


def colours(*names: str) -> alt.Scale:
    """The colour scale of a chart that shows these responses (its legend lists only them)."""
    return alt.Scale(domain=list(names), range=[COLOURS[name] for name in names])


TIME_LOCALES = {
    "nl": {
        "dateTime": "%A %e %B %Y, %X",
        "date": "%d-%m-%Y",
        "time": "%H:%M:%S",
        "periods": ["", ""],
        "days": ["zondag", "maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag"],
        "shortDays": ["zo", "ma", "di", "wo", "do", "vr", "za"],
        "months": [
            "januari",
            "februari",
            "maart",
            "april",
            "mei",
            "juni",
            "juli",
            "augustus",
            "september",
            "oktober",
            "november",
            "december",
        ],
        "shortMonths": ["jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"],
    },
    "en": {
        "dateTime": "%a %b %e %X %Y",
        "date": "%d-%m-%Y",
        "time": "%H:%M:%S",
        "periods": ["AM", "PM"],
        "days": ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
        "shortDays": ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"],
        "months": [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ],
        "shortMonths": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    },
}
DAY_FORMAT = "%d-%m-%Y"
TIME_FORMAT = "%d-%m-%Y %H:%M"
MONTH_FORMAT = "%b %Y"


def draw(target, chart) -> None:
    """A chart in the reader's number format and language (Vega-Lite's own locale): "1.234,5", "mrt 2026"."""
    marks = NUMBER_FORMATS[style()]
    locale = {
        "number": {
            "decimal": marks["decimal"],
            "thousands": marks["thousands"],
            "grouping": [3],
            "currency": ["€\u00a0", ""],
            "percent": "\u00a0%",
        },
        "time": TIME_LOCALES[language()],
    }
    target.altair_chart(chart.configure(locale=locale), width="stretch")


# --- headline numbers, tables and queries ---------------------------------------------------------------


def show_query(sql: str, params: dict | None = None) -> None:
    with st.expander(say("Query", "Query")):
        st.code(sql.strip(), language="sql")
        if params:
            st.caption(
                say("Parameters: ", "Parameters: ") + ", ".join(f"${k} = {sql_value(v)}" for k, v in params.items())
            )


def sql_value(value) -> str:
    """A query parameter as it would be written in the SQL: a day as DATE '2026-11-01', a list as [..]."""
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(sql_value(v) for v in value) + "]"
    return f"'{value}'" if isinstance(value, str) else str(value)


def metrics(values: list[tuple], per_row: int = 4) -> None:
    """Headline numbers, at most four a row so that no label is cut off: (label, value, help[, delta])."""
    for start in range(0, len(values), per_row):
        for column, shown in zip(st.columns(per_row), values[start : start + per_row], strict=False):
            label, value, help_text, *delta = shown
            column.metric(label, value, delta[0] if delta else None, help=help_text)


@dataclass(frozen=True)
class Column:
    """How a table shows one column: its label, and its kind: text, count, decimal, percent (a share 0..1),
    percent2, euros, time (a UTC instant, shown in Amsterdam time), day, yes_no, link."""

    label: str
    kind: str = "text"


FORMATTERS = {
    "count": lambda v: num(v),
    "decimal": lambda v: num(v, 1),
    "percent": lambda v: pct(v),
    "percent2": lambda v: pct(v, 2),
    "euros": lambda v: euros(v, 2),
    "time": lambda v: when(v),
    "day": lambda v: when(v, with_time=False),
    "yes_no": yes_no,
    "text": text,
}


def table(frame: pd.DataFrame, columns: Mapping[str, Column], **options) -> None:
    """A table of these columns, in this order, under their labels, every value in the reader's format (the
    values underneath stay numbers and times, so a column still sorts as numbers do)."""
    shown = frame[list(columns)].copy()
    columns = dict(columns)
    for name, column in columns.items():
        if column.kind in ("text", "yes_no") or (column.kind in FORMATTERS and shown[name].isna().any()):
            # Streamlit's table draws a missing value as a grey "None" and a boolean as a checkbox, whatever the
            # Styler writes for them: such a column goes as the text it shows, "–" in the gaps (it then sorts as
            # text)
            shown[name] = [FORMATTERS[column.kind](value) for value in shown[name]]
            columns[name] = Column(column.label, "text")
        elif column.kind == "time":  # sorting a column of text would put 10-01 before 02-02
            shown[name] = pd.to_datetime(shown[name], utc=True)
    labels = {name: column.label for name, column in columns.items()}
    formats: dict[Any, Any] = {
        labels[name]: FORMATTERS[column.kind] for name, column in columns.items() if column.kind in FORMATTERS
    }
    shown = shown.rename(columns=labels)
    config = {
        labels[name]: st.column_config.LinkColumn(column.label)
        for name, column in columns.items()
        if column.kind == "link"
    }
    st.dataframe(
        shown.style.format(formats, na_rep="–"),
        hide_index=True,
        width="stretch",
        column_config=config or None,
        **options,
    )


def csv_download(frame: pd.DataFrame, file_name: str, label: str | None = None) -> None:
    """The frame as a CSV file a spreadsheet opens: semicolons and decimal commas in Dutch, UTF-8 with BOM."""
    dutch = style() != "en"
    data = frame.to_csv(index=False, sep=";" if dutch else ",", decimal="," if dutch else ".").encode("utf-8-sig")
    st.download_button(label or say("Download als CSV", "Download as CSV"), data, file_name, mime="text/csv")


# --- headline numbers with their change, and links between pages -----------------------------------------


def change_in_points(now, before) -> str | None:
    """A change of a rate in percentage points, or None when either period has no rate."""
    if now is None or before is None or pd.isna(now) or pd.isna(before):
        return None
    points = (now - before) * 100
    return f"{'+' if points >= 0 else '-'}{num(abs(points), 1)} {say('%-punt', 'pp')}"


def change_in_count(now, before, shown: Callable = num) -> str | None:
    if now is None or before is None or pd.isna(now) or pd.isna(before):
        return None
    difference = now - before
    return f"{'+' if difference >= 0 else '-'}{shown(abs(difference))}"


def metrics_with_change(values: list[tuple], per_row: int = 4) -> None:
    """Headline numbers, four a row: (label, value, help, change, colour) where change is None for "no earlier
    figure" (shown as "–", no arrow) and colour is "normal" (up is good), "inverse" (up is bad) or "off"."""
    for start in range(0, len(values), per_row):
        for column, (label, value, help_text, change, colour) in zip(
            st.columns(per_row), values[start : start + per_row], strict=False
        ):
            if change is None:
                column.metric(label, value, "–", delta_color="off", delta_arrow="off", help=help_text)
            else:
                column.metric(label, value, change, delta_color=colour, help=help_text)


def link_to_page(url_path: str, label: str, query_params: dict | None = None) -> None:
    """A link to another page of the app, by its url path (the pages are callables registered in app.py)."""

    def elsewhere() -> None:  # only its url path matters: st.page_link goes to the page registered there
        return None

    st.page_link(st.Page(elsewhere, url_path=url_path, title=label), label=label, query_params=query_params)
