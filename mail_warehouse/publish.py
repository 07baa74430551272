"""`warehouse publish`: a read-only copy of the warehouse for BI dashboards (`analytics.duckdb` beside it).

The copy holds the marts, the segments and the export logs (`exports.csv_trigger_log`,
`exports.spotler_export_log`), views written as tables (marts.customer_activity is a view of the warehouse's
classified events), is written under a temporary name and renamed into place in one step, so a
dashboard never blocks a load, never sees a half-built file, and a dashboard that still has the old copy open
keeps reading it undisturbed. Only a build whose models and tests all passed is published: dbt's
`target/run_results.json` says so.

The copy is written in the storage format of `[publish] storage_compatibility_version` (default v1.0.0),
not in the warehouse's own: the DuckDB that BI tools bundle (JDBC for Metabase and DBeaver, Node for
Evidence, duckdb-engine for Superset) is often a 1.x, which refuses a file in DuckDB 2.0's format.

A daily publish does not copy years of events again: it brings an earlier copy up to date in place. Such a
model stamps every row it writes with its build's `built_at`, so the rows newer than the copy's newest replace
theirs by the model's `unique_key` (from dbt's manifest). Row counts that then differ (a full refresh that
dropped rows) and changed columns have the table copied whole, as are all other tables (small: one row per
contact, mailing, segment member). The earlier copy is the one the publish before last wrote, kept beside the
published file as `.analytics.duckdb.standby` (the file readers had until the last publish, renamed, never
rewritten while anyone has it open): writing that one needs no copy of the file first. Without a standby in
the requested storage format, or when a reader still holds it open, the publish starts from a copy of the
published file (the same format) or a new file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from mail_warehouse.build import dbt_target_path, project_models, run_results_path
from mail_warehouse.settings import connect, sql_literal, warehouse_path

PUBLISHED_SCHEMAS = ("marts", "segments")
# The export logs tell the dashboard what went to Deployteq and Spotler; the exported addresses stay home.
PUBLISHED_EXTRA_TABLES = (("exports", "csv_trigger_log"), ("exports", "spotler_export_log"))
# DuckDB 1.0 reads it, and so does every later reader.
STORAGE_VERSION_PATTERN = re.compile(r"v\d+\.\d+\.\d+|latest")
OK_STATUSES = {"success", "pass", "warn", "skipped", "no-op"}
# What a publish starts from (Published.started_from).
NEW_FILE, COPY_OF_PUBLISHED, STANDBY = "a new file", "a copy of the published file", "the standby"


class PublishError(RuntimeError):
    pass


def incremental_keys(manifest: Path | None = None) -> dict[tuple[str, str], list[str]]:
    """(schema, table) -> unique key columns of every model in dbt's manifest that has one: the incremental
    models, and views over them that declare their key (marts.customer_activity)."""
    manifest = manifest or dbt_target_path() / "manifest.json"
    if not manifest.exists():
        return {}
    keys = {}
    for node in project_models(json.loads(manifest.read_text())):
        config = node.get("config", {})
        if config.get("materialized") in ("incremental", "view") and config.get("unique_key"):
            key = config["unique_key"]
            keys[(node["schema"], node.get("alias") or node["name"])] = [key] if isinstance(key, str) else list(key)
    return keys


def analytics_path(warehouse: Path | None = None) -> Path:
    return (warehouse or warehouse_path()).with_name("analytics.duckdb")


def storage_compatibility_version() -> str:
    """`[publish] storage_compatibility_version` (env PUBLISH__STORAGE_COMPATIBILITY_VERSION)."""
    from mail_warehouse.config import DEFAULT_STORAGE_COMPATIBILITY_VERSION, PublishConfiguration, resolve

    version = resolve(PublishConfiguration, "publish").storage_compatibility_version
    if not STORAGE_VERSION_PATTERN.fullmatch(version):
        raise PublishError(
            f"publish.storage_compatibility_version is {version!r}: expected a DuckDB version such "
            f"as {DEFAULT_STORAGE_COMPATIBILITY_VERSION} (the oldest reader to serve) or latest"
        )
    return version


def last_build_passed(run_results: Path | None = None) -> tuple[bool, str]:
    run_results = run_results or run_results_path()
    if not run_results.exists():
        return False, f"no dbt results at {run_results}: run `warehouse build` first"
    results = json.loads(run_results.read_text())
    if results.get("args", {}).get("which") != "build":
        return False, "the last dbt command was not a build"
    failed = [r["unique_id"] for r in results.get("results", []) if r.get("status") not in OK_STATUSES]
    if failed:
        return False, f"the last dbt build failed ({len(failed)} nodes, first {failed[0]})"
    return True, "ok"


@dataclass
class Published:
    """What a publish wrote: rows per table, and which tables were brought up to date in place."""

    path: Path
    rows: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)  # table -> rows written into the earlier copy
    started_from: str = ""  # NEW_FILE | COPY_OF_PUBLISHED | STANDBY

    def line(self) -> str:
        updated = (
            f"; {len(self.updated)} brought up to date in place ({sum(self.updated.values()):,} rows written"
            f" into {self.started_from})"
            if self.updated
            else ""
        )
        return (
            f"published {len(self.rows)} tables ({sum(self.rows.values()):,} rows) to {self.path}{updated}; "
            "open it read-only"
        )


def publish(
    warehouse: Path | None = None, *, check_build: bool = True, storage_version: str | None = None
) -> Published:
    warehouse = warehouse or warehouse_path()
    if check_build:
        passed, why = last_build_passed()
        if not passed:
            raise PublishError(f"not publishing: {why}")
    storage_version = storage_version or storage_compatibility_version()
    target = analytics_path(warehouse)
    temporary, standby = (target.with_name(f".{target.name}.{suffix}") for suffix in ("tmp", "standby"))
    published = Published(target)
    con = connect(":memory:")
    try:
        con.execute(f"attach {sql_literal(str(warehouse))} as warehouse (read_only)")
        published.started_from = _start_the_copy(con, target, standby, temporary, storage_version)
        reusing = published.started_from != NEW_FILE
        extra = " or ".join(f"(table_schema = '{s}' and table_name = '{t}')" for s, t in PUBLISHED_EXTRA_TABLES)
        tables = con.execute(f"""select table_schema, table_name from information_schema.tables
                                 where table_catalog = 'warehouse' and table_type in ('BASE TABLE', 'VIEW')
                                   and (table_schema in {PUBLISHED_SCHEMAS} or {extra})
                                 order by 1, 2""").fetchall()
        previous = set(
            con.execute("""select table_schema, table_name from information_schema.tables
                                      where table_catalog = 'analytics'""").fetchall()
        )
        for schema in sorted({schema for schema, _ in tables} | set(PUBLISHED_SCHEMAS)):
            con.execute(f"create schema if not exists analytics.{schema}")
        for schema, table in previous - set(tables):
            con.execute(f'drop table analytics.{schema}."{table}"')
        keys = incremental_keys() if reusing else {}
        for schema, table in tables:
            name = f'{schema}."{table}"'
            written = None
            if (schema, table) in previous and (schema, table) in keys:
                written = _bring_up_to_date(con, name, keys[(schema, table)])
            if written is None:
                con.execute(f"create or replace table analytics.{name} as select * from warehouse.{name}")
            else:
                published.updated[f"{schema}.{table}"] = written
            counted = con.execute(f"select count(*) from analytics.{name}").fetchone()
            assert counted is not None  # count(*) answers one row
            published.rows[f"{schema}.{table}"] = counted[0]
        con.execute("detach warehouse")
        con.execute("checkpoint analytics")
        con.execute("detach analytics")
    finally:
        con.close()
    if target.exists():  # the file readers have now: the next publish's starting point
        os.replace(_linked(target), standby)
    os.replace(temporary, target)  # atomic: readers see the old file or the new one, never half of one
    return published


def _linked(path: Path) -> Path:
    """A second name for `path`'s file (a hard link), beside it."""
    link = path.with_name(f".{path.name}.link")
    link.unlink(missing_ok=True)
    os.link(path, link)
    return link


