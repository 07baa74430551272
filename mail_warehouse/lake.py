"""The lake: the three sources loaded unchanged into dlt's `filesystem` destination as parquet, the input of
the Spark target (`dbt build --target spark`, see macros/spark_lake.sql).

The lake is `[destination.filesystem] bucket_url` (DESTINATION__FILESYSTEM__BUCKET_URL): a local folder
(default var/lake in the repo) or any bucket dlt's filesystem destination writes (s3://..., with its
credentials in dlt's secrets). Each source writes <bucket_url>/<dataset>/<table>/<load_id>.<file_id>.parquet;
the destination appends, and the Spark target keeps the latest load of each key.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mail_warehouse.pipelines import finish_pending_load, remove_unfinished_schema_saves, unwrap
from mail_warehouse.settings import PROJECT_DIR, connect, sql_literal

if TYPE_CHECKING:
    from mail_warehouse_sources.suppression import Suppression

BUCKET_URL_VARIABLE = "DESTINATION__FILESYSTEM__BUCKET_URL"
DEFAULT_LAKE = PROJECT_DIR / "var" / "lake"


def lake_url() -> str:
    """The lake's bucket_url: the setting, a local folder made absolute (Spark and dlt then agree on it)."""
    url = os.environ.get(BUCKET_URL_VARIABLE, "").strip() or str(DEFAULT_LAKE)
    if "://" in url:
        return url.rstrip("/")
    return str(Path(url).expanduser().resolve())


def lake_pipeline(name: str, dataset: str, bucket_url: str | None = None, pipelines_dir: Path | None = None):
    """A dlt pipeline named `name` writing `dataset` as parquet into the lake; its state lives beside a local
    lake (in .dlt_pipelines/lake under the repo for a bucket)."""
    import dlt

    url = bucket_url or lake_url()
    if pipelines_dir is None:
        pipelines_dir = (Path(url).parent if "://" not in url else PROJECT_DIR) / ".dlt_pipelines" / "lake"
    remove_unfinished_schema_saves(pipelines_dir / f"lake_{name}")
    return dlt.pipeline(
        pipeline_name=f"lake_{name}",
        destination=dlt.destinations.filesystem(bucket_url=url),
        dataset_name=dataset,
        pipelines_dir=str(pipelines_dir),
    )


def run_into_lake(pipeline, data) -> None:
    """Run `data` into the lake as parquet. The lake appends: each row carries its load's id, by which the Spark
    target keeps a key's latest row (dlt adds it to Arrow tables, as the loaders yield, only when asked: asked
    for this run only, not for the process)."""
    import dlt

    with dlt.config.values({"normalize.parquet_normalizer.add_dlt_load_id": True}):
        pipeline.run(data, loader_file_format="parquet")


def load_into_lake(
    systems: tuple[str, ...] = ("clang", "spotler", "directo"),
    *,
    bucket_url: str | None = None,
    pipelines_dir: Path | None = None,
    spotler_now=None,
    directo_full: bool = False,
    stream=sys.stderr,
) -> dict[str, int]:
    """Run each system's dlt source into the lake; returns the rows written per system. `directo_full`: ask
    Directo for every customer and mark those missing from the answer deleted (`warehouse load directo
    --full`), as in the warehouse."""
    from dlt.pipeline.exceptions import PipelineStepFailed

    from mail_warehouse.privacy import current_suppression
    from mail_warehouse_sources import clang, directo, spotler

    log = lambda message: print(message, file=stream, flush=True)  # noqa: E731
    loaded_at = dt.datetime.now(dt.UTC)
    # the warehouse's list of forgotten people: nobody on it is written into the lake either
    suppression = current_suppression()
    sources = {
        "clang": (clang.DATASET, lambda: clang.clang_source(suppression=suppression), Exception),
        "spotler": (
            spotler.DATASET,
            lambda: spotler.spotler_source(now=spotler_now, log=log, suppression=suppression),
            spotler.SpotlerError,
        ),
        "directo": (
            directo.DATASET,
            lambda: directo.directo_source(full=directo_full, loaded_at=loaded_at, log=log, suppression=suppression),
            directo.DirectoError,
        ),
    }
    url = bucket_url or lake_url()
    if "://" not in url:
        Path(url).mkdir(parents=True, exist_ok=True)
    written = {}
    for system in systems:
        dataset, make_source, error_type = sources[system]
        pipeline = lake_pipeline(system, dataset, url, pipelines_dir)
        finish_pending_load(pipeline, stream)
        log(f"{system}: loading into the lake {url}/{dataset}")
        try:
            run_into_lake(pipeline, make_source())
        except PipelineStepFailed as failure:
            raise unwrap(failure, error_type) from None
        row_counts = pipeline.last_trace.last_normalize_info.row_counts
        written[system] = sum(rows for table, rows in row_counts.items() if not table.startswith("_dlt"))
        if system == "directo" and directo_full:
            deleted = mark_missing_customers_deleted(pipeline, url, loaded_at, suppression)
            log(f"directo: {deleted:,} customers no longer in Directo's answer marked deleted in the lake")
    return written


