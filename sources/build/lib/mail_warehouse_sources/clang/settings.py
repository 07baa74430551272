"""`[sources.clang]`: the settings of the Clang source, declared once and checked where they are declared.

Without `from __future__ import annotations`: dlt reads the field types of a configspec.
"""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dlt.common.configuration.exceptions import ConfigurationValueError
from dlt.common.configuration.specs import configspec

from mail_warehouse_sources.settings_scope import missing_setting
from mail_warehouse_sources.sftp import SftpSettings
from mail_warehouse_sources.sftp_config import SftpConfiguration

SECTION = ("sources", "clang")
SETTING_PREFIX = "SOURCES__CLANG__"
ACTIVITY_COLUMNS = [
    "Broadcastid",
    "Customerid",
    "Extern klantnummer",
    "E-mailadres",
    "Activiteit",
    "Activiteitdatum",
    "Beschrijving activiteit",
]
BROADCAST_COLUMNS = ["Broadcastid", "Broadcast type", "Beschrijving", "Onderwerp", "Verzonden op"]
DATE_COLUMNS = {"activity": "Activiteitdatum", "broadcast": "Verzonden op"}  # the date of each kind of file
KINDS = ("activity", "broadcast")


class ClangSettingsError(ConfigurationValueError):
    """A setting of `[sources.clang]` is wrong; the message names it (a dlt configuration error: exit code 2)."""


@configspec
class ClangConfiguration(SftpConfiguration):
    """`[sources.clang]` in .dlt/config.toml, or SOURCES__CLANG__<NAME> environment variables (only those: see
    settings_scope)."""

    __own_section__ = SECTION

    remote_dir: str = "."
    activity_glob: str = "**/activiteiten_*.csv"
    broadcast_glob: str = "**/broadcasts_*.csv"
    delimiter: str = ";"
    has_header: bool = True
    encoding: str = "utf-8"
    activity_columns: list[str] | None = None
    broadcast_columns: list[str] | None = None
    timezone: str = "Europe/Amsterdam"
    download_sessions: int = 4
    # An additional field of the activities export that says whether a machine made the open or click
    # (Deployteq's `machine_generated`): one of activity_columns; the models take it over their own rules.
    machine_flag_column: str | None = None

    def on_resolved(self) -> None:
        for required in ("host", "username"):
            if not getattr(self, required):
                raise ClangSettingsError(missing_setting(SECTION, required))
        self.remote_dir = self.remote_dir or "."
        self.delimiter = "\t" if self.delimiter in ("\\t", "\t", "tab") else self.delimiter
        if len(self.delimiter) != 1:
            raise ClangSettingsError(
                f"{SETTING_PREFIX}DELIMITER takes one character (\\t for tab), got {self.delimiter!r}"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ClangSettingsError(f"{SETTING_PREFIX}TIMEZONE {self.timezone!r} is not a time zone name") from None
        try:
            "".encode(self.encoding)
        except LookupError:
            raise ClangSettingsError(
                f"{SETTING_PREFIX}ENCODING {self.encoding!r} is not an encoding Python knows"
            ) from None
        self.encoding = self.encoding.lower()
        if int(self.download_sessions) < 1:
            raise ClangSettingsError(
                f"{SETTING_PREFIX}DOWNLOAD_SESSIONS must be at least 1, got {self.download_sessions}"
            )
        activity_columns = self.activity_columns = _checked_columns("activity", self.activity_columns, ACTIVITY_COLUMNS)
        self.broadcast_columns = _checked_columns("broadcast", self.broadcast_columns, BROADCAST_COLUMNS)
        if self.machine_flag_column and self.machine_flag_column not in activity_columns:
            raise ClangSettingsError(
                f"{SETTING_PREFIX}MACHINE_FLAG_COLUMN {self.machine_flag_column!r} is not one of "
                f"{SETTING_PREFIX}ACTIVITY_COLUMNS {self.activity_columns}: add it there too"
            )

    def columns(self, kind: str) -> list[str]:
        columns = self.activity_columns if kind == "activity" else self.broadcast_columns
        assert columns is not None  # on_resolved sets both (to the default columns when not configured)
        return columns

    def glob(self, kind: str) -> str:
        return self.activity_glob if kind == "activity" else self.broadcast_glob

    def sftp(self) -> SftpSettings:
        return self.sftp_settings(SETTING_PREFIX)


def _checked_columns(kind: str, columns: object, default: list[str]) -> list[str]:
    """The configured columns of a kind of file (None: `default`), checked."""
    name = f"{kind}_columns"
    if columns is None:
        columns = list(default)
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) and c for c in columns):
        raise ClangSettingsError(f"{SETTING_PREFIX}{name.upper()} must be a non-empty JSON list of column names")
    missing = [c for c in ("Broadcastid", DATE_COLUMNS[kind]) if c not in columns]
    if missing:
        raise ClangSettingsError(f"{SETTING_PREFIX}{name.upper()} lacks {missing}")
    return columns
