"""Settings shared by every step: where the warehouse lives and how DuckDB is opened.

Source settings (hosts, globs, keys) are read the dlt way, from `.dlt/config.toml`, `.dlt/secrets.toml`
and environment variables such as `SOURCES__CLANG__HOST`; this module only holds what every step shares.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

PROJECT_DIR = Path(__file__).resolve().parent.parent
WAREHOUSE_PATH_ENV = "WAREHOUSE_PATH"
DEFAULT_WAREHOUSE_FILE = "warehouse.duckdb"
SESSION_TIME_ZONE = "UTC"
# The source systems, and the setting whose presence makes each configured (dlt config, secrets or environment).
SOURCE_SETTINGS = {
    "clang": ("sources.clang.host", "SOURCES__CLANG__HOST"),
    "spotler": ("sources.spotler.consumer_key", "SOURCES__SPOTLER__CONSUMER_KEY"),
    "directo": ("sources.directo.url", "SOURCES__DIRECTO__URL"),
}


def sql_literal(value: str) -> str:
    """A string as a SQL literal, for the few places where DuckDB takes no parameter (COPY, read_csv, ATTACH)."""
    return "'" + value.replace("'", "''") + "'"


def warehouse_path() -> Path:
    """The one DuckDB file every step uses: env WAREHOUSE_PATH, default warehouse.duckdb in the repo root.

    A relative path is taken from the repo root, which is where dbt runs and reads the same variable.
    """
    configured = Path(os.environ.get(WAREHOUSE_PATH_ENV) or DEFAULT_WAREHOUSE_FILE)
    return configured if configured.is_absolute() else PROJECT_DIR / configured


def connect(path: Path | str | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file with the session time zone set to UTC, as every step must."""
    target = Path(path) if path is not None else warehouse_path()
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(target), read_only=read_only)
    # Set after connecting: DuckDB applies connect-time config before its ICU time zones are loaded.
    # GLOBAL, so cursors and the connections dlt opens from this one run in UTC as well.
    con.execute(f"set global TimeZone = '{SESSION_TIME_ZONE}'")
    return con


def use_project_dlt_settings() -> None:
    """Point dlt at the repo's `.dlt/` folder whatever the working directory, unless the user chose one."""
    os.environ.setdefault("DLT_PROJECT_DIR", str(PROJECT_DIR))


def configured_sources() -> list[str]:
    """The source systems this company has configured (their first setting is present), in a fixed order."""
    import dlt

    use_project_dlt_settings()
    found = []
    for source, (key, env) in SOURCE_SETTINGS.items():
        if os.environ.get(env) or dlt.config.get(key) or dlt.secrets.get(key):
            found.append(source)
    return found
