"""The warehouse's suppression list and record of erasures: the `privacy` schema of the warehouse file.

`privacy.suppression` holds one keyed hash per identifier of each forgotten person (mail_warehouse_sources/
suppression.py says what is hashed and how); `privacy.erasures` one row per person asked for (the hash of
their address, when asked and finished), `privacy.erasure_runs` one per `warehouse forget` (how many rows went
from each place). None ever holds an address or an id. dbt never writes this schema, so a full refresh keeps both.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from mail_warehouse_sources.suppression import Suppression

SCHEMA = "privacy"
MISSING_SECRET = (
    "no secret for the suppression list's hashes: set [privacy] secret in .dlt/secrets.toml "
    "(or PRIVACY__SECRET), a long random string kept as safe as the warehouse's backups "
    "(for example: python -c 'import secrets; print(secrets.token_hex(32))')"
)


class PrivacySecretMissing(RuntimeError):
    """Forgetting, or loading while anyone is on the suppression list, needs `[privacy] secret`."""


def create_privacy_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute(
        f"""create table if not exists {SCHEMA}.suppression (
            identifier_hash varchar primary key,  -- HMAC-SHA256 of '<kind>:<identifier>' under [privacy] secret
            erasure_id varchar not null,
            added_at timestamptz not null
        )"""
    )
    con.execute(
        f"""create table if not exists {SCHEMA}.erasure_runs (
            erasure_run varchar primary key,      -- one `warehouse forget`
            requested_at timestamptz not null,
            people integer not null,
            identifiers integer not null,         -- addresses and the ids tied to them, put on the list
            finished_at timestamptz,              -- null: asked, not finished (the next forget or run finishes it)
            rows_removed json                     -- place -> rows removed by the sweep that finished it
        )"""
    )
    con.execute(
        f"""create table if not exists {SCHEMA}.erasures (
            erasure_id varchar primary key,       -- one person asked for
            erasure_run varchar not null,
            email_hash varchar not null,          -- the keyed hash of the address, never the address
            requested_at timestamptz not null,
            finished_at timestamptz
        )"""
    )


def privacy_secret() -> str | None:
    from mail_warehouse.config import PrivacyConfiguration, resolve

    secret = resolve(PrivacyConfiguration, "privacy").secret
    return secret.strip() if secret and secret.strip() else None


def require_secret() -> str:
    secret = privacy_secret()
    if secret is None:
        raise PrivacySecretMissing(MISSING_SECRET)
    return secret


def read_suppression(con: duckdb.DuckDBPyConnection) -> Suppression:
    """The suppression list of the warehouse `con` is open on; empty when nobody was forgotten (no secret
    needed then). Anyone on it and no secret: PrivacySecretMissing, for nothing may load unfiltered."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = 'suppression'",
        [SCHEMA],
    ).fetchall()[0][0]
    if not exists:
        return Suppression()
    hashes = [h for (h,) in con.execute(f"select identifier_hash from {SCHEMA}.suppression").fetchall()]
    if not hashes:
        return Suppression()
    return Suppression(require_secret(), hashes)


def current_suppression() -> Suppression:
    """The suppression list of the warehouse every step uses (WAREHOUSE_PATH)."""
    from mail_warehouse.settings import connect, warehouse_path

    if not warehouse_path().exists():
        return Suppression()
    con = connect()
    try:
        return read_suppression(con)
    finally:
        con.close()


def ensure_demo_secret() -> Path | None:
    """For `warehouse demo`: when no `[privacy] secret` is set, a random one written to `.dlt/secrets.toml`
    (which git ignores), so `warehouse forget` works after the demo; returns that file, or None when a secret
    was set already."""
    import secrets

    from mail_warehouse.settings import PROJECT_DIR

    if privacy_secret() is not None:
        return None
    path = Path(os.environ.get("DLT_PROJECT_DIR") or PROJECT_DIR) / ".dlt" / "secrets.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    if "[privacy]" in existing:  # a section without a usable secret: the user's to fix, not ours to guess
        raise PrivacySecretMissing(f"{path} has a [privacy] section without a secret: " + MISSING_SECRET)
    separator = "" if not existing or existing.endswith("\n") else "\n"
    path.write_text(
        existing
        + separator
        + "\n[privacy]\n# the key of the suppression list's hashes (warehouse forget): keep it, and keep it secret\n"
        + f'secret = "{secrets.token_hex(32)}"\n',
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path
