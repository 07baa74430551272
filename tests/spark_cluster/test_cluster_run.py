"""`warehouse run` on a real Spark standalone cluster over Thrift (`make test-spark-cluster`): a master, a worker and
the Thrift server started from pyspark's own jars on loopback, the server's default time zone not UTC. The marts it
publishes equal the DuckDB run's of the same world on the same day, with the same column types; an executor on the
worker did the work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mail_warehouse.settings import connect, sql_literal
from mail_warehouse_demo.standins.stack import StandinStack
from tests.conftest import warehouse_cli
from tests.test_crash_matrix import WHEN_SOMETHING_HAPPENED

pytestmark = [pytest.mark.spark_cluster, pytest.mark.slow]

PUBLISHED = ("marts", "segments")
# compared value for value; the rates (floating point, summed in another order) and the JSON and list columns
# (spelled by each engine) are compared by their row counts only
COMPARED_TYPES = ("VARCHAR", "BOOLEAN", "DATE", "TIMESTAMP WITH TIME ZONE", "BIGINT", "INTEGER")


def columns_of(database: Path) -> dict[str, dict[str, str]]:
    """`schema.table` -> column -> type, of the published schemas."""
    con = connect(database, read_only=True)
    try:
        found: dict[str, dict[str, str]] = {}
        for schema, table, column, kind in con.execute(
            "select table_schema, table_name, column_name, data_type from information_schema.columns "
            "where table_schema in ('marts', 'segments') order by table_schema, table_name, ordinal_position"
        ).fetchall():
            found.setdefault(f"{schema}.{table}", {})[column] = kind
        return found
    finally:
        con.close()


def differing_rows(duckdb_copy: Path, spark_copy: Path, table: str, columns: list[str]) -> tuple[int, int, int]:
    """(rows, rows only the DuckDB run has, rows only the Spark run has) of `table` over `columns`."""
    con = connect(":memory:")
    try:
        con.execute(f"attach {sql_literal(str(duckdb_copy))} as d (read_only)")
        con.execute(f"attach {sql_literal(str(spark_copy))} as s (read_only)")
        selected = ", ".join(f'"{c}"' for c in columns)
        (rows,) = con.execute(f"select count(*) from d.{table}").fetchone()
        (only_duckdb,) = con.execute(
            f"select count(*) from (select {selected} from d.{table} except all select {selected} from s.{table})"
        ).fetchone()
        (only_spark,) = con.execute(
            f"select count(*) from (select {selected} from s.{table} except all select {selected} from d.{table})"
        ).fetchone()
        return rows, only_duckdb, only_spark
    finally:
        con.close()


def test_warehouse_run_on_a_cluster_publishes_what_the_duckdb_run_does(world_dir, spark_cluster, tmp_path):
    assert spark_cluster.time_zone != "UTC"
    with StandinStack(world_dir, tmp_path / "standins") as stack:
        company = {
            **os.environ,
            **stack.environment(),
            "SOURCES__SPOTLER__START_DATE": "2025-01-01",
            "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
        }
        runs, envs = {}, {}
        for engine in ("duckdb", "spark"):
            home = tmp_path / engine
            env = {
                **company,
                "WAREHOUSE_PATH": str(home / "warehouse.duckdb"),
                "DBT_TARGET_PATH": str(home / "target"),
                "DBT_LOG_PATH": str(home / "logs"),
                "EXPORT__DEPLOYTEQ__LOCAL_DIR": str(home / "exports"),
            }
            if engine == "spark":
                env.update(
                    {
                        "WAREHOUSE__ENGINE": "spark",
                        "WAREHOUSE__SPARK_TARGET": "spark_thrift",
                        "SPARK_THRIFT_HOST": spark_cluster.host,
                        "SPARK_THRIFT_PORT": str(spark_cluster.thrift_port),
                        "DESTINATION__FILESYSTEM__BUCKET_URL": str(home / "lake"),
                    }
                )
            envs[engine] = env
            result = warehouse_cli("run", env=env, timeout=2400)
            output = result.stdout + result.stderr
            assert result.returncode == 0, output[-5000:]
            assert "publish ok" in output, output[-3000:]
            runs[engine] = home / "analytics.duckdb"
    # the master shows the Thrift server's application holding the worker's cores; its executor there ran the tasks
    master = spark_cluster.master_status()
    (worker,) = [w for w in master["workers"] if w["state"] == "ALIVE"]
    assert worker["coresused"] > 0 and any(app["state"] == "RUNNING" for app in master["activeapps"]), master
    assert spark_cluster.worker_ran_tasks(), spark_cluster.executors()
    on_duckdb, on_spark = (columns_of(runs[engine]) for engine in ("duckdb", "spark"))
    assert set(on_spark) == set(on_duckdb) and len(on_duckdb) >= 9, (sorted(on_duckdb), sorted(on_spark))
    assert on_spark == on_duckdb  # every column, with the DuckDB build's type (instants: with time zone)
    compared_rows = 0
    for table, columns in on_duckdb.items():
        compared = [
            c for c, kind in columns.items() if kind in COMPARED_TYPES and not WHEN_SOMETHING_HAPPENED.search(c)
        ]
        rows, only_duckdb, only_spark = differing_rows(runs["duckdb"], runs["spark"], table, compared)
        assert (only_duckdb, only_spark) == (0, 0), (table, rows, only_duckdb, only_spark)
        compared_rows += rows
    assert compared_rows > 10_000  # the test world: about 20,000 rows in all

    # a build that leaves a mart out (only `mailings` built, `contacts` dropped on the cluster) copies nothing
    # and fails naming the table, instead of publishing what is there
    connection = spark_cluster.connect()
    try:
        connection.cursor().execute("drop table marts.contacts")
    finally:
        connection.close()
    partial = warehouse_cli("build", "--", "--select", "mailings", env=envs["spark"], timeout=1200)
    assert partial.returncode == 1, partial.stdout[-3000:] + partial.stderr[-3000:]
    assert "Spark holds no table for marts.contacts" in partial.stderr, partial.stderr[-3000:]
