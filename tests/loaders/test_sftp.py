"""The shared SFTP transfers: as large a request as the server allows, and every byte arrives."""

from __future__ import annotations

import hashlib
import os

import asyncssh
import pytest

from loaders.sftp import LARGEST_REQUEST_SIZE, SAFE_REQUEST_SIZE, SftpSession, SftpSettings
from mail_warehouse_demo.standins.sftp import AsyncsshSftpServer, OpenSshSftpServer
from tests.conftest import _require_sshd


def _settings(server, keys) -> SftpSettings:
    return SftpSettings(host=server.host, port=server.port, username=server.username,
                        private_key_path=str(keys.user_key), known_hosts=str(keys.known_hosts))


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
