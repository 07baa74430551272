"""The shared SFTP transfers: as large a request as the server allows, every byte arrives, only a dropped or
unreachable connection is retried, and what the server refuses fails at once, naming the path and the setting."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys

import asyncssh
import pytest

from mail_warehouse_demo.standins.sftp import AsyncsshSftpServer, OpenSshSftpServer, SftpFault, SshKeys
from mail_warehouse_sources.sftp import (
    LARGEST_REQUEST_SIZE,
    SAFE_REQUEST_SIZE,
    HostKeyError,
    ReconnectingSftp,
    SftpError,
    SftpSession,
    SftpSettings,
)
from tests.conftest import _require_sshd


def _settings(server, keys) -> SftpSettings:
    return SftpSettings(
        host=server.host,
        port=server.port,
        username=server.username,
        private_key_path=str(keys.user_key),
        known_hosts=str(keys.known_hosts),
    )


def _round_trip(server, keys, tmp_path) -> tuple[SftpSession, list[int]]:
    payload = os.urandom(5 * LARGEST_REQUEST_SIZE + 12_345)  # several requests and a short last one
    local = tmp_path / "payload.bin"
    local.write_bytes(payload)
    seen = []
    with SftpSession(_settings(server, keys)) as session:
        with local.open("rb") as source:
            sent = session.upload(source, "payload.bin")
        assert sent == hashlib.sha256(payload).hexdigest()
        assert session.sha256("payload.bin") == sent
        back = tmp_path / "back.bin"
        assert session.download("payload.bin", back, lambda done, total: seen.append(done)) == sent
    assert back.read_bytes() == payload
    assert seen[-1] == len(payload) and seen == sorted(seen)
    return session, seen


@pytest.mark.parametrize("kind", ["asyncssh", pytest.param("openssh", marks=pytest.mark.sshd)])
def test_transfers_use_the_largest_requests_the_server_states(kind, ssh_keys, tmp_path):
    if kind == "openssh":
        _require_sshd()
    root = tmp_path / "root"
    root.mkdir()
    server = (OpenSshSftpServer if kind == "openssh" else AsyncsshSftpServer)(root, ssh_keys).start()
    try:
        session, progress = _round_trip(server, ssh_keys, tmp_path)
    finally:
        server.stop()
    assert (session.read_size, session.write_size) == (LARGEST_REQUEST_SIZE, LARGEST_REQUEST_SIZE)
    assert len(progress) == 6  # one progress report per (large) read


def test_a_server_that_does_not_state_its_limits_gets_requests_every_server_takes(ssh_keys, tmp_path, monkeypatch):
    # asyncssh made to answer like an older server: limits@openssh.com unsupported.
    monkeypatch.delitem(asyncssh.sftp.SFTPServerHandler._packet_handlers, b"limits@openssh.com")
    root = tmp_path / "root"
    root.mkdir()
    server = AsyncsshSftpServer(root, ssh_keys).start()
    try:
        session, progress = _round_trip(server, ssh_keys, tmp_path)
    finally:
        server.stop()
    assert (session.read_size, session.write_size) == (SAFE_REQUEST_SIZE, SAFE_REQUEST_SIZE)
    assert len(progress) > 40


# --- what is retried and what fails at once ----------------------------------------------------------


def _reconnecting(server, keys, **overrides) -> tuple[ReconnectingSftp, list[int]]:
    retries = []
    settings = SftpSettings(**{**_settings(server, keys).__dict__, "max_attempts": 4, "retry_delay": 2.0, **overrides})
    return ReconnectingSftp(settings, on_retry=lambda attempt, error: retries.append(attempt)), retries


@pytest.fixture
def served(ssh_keys, tmp_path):
    root = tmp_path / "root"
    (root / "Upload").mkdir(parents=True)
    server = AsyncsshSftpServer(root, ssh_keys).start()
    yield server, root
    server.stop()


def test_a_missing_folder_fails_at_once_naming_it_and_its_setting(served, ssh_keys):
    server, _ = served
    sftp, retries = _reconnecting(server, ssh_keys, setting_prefix="EXPORT__DEPLOYTEQ__")
    with pytest.raises(SftpError) as failure, sftp:
        sftp.call(
            lambda s: s.sftp.listdir("csv upload/Upload"),
            "listing csv upload/Upload",
            remote="csv upload/Upload",
            setting="UPLOAD_DIR",
        )
    assert retries == []  # not retried: the folder will not appear by waiting
    assert "no such file or folder csv upload/Upload" in str(failure.value)
    assert "check EXPORT__DEPLOYTEQ__UPLOAD_DIR" in str(failure.value)


def test_permission_denied_fails_at_once_naming_the_path_and_its_setting(served, ssh_keys):
    server, _ = served
    server.inject(SftpFault("open", r"Upload/", action="deny"))
    sftp, retries = _reconnecting(server, ssh_keys, setting_prefix="EXPORT__DEPLOYTEQ__")
    with pytest.raises(SftpError) as failure, sftp:
        sftp.call(
            lambda s: s.upload(io.BytesIO(b"x"), "Upload/x.csv"),
            "uploading x.csv",
            remote="Upload",
            setting="UPLOAD_DIR",
        )
    assert retries == []
    assert "permission denied on Upload" in str(failure.value) and "EXPORT__DEPLOYTEQ__UPLOAD_DIR" in str(failure.value)


def test_a_wrong_host_key_fails_at_once(served, ssh_keys, tmp_path):
    server, _ = served
    other = SshKeys.generate(tmp_path / "other")
    sftp, retries = _reconnecting(server, ssh_keys, host_key_fingerprint=other.host_key_fingerprint())
    with pytest.raises(HostKeyError, match="HOST_KEY_FINGERPRINT"), sftp:
        sftp.call(lambda s: s.sftp.listdir("."), "listing .")
    assert retries == []


def test_a_dropped_connection_is_retried_and_the_call_completes(served, ssh_keys):
    server, root = served
    server.inject(SftpFault("open", r"Upload/", action="drop"))
    sftp, retries = _reconnecting(server, ssh_keys, retry_delay=0.05)
    with sftp:
        sftp.call(lambda s: s.upload(io.BytesIO(b"payload"), "Upload/x.csv"), "uploading x.csv")
    assert retries == [1] and (root / "Upload" / "x.csv").read_bytes() == b"payload"


def test_an_unreachable_server_is_retried_then_named(ssh_keys):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = SftpSettings(host="127.0.0.1", port=port, username="u", password="p", max_attempts=3, retry_delay=0.01)
    retries = []
    with pytest.raises(SftpError, match=r"cannot reach u@127.0.0.1:\d+.*HOST.*PORT.*tried 3 times"):
        ReconnectingSftp(settings, on_retry=lambda attempt, error: retries.append(attempt)).call(
            lambda s: None, "listing ."
        )
    assert retries == [1, 2]


@pytest.mark.parametrize("kind", ["asyncssh", pytest.param("openssh", marks=pytest.mark.sshd)])
def test_absolute_and_relative_folders_work_as_written(kind, ssh_keys, tmp_path):
    if kind == "openssh":
        _require_sshd()
    root = tmp_path / "root"
    (root / "Upload").mkdir(parents=True)
    server = (OpenSshSftpServer if kind == "openssh" else AsyncsshSftpServer)(root, ssh_keys).start()
    # asyncssh serves its folder as the server's root; sshd starts the session in it
    absolute = "/Upload" if kind == "asyncssh" else str(root / "Upload")
    try:
        with ReconnectingSftp(_settings(server, ssh_keys)) as sftp:
            for folder, name in ((absolute, "a.csv"), ("Upload", "r.csv")):
                sftp.call(
                    lambda s, folder=folder, name=name: s.upload(io.BytesIO(name.encode()), f"{folder}/{name}"),
                    f"uploading {name}",
                )
    finally:
        server.stop()
    assert sorted(p.name for p in (root / "Upload").iterdir()) == ["a.csv", "r.csv"]


def test_importing_the_sources_changes_nothing_in_the_importing_program():
    """A dlt user's pipeline imports our sources: their thread hook (and everything else global) stays theirs."""
    checked = subprocess.run(
        [
            sys.executable,
            "-c",
            "import threading; hook = threading.excepthook\n"
            "import mail_warehouse_sources.clang, mail_warehouse_sources.spotler\n"
            "import mail_warehouse_sources.directo, mail_warehouse_sources.sftp\n"
            "assert threading.excepthook is hook, threading.excepthook",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