def _storage_tag(con, database: str) -> str | None:
    """The storage format an attached database is written in, as DuckDB names it (e.g. `v1.0.0+`)."""
    row = con.execute("select tags from duckdb_databases() where database_name = $name", {"name": database}).fetchone()
    return (row[0] or {}).get("storage_version") if row else None


def _start_the_copy(con, target: Path, standby: Path, temporary: Path, storage_version: str) -> str:
    """Attach `temporary` as `analytics` and say what it starts from: the standby (the copy the publish before
    last wrote), else a copy of the published file, when either is in the requested storage format; else a
    new file."""
    for leftover in (temporary, temporary.with_name(temporary.name + ".wal")):
        leftover.unlink(missing_ok=True)
    try:
        con.execute(
            f"attach {sql_literal(str(temporary))} as analytics (storage_version {sql_literal(storage_version)})"
        )
    except Exception as error:  # DuckDB names the versions it knows
        raise PublishError(f"publish.storage_compatibility_version {storage_version!r}: {error}") from None
    wanted = _storage_tag(con, "analytics")
    con.execute("detach analytics")
    temporary.unlink()
    if (
        standby.exists()
        and not (target.exists() and os.path.samefile(standby, target))
        and storage_tag_of(con, standby) == wanted
    ):
        os.replace(standby, temporary)
        try:  # writable only when no reader still holds it open (DuckDB's file lock)
            con.execute(f"attach {sql_literal(str(temporary))} as analytics")
            return STANDBY
        except duckdb.Error:
            temporary.unlink()
    if target.exists() and storage_tag_of(con, target) == wanted:
        shutil.copyfile(target, temporary)
        con.execute(f"attach {sql_literal(str(temporary))} as analytics")
        return COPY_OF_PUBLISHED
    con.execute(f"attach {sql_literal(str(temporary))} as analytics (storage_version {sql_literal(storage_version)})")
    return NEW_FILE


