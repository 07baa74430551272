"""`warehouse publish`: a read-only copy of the warehouse for BI dashboards (`analytics.duckdb` beside it).

The copy holds the marts, the segments and the export log (`exports.csv_trigger_log`), is written under a
temporary name and renamed into place in one step, so a dashboard never blocks a load, never sees a
half-built file, and a dashboard that still has the old copy open keeps reading it undisturbed. Only a build
whose models and tests all passed is published: dbt's `target/run_results.json` says so.

The copy is written in the storage format of `[publish] storage_compatibility_version` (default v1.0.0),
not in the warehouse's own: the DuckDB that BI tools bundle (JDBC for Metabase and DBeaver, Node for
Evidence, duckdb-engine for Superset) is often a 1.x, which refuses a file in DuckDB 2.0's format.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from mail_warehouse.settings import PROJECT_DIR, connect, sql_literal, warehouse_path

PUBLISHED_SCHEMAS = ("marts", "segments")
# The export log tells the dashboard what went to Deployteq; the exported addresses themselves stay home.
PUBLISHED_EXTRA_TABLES = (("exports", "csv_trigger_log"),)
# The oldest storage format that holds every type of the marts (timestamptz, varchar[], json, decimal):
# DuckDB 1.0 reads it, and so does every later reader.
DEFAULT_STORAGE_COMPATIBILITY_VERSION = "v1.0.0"
STORAGE_VERSION_PATTERN = re.compile(r"v\d+\.\d+\.\d+|latest")
OK_STATUSES = {"success", "pass", "warn", "skipped", "no-op"}


class PublishError(RuntimeError):
    pass


def run_results_path() -> Path:
    """Where dbt wrote its last results: DBT_TARGET_PATH when set (dbt reads it too), else target/."""
    return Path(os.environ.get("DBT_TARGET_PATH") or PROJECT_DIR / "target") / "run_results.json"


def analytics_path(warehouse: Path | None = None) -> Path:
    return (warehouse or warehouse_path()).with_name("analytics.duckdb")


def storage_compatibility_version() -> str:
    """`[publish] storage_compatibility_version` (env PUBLISH__STORAGE_COMPATIBILITY_VERSION), read the dlt way."""
    from dlt.common.configuration.resolve import resolve_configuration
    from dlt.common.configuration.specs import BaseConfiguration, configspec

    @configspec
    class PublishConfiguration(BaseConfiguration):
        storage_compatibility_version: str = DEFAULT_STORAGE_COMPATIBILITY_VERSION

    version = resolve_configuration(PublishConfiguration(), sections=("publish",)).storage_compatibility_version
    if not STORAGE_VERSION_PATTERN.fullmatch(version):
        raise PublishError(f"publish.storage_compatibility_version is {version!r}: expected a DuckDB version such "
                           f"as {DEFAULT_STORAGE_COMPATIBILITY_VERSION} (the oldest reader to serve) or latest")
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


def publish(warehouse: Path | None = None, *, check_build: bool = True,
            storage_version: str | None = None) -> tuple[Path, dict[str, int]]:
    warehouse = warehouse or warehouse_path()
    if check_build:
        passed, why = last_build_passed()
        if not passed:
            raise PublishError(f"not publishing: {why}")
    storage_version = storage_version or storage_compatibility_version()
    target = analytics_path(warehouse)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.unlink(missing_ok=True)
    temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
    con = connect(":memory:")
    counts = {}
    try:
        con.execute(f"attach {sql_literal(str(warehouse))} as warehouse (read_only)")
        try:
            con.execute(f"attach {sql_literal(str(temporary))} as analytics "
                        f"(storage_version {sql_literal(storage_version)})")
        except Exception as error:  # DuckDB names the versions it knows
            raise PublishError(f"publish.storage_compatibility_version {storage_version!r}: {error}") from None
        extra = " or ".join(f"(table_schema = '{s}' and table_name = '{t}')" for s, t in PUBLISHED_EXTRA_TABLES)
        tables = con.execute(f"""select table_schema, table_name from information_schema.tables
                                 where table_catalog = 'warehouse' and table_type = 'BASE TABLE'
                                   and (table_schema in {PUBLISHED_SCHEMAS} or {extra})
                                 order by 1, 2""").fetchall()
        for schema in sorted({schema for schema, _ in tables} | set(PUBLISHED_SCHEMAS)):
            con.execute(f"create schema analytics.{schema}")
        for schema, table in tables:
            con.execute(f'create table analytics.{schema}."{table}" as select * from warehouse.{schema}."{table}"')
            counts[f"{schema}.{table}"] = con.execute(f'select count(*) from analytics.{schema}."{table}"').fetchone()[0]
        con.execute("detach warehouse")
        con.execute("checkpoint analytics")
        con.execute("detach analytics")
    finally:
        con.close()
    os.replace(temporary, target)  # atomic: readers see the old file or the new one, never half of one
    return target, counts
