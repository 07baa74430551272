"""Settings shared by every step: where the warehouse lives and how DuckDB is opened.

Source settings (hosts, globs, keys) are read the dlt way, from `.dlt/config.toml`, `.dlt/secrets.toml`
and environment variables such as `SOURCES__CLANG__HOST`; this module only holds what every step shares.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

PROJECT_DIR = Path(__file__).resolve().parent.parent
WAREHOUSE_PATH_ENV = "WAREHOUSE_PATH"
DEFAULT_WAREHOUSE_FILE = "warehouse.duckdb"
SESSION_TIME_ZONE = "UTC"


def sql_literal(value: str) -> str:
    """A string as a SQL literal, for the few places where DuckDB takes no parameter (COPY, read_csv, ATTACH)."""
    return "'" + value.replace("'", "''") + "'"


def warehouse_path() -> Path:
    """The one DuckDB file every step uses: env WAREHOUSE_PATH, default warehouse.duckdb in the repo root.

    A relative path is taken from the repo root, which is where dbt runs and reads the same variable.
    """
    configured = Path(os.environ.get(WAREHOUSE_PATH_ENV) or DEFAULT_WAREHOUSE_FILE)
    return configured if configured.is_absolute() else PROJECT_DIR / configured


def connect(path: Path | str | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file with the session time zone set to UTC, as every step must."""
    target = Path(path) if path is not None else warehouse_path()
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(target), read_only=read_only)
    # Set after connecting: DuckDB applies connect-time config before its ICU time zones are loaded.
    # GLOBAL, so cursors and the connections dlt opens from this one run in UTC as well.
    con.execute(f"set global TimeZone = '{SESSION_TIME_ZONE}'")
    return con


def dlt_destination(warehouse: Path | None = None, *, memory_limit: str = "1GB"):
    """dlt's DuckDB destination for the warehouse: sessions in UTC, DuckDB's memory bounded (it spills)."""
    import dlt
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    credentials = DuckDbCredentials(str(warehouse or warehouse_path()))
    credentials.session_timezone = SESSION_TIME_ZONE
    credentials.global_config = {"memory_limit": memory_limit}
    return dlt.destinations.duckdb(credentials=credentials)


def pipelines_dir(warehouse: Path | None = None) -> Path:
    """dlt's working folders (state, pending load packages) live beside the warehouse they load into."""
    target = warehouse or warehouse_path()
    return target.parent / ".dlt_pipelines" / target.stem


def use_project_dlt_settings() -> None:
    """Point dlt at the repo's `.dlt/` folder whatever the working directory, unless the user chose one."""
    os.environ.setdefault("DLT_PROJECT_DIR", str(PROJECT_DIR))


def make_pipeline(name: str, dataset: str, warehouse: Path | None = None, *, memory_limit: str = "1GB"):
    """A loader's dlt pipeline into `dataset` of the warehouse; its state lives beside the warehouse."""
    import dlt

    target = warehouse or warehouse_path()
    return dlt.pipeline(pipeline_name=name, destination=dlt_destination(target, memory_limit=memory_limit),
                        dataset_name=dataset, pipelines_dir=str(pipelines_dir(target)))


def finish_pending_load(pipeline, stream) -> bool:
    """Load what an earlier, interrupted run of this pipeline left extracted; True if there was any."""
    if not pipeline.has_pending_data:
        return False
    print(f"{pipeline.pipeline_name}: finishing the load an earlier run left pending", file=stream, flush=True)
    pipeline.normalize()
    pipeline.load()
    return True


def unwrap(failure: BaseException, error_type: type[Exception]) -> BaseException:
    """dlt wraps what a resource raised; our own errors already say what failed and what to do."""
    seen = failure
    while seen is not None:
        if isinstance(seen, error_type):
            return seen
        seen = seen.__cause__ or seen.__context__
    return failure
