"""All stand-ins of a demo world at once, with the settings that point the loaders at them.

Used by `warehouse demo` and by the pytest fixtures. The settings come out as dlt environment variables
(`SOURCES__CLANG__HOST`, ...), the same names a user sets for the real systems.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mail_warehouse_demo.standins import directo, spotler
from mail_warehouse_demo.standins.http import StandinServer
from mail_warehouse_demo.standins.sftp import AsyncsshSftpServer, SshKeys

CLANG_REMOTE_DIR = "clang"
DEPLOYTEQ_FOLDERS = ("Upload", "Active", "Done", "Failed", "Import")  # Import: the contacts sync's files


@dataclass(frozen=True)
class StartedCampaign:
    file_name: str
    sha256: str
    size: int


class DeployteqWatcher:
    """Deployteq's side of the CSV-trigger folders: every trigger file that appears in `Upload/` (dot-names,
    such as an upload's `.part`, are ignored) starts a campaign, is moved to `Active/`, and on the next pass
    to `Done/`. `started` lists every campaign started, in order, so a trigger delivered twice shows twice
    even when the second has the first's name. Runs in a thread every `interval` seconds, or a pass at a time
    with `process()`."""

    def __init__(self, folder: Path, interval: float = 0.05) -> None:
        self.folder = Path(folder)
        self.interval = interval
        self.started: list[StartedCampaign] = []
        self._stop = threading.Event()
        self._pass_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def process(self) -> None:
        with self._pass_lock:
            for active in sorted((self.folder / "Active").iterdir()):
                active.replace(self.folder / "Done" / active.name)
            for trigger in sorted((self.folder / "Upload").iterdir()):
                if trigger.name.startswith(".") or not trigger.is_file():
                    continue
                content = trigger.read_bytes()
                self.started.append(StartedCampaign(trigger.name, hashlib.sha256(content).hexdigest(), len(content)))
                trigger.replace(self.folder / "Active" / trigger.name)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.process()

    def start(self) -> DeployteqWatcher:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="standin-deployteq", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.process()  # whatever arrived last is taken too

    def __enter__(self) -> DeployteqWatcher:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class StandinStack:
    world_dir: Path
    state_dir: Path
    sftp: AsyncsshSftpServer | None = None
    spotler_server: StandinServer | None = None
    spotler_api: spotler.SpotlerApi | None = None
    deployteq: AsyncsshSftpServer | None = None
    directo_server: StandinServer | None = None
    directo_app: directo.DirectoXmlCore | None = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def start(self) -> StandinStack:
        keys = SshKeys.generate(self.state_dir / "ssh")
        self.sftp = AsyncsshSftpServer(self.world_dir, keys).start()
        self._stack.callback(self.sftp.stop)
        self.spotler_server, self.spotler_api = spotler.serve(self.world_dir)
        self._stack.callback(self.spotler_server.stop)
        self.directo_server, self.directo_app = directo.serve(self.world_dir)
        self._stack.callback(self.directo_server.stop)
        # Deployteq's CSV-trigger folders: the export uploads to Upload/
        for folder in DEPLOYTEQ_FOLDERS:
            (self.deployteq_dir / folder).mkdir(parents=True, exist_ok=True)
        self.deployteq = AsyncsshSftpServer(
            self.deployteq_dir, SshKeys.generate(self.state_dir / "ssh-deployteq")
        ).start()
        self._stack.callback(self.deployteq.stop)
        return self

    @property
    def deployteq_dir(self) -> Path:
        return self.state_dir / "deployteq"

    def deployteq_watcher(self, interval: float = 0.05) -> DeployteqWatcher:
        """Deployteq taking the triggers from Upload/ (not started: the demo leaves them in Upload/ to look at)."""
        return DeployteqWatcher(self.deployteq_dir, interval)

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> StandinStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def spotler_base_url(self) -> str:
        return f"{self.spotler_server.url}/integrationservice-1.1.0"

    def environment(self) -> dict[str, str]:
        """Settings (and demo secrets) for every source, as environment variables."""
        keys = self.sftp.keys
        return {
            "SOURCES__CLANG__HOST": self.sftp.host,
            "SOURCES__CLANG__PORT": str(self.sftp.port),
            "SOURCES__CLANG__USERNAME": self.sftp.username,
            "SOURCES__CLANG__REMOTE_DIR": CLANG_REMOTE_DIR,
            "SOURCES__CLANG__KNOWN_HOSTS": str(keys.known_hosts),
            "SOURCES__CLANG__PRIVATE_KEY_PATH": str(keys.user_key),
            "SOURCES__SPOTLER__BASE_URL": self.spotler_base_url,
            "SOURCES__SPOTLER__CONSUMER_KEY": self.spotler_api.consumer_key,
            "SOURCES__SPOTLER__CONSUMER_SECRET": self.spotler_api.consumer_secret,
            "SOURCES__DIRECTO__URL": self.directo_app.url(self.directo_server),
            "SOURCES__DIRECTO__KEY": self.directo_app.key,
            "EXPORT__DEPLOYTEQ__HOST": self.deployteq.host,
            "EXPORT__DEPLOYTEQ__PORT": str(self.deployteq.port),
            "EXPORT__DEPLOYTEQ__USERNAME": self.deployteq.username,
            "EXPORT__DEPLOYTEQ__KNOWN_HOSTS": str(self.deployteq.keys.known_hosts),
            "EXPORT__DEPLOYTEQ__PRIVATE_KEY_PATH": str(self.deployteq.keys.user_key),
        }

    def describe(self) -> list[str]:
        return [
            f"Clang/Deployteq SFTP  sftp://{self.sftp.username}@{self.sftp.host}:{self.sftp.port}/{CLANG_REMOTE_DIR}"
            f"  (host key {self.sftp.keys.host_key_fingerprint()})",
            f"Spotler Mail+ API     {self.spotler_base_url}",
            f"Directo XMLCore       {self.directo_app.url(self.directo_server)}",
            f"Deployteq SFTP        sftp://{self.deployteq.username}@{self.deployteq.host}:{self.deployteq.port}/Upload"
            f"  (files land in {self.deployteq_dir / 'Upload'})",
        ]
