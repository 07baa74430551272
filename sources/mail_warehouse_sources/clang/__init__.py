"""Clang/Deployteq activity and broadcast exports on SFTP, as a dlt source (`clang_source()`).

- `settings.py`: `[sources.clang]`, one configspec checked where it is declared.
- `source.py`: the source and its resources; new files listed, downloaded over a few sessions at once, each
  resource's file versions kept in its own dlt state; a file delivered again replaces its rows by dlt's merge.
- `parse.py`: new files of one kind read in one DuckDB pass (a backlog in a few, each while the next files
  download), rejects with file, line and reason.

Raw codes and local times are kept as delivered: `activiteit` as is, dates as local timestamps; the zone
they are in is the file's `source_timezone` in `loaded_files`; staging (dbt) maps codes and converts to UTC.
"""

from mail_warehouse_sources.clang.parse import VERSION_WITHOUT_ROWS
from mail_warehouse_sources.clang.settings import (
    ACTIVITY_COLUMNS,
    BROADCAST_COLUMNS,
    ClangConfiguration,
    ClangSettingsError,
)
from mail_warehouse_sources.clang.source import RunReport, RunSummary, clang_source

DATASET = "raw_clang"
PIPELINE_NAME = "clang"

__all__ = [
    "ACTIVITY_COLUMNS",
    "BROADCAST_COLUMNS",
    "DATASET",
    "PIPELINE_NAME",
    "VERSION_WITHOUT_ROWS",
    "ClangConfiguration",
    "ClangSettingsError",
    "RunReport",
    "RunSummary",
    "clang_source",
]
