"""Benchmark: the same world (about 10M e-mail events by default) built by the same dbt project on DuckDB
(target dev, the warehouse file) and on Apache Spark (target spark, local session on this machine's cores,
sources read from the lake's parquet), each a full `dbt build` (models, seeds, unit and data tests). Both
loads use the real loaders from the stand-ins; only the dbt build is timed. No target: the ratio says where
one machine stands against Spark on the same cores (see README, "The same project on Apache Spark").

Newsletters go mostly through Clang here (the Spotler stand-in pages events with OFFSET and would dominate
the set-up time, not the measurement). Needs Java 17 and the `spark` extra.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import report
from worlds import END, add_world_arguments, write_benchmark_world

from mail_warehouse.lake import load_into_lake
from mail_warehouse.settings import PROJECT_DIR
from mail_warehouse_demo.standins.stack import StandinStack


def timed(command: list[str], env: dict[str, str], what: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=PROJECT_DIR, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{what} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_world_arguments(parser)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    try:
        end = END
        events = write_benchmark_world(args, work / "world")
        dbt = str(Path(sys.executable).with_name("dbt"))
        vars_ = ["--vars", f"{{as_of_date: '{end}'}}"]
        with StandinStack(work / "world", work / "state") as stack:
            # the loaders read their settings from the environment, in this process (the lake) and the CLI's
            os.environ.update(
                {
                    **stack.environment(),
                    "SOURCES__SPOTLER__START_DATE": "2025-01-01",
                    "SOURCES__SPOTLER__PAGE_SIZE": "10000",
                }
            )
            env = {
                **os.environ,
                "WAREHOUSE_PATH": str(work / "warehouse.duckdb"),
                "DESTINATION__FILESYSTEM__BUCKET_URL": str(work / "lake"),
                "SPARK_HOME_DIR": str(work / "spark"),
                "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
            }
            for source in ("clang", "spotler", "directo"):
                timed([sys.executable, "-m", "mail_warehouse", "load", source], env, f"warehouse load {source}")
            load_into_lake(
                bucket_url=str(work / "lake"), pipelines_dir=work / "lake_pipelines", spotler_now=stack.spotler_api.now
            )
        project = ["--profiles-dir", str(PROJECT_DIR), "--project-dir", str(PROJECT_DIR)]
        duckdb_seconds = timed(
            [dbt, "build", "--full-refresh", *vars_, *project],
            {**env, "DBT_TARGET_PATH": str(work / "target_duckdb"), "DBT_LOG_PATH": str(work / "logs_duckdb")},
            "dbt build (duckdb)",
        )
        spark_seconds = timed(
            [dbt, "build", "--target", "spark", "--full-refresh", *vars_, *project],
            {**env, "DBT_TARGET_PATH": str(work / "target_spark"), "DBT_LOG_PATH": str(work / "logs_spark")},
            "dbt build --target spark",
        )
        print(f"world: {events:,} e-mail events, {os.cpu_count()} cores")
        print(f"dbt build on DuckDB: {duckdb_seconds:.1f} s")
        print(f"dbt build on Spark (local session, JVM start included): {spark_seconds:.1f} s")
        report(
            "spark_vs_duckdb",
            spark_seconds / duckdb_seconds,
            None,
            events=events,
            duckdb_seconds=duckdb_seconds,
            spark_seconds=spark_seconds,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
