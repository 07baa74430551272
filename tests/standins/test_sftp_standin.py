"""The SFTP stand-ins are real SSH servers: strict host keys, key and password login, faults on demand."""

from __future__ import annotations

import socket
import threading
import time

import paramiko
import pytest

from mail_warehouse_demo.standins.sftp import DEMO_PASSWORD, AsyncsshSftpServer, SftpFault, SshKeys
from mail_warehouse_demo.standins.stack import DeployteqWatcher


def _client(server, keys, *, known_hosts=None, password=None, key=True) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts or keys.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        server.host,
        server.port,
        username=server.username,
        password=password,
        key_filename=str(keys.user_key) if key else None,
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    return client


def test_lists_and_downloads_the_clang_exports_with_a_key(sftp_server, ssh_keys, tmp_path, world_dir):
    client = _client(sftp_server, ssh_keys)
    try:
        sftp = client.open_sftp()
        names = sorted(sftp.listdir("clang"))
        assert names == sorted(p.name for p in (world_dir / "clang").iterdir())
        target = tmp_path / names[0]
        sftp.get(f"clang/{names[0]}", str(target))
        assert target.read_bytes() == (world_dir / "clang" / names[0]).read_bytes()
    finally:
        client.close()


def test_an_unknown_host_key_is_refused(sftp_server, ssh_keys, tmp_path):
    other = SshKeys.generate(tmp_path / "other")
    other.write_known_hosts(sftp_server.host, sftp_server.port)
    with pytest.raises(paramiko.BadHostKeyException):
        _client(sftp_server, ssh_keys, known_hosts=other.known_hosts)


def test_a_wrong_user_key_is_refused(sftp_server, ssh_keys, tmp_path):
    stranger = SshKeys.generate(tmp_path / "stranger")
    client = paramiko.SSHClient()
    client.load_host_keys(str(ssh_keys.known_hosts))
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(
            sftp_server.host,
            sftp_server.port,
            username=sftp_server.username,
            key_filename=str(stranger.user_key),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
        )


def test_password_login_and_a_wrong_password(world_dir, ssh_keys):
    with AsyncsshSftpServer(world_dir, ssh_keys) as server:
        _client(server, ssh_keys, password=DEMO_PASSWORD, key=False).close()
        with pytest.raises(paramiko.AuthenticationException):
            _client(server, ssh_keys, password="wrong", key=False)


def test_dropped_connection_fault_cuts_a_download_midway(world_dir, ssh_keys, tmp_path):
    with AsyncsshSftpServer(world_dir, ssh_keys) as server:
        server.drop_connections(after_bytes=1, times=1)
        biggest = max((world_dir / "clang").iterdir(), key=lambda p: p.stat().st_size)
        client = _client(server, ssh_keys)
        with pytest.raises((OSError, EOFError, paramiko.SSHException, socket.error)):
            client.open_sftp().get(f"clang/{biggest.name}", str(tmp_path / "x"))
        client.close()
        retry = _client(server, ssh_keys)  # the fault was for one session only
        retry.open_sftp().get(f"clang/{biggest.name}", str(tmp_path / "y"))
        retry.close()
        assert (tmp_path / "y").read_bytes() == biggest.read_bytes()


def test_a_held_reply_waits_for_release_and_an_after_fault_lets_the_request_happen_first(ssh_keys, tmp_path):
    root = tmp_path / "root"
    (root / "Upload").mkdir(parents=True)
    (root / "Upload" / ".t.csv.part").write_bytes(b"x")
    with AsyncsshSftpServer(root, ssh_keys) as server:
        fault = SftpFault("posix_rename", r"\.part$", after=True)
        server.inject(fault)
        client = _client(server, ssh_keys)
        sftp = client.open_sftp()
        renaming = threading.Thread(target=sftp.posix_rename, args=("Upload/.t.csv.part", "Upload/t.csv"))
        renaming.start()
        assert fault.wait_reached(10)
        time.sleep(0.2)
        assert renaming.is_alive()  # the reply is held ...
        assert (root / "Upload" / "t.csv").exists()  # ... though the rename was carried out
        fault.release()
        renaming.join(10)
        assert not renaming.is_alive()
        client.close()


def test_a_request_held_before_is_not_carried_out_when_its_client_is_gone(ssh_keys, tmp_path):
    root = tmp_path / "root"
    (root / "Upload").mkdir(parents=True)
    (root / "Upload" / ".t.csv.part").write_bytes(b"x")
    with AsyncsshSftpServer(root, ssh_keys) as server:
        fault = SftpFault("posix_rename", r"\.part$")
        server.inject(fault)
        client = _client(server, ssh_keys)
        sftp = client.open_sftp()

        def rename_and_lose_the_connection():
            with pytest.raises(paramiko.SSHException):
                sftp.posix_rename("Upload/.t.csv.part", "Upload/t.csv")

        threading.Thread(target=rename_and_lose_the_connection, daemon=True).start()
        assert fault.wait_reached(10)
        client.close()
        assert fault.client_gone.wait(30)
        fault.release()
        time.sleep(0.3)
    assert sorted(p.name for p in (root / "Upload").iterdir()) == [".t.csv.part"]


def test_the_deployteq_watcher_takes_triggers_from_upload_to_active_then_done(tmp_path):
    for folder in ("Upload", "Active", "Done", "Failed"):
        (tmp_path / folder).mkdir()
    (tmp_path / "Upload" / "a.csv").write_bytes(b"a")
    (tmp_path / "Upload" / ".b.csv.part").write_bytes(b"half")
    watcher = DeployteqWatcher(tmp_path)
    watcher.process()
    assert [p.name for p in (tmp_path / "Active").iterdir()] == ["a.csv"]
    (tmp_path / "Upload" / "a.csv").write_bytes(b"a")  # the same trigger again: a second campaign
    watcher.process()
    assert [p.name for p in (tmp_path / "Done").iterdir()] == ["a.csv"]
    assert [c.file_name for c in watcher.started] == ["a.csv", "a.csv"]
    assert [p.name for p in (tmp_path / "Upload").iterdir()] == [".b.csv.part"]  # scratch files are ignored
