"""`warehouse load clang|spotler|directo`: each loader's dlt source run into the warehouse through the one
pipeline factory, an earlier interrupted load finished first, and the run's summary for the command line. The
load drivers of all three sources live here; the loaders are dlt sources only.

Each load first reads the warehouse's suppression list (`privacy.current_suppression`) and hands it to its
source, which leaves out every row naming a forgotten person before anything is written; with anyone on the
list and no `[privacy] secret`, the load stops (PrivacySecretMissing) before it fetches anything."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

from dlt.pipeline.exceptions import PipelineStepFailed

from mail_warehouse.pipelines import finish_pending_load, make_pipeline, run_in_steps, unwrap
from mail_warehouse.privacy import current_suppression
from mail_warehouse.settings import connect, sql_literal, warehouse_path

SPOTLER_MEMORY_LIMIT = "1GB"


def load_clang(*, stream=sys.stderr):
    """Load Clang's new and changed export files into raw_clang, each file's rows exactly once (dlt's merge
    replaces the rows of a file delivered again with other content); returns the RunSummary. Wrong settings
    raise dlt configuration errors (`ClangSettingsError` among them) before anything is fetched; what the
    source raised (an `SftpError` naming what failed) comes wrapped in dlt's PipelineStepFailed. A run killed
    mid-download or mid-load: the next one first finishes what dlt left pending (`finish_pending_load`, which
    removes rows a killed load may have committed twice), then fetches what dlt's state does not hold yet."""
    from mail_warehouse_sources import clang

    suppression = current_suppression()
    pipeline = make_pipeline(clang.PIPELINE_NAME, clang.DATASET, warehouse_path())
    finish_pending_load(pipeline, stream)
    report = clang.RunReport(stream)
    # resolves and checks [sources.clang] before anything else
    source = clang.clang_source(report=report, suppression=suppression)
    # as `pipeline.run` does: the state dlt keeps in the warehouse, when the pipeline folder has none or an older
    # one (a restored or copied warehouse), says which file versions each table holds; else every file would be
    # taken for new and appended a second time
    pipeline.sync_destination()
    pipeline.extract(source)
    del source  # its downloads and Parquet files are in the load package now
    pipeline.normalize()
    rows = report.summary.activity_rows + report.summary.broadcast_rows
    if rows:
        report.say(f"clang: loading {rows:,} rows into {pipeline.dataset_name}")
    pipeline.load()
    return report.summary


def load_spotler(*, contacts_file: Path | None = None, stream=sys.stderr, now: dt.datetime | None = None):
    """Sync Spotler into raw_spotler (or, with `contacts_file`, the histories of the contacts it lists, one
    external id a line); returns the run's SyncReport."""
    from mail_warehouse_sources import spotler

    suppression = current_suppression()
    pipeline = make_pipeline("spotler", spotler.DATASET, warehouse_path(), memory_limit=SPOTLER_MEMORY_LIMIT)
    finish_pending_load(pipeline, stream)
    report = spotler.SyncReport()

    def log(message: str) -> None:
        print(message, file=stream, flush=True)

    if contacts_file is not None:
        ids = [line.strip() for line in Path(contacts_file).read_text(encoding="utf-8").splitlines() if line.strip()]
        source = spotler.spotler_contacts_source(ids, now=now, report=report, log=log, suppression=suppression)
        print(f"spotler: fetching the histories of {len(ids)} contacts from {contacts_file}", file=stream, flush=True)
    else:
        source = spotler.spotler_source(now=now, report=report, log=log, suppression=suppression)
    try:
        pipeline.run(source)
    except PipelineStepFailed as failure:
        raise unwrap(failure, spotler.SpotlerError) from None
    return report


# --- Directo ---------------------------------------------------------------------------------------------
# DuckDB spills beyond this while dlt loads and while customers are compared with what is loaded; with the
# parse's batches it holds a 1M-customer answer near 380 MB, first load and full reload alike.
DIRECTO_MEMORY_LIMIT = "128MB"


