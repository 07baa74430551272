"""One `warehouse <command>` at a time per warehouse: an flock on a file beside the warehouse.

The kernel releases an flock when its holder dies, even by SIGKILL, so a killed run never leaves a stale lock.
`run` and `export` take different locks: the export that `warehouse run` starts as a child does not wait for
its own parent, while two exports (one from `run`, one by hand or from another cron line) still exclude each
other. A second holder waits up to `wait_seconds`, then gives up with a message naming the holder's pid.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import TextIO


class LockBusy(RuntimeError):
    pass


class WarehouseLock:
    def __init__(self, warehouse: Path, wait_seconds: float, command: str = "run") -> None:
        self.path = warehouse.with_name(
            f".{warehouse.name}.lock" if command == "run" else f".{warehouse.name}.{command}.lock"
        )
        self.command = command
        self.wait = wait_seconds
        self.handle: TextIO | None = None

    def __enter__(self) -> WarehouseLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.handle = self.path.open("a+")
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                handle.seek(0)
                handle.truncate()
                handle.write(f"{os.getpid()}\n")
                handle.flush()
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "another process"
                    handle.close()
                    raise LockBusy(
                        f"another `warehouse {self.command}` (pid {holder}) holds {self.path}; gave up "
                        f"after {self.wait:.0f} s (--wait sets how long to wait)"
                    ) from None
                time.sleep(0.5)

    def __exit__(self, *exc) -> None:
        handle = self.handle
        assert handle is not None  # __enter__ opened it
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
