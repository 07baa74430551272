"""`warehouse dashboard`: a Streamlit dashboard on the published copy (`analytics.duckdb`), read-only.

One page per question a marketer asks (views/, a module each), each with its query beside its chart. The app opens the
copy read-only for each page view and closes it again, so it never blocks a load or a publish, and a newly
published copy (renamed into place by `warehouse publish`) shows on the next refresh.

Who may open it is `auth`'s business: this machine only without a login, Streamlit's OpenID Connect login (in
the dashboard's secrets file) to serve a team.
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


def streamlit_command(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, secrets: Path | None = None) -> list[str]:
    """The command that serves the dashboard: headless, no usage statistics sent anywhere, no file watcher, and
    the dashboard's own secrets file only (never ~/.streamlit's or the working directory's, which the access
    check did not read)."""
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
        *(["--secrets.files", str(secrets)] if secrets is not None else []),
    ]


def url(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def start(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    secrets: Path | None = None,
    env: dict | None = None,
    **popen_options,
) -> subprocess.Popen:
    """Start the dashboard server in a process of its own; the caller stops it. Refuses (DashboardError) an
    address other machines reach when `secrets` (default: `auth.secrets_file()`) configure no login."""
    try:
        import streamlit  # noqa: F401  (only to fail early with a clear message)
    except ImportError:
        raise DashboardError(
            "the dashboard needs Streamlit: pip install 'mail-warehouse[dashboard]' (make setup installs it)"
        ) from None
    from mail_warehouse.dashboard.auth import check_access, secrets_file

    secrets = secrets or secrets_file()
    check_access(host, secrets)
    return subprocess.Popen(streamlit_command(host, port, secrets), env={**os.environ, **(env or {})}, **popen_options)