def load_directo(*, full: bool = False, stream=sys.stderr):
    """Sync Directo's customers into raw_directo; count new, changed and unchanged customers against what
    was loaded before, and with `full` mark customers missing from the answer as deleted. Returns the
    SyncSummary."""
    from mail_warehouse_sources import directo

    suppression = current_suppression()
    warehouse = warehouse_path()
    pipeline = make_pipeline("directo", directo.DATASET, warehouse, memory_limit=DIRECTO_MEMORY_LIMIT)
    finish_pending_load(pipeline, stream)
    summary = directo.SyncSummary()
    loaded_at = dt.datetime.now(dt.UTC)
    source = directo.directo_source(
        full=full,
        loaded_at=loaded_at,
        summary=summary,
        log=lambda message: print(message, file=stream, flush=True),
        suppression=suppression,
    )
    started = time.monotonic()
    had_snapshot = _snapshot_customers(warehouse) if warehouse.exists() else False
    try:
        run_in_steps(pipeline, source)
    except PipelineStepFailed as failure:
        # the source's own errors say what failed and what to check; anything else is a bug: its traceback
        raise unwrap(failure, directo.DirectoError) from None
    _count_changes(warehouse, summary, loaded_at, had_snapshot, full)
    summary.seconds = time.monotonic() - started
    return summary


def _content_hashes(con) -> str:
    """A query of (code, content_hash): a customer's attributes and its datafields, as loaded."""
    from mail_warehouse_sources.directo import DATASET, DECIMAL_ATTRIBUTES, INT_ATTRIBUTES, STRING_ATTRIBUTES

    columns = ", ".join(
        f"c.{name}"
        for name in (
            *[f'"{n}"' for n in STRING_ATTRIBUTES],
            *INT_ATTRIBUTES,
            *DECIMAL_ATTRIBUTES,
            "ts",
            "optin_raw",
            "optin_date",
        )
    )
    # bit_xor of each datafield's hash (its position included): a fixed-size aggregate, where a list of
    # every customer's datafields would hold them all in memory.
    fields = (
        f"""left join (select customer_code as code, bit_xor(hash(position, datafield_code, content, param))
                                                                  as fields_hash
                            from {DATASET}.datafields group by 1) f using (code)"""
        if "datafields" in _tables(con)
        else "left join (select null as code, null as fields_hash) f using (code)"
    )
    return (
        f"select c.code, c.loaded_at, hash(row({columns}), f.fields_hash) as content_hash "
        f"from {DATASET}.customers c {fields}"
    )


def _tables(con) -> set[str]:
    from mail_warehouse_sources.directo import DATASET

    return {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = $s", {"s": DATASET}
        ).fetchall()
    }


def _connect(warehouse: Path):
    """The warehouse, held to the load's memory bound (DuckDB spills beyond it)."""
    con = connect(warehouse)
    con.execute(f"set memory_limit = {sql_literal(DIRECTO_MEMORY_LIMIT)}; set preserve_insertion_order = false")
    return con


def _snapshot_customers(warehouse: Path) -> bool:
    """Remember each customer's content before the load, to tell new, changed and unchanged apart after it."""
    from mail_warehouse_sources.directo import DATASET

    con = _connect(warehouse)
    try:
        if "customers" not in _tables(con):
            return False
        con.execute(
            f"create or replace table {DATASET}._before_sync as select code, content_hash from ({_content_hashes(con)})"
        )
        return True
    finally:
        con.close()


def _count_changes(warehouse: Path, summary, loaded_at: dt.datetime, had_snapshot: bool, full: bool) -> None:
    from mail_warehouse_sources.directo import DATASET

    con = _connect(warehouse)
    try:
        tables = _tables(con)
        if "customers" not in tables:
            return
        if "datafields" in tables:  # a customer that now has no datafields keeps none of its old ones
            con.execute(f"""delete from {DATASET}.datafields d using {DATASET}.customers c
                            where d.customer_code = c.code and d.customer_loaded_at <> c.loaded_at""")
        stamp = {"at": loaded_at}
        if had_snapshot:
            summary.new, summary.changed, summary.unchanged = con.execute(
                f"""
                select count(*) filter (where b.code is null),
                       count(*) filter (where b.code is not null and b.content_hash <> n.content_hash),
                       count(*) filter (where b.code is not null and b.content_hash = n.content_hash)
                from ({_content_hashes(con)}) n left join {DATASET}._before_sync b using (code)
                where n.loaded_at = $at""",
                stamp,
            ).fetchone()
            con.execute(f"drop table {DATASET}._before_sync")
        else:
            summary.new = con.execute(
                f"select count(*) from {DATASET}.customers where loaded_at = $at", stamp
            ).fetchone()[0]
        if full:
            summary.deleted = con.execute(
                f"""
                update {DATASET}.customers set deleted_at = $at
                where loaded_at < $at and deleted_at is null""",
                stamp,
            ).fetchone()[0]
    finally:
        con.close()
