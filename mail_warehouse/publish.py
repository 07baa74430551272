"""`warehouse publish`: a read-only copy of the warehouse for BI dashboards (`analytics.duckdb` beside it).

The copy holds the marts and segments, is written under a temporary name and renamed into place in one
step, so a dashboard never blocks a load, never sees a half-built file, and a dashboard that still has the
old copy open keeps reading it undisturbed. Only a build whose models and tests all passed is published:
dbt's `target/run_results.json` says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mail_warehouse.settings import PROJECT_DIR, connect, warehouse_path

PUBLISHED_SCHEMAS = ("marts", "segments")
def run_results_path() -> Path:
    """Where dbt wrote its last results: DBT_TARGET_PATH when set (dbt reads it too), else target/."""
    return Path(os.environ.get("DBT_TARGET_PATH") or PROJECT_DIR / "target") / "run_results.json"

OK_STATUSES = {"success", "pass", "warn", "skipped", "no-op"}


class PublishError(RuntimeError):
    pass


def analytics_path(warehouse: Path | None = None) -> Path:
    return (warehouse or warehouse_path()).with_name("analytics.duckdb")


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


def publish(warehouse: Path | None = None, *, check_build: bool = True) -> tuple[Path, dict[str, int]]:
    warehouse = warehouse or warehouse_path()
    if check_build:
        passed, why = last_build_passed()
        if not passed:
            raise PublishError(f"not publishing: {why}")
    target = analytics_path(warehouse)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.unlink(missing_ok=True)
    con = connect(temporary)
    counts = {}
    try:
        con.execute(f"attach '{warehouse}' as warehouse (read_only)")
        tables = con.execute(f"""select table_schema, table_name from information_schema.tables
                                 where table_catalog = 'warehouse' and table_schema in {PUBLISHED_SCHEMAS}
                                 order by 1, 2""").fetchall()
        for schema in PUBLISHED_SCHEMAS:
            con.execute(f"create schema if not exists {schema}")
        for schema, table in tables:
            con.execute(f'create table {schema}."{table}" as select * from warehouse.{schema}."{table}"')
            counts[f"{schema}.{table}"] = con.execute(f'select count(*) from {schema}."{table}"').fetchone()[0]
        con.execute("detach warehouse")
        con.execute("checkpoint")
    finally:
        con.close()
    os.replace(temporary, target)  # atomic: readers see the old file or the new one, never half of one
    return target, counts
