"""`warehouse run` with `[warehouse] engine = spark`: the sources go into the lake, dbt builds on Spark, and
publish and export work from what Spark built, and a forgotten person leaves the lake and Spark's tables (needs
Java 17 and the `spark` extra: `make test-spark`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tests.test_end_to_end as end_to_end
from mail_warehouse_demo.standins.stack import StandinStack
from tests.conftest import query_warehouse, warehouse_cli
from tests.test_forget import traces

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_warehouse_run_with_the_spark_engine(world_dir, tmp_path):
    with StandinStack(world_dir, tmp_path / "standins") as stack:
        env = {
            **os.environ,
            **stack.environment(),
            "WAREHOUSE__ENGINE": "spark",
            "WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
            "SOURCES__SPOTLER__START_DATE": "2025-01-01",
            "DESTINATION__FILESYSTEM__BUCKET_URL": str(tmp_path / "lake"),
            "SPARK_HOME_DIR": str(tmp_path / "spark"),
            "DBT_TARGET_PATH": str(tmp_path / "target"),
            "DBT_LOG_PATH": str(tmp_path / "logs"),
            "EXPORT__DEPLOYTEQ__LOCAL_DIR": str(tmp_path / "exports"),
            "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
        }
        result = warehouse_cli("run", env=env, timeout=1800)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # freshness reads the lake's load logs on Spark, as the warehouse's on DuckDB
    output = result.stdout + result.stderr
    for source in ("clang", "spotler", "directo"):
        assert f"{source}: last loaded 0 h ago" in output, output[-3000:]
    assert "source freshness ok" in output
    # every source went into the lake, none into the warehouse file
    for dataset, table in (("raw_clang", "activities"), ("raw_spotler", "opens"), ("raw_directo", "customers")):
        assert any((tmp_path / "lake" / dataset / table).glob("*.parquet")), (dataset, table)
    warehouse = tmp_path / "warehouse.duckdb"
    raw = query_warehouse(warehouse, "select count(*) from information_schema.tables where table_schema like 'raw_%'")
    assert raw == [(0,)]
    # the BI copy holds Spark's marts: every mailing's counts as the generator knows them
    analytics = Path(env["WAREHOUSE_PATH"]).with_name("analytics.duckdb")
    end_to_end.test_every_mailing_has_the_counts_the_generator_knows((None, analytics), world_dir)
    # the export read Spark's segment: a run without candidates skips, one with them uploads; either way
    # the run said so, and what it uploaded is in the export log
    assert "export ok" in result.stderr or "export ok" in result.stdout, result.stderr[-2000:]
    # a person forgotten: gone from the lake's and Spark's parquet files and from every DuckDB file
    (person,) = query_warehouse(
        warehouse,
        "select email from marts.contacts where clang_customer_id is not null and spotler_external_id is not null "
        "and directo_customer_code is not null order by email limit 1",
    )[0]
    assert traces(tmp_path / "lake", person) and traces(tmp_path / "spark", person)
    forgot = warehouse_cli("forget", person, env=env)
    assert forgot.returncode == 0, forgot.stderr[-3000:]
    assert "lake raw_clang" in forgot.stderr and "spark " in forgot.stderr, forgot.stderr[-3000:]
    assert traces(tmp_path, person, skip=(tmp_path / "standins",)) == []
