"""The README's plain-pipeline snippet, run as written (only its DESTINATION chosen) in a process of its own
against the demo stand-ins, into DuckDB, dlt's `filesystem` (parquet) and SQLite (dlt's `sqlalchemy`): twice,
with a Clang file delivered again with one more row and another without rows between the runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dlt
import pyarrow.parquet as pq
import pytest

from mail_warehouse.settings import PROJECT_DIR
from mail_warehouse_demo.standins.stack import CLANG_REMOTE_DIR, StandinStack

pytestmark = pytest.mark.slow

SNIPPET_MARKER = "<!-- the plain-pipeline snippet"
DESTINATION_LINE = re.compile(r'^DESTINATION = "duckdb"', re.MULTILINE)
# the README's reader query for an append-only destination, over the `activities` table
LATEST_VERSION = re.compile(r"```sql\n(\s*select \* exclude \(latest\).*?)```", re.DOTALL)


def readme_block(pattern: re.Pattern) -> str:
    return pattern.search((PROJECT_DIR / "README.md").read_text(encoding="utf-8")).group(1)


def snippet() -> str:
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    after = readme[readme.index(SNIPPET_MARKER) :]
    return re.search(r"```python\n(.*?)```", after, re.DOTALL).group(1)


def data_lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) - 1  # the header


@pytest.fixture
def company(world_dir, tmp_path):
    """The stand-ins over a copy of the test world (its files change here) and the settings a user would set."""
    world = tmp_path / "world"
    shutil.copytree(world_dir, world)
    with StandinStack(world, tmp_path / "standins") as stack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DESTINATION__"))}
        env.update({k: v for k, v in stack.environment().items() if k.startswith("SOURCES__")})
        yield world, env


def run_snippet(code: str, env: dict, cwd: Path) -> None:
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("destination", ["duckdb", "filesystem", "sqlalchemy"])
def test_the_readme_snippet_loads_every_source_twice_with_a_file_delivered_again(
    company, tmp_path, monkeypatch, destination
):
    world, env = company
    home = tmp_path / "home"
    home.mkdir()
    destinations = {
        "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "mail.duckdb"),
        "DESTINATION__FILESYSTEM__BUCKET_URL": str(tmp_path / "lake"),
        "DESTINATION__SQLALCHEMY__CREDENTIALS": f"sqlite:///{tmp_path / 'mail.db'}",
    }
    for key, value in destinations.items():  # this process reads the loaded data through the same pipelines
        monkeypatch.setenv(key, value)
    env.update({"HOME": str(home), "DLT_DATA_DIR": str(home / ".dlt"), **destinations})  # dlt's state: ~/.dlt
    code, substitutions = DESTINATION_LINE.subn(f'DESTINATION = "{destination}"', snippet())
    assert substitutions == 1
    run_snippet(code, env, home)

    files = sorted((world / CLANG_REMOTE_DIR).glob("activiteiten_*.csv"))
    again = files[len(files) // 2]
    with again.open("a", encoding="utf-8") as appended:  # delivered again, one more row
        appended.write("4242;1;CUST-NEW;nieuw@example.nl;OPEN;2026-11-20 10:00:00;\n")
    emptied = next(path for path in reversed(files) if data_lines(path) > 1)  # delivered again without rows
    emptied.write_text(emptied.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    run_snippet(code, env, home)

    def dataset(name: str):
        return dlt.attach(f"mail_{name}", pipelines_dir=str(home / ".dlt" / "pipelines")).dataset()

    clang = dataset("clang")
    activities = (
        readme_block(LATEST_VERSION)
        if destination == "filesystem"
        else "select * from activities"  # a merging destination holds each file's latest version only
    )
    per_file = dict(clang(f"select source_file, count(*) from ({activities}) a group by 1").fetchall())
    assert per_file == {path.name: data_lines(path) for path in files if data_lines(path)}
    doubled = clang(f"select count(*) from ({activities}) a group by source_file, source_line having count(*) > 1")
    assert doubled.fetchall() == []
    if destination == "filesystem":  # the lake keeps both versions; the reader's query picks the latest
        stored = clang(f"select count(*) from activities where source_file = '{again.name}'").fetchone()[0]
        assert stored == 2 * data_lines(again) - 1
        # Spark keeps a Spotler or Directo row's latest load (a Clang row's latest file version, as above)
        for table in ("raw_spotler/mailings", "raw_directo/customers"):
            for parquet in (tmp_path / "lake" / table).glob("*.parquet"):
                assert "_dlt_load_id" in pq.read_schema(parquet).names

    if destination != "filesystem":  # a second run of the same data adds nothing where the destination merges
        spotler = dataset("spotler")
        keys = {"mailings": "encrypted_id", "clicks": "click_key", "contacts": "external_id", "opens": "interaction_id"}
        for table, key in keys.items():
            total, distinct = spotler(f"select count(*), count(distinct {key}) from {table}").fetchone()
            assert total == distinct > 0, table
    directo = dataset("directo")
    customers = directo("select count(distinct code) from customers").fetchone()[0]
    world_customers = (world / "directo" / "customers.xml").read_text(encoding="utf-8").count("<customer ")
    assert customers == world_customers > 0
