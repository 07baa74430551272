"""The same sources and models on Apache Spark: the test world loaded by the real loaders into the lake (dlt's
filesystem destination, parquet), `dbt build --target spark` (every model, seed, unit test and data test),
each mailing's counts against the generator's truth, and an incremental build after new days against a full
refresh of the same lake. Needs Java 17 and the `spark` extra: `make test-spark`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import tests.test_end_to_end as end_to_end
from mail_warehouse.lake import copy_spark_tables, load_into_lake, session_table_locations
from mail_warehouse.settings import PROJECT_DIR
from mail_warehouse_demo.standins.stack import StandinStack
from tests.conftest import query_warehouse
from tests.test_end_to_end import HELD_BACK_CLANG_FILES, HELD_BACK_SPOTLER, SPOTLER_HELD_FROM

pytestmark = [pytest.mark.spark, pytest.mark.slow]

WORLD_END = "2026-11-23"


@pytest.fixture(scope="module")
def lake(world_dir, tmp_path_factory) -> Path:
    """The test world in the lake, as the loaders write it."""
    root = tmp_path_factory.mktemp("spark")
    with StandinStack(world_dir, root / "standins") as stack, pytest.MonkeyPatch.context() as patch:
        for name, value in {**stack.environment(), "SOURCES__SPOTLER__START_DATE": "2025-01-01"}.items():
            patch.setenv(name, value)
        written = load_into_lake(
            bucket_url=str(root / "lake"), pipelines_dir=root / "pipelines", spotler_now=stack.spotler_api.now
        )
    assert all(rows > 0 for rows in written.values()), written
    return root / "lake"


def start_dbt_on_spark(lake: Path, spark_home: Path, *args: str) -> subprocess.Popen:
    """dbt on Spark in a Spark home of its own (metastore, tables, target, logs), started, not waited for."""
    spark_home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DESTINATION__FILESYSTEM__BUCKET_URL": str(lake),
        "SPARK_HOME_DIR": str(spark_home),
        "DBT_TARGET_PATH": str(spark_home / "target"),
        "DBT_LOG_PATH": str(spark_home / "logs"),
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
    }
    dbt = Path(sys.executable).with_name("dbt")
    with (spark_home / "dbt.out").open("w") as output:
        return subprocess.Popen(
            [
                str(dbt),
                *args,
                "--target",
                "spark",
                "--profiles-dir",
                str(PROJECT_DIR),
                "--project-dir",
                str(PROJECT_DIR),
            ],
            cwd=PROJECT_DIR,
            env=env,
            text=True,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def finish_dbt_on_spark(spark_home: Path, dbt: subprocess.Popen) -> None:
    try:
        dbt.wait(timeout=1800)
    finally:
        if dbt.returncode is None:
            dbt.kill()
            dbt.wait()
    output = (spark_home / "dbt.out").read_text()
    summary = [line for line in output.splitlines() if " ERROR " in line or " FAIL " in line or "Done." in line]
    assert dbt.returncode == 0, f"dbt on Spark failed in {spark_home}:\n" + "\n".join(summary) + "\n" + output[-4000:]


def dbt_on_spark(lake: Path, spark_home: Path, *args: str) -> None:
    finish_dbt_on_spark(spark_home, start_dbt_on_spark(lake, spark_home, *args))


def hold_back_the_last_days(lake: Path, held: Path) -> None:
    """Take the newest Clang files' rows and Spotler's events from SPOTLER_HELD_FROM on out of the lake."""
    held.mkdir()
    con = duckdb.connect()
    con.execute(f"""create table held_files as
                    select source_file from read_parquet('{lake}/raw_clang/loaded_files/*.parquet')
                    where file_kind = 'activity' order by loaded_at desc, source_file desc
                    limit {HELD_BACK_CLANG_FILES}""")
    moves = {
        "raw_clang/activities": "source_file in (select source_file from held_files)",
        **{f"raw_spotler/{table}": f"{column} >= '{SPOTLER_HELD_FROM}'" for table, column in HELD_BACK_SPOTLER.items()},
    }
    for folder, held_rows in moves.items():
        files = f"{lake}/{folder}/*.parquet"
        name = folder.replace("/", ".")
        con.execute(f"copy (select * from read_parquet('{files}') where {held_rows}) to '{held / name}.parquet'")
        con.execute(
            f"copy (select * from read_parquet('{files}') where not ({held_rows})) to '{held / name}.kept.parquet'"
        )
        for file in (lake / folder).glob("*.parquet"):
            file.unlink()
        shutil.move(held / f"{name}.kept.parquet", lake / folder / "kept.parquet")
    assert con.execute(f"select count(*) from '{held}/raw_clang.activities.parquet'").fetchone()[0] > 0
    con.execute(f"copy held_files to '{held}/files.parquet'")


def bring_in_the_held_back_days(lake: Path, held: Path) -> None:
    """As a later load would: the held-back Clang files arrive now (a new version of their loaded_files rows,
    a later load id), Spotler's events come in."""
    con = duckdb.connect()
    later_load = f"{time.time():.6f}"
    con.execute(f"""copy (select * replace (now() as file_loaded_at) from '{held}/raw_clang.activities.parquet')
                    to '{lake}/raw_clang/activities/later.parquet'""")
    con.execute(f"""copy (select * replace (now() as loaded_at, '{later_load}' as _dlt_load_id)
                          from read_parquet('{lake}/raw_clang/loaded_files/*.parquet')
                          where source_file in (select source_file from '{held}/files.parquet'))
                    to '{lake}/raw_clang/loaded_files/later.parquet'""")
    for table in HELD_BACK_SPOTLER:
        con.execute(
            f"copy (select * from '{held}/raw_spotler.{table}.parquet') to '{lake}/raw_spotler/{table}/later.parquet'"
        )


