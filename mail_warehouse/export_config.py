"""`[export.deployteq]`: where the CSV triggers go, read the dlt way (`.dlt/config.toml`, `.dlt/secrets.toml`,
`EXPORT__DEPLOYTEQ__<NAME>` environment variables).

A module of its own because reading settings imports dlt (about 0.4 s): `warehouse export` imports it
beside DuckDB's work on the first segment instead of before it.
"""

from dataclasses import dataclass
from pathlib import Path

from dlt.common.configuration.resolve import resolve_configuration
from dlt.common.configuration.specs import configspec

from mail_warehouse import settings as warehouse_settings
from mail_warehouse.export import ExportError
from loaders.sftp import SftpSettings
from loaders.sftp_config import SftpConfiguration


@configspec
class DeployteqConfiguration(SftpConfiguration):
    """`[export.deployteq]` in .dlt/config.toml, or EXPORT__DEPLOYTEQ__<NAME> environment variables."""
    upload_dir: str = "Upload"
    done_dir: str = "Done"
    failed_dir: str = "Failed"
    upload_empty: bool = False
    local_dir: str = "exports"


@dataclass(frozen=True)
class ExportSettings:
    sftp: SftpSettings | None
    upload_dir: str
    done_dir: str
    failed_dir: str
    upload_empty: bool
    local_dir: Path


def load_settings(*, need_sftp: bool = True) -> ExportSettings:
    config = resolve_configuration(DeployteqConfiguration(), sections=("export", "deployteq"), accept_partial=True)
    sftp = None
    if config.host and config.username:
        sftp = config.sftp_settings("EXPORT__DEPLOYTEQ__")
    elif need_sftp:
        raise ExportError("missing settings export.deployteq.host and username (env EXPORT__DEPLOYTEQ__HOST, "
                          "EXPORT__DEPLOYTEQ__USERNAME)")
    local = Path(config.local_dir)
    return ExportSettings(sftp, config.upload_dir.strip("/") or ".", config.done_dir.strip("/"),
                          config.failed_dir.strip("/"), bool(config.upload_empty),
                          local if local.is_absolute() else warehouse_settings.PROJECT_DIR / local)
