"""Fixtures shared by the suite: one small demo world per session and real servers on loopback."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mail_warehouse_demo.standins import directo, spotler
from mail_warehouse_demo.standins.sftp import AsyncsshSftpServer, OpenSshSftpServer, SshKeys, find_sshd
from mail_warehouse_demo.standins.stack import DEPLOYTEQ_FOLDERS, StandinStack
from mail_warehouse_demo.world import WorldSpec, simulate
from mail_warehouse_demo.writers import write_world

# The suppression list's key for every test (and every command a test starts): `warehouse demo` would otherwise
# write a random one into the repo's .dlt/secrets.toml.
os.environ.setdefault("PRIVACY__SECRET", "test-suite-privacy-secret")

# A fixed end date keeps every assertion about calendar days reproducible.
TEST_WORLD = WorldSpec(contacts=600, mailings=14, days=120, seed=2026, end=dt.date(2026, 11, 23))


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_world(simulate(TEST_WORLD), out)
    return out


@pytest.fixture
def spotler_standin(world_dir):
    server, api = spotler.serve(world_dir)
    yield server, api
    server.stop()


@pytest.fixture
def directo_standin(world_dir):
    server, app = directo.serve(world_dir)
    yield server, app
    server.stop()


@pytest.fixture
def ssh_keys(tmp_path) -> SshKeys:
    return SshKeys.generate(tmp_path / "ssh")


def _require_sshd() -> None:
    if find_sshd() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but OpenSSH's sshd is missing: .ci/run must install openssh-server")
        pytest.skip("OpenSSH's sshd is not installed (apt-get install openssh-server); CI runs these")


@pytest.fixture(params=["asyncssh", pytest.param("openssh", marks=pytest.mark.sshd)])
def sftp_server(request, world_dir, ssh_keys):
    """Each SFTP test runs against asyncssh in-process and against OpenSSH's sshd."""
    if request.param == "openssh":
        _require_sshd()
        server = OpenSshSftpServer(world_dir, ssh_keys)
    else:
        server = AsyncsshSftpServer(world_dir, ssh_keys)
    server.start()
    yield server
    server.stop()


WAREHOUSE_COMMAND = (sys.executable, "-m", "mail_warehouse")


def warehouse_cli(*args: str, env: dict | None = None, timeout: float = 900, cwd: Path | None = None):
    """`warehouse <args>` in a child process, as a user runs it (env None: this process's environment); its
    exit code, stdout and stderr."""
    return subprocess.run(
        [*WAREHOUSE_COMMAND, *args],
        capture_output=True,
        text=True,
        env=os.environ.copy() if env is None else env,
        timeout=timeout,
        cwd=cwd,
    )


def rebuild_the_segment(env: dict, as_of: str):
    """`warehouse build` of the re-activation segment and what its cooldown reads: the exports' staging views
    (built before the first export, when the log did not exist) and the sends they make up."""
    return warehouse_cli(
        "build",
        "--",
        "--select",
        "path:models/staging/exports",
        "int_segment_sends_unioned",
        "reactivation",
        "--vars",
        "{as_of_date: '" + as_of + "'}",
        env=env,
    )


def start_warehouse_cli(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    """`warehouse <args>` started in a child process, for a test that watches, signals or kills it."""
    return subprocess.Popen([*WAREHOUSE_COMMAND, *args], env=os.environ.copy() if env is None else env, **popen)


SETTING_PREFIXES = {"clang": "SOURCES__CLANG__", "spotler": "SOURCES__SPOTLER__", "directo": "SOURCES__DIRECTO__"}


def company_environment(stack: StandinStack, sources: tuple[str, ...]) -> dict[str, str]:
    """The environment of a company with `sources` only: their settings from the stand-ins, and none of the
    others' (nor any the test process may carry)."""
    ours = tuple(SETTING_PREFIXES.values())
    env = {key: value for key, value in os.environ.items() if not key.startswith(ours)}
    env.update(
        {
            key: value
            for key, value in stack.environment().items()
            if not key.startswith(ours) or any(key.startswith(SETTING_PREFIXES[s]) for s in sources)
        }
    )
    return env


def query_warehouse(
    database: Path | None, sql: str, world_dir: Path | None = None, *, params: dict | None = None
) -> list[tuple]:
    """Rows of `sql` on a DuckDB file opened read-only (None: the warehouse WAREHOUSE_PATH names), with the
    demo world's truth attached as `world` when `world_dir` is given. The suite's one way to read a file."""
    from mail_warehouse import settings

    con = settings.connect(database, read_only=True)
    try:
        if world_dir is not None:
            con.execute(f"attach '{world_dir / 'world.duckdb'}' as world (read_only)")
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


def query_world(world_dir: Path, sql: str) -> list[tuple]:
    """Rows of `sql` on the demo world's truth (`world.duckdb`)."""
    return query_warehouse(world_dir / "world.duckdb", sql)


@pytest.fixture(scope="session")
def built_warehouse(world_dir, tmp_path_factory):
    """The test world loaded by the real loaders from the stand-ins and built by dbt, once per session.

    Yields (environment, warehouse file, stand-ins); the stand-ins stay up for the export tests.
    """
    state = tmp_path_factory.mktemp("built")
    with StandinStack(world_dir, state / "standins") as stack:
        env = {
            **os.environ,
            **stack.environment(),
            "WAREHOUSE_PATH": str(state / "warehouse.duckdb"),
            "SOURCES__SPOTLER__START_DATE": "2025-01-01",
            "DBT_TARGET_PATH": str(state / "target"),
        }
        for source in ("clang", "spotler", "directo"):
            result = warehouse_cli("load", source, env=env)
            assert result.returncode == 0, result.stderr
        result = warehouse_cli("build", "--", "--vars", "{as_of_date: '2026-11-23'}", env=env)
        assert result.returncode == 0, result.stdout[-4000:]
        yield env, state / "warehouse.duckdb", stack


@pytest.fixture
def warehouse_copy(built_warehouse, tmp_path):
    """A private copy of the built warehouse and an empty Deployteq folder, for tests that change them."""
    env, database, stack = built_warehouse
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(database, copy)
    for folder in DEPLOYTEQ_FOLDERS:
        target = stack.deployteq_dir / folder
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
    local_exports = tmp_path / "exports"
    return {**env, "WAREHOUSE_PATH": str(copy), "EXPORT__DEPLOYTEQ__LOCAL_DIR": str(local_exports)}, copy, stack