@pytest.fixture(scope="module")
def builds(lake) -> tuple[Path, Path]:
    """(incremental, full) as DuckDB files holding the tables Spark built: the lake without its last days
    built in full, then with them incrementally; and a full refresh of the whole lake in a Spark home of its
    own."""
    root = lake.parent
    hold_back_the_last_days(lake, root / "held")
    incremental, full = root / "spark_incremental", root / "spark_full"
    dbt_on_spark(
        lake,
        incremental,
        "build",
        "--resource-type",
        "seed",
        "--resource-type",
        "model",
        "--full-refresh",
        "--vars",
        "{as_of_date: '2026-11-20'}",
    )
    before_build = session_table_locations(("marts",), incremental)
    before = copy_spark_tables(root / "before.duckdb", before_build)["marts.customer_activity"]
    bring_in_the_held_back_days(lake, root / "held")
    # The incremental build runs every unit and data test; the full refresh only makes tables to compare
    # with it (seeds and models, no tests). Both read the same lake, each in a Spark home of its own, so
    # they run side by side: most of a Spark build's time is one-threaded planning in its driver.
    builds = {
        incremental: start_dbt_on_spark(lake, incremental, "build", "--vars", f"{{as_of_date: '{WORLD_END}'}}"),
        full: start_dbt_on_spark(
            lake,
            full,
            "build",
            "--resource-type",
            "seed",
            "--resource-type",
            "model",
            "--full-refresh",
            "--vars",
            f"{{as_of_date: '{WORLD_END}'}}",
        ),
    }
    try:
        for home, dbt in builds.items():
            finish_dbt_on_spark(home, dbt)
    finally:
        for dbt in builds.values():
            if dbt.poll() is None:
                dbt.kill()
                dbt.wait()
    databases = root / "incremental.duckdb", root / "full.duckdb"
    for home, database in zip((incremental, full), databases, strict=True):
        copy_spark_tables(database, session_table_locations(("marts", "segments", "intermediate"), home))
    after = query_warehouse(databases[0], "select count(*) from marts.customer_activity")[0][0]
    assert after > before
    return databases


def test_every_mailing_has_the_counts_the_generator_knows(builds, world_dir):
    _, full = builds
    end_to_end.test_every_mailing_has_the_counts_the_generator_knows((None, full), world_dir)


def test_rates_are_shares_and_spotler_agrees_with_its_api(builds):
    _, full = builds
    end_to_end.test_rates_are_shares_and_spotler_agrees_with_its_api((None, full))


def test_an_incremental_build_after_new_days_equals_a_full_refresh(builds):
    incremental, full = builds
    for table in end_to_end.INCREMENTAL_TABLES:
        only_incremental, only_full, rows = end_to_end._differences(incremental, full, table)
        assert rows > 0 and (only_incremental, only_full) == (0, 0), (table, only_incremental, only_full, rows)


def test_machines_are_told_from_people_as_on_duckdb(builds, built_warehouse):
    """The same world built by DuckDB and by Spark: every open and click gets the same verdict."""
    _, full = builds
    _, duckdb_warehouse, _ = built_warehouse
    verdicts = (
        "select event_id, is_machine, machine_reason from marts.customer_activity where event_type in ('open', 'click')"
    )
    on_duckdb = set(query_warehouse(duckdb_warehouse, verdicts))
    on_spark = set(query_warehouse(full, verdicts))
    reasons = {reason for _, _, reason in on_duckdb}
    assert {"apple_privacy_proxy", "link_scanner", None} <= reasons, reasons
    assert on_spark == on_duckdb, (len(on_spark - on_duckdb), len(on_duckdb - on_spark))
    statistics = (
        "select mailing_key, unique_human_open_count, unique_human_click_count, unique_machine_open_count, "
        "unique_machine_click_count from marts.mailing_statistics"
    )
    assert set(query_warehouse(full, statistics)) == set(query_warehouse(duckdb_warehouse, statistics))
