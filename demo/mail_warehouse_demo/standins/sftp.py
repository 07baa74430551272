"""Real SFTP servers on loopback serving a folder: asyncssh in-process, or OpenSSH's sshd.

Both log in with generated keys (asyncssh also with a password) and write a `known_hosts` file for
clients, so the loaders' host-key checks run for real. Paths are relative to the served folder on both:
asyncssh chroots into it, sshd starts the session in it (`internal-sftp -d`).

The asyncssh server can also misbehave on purpose: drop the connection after some bytes were read
(`drop_after_bytes`), read or write slowly (`read_delay`, `write_delay`), for tests of retries and of runs
killed mid-download or mid-upload.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import hashlib
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh

DEMO_USERNAME = "deployteq"
DEMO_PASSWORD = "demo-sftp-password"
SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


@dataclass(frozen=True)
class SshKeys:
    """Host and user keys for a stand-in, as files a client is configured with."""
    folder: Path

    @property
    def host_key(self) -> Path:
        return self.folder / "ssh_host_ed25519_key"

    @property
    def user_key(self) -> Path:
        return self.folder / "id_ed25519"

    @property
    def user_public_key(self) -> Path:
        return self.folder / "id_ed25519.pub"

    @property
    def known_hosts(self) -> Path:
        return self.folder / "known_hosts"

    @classmethod
    def generate(cls, folder: Path) -> "SshKeys":
        keys = cls(Path(folder))
        keys.folder.mkdir(parents=True, exist_ok=True)
        if not keys.host_key.exists():
            asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(keys.host_key))
            os.chmod(keys.host_key, 0o600)
        if not keys.user_key.exists():
            user = asyncssh.generate_private_key("ssh-ed25519", comment="mail_warehouse demo")
            user.write_private_key(str(keys.user_key))
            user.write_public_key(str(keys.user_public_key))
            os.chmod(keys.user_key, 0o600)
        return keys

    def host_public_key_line(self) -> str:
        return asyncssh.read_private_key(str(self.host_key)).export_public_key().decode().split()[0:2]

    def host_key_fingerprint(self) -> str:
        """`SHA256:...` as `ssh-keygen -l` prints it."""
        blob = asyncssh.read_private_key(str(self.host_key)).public_data
        return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")

    def write_known_hosts(self, host: str, port: int) -> Path:
        algorithm, key = self.host_public_key_line()
        name = host if port == 22 else f"[{host}]:{port}"
        self.known_hosts.write_text(f"{name} {algorithm} {key}\n")
        return self.known_hosts


class _MisbehavingSFTPServer(asyncssh.SFTPServer):
    def __init__(self, chan, *, root: str, standin: "AsyncsshSftpServer") -> None:
        super().__init__(chan, chroot=root)
        self._standin = standin
        self._bytes_read = 0

    async def read(self, file_obj, offset, size):
        if self._standin.read_delay:
            await asyncio.sleep(self._standin.read_delay)
        data = super().read(file_obj, offset, size)
        self._bytes_read += len(data)
        if self._standin.should_drop(self._bytes_read):
            self.channel.get_connection().abort()
        return data

    async def write(self, file_obj, offset, data):
        if self._standin.write_delay:
            await asyncio.sleep(self._standin.write_delay)
        return super().write(file_obj, offset, data)


class _SshServer(asyncssh.SSHServer):
    def __init__(self, username: str, password: str | None, authorized_key: asyncssh.SSHKey,
                 live: set) -> None:
        self._username, self._password, self._authorized_key = username, password, authorized_key
        self._live = live
        self._conn = None

    def connection_made(self, conn) -> None:
        self._conn = conn
        self._live.add(conn)

    def connection_lost(self, exc) -> None:
        self._live.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return self._password is not None

    def validate_password(self, username: str, password: str) -> bool:
        return username == self._username and password == self._password

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == self._username and key.public_data == self._authorized_key.public_data


class AsyncsshSftpServer:
    """An SFTP server in a background thread of this process."""

    kind = "asyncssh"

    def __init__(self, root: Path, keys: SshKeys, *, username: str = DEMO_USERNAME,
                 password: str | None = DEMO_PASSWORD, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root, self.keys, self.username, self.password = Path(root), keys, username, password
        self.host, self.port = host, port
        self.read_delay = 0.0
        self.write_delay = 0.0
        self.drop_after_bytes: int | None = None
        self.drops_left = 0
        self._live_connections: set = set()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="standin-sftp", daemon=True)
        self._acceptor = None

    def should_drop(self, bytes_read: int) -> bool:
        with self._lock:
            if self.drop_after_bytes is not None and self.drops_left > 0 and bytes_read >= self.drop_after_bytes:
                self.drops_left -= 1
                return True
        return False

    def drop_connections(self, after_bytes: int, times: int = 1) -> None:
        """The next `times` sessions are cut once they have read `after_bytes` bytes."""
        with self._lock:
            self.drop_after_bytes, self.drops_left = after_bytes, times

    def _connection_made(self) -> _SshServer:
        return _SshServer(self.username, self.password, asyncssh.read_public_key(str(self.keys.user_public_key)),
                          self._live_connections)

    async def _start(self):
        self._acceptor = await asyncssh.create_server(
            self._connection_made, self.host, self.port,
            server_host_keys=[str(self.keys.host_key)],
            sftp_factory=lambda chan: _MisbehavingSFTPServer(chan, root=str(self.root), standin=self),
            allow_scp=False, login_timeout=30)
        return self._acceptor.sockets[0].getsockname()[1]

    def start(self) -> "AsyncsshSftpServer":
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        self.keys.write_known_hosts(self.host, self.port)
        return self

    def stop(self) -> None:
        async def _close():
            self._acceptor.close()
            await self._acceptor.wait_closed()
            for conn in list(self._live_connections):
                conn.close()
                await conn.wait_closed()
            await asyncio.sleep(0)
        if self._acceptor is not None:
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def find_sshd() -> str | None:
    for candidate in (shutil.which("sshd"), *SSHD_CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class OpenSshSftpServer:
    """OpenSSH's sshd on a free loopback port, key login only, SFTP only, starting in the served folder."""

    kind = "openssh"

    def __init__(self, root: Path, keys: SshKeys, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.root, self.keys, self.host = Path(root).resolve(), keys, host
        self.port = port or _free_port(host)
        self.username = getpass.getuser()
        self.password = None
        self.sshd = find_sshd()
        self._process: subprocess.Popen | None = None
        self._log = keys.folder / "sshd.log"

    def start(self) -> "OpenSshSftpServer":
        if self.sshd is None:
            raise FileNotFoundError("OpenSSH's sshd is not installed (Debian package openssh-server)")
        self.root.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation directory
        authorized = self.keys.folder / "authorized_keys"
        shutil.copyfile(self.keys.user_public_key, authorized)
        config = self.keys.folder / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", f"ListenAddress {self.host}", f"HostKey {self.keys.host_key}",
            f"PidFile {self.keys.folder / 'sshd.pid'}", f"AuthorizedKeysFile {authorized}",
            "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no", f"AllowUsers {self.username}",
            "Subsystem sftp internal-sftp", f"ForceCommand internal-sftp -d {self.root}",
            "AllowTcpForwarding no", "X11Forwarding no", "LogLevel ERROR", "",
        ]))
        self._process = subprocess.Popen([self.sshd, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                                         stderr=self._log.open("wb"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"sshd exited with {self._process.returncode}: {self._log.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as probe:
                    if probe.recv(4).startswith(b"SSH-"):
                        break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"sshd did not answer on {self.host}:{self.port}")
        self.keys.write_known_hosts(self.host, self.port)
        return self

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
