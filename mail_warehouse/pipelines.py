"""The one way the application builds a dlt pipeline: into a dataset of the warehouse's DuckDB file, sessions
in UTC, DuckDB's memory bounded (it spills beyond the limit), dlt's working folders beside the warehouse.

The loaders only declare dlt sources; this module and `mail_warehouse.loads` run them into the warehouse.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
from pathlib import Path

import pyarrow

from mail_warehouse.settings import SESSION_TIME_ZONE, warehouse_path

DEFAULT_MEMORY_LIMIT = "1GB"


def dlt_destination(warehouse: Path | None = None, *, memory_limit: str = DEFAULT_MEMORY_LIMIT):
    """dlt's DuckDB destination for the warehouse: sessions in UTC, DuckDB's memory bounded (it spills)."""
    import dlt
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    credentials = DuckDbCredentials()
    # the path set, not parsed: dlt parses a credentials string as a URL first, importing SQLAlchemy (0.3 s)
    credentials.database = str(warehouse or warehouse_path())
    credentials.session_timezone = SESSION_TIME_ZONE
    # Raw rows carry their own order (file and line, ids, dates): without insertion order DuckDB writes a load's
    # row groups once instead of rewriting them at the checkpoint (2M Clang rows: 2.5 s of CPU saved, half the file).
    credentials.global_config = {"memory_limit": memory_limit, "preserve_insertion_order": False}
    return dlt.destinations.duckdb(credentials=credentials)


def pipelines_dir(warehouse: Path | None = None) -> Path:
    """dlt's working folders (state, pending load packages) live beside the warehouse they load into."""
    target = warehouse or warehouse_path()
    return target.parent / ".dlt_pipelines" / target.stem


def make_pipeline(name: str, dataset: str, warehouse: Path | None = None, *, memory_limit: str = DEFAULT_MEMORY_LIMIT):
    """A dlt pipeline named `name` into `dataset` of the warehouse; its state lives beside the warehouse."""
    import dlt

    target = warehouse or warehouse_path()
    remove_unfinished_schema_saves(pipelines_dir(target) / name)
    # A merge loads into <dataset>_staging first; emptied after each load, so no second copy of the last load's
    # rows stays in the warehouse file.
    dlt.config["load.truncate_staging_dataset"] = True
    return dlt.pipeline(
        pipeline_name=name,
        destination=dlt_destination(target, memory_limit=memory_limit),
        dataset_name=dataset,
        pipelines_dir=str(pipelines_dir(target)),
    )


def remove_unfinished_schema_saves(working_dir: Path) -> None:
    """dlt saves a schema by writing a temporary file beside it (a random name without the `.schema.json`
    ending) and renaming it; a run killed in between leaves that file, which dlt then takes for a schema with
    an invalid name and refuses to run. Only whole saves are kept."""
    for leftover in (working_dir / "schemas").glob("*"):
        if leftover.is_file() and not leftover.name.endswith(".schema.json"):
            leftover.unlink()


RESUMED_LOAD_MARKER = "resumed_load_unchecked"


def finish_pending_load(pipeline, stream) -> bool:
    """Load what an earlier, interrupted run of this pipeline left pending; True if there was any.

    dlt records a load job as done a moment after the destination committed it: a run killed in between has
    that job loaded again when its package is resumed. Every raw row of the warehouse is unique (a file and
    line, a key, a fetch time), so after a resumed load the copies are removed. A marker beside dlt's state
    stands until that is done: a run killed between the resumed load and the clean-up leaves it to the next.
    (dlt's `filesystem` destination writes a job's file again under the same name: nothing to clean.)"""
    unchecked = Path(pipeline.working_dir) / RESUMED_LOAD_MARKER
    pending = pipeline.has_pending_data
    if pending:
        print(f"{pipeline.pipeline_name}: finishing the load an earlier run left pending", file=stream, flush=True)
        if pipeline.list_normalized_load_packages() and _into_duckdb(pipeline):
            unchecked.touch()  # a package dlt had started loading: one of its jobs may run a second time
        pipeline.normalize()
        pipeline.load()
    if unchecked.exists():
        removed = remove_rows_loaded_twice(pipeline)
        if removed:
            print(
                f"{pipeline.pipeline_name}: removed {removed:,} rows the interrupted load had committed twice",
                file=stream,
                flush=True,
            )
        unchecked.unlink()
    return pending


def _into_duckdb(pipeline) -> bool:
    return pipeline.destination is not None and pipeline.destination.destination_type.endswith(".duckdb")


def remove_rows_loaded_twice(pipeline) -> int:
    """Remove every copy beyond the first of a row in the pipeline's tables (dlt's own tables aside); returns
    how many were removed. Reads each table whole: for after a resumed load, not for every run."""
    with pipeline.sql_client() as client:
        columns: dict[str, list[str]] = {}
        for table, column in client.execute_sql(
            """select table_name, column_name from information_schema.columns
                   where table_schema = %s and not starts_with(table_name, '_')
                   order by table_name, ordinal_position""",
            pipeline.dataset_name,
        ):
            columns.setdefault(table, []).append(client.escape_column_name(column))
        removed = 0
        for table, names in columns.items():
            qualified = client.make_qualified_table_name(table)
            result = client.execute_sql(f"""
                delete from {qualified} where rowid in (
                    select rowid from (
                        select rowid, row_number() over (partition by {", ".join(names)} order by rowid) as copy
                        from {qualified}) where copy > 1)""")
            removed += result[0][0] if result else 0
        return removed


def unwrap(failure: BaseException, error_type: type[Exception]) -> BaseException:
    """dlt wraps what a resource raised in its own step error; our own errors already say what failed and
    what to do, so the first `error_type` in the chain is returned, else `failure` itself."""
    seen: BaseException | None = failure
    while seen is not None:
        if isinstance(seen, error_type):
            return seen
        seen = seen.__cause__ or seen.__context__
    return failure


def run_in_steps(pipeline, source):
    """`pipeline.run(source)` step by step, handing the memory the extract freed back to the operating system
    before the load: Python and Arrow keep freed memory for reuse, and DuckDB's load would stack its own
    on top (Directo's 1M-customer load peaks about 30 MB lower this way)."""
    pipeline.sync_destination()  # as `run` does: state and schemas from the destination when they are newer
    pipeline.extract(source)
    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    _trim_malloc()
    pipeline.normalize()
    return pipeline.load()


def _trim_malloc() -> None:
    """glibc's malloc_trim where there is one (Linux); elsewhere freed memory stays with the process."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
