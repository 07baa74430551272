"""`[export.deployteq]`: where the CSV triggers go, read the dlt way (`.dlt/config.toml`, `.dlt/secrets.toml`,
`EXPORT__DEPLOYTEQ__<NAME>` environment variables), and the export's error.

Reading settings imports dlt (about 0.4 s): `warehouse export` calls `load_settings` beside DuckDB's work on the
first segment, so dlt is imported inside it, and this module (which `export` imports) stays free of dlt. No
`from __future__ import annotations` either: dlt reads the field types of a configspec.
"""

import posixpath
from dataclasses import dataclass
from pathlib import Path

from mail_warehouse import settings as warehouse_settings
from mail_warehouse_sources.sftp import SftpSettings

SECTION = ("export", "deployteq")
SETTING_PREFIX = "EXPORT__DEPLOYTEQ__"


class ExportError(RuntimeError):
    """An export that cannot go on; the message says what failed, where, and what to do."""


@dataclass(frozen=True)
class ExportSettings:
    sftp: SftpSettings | None
    upload_dir: str
    active_dir: str
    done_dir: str
    failed_dir: str
    upload_empty: bool
    local_dir: Path
    import_dir: str = "Import"  # where the contacts sync delivers its files (mail_warehouse.sync.contacts)

    @property
    def folders(self) -> dict[str, str]:
        """Every folder a trigger file can be in, by the name of its setting, in the order Deployteq moves it."""
        return {
            "UPLOAD_DIR": self.upload_dir,
            "ACTIVE_DIR": self.active_dir,
            "DONE_DIR": self.done_dir,
            "FAILED_DIR": self.failed_dir,
        }


def remote_folder(value: str) -> str:
    """A remote folder as written: relative ones start in the login folder, absolute ones (a leading `/`) at the
    server's root; only trailing slashes go."""
    value = (value or "").strip()
    if value in ("", "."):
        return "."
    return posixpath.normpath(value) if value.startswith("/") else value.rstrip("/")


def load_settings(*, need_sftp: bool = True) -> ExportSettings:
    from mail_warehouse.config import DeployteqConfiguration, resolve
    from mail_warehouse_sources.settings_scope import keep_to_own_section

    config = resolve(DeployteqConfiguration, *SECTION, accept_partial=True)
    keep_to_own_section(config, *SECTION)  # a bare HOST or PORT in the environment is no Deployteq setting
    sftp = None
    if config.host and config.username:
        sftp = config.sftp_settings(SETTING_PREFIX)
    elif need_sftp:
        raise ExportError(
            f"missing settings export.deployteq.host and username (env {SETTING_PREFIX}HOST, {SETTING_PREFIX}USERNAME)"
        )
    local = Path(config.local_dir)
    return ExportSettings(
        sftp,
        remote_folder(config.upload_dir),
        remote_folder(config.active_dir),
        remote_folder(config.done_dir),
        remote_folder(config.failed_dir),
        bool(config.upload_empty),
        local if local.is_absolute() else warehouse_settings.PROJECT_DIR / local,
        remote_folder(config.import_dir),
    )
