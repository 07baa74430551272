"""`warehouse forget`: a person erased from every file the project wrote, and kept out of every later load."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from mail_warehouse.settings import sql_literal
from mail_warehouse_demo.standins.stack import StandinStack
from tests.conftest import query_warehouse, start_warehouse_cli, warehouse_cli
from tests.test_crash_matrix import differences

BUILT = ["staging", "intermediate", "marts", "segments"]


def traces(root: Path, needle: str, skip: tuple[Path, ...] = ()) -> list[str]:
    """Every place under `root` that holds `needle` (case-insensitive): any column of any table of a DuckDB
    file, any value of a parquet file, the bytes of every other file (gzip ones unpacked)."""
    needle = needle.lower()
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if any(path.is_relative_to(s) for s in skip) or path.name.endswith(".lock"):
            continue
        if path.suffix == ".duckdb":
            con = duckdb.connect()
            con.execute(f"attach {sql_literal(str(path))} as f (read_only)")
            for schema, table, column in con.execute(
                "select table_schema, table_name, column_name from information_schema.columns where table_catalog = 'f'"
            ).fetchall():
                text = f'lower(cast("{column}" as varchar))'
                (hits,) = con.execute(
                    f'select count(*) from f."{schema}"."{table}" where contains({text}, ?)', [needle]
                ).fetchall()[0]
                if hits:
                    found.append(f"{path.relative_to(root)} {schema}.{table}.{column}")
            con.close()
            continue
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        if path.suffix == ".parquet":
            data = repr(pq.read_table(path).to_pylist()).encode()
        if needle.encode() in data.lower():
            found.append(str(path.relative_to(root)))
    return found


def fingerprint(root: Path, skip: tuple[Path, ...]) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(p.is_relative_to(s) for s in skip) and not p.name.endswith(".lock")
    }


def everywhere(database: Path) -> tuple[str, str]:
    """Two addresses Clang, Spotler and Directo all know, and the Deployteq export sent."""
    first, second = query_warehouse(
        database,
        """select e.email from exports.csv_trigger_contacts e
           where e.email in (select lower(trim(e_mailadres)) from raw_clang.activities)
             and e.email in (select lower(trim(email)) from raw_spotler.contacts)
             and e.email in (select lower(trim(email)) from raw_directo.customers)
           order by e.email limit 2""",
    )
    return first[0], second[0]


def test_a_forgotten_person_leaves_no_trace_and_nothing_brings_them_back(built_warehouse, world_dir, tmp_path):
    built_env, built, _ = built_warehouse
    world, home = tmp_path / "world", tmp_path / "home"
    shutil.copytree(world_dir, world)  # a world of our own: a new Clang file is delivered into it below
    home.mkdir()
    shutil.copyfile(built, home / "warehouse.duckdb")
    with StandinStack(world, tmp_path / "standins") as stack:
        env = {
            **built_env,
            **stack.environment(),
            "WAREHOUSE_PATH": str(home / "warehouse.duckdb"),
            "DBT_TARGET_PATH": str(home / "target"),
            "EXPORT__DEPLOYTEQ__LOCAL_DIR": str(home / "exports"),
            "DESTINATION__FILESYSTEM__BUCKET_URL": str(home / "lake"),
            "SPARK_HOME_DIR": str(home / "spark"),
            "SYNC__CONTACTS": "true",  # the syncs' ledgers and the contacts file kept in exports/ too
            "SYNC__CONSENT_TO_DIRECTO": "true",
        }
        ran = warehouse_cli("run", "--wait", "0", env=env)  # loads, build, BI copy, CSV export, syncs, dlt's folders
        assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
        assert "sync contacts ok" in ran.stdout and "sync consent ok" in ran.stdout, ran.stdout[-2000:]
        lake = warehouse_cli("load", "directo", env={**env, "WAREHOUSE__ENGINE": "spark"})  # the Spark side's lake
        assert lake.returncode == 0, lake.stderr[-2000:]
        database = home / "warehouse.duckdb"
        person, second = everywhere(database)
        assert len(traces(home, person)) > 20 and traces(home / "lake", person)
        others = (
            "select * exclude (built_at) from marts.customer_activity where coalesce(email, '') not in ($a, $b) "
            "order by 1"
        )
        before = query_warehouse(database, others, params={"a": person, "b": second})

        untouched = fingerprint(home, (home / "target",))
        dry = warehouse_cli("forget", "--dry-run", person.upper(), env=env)
        assert dry.returncode == 0, dry.stderr
        assert "would remove" in dry.stderr and "raw_clang.activities" in dry.stderr and person not in dry.stderr
        assert fingerprint(home, (home / "target",)) == untouched

        forgot = warehouse_cli("forget", f" {person.upper()} ", "--propagate", env=env)
        assert forgot.returncode == 0, forgot.stderr
        assert person not in forgot.stdout + forgot.stderr
        for place in ("raw_clang.activities", "raw_spotler.contacts", "raw_directo.customers", "marts.contacts"):
            assert f"warehouse.duckdb {place}: removed" in forgot.stderr, place
        assert "analytics.duckdb" in forgot.stderr and "exports reactivatie_" in forgot.stderr
        assert "only the source systems can erase there" in forgot.stderr and "Directo: the customer" in forgot.stderr
        assert stack.spotler_api.anonymized, "Spotler was not asked to anonymize the contact"
        assert traces(home, person) == []
        assert query_warehouse(database, others, params={"a": person, "b": second}) == before  # nobody else's
        (runs,) = query_warehouse(
            database, "select people, finished_at is not null, rows_removed from privacy.erasure_runs"
        )
        assert runs[0] == 1 and runs[1] and '"warehouse.duckdb raw_clang.activities"' in runs[2]
        hashes = {h for (h,) in query_warehouse(database, "select identifier_hash from privacy.suppression")}
        assert len(hashes) >= 3 and not {hashlib.sha256(person.encode()).hexdigest(), person} & hashes

        # a second forget killed once its intent is recorded: the next `warehouse run` finishes it first
        killed = start_warehouse_cli(
            "forget",
            second,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert killed.stdout is not None
        for line in killed.stdout:
            if "sweeping" in line:
                os.killpg(killed.pid, signal.SIGKILL)
                break
        killed.wait(timeout=60)
        assert killed.returncode == -signal.SIGKILL
        unfinished = "select count(*) from privacy.erasure_runs where finished_at is null"
        assert query_warehouse(database, unfinished) == [(1,)]

        # their next Clang events, a full Directo load, Spotler's next sync and the run bring nothing back
        clang = world / "clang"
        header = next(clang.rglob("activiteiten_*.csv")).read_text(encoding="utf-8").splitlines()[0]
        lines = [
            line
            for path in sorted(clang.rglob("activiteiten_*.csv"))
            for line in path.read_text(encoding="utf-8").splitlines()[1:]
            if person in line.lower() or second in line.lower()
        ]
        assert lines
        (clang / "activiteiten_20261124.csv").write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
        reloaded = warehouse_cli("load", "directo", "--full", env=env)
        assert reloaded.returncode == 0, reloaded.stderr[-2000:]
        again = warehouse_cli("run", "--wait", "0", env=env)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        assert "finish erasures ok" in again.stdout.splitlines()[-1]
        assert query_warehouse(database, unfinished) == [(0,)]
        for someone in (person, second):
            assert traces(home, someone, skip=(home / "target",)) == [], someone

        # the incremental build after the erasure equals a full refresh of the same data
        full = tmp_path / "full"
        full.mkdir()
        shutil.copyfile(database, full / "warehouse.duckdb")
        refreshed = warehouse_cli(
            "build",
            "--",
            "--full-refresh",
            "--exclude-resource-type",
            "unit_test",
            env={**env, "WAREHOUSE_PATH": str(full / "warehouse.duckdb"), "DBT_TARGET_PATH": str(full / "target")},
        )
        assert refreshed.returncode == 0, refreshed.stdout[-3000:]
        wrong = {t: c for t, c in differences(full / "warehouse.duckdb", database, BUILT).items() if c != (0, 0)}
        assert not wrong


def test_forget_refuses_without_the_secret_and_without_an_address(warehouse_copy, tmp_path):
    env, database, _ = warehouse_copy
    before = os.stat(database).st_mtime
    time.sleep(0.01)
    refused = warehouse_cli("forget", "someone@example.com", env={**env, "PRIVACY__SECRET": ""})
    assert refused.returncode == 2 and "[privacy] secret" in refused.stderr
    nobody = warehouse_cli("forget", env=env)
    assert nobody.returncode == 2 and "no address" in nobody.stderr
    not_an_address = warehouse_cli("forget", "10941", env=env)
    assert not_an_address.returncode == 2 and "not an e-mail address" in not_an_address.stderr
    assert os.stat(database).st_mtime == before