def storage_tag_of(con, path: Path) -> str | None:
    """The storage format of the DuckDB file `path`; None when it is not one this DuckDB can read."""
    try:
        con.execute(f"attach {sql_literal(str(path))} as previous (read_only)")
    except duckdb.Error:
        return None
    try:
        return _storage_tag(con, "previous")
    finally:
        con.execute("detach previous")


def _bring_up_to_date(con, name: str, key: list[str]) -> int | None:
    """Replace the rows of analytics.`name` that the warehouse has rebuilt since (by `key`); the rows written,
    or None when the table must be copied whole (other columns, no stamps, a warehouse older than the copy, or
    counts that then differ)."""
    columns = """select list(column_name || ' ' || data_type order by ordinal_position) from information_schema.columns
                 where table_catalog = $catalog and table_schema || '."' || table_name || '"' = $name"""
    copy_columns, warehouse_columns = (
        con.execute(columns, {"catalog": catalog, "name": name}).fetchone()[0] for catalog in ("analytics", "warehouse")
    )
    if copy_columns != warehouse_columns or not any(c.startswith("built_at ") for c in copy_columns):
        return None
    since, newest = (
        con.execute(f"select max(built_at) from {catalog}.{name}").fetchone()[0]
        for catalog in ("analytics", "warehouse")
    )
    if since is None or newest is None or newest < since:  # a warehouse older than its copy (restored): copy whole
        return None
    listed = ", ".join(f'"{column}"' for column in key)
    rebuilt = f"from warehouse.{name} where built_at > $since"
    con.execute(f"delete from analytics.{name} where ({listed}) in (select {listed} {rebuilt})", {"since": since})
    written = con.execute(f"insert into analytics.{name} select * {rebuilt}", {"since": since}).fetchone()[0]
    (copy_rows,), (warehouse_rows,) = (
        con.execute(f"select count(*) from {catalog}.{name}").fetchone() for catalog in ("analytics", "warehouse")
    )
    return written if copy_rows == warehouse_rows else None