def mark_missing_customers_deleted(
    pipeline, url: str, loaded_at: dt.datetime, suppression: Suppression | None = None
) -> int:
    """After a full Directo load into the lake: every customer whose latest version is not of this load is gone
    from Directo. The lake appends, so each gets a new version, its latest with `deleted_at` set, loaded after
    the full answer (the Spark target reads the latest load of each code, as `latest_by` declares). The same
    rule as the warehouse's `load directo --full`; returns how many were marked. A forgotten person's customer
    (`suppression`) is missing from the answer because the source left it out: it is never written again."""
    import dlt

    from mail_warehouse_sources.directo import DATASET, PERSON_COLUMNS, TEXT_NAMING_PEOPLE

    answer_loads = pipeline.last_trace.last_normalize_info.loads_ids  # none: the answer held no customer
    folder = Path(url) / DATASET / "customers"
    if not any(folder.glob("*.parquet")):
        return 0
    files = f"{folder}/*.parquet"
    con = connect(":memory:")
    try:
        deleted = con.sql(
            f"""
            with loaded as (select * from read_parquet({sql_literal(files)}, union_by_name = true)),
            latest as (
                select * from loaded
                qualify row_number() over (partition by code order by _dlt_load_id desc) = 1)
            select * exclude (_dlt_load_id) replace (cast($at as timestamptz) as deleted_at)
            from latest
            where deleted_at is null and ($answer is null or _dlt_load_id <> $answer)""",
            params={"at": loaded_at, "answer": answer_loads[-1] if answer_loads else None},
        ).to_arrow_table()
    finally:
        con.close()
    if suppression:
        deleted, _ = suppression.drop_rows(deleted, PERSON_COLUMNS, TEXT_NAMING_PEOPLE)
    if deleted.num_rows:
        run_into_lake(pipeline, dlt.resource(deleted, name="customers", write_disposition="append"))
    return deleted.num_rows


SPARK_HOME_VARIABLE = "SPARK_HOME_DIR"


class SparkTablesError(RuntimeError):
    """What Spark built cannot be copied into the warehouse file; the message names the tables and what to do."""


def spark_home() -> Path:
    """Where the session target keeps its catalog (Derby metastore) and its tables: SPARK_HOME_DIR, default
    var/spark in the repo (profiles.yml reads the same variable; a relative path is from the repo root)."""
    configured = Path(os.environ.get(SPARK_HOME_VARIABLE) or "var/spark").expanduser()
    return configured if configured.is_absolute() else PROJECT_DIR / configured


def spark_table_locations(target_arguments: list[str], schemas: tuple[str, ...]) -> dict[str, str]:
    """Every table of `schemas` and where its files are, as Spark reports them (`schema.table` -> location), asked
    through dbt on the build's own target: the session, or the cluster's Thrift server."""
    import json

    from mail_warehouse.build import dbt_operation

    try:
        lines = dbt_operation("spark_table_locations", {"schemas": list(schemas)}, target_arguments)
    except RuntimeError as failed:  # dbt's own output above says why
        raise SparkTablesError(f"Spark could not be asked where its tables are: {failed}") from None
    for line in lines:
        if line.startswith("spark_tables "):
            return {f"{t['schema']}.{t['table']}": t["location"] for t in json.loads(line[len("spark_tables ") :])}
    raise SparkTablesError(
        f"Spark did not list its tables (dbt run-operation spark_table_locations {' '.join(target_arguments)} "
        "said nothing): see dbt's output above"
    )


def local_folder(location: str) -> Path:
    """A table location Spark reports (`file:/...`, `file:///...` or a bare path) as a folder this machine reads."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(location)
    if parts.scheme in ("", "file"):
        return Path(unquote(parts.path))
    raise SparkTablesError(
        f"a table Spark built is at {location}, which this machine does not read as a folder: copying the marts "
        "from a bucket or HDFS warehouse is not supported (make the Thrift server's spark.sql.warehouse.dir a "
        "folder this machine shares)"
    )


def copy_spark_tables(
    database: Path, locations: dict[str, str], declared_types: dict[str, dict[str, str]] | None = None
) -> dict[str, int]:
    """Copy each table (`schema.table` -> its location, as `spark_table_locations` gives them) into the DuckDB
    file `database` under the same schema and name, read from its parquet files; a column `declared_types` names
    (`schema.table` -> column -> DuckDB type, the models' contracts) is cast to it, so the copy has the types the
    DuckDB build gives, whatever Spark's parquet encoding (INT96 or not). Returns the rows per table."""
    folders = {name: local_folder(location) for name, location in sorted(locations.items())}  # all, before any copy
    copied = {}
    con = connect(database)
    try:
        con.execute("begin")  # every table or none: publish never reads a mix of two builds
        for name, folder in folders.items():
            schema, table = name.split(".")
            files = sql_literal(str(folder / "*.parquet"))
            declared = (declared_types or {}).get(name, {})
            columns = [row[0] for row in con.execute(f"describe select * from read_parquet({files})").fetchall()]
            select = ", ".join(f'cast("{c}" as {declared[c]}) as "{c}"' if c in declared else f'"{c}"' for c in columns)
            con.execute(f'create schema if not exists "{schema}"')
            con.execute(f'create or replace table "{schema}"."{table}" as select {select} from read_parquet({files})')
            counted = con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()
            assert counted is not None  # count(*) answers one row
            copied[name] = counted[0]
        con.execute("commit")
    finally:
        con.close()
    return copied


def session_table_locations(schemas: tuple[str, ...], home: Path | None = None) -> dict[str, str]:
    """The tables a session-target build in another process left in its warehouse folder (SPARK_HOME_DIR):
    for the tests and benchmarks that run dbt on Spark themselves and read what it built without a session."""
    warehouse = (home or spark_home()) / "warehouse"
    return {
        f"{schema}.{table.name}": str(table)
        for schema in schemas
        if (warehouse / f"{schema}.db").is_dir()
        for table in sorted((warehouse / f"{schema}.db").iterdir())
        if table.is_dir() and any(table.glob("*.parquet"))
    }
