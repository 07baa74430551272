"""Real SFTP servers on loopback serving a folder: asyncssh in-process, or OpenSSH's sshd.

Both log in with generated keys (asyncssh also with a password) and write a `known_hosts` file for
clients, so the loaders' host-key checks run for real. Paths are relative to the served folder on both:
asyncssh chroots into it, sshd starts the session in it (`internal-sftp -d`).

The asyncssh server can also misbehave on purpose: drop the connection after some bytes were read
(`drop_after_bytes`), read or write slowly (`read_delay`, `write_delay`), and hold or drop the reply to a
chosen request (`inject(SftpFault(...))`: the Nth `open`, `write`, `posix_rename`, ... whose path matches,
before or after the server carried it out), for tests of retries and of runs killed at a chosen moment.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import hashlib
import inspect
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
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
    def generate(cls, folder: Path) -> SshKeys:
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


@dataclass
class SftpFault:
    """Hold or drop the reply to the `nth` request of `operation` (a regex matched against the server method's
    name: open, close, read, write, stat, lstat, fstat, scandir, remove, rename, posix_rename) whose path matches
    `path` (a regex searched in the path as the client wrote it; for read, write, close and fstat the open
    file's name).

    `action`: "hold" keeps the reply back until `release()` (the test kills the client meanwhile), "drop" cuts
    the connection instead of replying, "deny" answers permission denied, "late" cuts the connection with the
    request still queued and carries it out when the test releases it (`outcome` says how that went).
    `after`: act once the server has carried the request out (a rename done whose reply never arrives) rather
    than before; a request held before and whose client is gone by the release is not carried out."""

    operation: str
    path: str = ""
    nth: int = 1
    action: str = "hold"
    after: bool = False
    seen: int = 0
    reached: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    released: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    carried_out: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    client_gone: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    outcome: str = ""  # action "late": what became of the request carried out after the client had gone

    def hits(self, operation: str, path: str) -> bool:
        """Count a matching request; True for the one this fault acts on."""
        if self.reached.is_set() or not re.fullmatch(self.operation, operation) or not re.search(self.path, path):
            return False
        self.seen += 1
        return self.seen == self.nth

    def release(self) -> None:
        self.released.set()

    def release_after_disconnect(self, timeout: float = 30) -> None:
        """Let a held reply go once the server has seen its client's connection close (the test killed the
        client): let go sooner, a request whose client is gone, but not yet noticed, would be carried out."""
        if self.action == "hold" and self.reached.is_set() and not self.released.is_set():
            self.client_gone.wait(timeout)
        self.release()

    def wait_reached(self, timeout: float) -> bool:
        return self.reached.wait(timeout)


def _text(path) -> str:
    path = getattr(path, "name", path)
    return path.decode("utf-8", "replace") if isinstance(path, bytes) else str(path)


class _MisbehavingSFTPServer(asyncssh.SFTPServer):
    def __init__(self, chan, *, root: str, standin: AsyncsshSftpServer) -> None:
        super().__init__(chan, chroot=root)
        self._standin = standin
        self._bytes_read = 0
        self._names: dict[int, str] = {}  # open file -> the path the client opened it by

    async def _serve(self, operation: str, path: str, carry_out):
        fault = self._standin.take_fault(operation, path)
        if fault is not None and fault.action == "late":
            await self._carry_out_late(fault, carry_out)
        if fault is not None and not fault.after:
            await self._act(fault)
        result = carry_out()
        if inspect.isawaitable(result):
            result = await result
        if fault is not None and fault.after:
            await self._act(fault)
        return result

    async def _act(self, fault: SftpFault) -> None:
        fault.reached.set()
        if fault.action == "drop":
            self.channel.get_connection().abort()
            raise asyncssh.SFTPConnectionLost("dropped by an injected fault")
        if fault.action == "deny":
            raise asyncssh.SFTPPermissionDenied("permission denied (an injected fault)")
        while not fault.released.is_set():  # the reply waits; the connection stays up
            if self.channel.is_closing():
                fault.client_gone.set()
            await asyncio.sleep(0.01)
        if self.channel.is_closing():
            raise asyncssh.SFTPConnectionLost("the client went away while its request was held")

    async def _carry_out_late(self, fault: SftpFault, carry_out) -> None:
        """The connection drops with the request still queued; the server carries it out once the test
        releases it, after the client has gone (as a real server working through its queue may)."""
        fault.reached.set()
        self.channel.get_connection().abort()
        while not fault.released.is_set():
            await asyncio.sleep(0.01)
        try:
            result = carry_out()
            if inspect.isawaitable(result):
                await result
            fault.outcome = "carried out"
        except (OSError, asyncssh.SFTPError) as error:
            fault.outcome = f"failed: {error}"
        fault.carried_out.set()
        raise asyncssh.SFTPConnectionLost("dropped by an injected fault; the request was carried out late")

    def _name(self, file_obj) -> str:
        return self._names.get(id(file_obj), _text(file_obj))

    async def open(self, path, pflags, attrs):
        file_obj = await self._serve(
            "open", _text(path), lambda: super(_MisbehavingSFTPServer, self).open(path, pflags, attrs)
        )
        self._names[id(file_obj)] = _text(path)
        return file_obj

    async def close(self, file_obj):
        try:
            return await self._serve(
                "close", self._name(file_obj), lambda: super(_MisbehavingSFTPServer, self).close(file_obj)
            )
        finally:
            self._names.pop(id(file_obj), None)

    async def read(self, file_obj, offset, size):
        if self._standin.read_delay:
            await asyncio.sleep(self._standin.read_delay)
        data = await self._serve(
            "read", self._name(file_obj), lambda: super(_MisbehavingSFTPServer, self).read(file_obj, offset, size)
        )
        self._bytes_read += len(data)
        if self._standin.should_drop(self._bytes_read):
            self.channel.get_connection().abort()
        return data

    async def write(self, file_obj, offset, data):
        if self._standin.write_delay:
            await asyncio.sleep(self._standin.write_delay)
        return await self._serve(
            "write", self._name(file_obj), lambda: super(_MisbehavingSFTPServer, self).write(file_obj, offset, data)
        )

    async def stat(self, path):
        return await self._serve("stat", _text(path), lambda: super(_MisbehavingSFTPServer, self).stat(path))

    async def lstat(self, path):
        return await self._serve("lstat", _text(path), lambda: super(_MisbehavingSFTPServer, self).lstat(path))

    async def fstat(self, file_obj):
        return await self._serve(
            "fstat", self._name(file_obj), lambda: super(_MisbehavingSFTPServer, self).fstat(file_obj)
        )

    async def remove(self, path):
        return await self._serve("remove", _text(path), lambda: super(_MisbehavingSFTPServer, self).remove(path))

    async def rename(self, oldpath, newpath):
        return await self._serve(
            "rename", _text(oldpath), lambda: super(_MisbehavingSFTPServer, self).rename(oldpath, newpath)
        )

    async def posix_rename(self, oldpath, newpath):
        return await self._serve(
            "posix_rename", _text(oldpath), lambda: super(_MisbehavingSFTPServer, self).posix_rename(oldpath, newpath)
        )

    async def scandir(self, path):
        fault = self._standin.take_fault("scandir", _text(path))
        if fault is not None:
            await self._act(fault)
        async for entry in super().scandir(path):
            yield entry


class _SshServer(asyncssh.SSHServer):
    def __init__(self, username: str, password: str | None, authorized_key: asyncssh.SSHKey, live: set) -> None:
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

    def __init__(
        self,
        root: Path,
        keys: SshKeys,
        *,
        username: str = DEMO_USERNAME,
        password: str | None = DEMO_PASSWORD,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.root, self.keys, self.username, self.password = Path(root), keys, username, password
        self.host, self.port = host, port
        self.read_delay = 0.0
        self.write_delay = 0.0
        self.drop_after_bytes: int | None = None
        self.drops_left = 0
        self.faults: list[SftpFault] = []
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

    def inject(self, *faults: SftpFault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def clear_faults(self) -> None:
        """Forget every fault, releasing any reply still held."""
        with self._lock:
            held, self.faults = self.faults, []
        for fault in held:
            fault.release()

    def take_fault(self, operation: str, path: str) -> SftpFault | None:
        with self._lock:
            for fault in self.faults:
                if fault.hits(operation, path):
                    return fault
        return None

    def drop_connections(self, after_bytes: int, times: int = 1) -> None:
        """The next `times` sessions are cut once they have read `after_bytes` bytes."""
        with self._lock:
            self.drop_after_bytes, self.drops_left = after_bytes, times

    def _connection_made(self) -> _SshServer:
        return _SshServer(
            self.username,
            self.password,
            asyncssh.read_public_key(str(self.keys.user_public_key)),
            self._live_connections,
        )

    async def _start(self):
        self._acceptor = await asyncssh.create_server(
            self._connection_made,
            self.host,
            self.port,
            server_host_keys=[str(self.keys.host_key)],
            sftp_factory=lambda chan: _MisbehavingSFTPServer(chan, root=str(self.root), standin=self),
            allow_scp=False,
            login_timeout=30,
        )
        return self._acceptor.sockets[0].getsockname()[1]

    def start(self) -> AsyncsshSftpServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        self.keys.write_known_hosts(self.host, self.port)
        return self

    def stop(self) -> None:
        self.clear_faults()

        async def _close():
            # connections first: from Python 3.12 on, a server's wait_closed waits for every connection it
            # accepted, so one still open (a client that gave up before logging in) held it until login_timeout
            self._acceptor.close()
            for conn in list(self._live_connections):
                conn.close()
                await conn.wait_closed()
            await self._acceptor.wait_closed()
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

    def start(self) -> OpenSshSftpServer:
        if self.sshd is None:
            raise FileNotFoundError("OpenSSH's sshd is not installed (Debian package openssh-server)")
        self.root.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation directory
        authorized = self.keys.folder / "authorized_keys"
        shutil.copyfile(self.keys.user_public_key, authorized)
        config = self.keys.folder / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.host}",
                    f"HostKey {self.keys.host_key}",
                    f"PidFile {self.keys.folder / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    f"AllowUsers {self.username}",
                    "Subsystem sftp internal-sftp",
                    f"ForceCommand internal-sftp -d {self.root}",
                    "AllowTcpForwarding no",
                    "X11Forwarding no",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        self._process = subprocess.Popen(
            [self.sshd, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=self._log.open("wb")
        )
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
