"""The BI copy: every DuckDB reader opens it, a 1.x as well as ours.

BI tools bundle their own DuckDB (JDBC for Metabase and DBeaver, Node for Evidence, duckdb-engine for
Superset), often a 1.x; the published file is read here by the oldest DuckDB 1.x in an environment of its own.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from mail_warehouse import settings
from tests.conftest import warehouse_cli
from tests.test_end_to_end import bring_in_the_held_back_days, hold_back_the_last_days

pytestmark = pytest.mark.slow

# The oldest 1.x with a wheel for this Python (1.0.0 up to 3.12; 3.13's first is 1.1.1): if it reads the copy,
# every later 1.x reader does. pytz: DuckDB 1.x needs it for timestamptz.
OLD_DUCKDB = "duckdb==1.0.0" if sys.version_info < (3, 13) else "duckdb==1.1.1"
OLD_READER_REQUIREMENTS = [OLD_DUCKDB, "pytz==2026.6"]

READ_EVERY_TABLE = """
import json, sys
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
tables = con.execute("select table_schema, table_name from information_schema.tables order by 1, 2").fetchall()
rows = {
    f"{schema}.{table}": len(con.execute(f'select * from {schema}."{table}"').fetchall())
    for schema, table in tables
}
print(json.dumps({"version": duckdb.__version__, "rows": rows}))
"""


# A reader that opens the published file, counts the contacts, and keeps the file open until told to count again.
HOLD_OPEN = """
import sys
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
count = "select count(*) from marts.contacts"
print(con.execute(count).fetchone()[0], flush=True)
sys.stdin.readline()
print(con.execute(count).fetchone()[0], flush=True)
"""


@pytest.fixture(scope="session")
def old_duckdb_reader() -> Path:
    """A Python with the oldest DuckDB 1.x and nothing of ours, made once and kept beside the test environment
    (wheels only: a reader built from source would take longer than the suite)."""
    home = Path(sys.prefix) / "duckdb-1.x-reader"
    python = home / "bin" / "python"
    marker = home / ".installed"
    if marker.exists() and marker.read_text() == " ".join(OLD_READER_REQUIREMENTS):
        return python
    venv.create(home, with_pip=True, clear=True)
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary",
            ":all:",
            *OLD_READER_REQUIREMENTS,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    marker.write_text(" ".join(OLD_READER_REQUIREMENTS))
    return python


def read_with(python: Path, database: Path) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", READ_EVERY_TABLE, str(database)], capture_output=True, text=True, timeout=300)


def published_counts(analytics: Path) -> dict[str, int]:
    con = settings.connect(analytics, read_only=True)
    try:
        tables = con.execute("select table_schema, table_name from information_schema.tables order by 1, 2").fetchall()
        return {f"{s}.{t}": con.execute(f'select count(*) from {s}."{t}"').fetchone()[0] for s, t in tables}
    finally:
        con.close()


def test_duckdb_1_reads_every_mart_of_the_published_copy(warehouse_copy, old_duckdb_reader):
    env, database, _stack = warehouse_copy
    exported = warehouse_cli("export", env=env)
    assert exported.returncode == 0, exported.stderr
    result = warehouse_cli("publish", env=env)
    assert result.returncode == 0, result.stderr
    analytics = database.with_name("analytics.duckdb")

    read = read_with(old_duckdb_reader, analytics)
    assert read.returncode == 0, read.stderr[-2000:]
    answer = json.loads(read.stdout)
    assert answer["version"] == OLD_DUCKDB.removeprefix("duckdb==")
    expected = published_counts(analytics)
    assert answer["rows"] == expected
    marts = {name for name in expected if name.startswith("marts.")}
    assert {"marts.mailing_statistics", "marts.contacts", "marts.mailing_rate_projections"} <= marts
    assert expected["exports.csv_trigger_log"] >= 1 and "exports.csv_trigger_contacts" not in expected
    # the copy holds every row of the warehouse's marts
    con = settings.connect(database, read_only=True)
    try:
        for name in marts:
            assert con.execute(f"select count(*) from {name}").fetchone()[0] == expected[name], name
    finally:
        con.close()


def test_the_storage_version_is_a_setting_and_decides_who_can_read(warehouse_copy, old_duckdb_reader):
    env, database, _ = warehouse_copy
    analytics = database.with_name("analytics.duckdb")
    newest = warehouse_cli("publish", env={**env, "PUBLISH__STORAGE_COMPATIBILITY_VERSION": "latest"})
    assert newest.returncode == 0, newest.stderr
    refused = read_with(old_duckdb_reader, analytics)
    assert refused.returncode != 0 and "version" in refused.stderr.lower()

    wrong = warehouse_cli("publish", env={**env, "PUBLISH__STORAGE_COMPATIBILITY_VERSION": "1.0"})
    assert wrong.returncode == 1
    assert "publish.storage_compatibility_version" in wrong.stderr and "v1.0.0" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def differing_rows(analytics: Path, warehouse: Path) -> dict[str, tuple[int, int]]:
    """Per published table: (rows only in the copy, rows only in the warehouse), every column compared."""
    con = settings.connect(analytics, read_only=True)
    try:
        con.execute(f"attach {settings.sql_literal(str(warehouse))} as warehouse (read_only)")
        tables = con.execute("""select table_schema, table_name from information_schema.tables
                                where table_catalog = current_database()""").fetchall()
        found = {}
        for schema, table in tables:
            name = f'{schema}."{table}"'
            only_copy, only_warehouse = (
                con.execute(
                    f"select count(*) from (select * from {a}{name} except all select * from {b}{name})"
                ).fetchone()[0]
                for a, b in (("", "warehouse."), ("warehouse.", ""))
            )
            found[f"{schema}.{table}"] = (only_copy, only_warehouse)
        return found
    finally:
        con.close()


def test_after_an_incremental_build_the_copy_is_brought_up_to_date_in_place(warehouse_copy, old_duckdb_reader):
    """The daily publish starts from the previous copy and writes only the rows the build rebuilt; the copy
    then equals the warehouse, a 1.x reader reads it, and a table whose rows went missing is copied whole."""
    env, database, _ = warehouse_copy
    analytics = database.with_name("analytics.duckdb")
    hold_back_the_last_days(database)
    built = warehouse_cli("build", "--", "--full-refresh", "--vars", "{as_of_date: '2026-11-20'}", env=env)
    assert built.returncode == 0, built.stdout[-3000:]
    first = warehouse_cli("publish", env=env)
    assert first.returncode == 0 and "in place" not in first.stdout, first.stdout + first.stderr

    bring_in_the_held_back_days(database)
    built = warehouse_cli("build", "--", "--vars", "{as_of_date: '2026-11-23'}", env=env)
    assert built.returncode == 0, built.stdout[-3000:]
    daily = warehouse_cli("publish", env=env)
    assert daily.returncode == 0, daily.stderr
    written = re.search(
        r"(\d+) brought up to date in place \(([\d,]+) rows written into a copy of the published file\)", daily.stdout
    )
    assert written and int(written[1]) >= 3 and int(written[2].replace(",", "")) > 0, daily.stdout
    assert set(differing_rows(analytics, database).values()) == {(0, 0)}, differing_rows(analytics, database)

    read = read_with(old_duckdb_reader, analytics)
    assert read.returncode == 0, read.stderr[-2000:]
    assert json.loads(read.stdout)["rows"] == published_counts(analytics)

    # rows gone from the warehouse (as after a full refresh of fewer rows) are gone from the copy too
    con = settings.connect(database)
    con.execute(
        "delete from intermediate.int_email_events_classified where event_id in "
        "(select event_id from intermediate.int_email_events_classified order by event_id limit 10)"
    )
    con.close()
    again = warehouse_cli("publish", env=env)
    assert again.returncode == 0, again.stderr
    # two builds behind, the copy of the publish before last catches up without a copy of the file first
    assert "rows written into the standby" in again.stdout, again.stdout
    assert set(differing_rows(analytics, database).values()) == {(0, 0)}, differing_rows(analytics, database)


def test_a_standby_a_reader_still_holds_open_is_left_alone(warehouse_copy):
    """The standby is the file readers had until the last publish: while one of them still has it open, the
    publish starts from a copy of the published file instead, and the reader keeps reading what it had."""
    env, database, _ = warehouse_copy
    analytics = database.with_name("analytics.duckdb")
    standby = analytics.with_name(".analytics.duckdb.standby")
    built = warehouse_cli("build", env=env)
    assert built.returncode == 0, built.stdout[-3000:]
    assert warehouse_cli("publish", env=env).returncode == 0
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(analytics)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        held_rows = reader.stdout.readline().strip()  # the reader has the file open now
        assert held_rows.isdigit(), held_rows
        assert warehouse_cli("publish", env=env).returncode == 0  # the reader's file is the standby now
        assert standby.exists()
        published = warehouse_cli("publish", env=env)
        assert published.returncode == 0, published.stderr
        assert "rows written into a copy of the published file" in published.stdout, published.stdout
        reader.stdin.write("again\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == held_rows  # still readable, unchanged
    finally:
        reader.kill()
        reader.wait()
    assert set(differing_rows(analytics, database).values()) == {(0, 0)}, differing_rows(analytics, database)
    again = warehouse_cli("publish", env=env)  # the reader is gone: the standby serves again
    assert again.returncode == 0 and "rows written into the standby" in again.stdout, again.stdout
