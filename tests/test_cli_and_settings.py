"""The `warehouse` command and the settings every step shares."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mail_warehouse import settings
from tests.conftest import warehouse_cli

PROJECT = settings.PROJECT_DIR


def _run(*args, env=None, cwd=PROJECT, timeout=300):
    return warehouse_cli(*args, cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout)


@pytest.mark.parametrize("command", [[], ["demo-data"], ["demo"]])
def test_help_on_every_level(command):
    result = _run(*command, "--help")
    assert result.returncode == 0 and "usage: warehouse" in result.stdout


def test_console_script_is_the_same_command():
    script = Path(sys.executable).with_name("warehouse")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "demo-data" in result.stdout


def test_demo_data_makes_the_machines_asked_for(tmp_path):
    import duckdb

    def machines(*options) -> dict:
        out = tmp_path / "-".join(options or ("default",))
        result = _run("demo-data", "--contacts", "200", "--mailings", "4", "--days", "20", "--out", str(out), *options)
        assert result.returncode == 0, result.stderr
        con = duckdb.connect(str(out / "world.duckdb"), read_only=True)
        try:
            return dict(
                con.execute("select machine, count(*) from events where machine is not null group by 1").fetchall()
            )
        finally:
            con.close()

    assert set(machines()) == {"apple_privacy_proxy", "link_scanner"}
    assert machines("--apple-mail-share", "0", "--scanned-share", "0") == {}
    assert set(machines("--apple-mail-share", "0", "--scanned-share", "0.5")) == {"link_scanner"}
    refused = _run("demo-data", "--out", str(tmp_path / "x"), "--apple-mail-share", "0.8", "--scanned-share", "0.4")
    assert refused.returncode != 0 and "add up to at most 1" in refused.stderr


def test_demo_data_keeps_a_steady_company_when_asked(tmp_path):
    import duckdb

    def people(*options) -> int:
        out = tmp_path / "-".join(options or ("default",))
        sizes = ("--contacts", "200", "--mailings", "60", "--days", "365")
        result = _run("demo-data", *sizes, "--out", str(out), *options)
        assert result.returncode == 0, result.stderr
        con = duckdb.connect(str(out / "world.duckdb"), read_only=True)
        try:
            return con.execute("select count(*) from people").fetchone()[0]
        finally:
            con.close()

    assert people() == 200
    assert people("--steady") > 200  # sign-ups beside the 200 customers, replacing those lost


def test_demo_data_writes_a_world_and_summarises(tmp_path):
    result = _run(
        "demo-data",
        "--contacts",
        "80",
        "--mailings",
        "3",
        "--days",
        "20",
        "--seed",
        "3",
        "--end",
        "2026-05-01",
        "--out",
        str(tmp_path / "w"),
        "--clang-delimiter",
        "\\t",
    )
    assert result.returncode == 0, result.stderr
    assert "Demo world written to" in result.stdout
    first = next((tmp_path / "w" / "clang").glob("activiteiten_*.csv")).read_text(encoding="utf-8")
    assert first.startswith("Broadcastid\tCustomerid\tExtern klantnummer")
    assert (tmp_path / "w" / "directo" / "customers.xml").exists()


def test_bad_arguments_fail_with_a_clear_message(tmp_path):
    result = _run("demo-data", "--contacts", "0", "--out", str(tmp_path))
    assert result.returncode == 2 and "--contacts" in result.stderr and "positive" in result.stderr
    result = _run("demo-data", "--out", str(tmp_path), "--end", "23-11-2026")
    assert result.returncode == 2 and "YYYY-MM-DD" in result.stderr
    result = _run("demo-data", "--out", str(tmp_path), "--clang-delimiter", ";;")
    assert result.returncode == 2 and "one character" in result.stderr


@pytest.mark.parametrize("command", [["demo-data", "--out", "DIR"], ["demo", "--out", "DIR"]])
def test_the_demo_commands_without_the_demo_package_say_how_to_install_it(command, tmp_path):
    """The runtime wheel carries no demo world: as in such an install, the demo package cannot be imported."""
    args = [str(tmp_path) if arg == "DIR" else arg for arg in command]
    without_demo = (
        "import sys; sys.modules['mail_warehouse_demo'] = None; from mail_warehouse.cli import main; "
        f"sys.exit(main({args!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", without_demo], capture_output=True, text=True, cwd=PROJECT, timeout=120
    )
    assert result.returncode == 2, result.stderr
    assert "the demo world and stand-ins are not installed: `make setup` installs them" in result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())


def test_warehouse_path_defaults_to_the_repo_root_and_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("WAREHOUSE_PATH", raising=False)
    assert settings.warehouse_path() == PROJECT / "warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "elsewhere.duckdb"))
    assert settings.warehouse_path() == tmp_path / "elsewhere.duckdb"
    monkeypatch.setenv("WAREHOUSE_PATH", "relative.duckdb")
    assert settings.warehouse_path() == PROJECT / "relative.duckdb"


def test_every_connection_runs_in_utc(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Tallinn")
    con = settings.connect(tmp_path / "w.duckdb")
    assert con.execute("select current_setting('TimeZone')").fetchone()[0] == "UTC"
    assert (
        str(con.execute("select timestamptz '2026-03-29 01:30:00+00'::timestamp").fetchone()[0])
        == "2026-03-29 01:30:00"
    )
    con.close()


def test_dbt_reads_the_same_warehouse_path_and_runs_in_utc(tmp_path):
    target = tmp_path / "dbt-check.duckdb"
    env = {**os.environ, "WAREHOUSE_PATH": str(target)}
    dbt = Path(sys.executable).with_name("dbt")
    query = "select current_setting('TimeZone') as tz"
    result = subprocess.run(
        [
            str(dbt),
            "show",
            "--inline",
            query,
            "--profiles-dir",
            str(PROJECT),
            "--project-dir",
            str(PROJECT),
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "UTC" in result.stdout
    assert target.exists()


def test_dbt_profiles_dir_names_the_profiles_the_build_reads(tmp_path):
    """A company's own profiles.yml (DBT_PROFILES_DIR) is read instead of the repo's: here its dev target writes
    another file than WAREHOUSE_PATH names."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    elsewhere = tmp_path / "elsewhere.duckdb"
    (profiles / "profiles.yml").write_text(
        f"mail_warehouse:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: '{elsewhere}'\n"
        "      threads: 1\n      settings:\n        TimeZone: UTC\n"
    )
    env = {
        **os.environ,
        "WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
        "DBT_PROFILES_DIR": str(profiles),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
    }
    result = warehouse_cli("build", "--", "--select", "stg_directo__customers", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    con = settings.connect(elsewhere, read_only=True)
    try:
        assert con.execute(
            "select count(*) from information_schema.tables where table_name = 'stg_directo__customers'"
        ).fetchone() == (1,)
    finally:
        con.close()
