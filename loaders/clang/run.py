"""`warehouse load clang`: `clang_source()` into the warehouse, each file's rows exactly once.

The source appends rows that carry their file's version (`source_file`, `file_loaded_at`), and merges one
record per file into `loaded_files`. Into an append-only destination (dlt's `filesystem`) that is the whole
story: a reader keeps the rows whose `file_loaded_at` equals their file's latest `loaded_at`. In the
warehouse, this run removes the other versions right after the load, so:
- nothing new: nothing downloaded, nothing added;
- a file delivered again with the same content: downloaded, recognised by its checksum, nothing added;
- a file delivered again with other content: its rows are replaced;
- a file gone from the server: its rows stay;
- a run killed mid-download or mid-load: the next run loads what dlt left pending (the application first finishes
  it, removing rows a killed load may have committed twice: `mail_warehouse.pipelines.finish_pending_load`), then
  fetches what dlt's state does not yet hold.
"""

from __future__ import annotations

import sys

import dlt

from loaders.clang.source import RunReport, RunSummary, clang_source

DATA_TABLES = ("activities", "broadcasts", "rejected_rows")


def run(pipeline: dlt.Pipeline, report: RunReport | None = None) -> RunSummary:
    """One load into `pipeline` (the warehouse's DuckDB). Wrong settings raise dlt configuration errors
    (`ClangSettingsError` among them) before anything is fetched; what the source raised (an `SftpError` naming
    what failed) comes wrapped in dlt's `PipelineStepFailed`."""
    report = report or RunReport(sys.stderr)
    source = clang_source(report=report)  # resolves and checks [sources.clang] before anything else
    pipeline.extract(source)
    del source  # its downloads and Parquet files are in the load package now
    pipeline.normalize()
    rows = report.summary.activity_rows + report.summary.broadcast_rows
    if rows:
        report.say(f"clang: loading {rows:,} rows into {pipeline.dataset_name}")
    pipeline.load()
    remove_superseded_rows(pipeline)
    return report.summary


def remove_superseded_rows(pipeline: dlt.Pipeline) -> None:
    """Keep only rows of the version of each file that `loaded_files` holds."""
    with pipeline.sql_client() as client:
        tables = client.execute_sql(
            "select table_name from information_schema.tables where table_schema = %s", pipeline.dataset_name
        )
        assert tables is not None  # dlt answers None only for a statement that returns no rows, never a select
        existing = {row[0] for row in tables}
        if "loaded_files" not in existing:
            return
        files = client.make_qualified_table_name("loaded_files")
        for table in DATA_TABLES:
            if table not in existing:
                continue
            rows = client.make_qualified_table_name(table)
            client.execute_sql(f"""delete from {rows} t using {files} f
                                   where t.source_file = f.source_file and t.file_loaded_at <> f.loaded_at""")
