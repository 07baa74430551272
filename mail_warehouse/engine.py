"""Which engine builds the warehouse: `[warehouse] engine` (env WAREHOUSE__ENGINE), `duckdb` (default) or
`spark`.

duckdb: the loaders load the warehouse file and dbt builds it (target dev).
spark: `warehouse load` writes each source into the lake (mail_warehouse.lake), `warehouse build` runs
`dbt build --target spark` on it, and then copies the marts and segments Spark built into the warehouse
file, from which `publish` (analytics.duckdb, the dashboard, BI) and `export` (the segment's CSV trigger)
work unchanged. The export's log, which the next build reads for the re-activation cooldown, goes into the
lake before each Spark build. `warehouse run` composes these steps as always, so one setting chooses the
engine for the whole job.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mail_warehouse.lake import SparkTablesError, copy_spark_tables, lake_url, load_into_lake, spark_table_locations
from mail_warehouse.settings import connect, sql_literal, warehouse_path
from mail_warehouse.steps import FAILED, WRONG_SETTING

# What Spark built that publish and the export read from the warehouse file.
SPARK_BUILT_SCHEMAS = ("marts", "segments")
EXPORT_LOG_TABLES = ("csv_trigger_log", "csv_trigger_contacts", "spotler_export_log", "spotler_export_contacts")


def warehouse_engine() -> str:
    """`[warehouse] engine`; a wrong value is a configuration error naming the setting."""
    from mail_warehouse.config import WarehouseConfiguration, resolve

    return resolve(WarehouseConfiguration, "warehouse").engine


def current_engine() -> DuckDBEngine | SparkEngine:
    """The engine `[warehouse] engine` names: where every difference between the two lives."""
    return SparkEngine() if warehouse_engine() == "spark" else DuckDBEngine()


class DuckDBEngine:
    """The warehouse file is the warehouse: the loaders load it and dbt's dev target builds it."""

    name = "duckdb"

    def dbt_target_arguments(self) -> list[str]:
        return []  # dev, profiles.yml's default

    def load(self, source: str, *, full: bool = False, contacts=None, stream=sys.stderr) -> int:
        from mail_warehouse import loads

        if source == "clang":
            summary = loads.load_clang()
            print(summary.line())
            for problem in summary.failed:
                print(f"error: clang: {problem}", file=stream)
            return FAILED if summary.failed else 0
        if source == "spotler":
            if contacts is not None and not contacts.is_file():
                print(f"error: --contacts {contacts}: no such file", file=stream)
                return WRONG_SETTING
            print("\n".join(loads.load_spotler(contacts_file=contacts).lines()))
            return 0
        print(loads.load_directo(full=full).line())
        return 0

    def before_build(self) -> None:
        pass

    def after_build(self) -> dict[str, int]:
        return {}

    def loaded_sources(self, schemas: dict[str, str], warehouse: Path | None = None) -> list[str]:
        """Of `schemas` (source -> raw schema), the sources whose raw schema in the warehouse file holds a load
        log."""
        target = warehouse or warehouse_path()
        if not target.is_file():
            return []
        con = connect(target, read_only=True)
        try:
            found = {
                schema
                for (schema,) in con.execute(
                    "select table_schema from information_schema.tables where table_name = '_dlt_loads'"
                ).fetchall()
            }
        finally:
            con.close()
        return [source for source, schema in schemas.items() if schema in found]


class SparkEngine:
    """The sources load into the lake, dbt's spark target builds on it, and what Spark built is copied into
    the warehouse file for publish and the export."""

    name = "spark"

    def dbt_target_arguments(self) -> list[str]:
        """`[warehouse] spark_target`: profiles.yml's session target, the cluster's, or one of the company's own."""
        from mail_warehouse.config import WarehouseConfiguration, resolve

        return ["--target", resolve(WarehouseConfiguration, "warehouse").spark_target]

    def load(self, source: str, *, full: bool = False, contacts=None, stream=sys.stderr) -> int:
        return load_source_into_lake(source, full=full, contacts=contacts, stream=stream)

    def before_build(self) -> None:
        if "://" not in lake_url():
            export_log_into_lake()

    def after_build(self) -> dict[str, int]:
        """The marts and segments Spark built, found through Spark itself (the tables and locations it reports on
        the build's target) and copied into the warehouse file with the types the models declare. Fails naming
        any mart or segment of the project that Spark does not hold."""
        from mail_warehouse.build import project_manifest, project_models

        manifest = project_manifest()
        models = {
            f"{node['schema']}.{node.get('alias') or node['name']}": node
            for layer in SPARK_BUILT_SCHEMAS
            for node in project_models(manifest, layer)
            if node["config"].get("materialized") != "ephemeral"
        }
        locations = spark_table_locations(self.dbt_target_arguments(), SPARK_BUILT_SCHEMAS)
        missing = sorted(set(models) - set(locations))
        if missing:
            raise SparkTablesError(
                f"Spark holds no table for {', '.join(missing)} after the build: nothing copied into "
                f"{warehouse_path().name}, so publish and export have nothing new to read"
            )
        declared = {
            name: {c: column["data_type"] for c, column in node["columns"].items() if column.get("data_type")}
            for name, node in models.items()
        }
        copied = copy_spark_tables(warehouse_path(), {name: locations[name] for name in models}, declared)
        print(
            f"copied {len(copied)} tables ({sum(copied.values()):,} rows) that Spark built into {warehouse_path().name}"
        )
        return copied

    def loaded_sources(self, schemas: dict[str, str], warehouse: Path | None = None) -> list[str]:
        """Of `schemas`, the sources the lake holds a load log of. A bucket cannot be listed from here: every
        configured source is taken as loaded, and dbt's freshness check says otherwise."""
        from mail_warehouse.settings import configured_sources

        url = lake_url()
        if "://" in url:
            return [source for source in configured_sources() if source in schemas]
        return [
            source for source, schema in schemas.items() if any((Path(url) / schema / "_dlt_loads").glob("*.jsonl"))
        ]


def load_source_into_lake(source: str, *, full: bool = False, contacts=None, stream=sys.stderr) -> int:
    """`warehouse load <source>` with the spark engine: the source's dlt source into the lake."""
    if contacts:
        print(
            f"error: load {source}: --contacts loads the DuckDB warehouse; with warehouse.engine spark the "
            "build makes every contact's history from the per-mailing data",
            file=stream,
        )
        return WRONG_SETTING
    if full and "://" in lake_url():
        print(
            f"error: load {source} --full marks deleted customers by reading the lake's parquet files, which "
            f"works on a local lake only ({lake_url()} is a bucket): run it where the lake is a folder",
            file=stream,
        )
        return WRONG_SETTING
    written = load_into_lake((source,), directo_full=full, stream=stream)
    print(f"{source}: {written[source]:,} rows into the lake {lake_url()}")
    return 0


def export_log_into_lake() -> None:
    """The export's log (in the warehouse file) as parquet in the lake's `exports` folder, replacing the copy
    there, so the Spark build's cooldown sees every trigger sent so far."""
    from pathlib import Path

    warehouse = warehouse_path()
    if not warehouse.exists():
        return
    con = connect(warehouse, read_only=True)
    try:
        present = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'exports'"
            ).fetchall()
        }
        for table in EXPORT_LOG_TABLES:
            if table not in present:
                continue
            folder = Path(lake_url()) / "exports" / table  # a local lake; a bucket takes the log through dlt
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / "log.parquet"
            con.execute(f"copy (select * from exports.{table}) to {sql_literal(str(target))} (format parquet)")
    finally:
        con.close()
