"""The published copy, opened read-only for one page view at a time, and numbers written for people."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from mail_warehouse.publish import analytics_path
from mail_warehouse.settings import SESSION_TIME_ZONE


class NothingPublished(Exception):
    pass


class Published:
    """One read-only connection to analytics.duckdb, for one run of a page."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection):
        self.path = path
        self.con = con

    @property
    def published_at(self) -> dt.datetime:
        """When `warehouse publish` renamed this copy into place (UTC)."""
        return dt.datetime.fromtimestamp(self.path.stat().st_mtime, dt.UTC)

    def frame(self, sql: str, params: dict | None = None) -> pd.DataFrame:
        return self.con.execute(sql, params or {}).df()

    def value(self, sql: str, params: dict | None = None):
        """The first column of the first row of `sql` (a query that always answers a row, such as a count)."""
        row = self.con.execute(sql, params or {}).fetchone()
        if row is None:
            raise ValueError(f"no row from {sql}")
        return row[0]

    def has_table(self, schema: str, table: str) -> bool:
        return bool(
            self.value(
                "select count(*) from information_schema.tables where table_schema = $s and table_name = $t",
                {"s": schema, "t": table},
            )
        )

    def columns(self, schema: str, table: str) -> set[str]:
        return {
            row[0]
            for row in self.con.execute(
                "select column_name from information_schema.columns where table_schema = $s and table_name = $t",
                {"s": schema, "t": table},
            ).fetchall()
        }


@contextmanager
def published(path: Path | None = None):
    """The copy `warehouse publish` wrote, open read-only while the page runs, closed right after."""
    path = path or analytics_path()
    if not path.exists():
        raise NothingPublished(path)
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute(f"set TimeZone = '{SESSION_TIME_ZONE}'")
        yield Published(path, con)
    finally:
        con.close()


# Dutch readers write 1.234,5 and Estonian readers 1 234,5; both put a space before the percent sign.
NUMBER_FORMATS = {
    "nl": {"label": "Nederlands (1.234,5)", "thousands": ".", "decimal": ","},
    "et": {"label": "Eesti (1 234,5)", "thousands": "\u00a0", "decimal": ","},
    "en": {"label": "English (1,234.5)", "thousands": ",", "decimal": "."},
}
DEFAULT_NUMBER_FORMAT = "nl"


def number(value, decimals: int = 0, style: str = DEFAULT_NUMBER_FORMAT) -> str:
    if value is None or pd.isna(value):
        return "–"
    marks = NUMBER_FORMATS[style]
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\x00").replace(".", marks["decimal"]).replace("\x00", marks["thousands"])


def percent(share, decimals: int = 1, style: str = DEFAULT_NUMBER_FORMAT) -> str:
    if share is None or pd.isna(share):
        return "–"
    return f"{number(share * 100, decimals, style)}\u00a0%"
