"""Fixtures shared by the suite: one small demo world per session and real servers on loopback."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from loaders.demo.world import WorldSpec, simulate
from loaders.demo.writers import write_world
from loaders.standins import directo, spotler
from loaders.standins.sftp import AsyncsshSftpServer, OpenSshSftpServer, SshKeys, find_sshd

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
