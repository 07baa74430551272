"""`warehouse build`: dbt build on the warehouse, run from the repo with the same WAREHOUSE_PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mail_warehouse.settings import PROJECT_DIR, WAREHOUSE_PATH_ENV, warehouse_path


def dbt_executable() -> str:
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def dbt_build(extra: list[str] | None = None) -> int:
    """Run `dbt build`; its own output goes straight to the terminal. Returns dbt's exit code."""
    env = {**os.environ, WAREHOUSE_PATH_ENV: str(warehouse_path())}
    command = [dbt_executable(), "build", "--profiles-dir", str(PROJECT_DIR), "--project-dir", str(PROJECT_DIR),
               *(extra or [])]
    return subprocess.run(command, cwd=PROJECT_DIR, env=env).returncode
