"""`warehouse dashboard`: a Streamlit dashboard on the published copy (`analytics.duckdb`), read-only.

One page per question a marketer asks (pages/, a module each), each with its query beside its chart. The app opens the
copy read-only for each page view and closes it again, so it never blocks a load or a publish, and a newly
published copy (renamed into place by `warehouse publish`) shows on the next refresh.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501


class DashboardError(RuntimeError):
    pass


def streamlit_command(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> list[str]:
    """The command that serves the dashboard: headless, no usage statistics sent anywhere, no file watcher."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--theme.base",
        "light",
    ]


def url(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    return f"http://{host}:{port}/"


def start(
    host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, env: dict | None = None, **popen_options
) -> subprocess.Popen:
    """Start the dashboard server in a process of its own; the caller stops it."""
    try:
        import streamlit  # noqa: F401  (only to fail early with a clear message)
    except ImportError:
        raise DashboardError(
            "the dashboard needs Streamlit: pip install 'mail-warehouse[dashboard]' (make setup installs it)"
        ) from None
    return subprocess.Popen(streamlit_command(host, port), env={**os.environ, **(env or {})}, **popen_options)
