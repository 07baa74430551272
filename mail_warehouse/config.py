"""The application's settings, read one way: each section a dlt configspec declared here, resolved by
`resolve()` from the project's `.dlt/` files and the environment (`SECTION__NAME`), as dlt resolves the
loaders' own sections (`[sources.clang]`, `[sources.spotler]`, `[sources.directo]`, declared beside each
loader). Imported where a setting is read, so that `warehouse --help` does not import dlt."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from dlt.common.configuration.exceptions import ConfigurationValueError
from dlt.common.configuration.resolve import resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration, configspec
from dlt.common.typing import TSecretStrValue

from mail_warehouse.settings import use_project_dlt_settings
from mail_warehouse_sources.sftp_config import SftpConfiguration

ENGINES = ("duckdb", "spark")
# The oldest storage format that holds every type of the marts (timestamptz, varchar[], json, decimal):
# every DuckDB 1.x reads it.
DEFAULT_STORAGE_COMPATIBILITY_VERSION = "v1.0.0"

Spec = TypeVar("Spec", bound=BaseConfiguration)


@configspec
class WarehouseConfiguration(BaseConfiguration):
    """`[warehouse]`: which engine builds the models, and on Spark which dbt target (profiles.yml's `spark`, in
    this process; `spark_thrift`, a cluster's Thrift server; or a target of the company's own profiles)."""

    engine: str = "duckdb"
    spark_target: str = "spark"

    def on_resolved(self) -> None:
        self.engine = self.engine.strip().lower()
        if self.engine not in ENGINES:
            raise ConfigurationValueError(
                f"warehouse.engine (WAREHOUSE__ENGINE) is {self.engine!r}: use {' or '.join(ENGINES)}"
            )


@configspec
class BuildConfiguration(BaseConfiguration):
    """`[build]`: a source past its freshness error_after fails the build when set (else it warns)."""

    fail_on_stale_sources: bool = False


@configspec
class PublishConfiguration(BaseConfiguration):
    """`[publish]`: the storage format of analytics.duckdb."""

    storage_compatibility_version: str = DEFAULT_STORAGE_COMPATIBILITY_VERSION


@configspec
class PrivacyConfiguration(BaseConfiguration):
    """`[privacy]`: the secret key of the suppression list's hashes (a secret: .dlt/secrets.toml or
    PRIVACY__SECRET). Lost, the list cannot be matched any more; changed, every hash must be made again."""

    secret: TSecretStrValue | None = None


@configspec
class DeployteqConfiguration(SftpConfiguration):
    """`[export.deployteq]`: the SFTP account and folders of Deployteq's CSV triggers."""

    upload_dir: str = "Upload"
    active_dir: str = "Active"
    done_dir: str = "Done"
    failed_dir: str = "Failed"
    upload_empty: bool = False
    local_dir: str = "exports"
    import_dir: str = "Import"  # the contacts sync's CSV files, which Deployteq imports


# The contacts sync's CSV columns, each the column's name as written in the file (`[sync] contacts_columns` renames
# them): the address, Directo's customer code, name and country, consent as 1 or 0 and the day it was stated.
CONTACT_COLUMNS = ("emailadres", "klantnummer", "naam", "land", "optin", "optin_datum")


@configspec
class SyncConfiguration(BaseConfiguration):
    """`[sync]`: what `warehouse run` sends back besides the segments, and how. Both off by default: writing into
    a mail platform's contacts or into the ERP is the company's decision."""

    contacts: bool = False  # warehouse run: the Directo customers to each configured mail platform
    consent_to_directo: bool = False  # warehouse run: opt-outs Directo does not know written to its OPTIN
    contacts_file_name: str = "contacten_{date:%Y%m%d_%H%M%S}.csv"  # {date}: the moment of the sync, UTC
    contacts_columns: dict[str, str] | None = None  # renames: default column -> name in the file
    contacts_datafields: list[str] | None = None  # Directo datafield codes added as columns (named in lower case)
    contacts_class: bool = False  # Directo's customer class added as the column `klass`
    contacts_delimiter: str = ";"

    def on_resolved(self) -> None:
        unknown = sorted(set(self.contacts_columns or {}) - set(CONTACT_COLUMNS))
        if unknown:
            raise ConfigurationValueError(
                f"sync.contacts_columns (SYNC__CONTACTS_COLUMNS) renames {', '.join(unknown)}: only "
                f"{', '.join(CONTACT_COLUMNS)} can be renamed"
            )
        try:
            sample = self.contacts_file_name.format(date=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
        except (KeyError, IndexError, ValueError):
            sample = ""
        if "{date" not in self.contacts_file_name or not sample or sample.startswith(".") or "/" in sample:
            raise ConfigurationValueError(
                f"sync.contacts_file_name (SYNC__CONTACTS_FILE_NAME) {self.contacts_file_name!r} must carry the "
                "moment as {date:...} and nothing else in braces, e.g. contacten_{date:%Y%m%d_%H%M%S}.csv, with no "
                "folder and no leading dot"
            )
        names = self.file_columns()
        clashing = sorted({name for name in names if names.count(name) > 1 or name.startswith("_") or not name})
        if clashing:
            raise ConfigurationValueError(
                f"the contacts file's columns {clashing} clash or are reserved (check sync.contacts_columns, "
                "contacts_datafields and contacts_class): each must be named once, and not start with _"
            )
        if len(self.contacts_delimiter) != 1:
            raise ConfigurationValueError("sync.contacts_delimiter must be one character")

    def file_columns(self) -> list[str]:
        """The contacts file's columns, in order, as named in it: the defaults (renamed), then the datafields
        (their codes in lower case) and `klass`."""
        renamed = self.contacts_columns or {}
        extra = [code.lower() for code in self.contacts_datafields or []] + (["klass"] if self.contacts_class else [])
        return [renamed.get(column, column) for column in CONTACT_COLUMNS] + extra


def resolve(spec: type[Spec], *sections: str, accept_partial: bool = False) -> Spec:
    """The section `sections` of the settings as `spec` declares it (a wrong value names its setting)."""
    use_project_dlt_settings()
    return resolve_configuration(spec(), sections=sections, accept_partial=accept_partial)


def loader_setting(spec: type[BaseConfiguration], section: str, name: str) -> Any:
    """One setting of a loader's section `[sources.<section>]`, typed and defaulted as the loader declares it,
    without checking the rest of the section (a company without that system has none of it): what the models
    must read as the loader does (Directo's time zone, Clang's machine flag, Spotler's settling days)."""
    import dlt

    use_project_dlt_settings()
    default = getattr(spec(), name)
    value: Any = dlt.config.get(f"sources.{section}.{name}")
    if value is None:
        return default
    return type(default)(value) if default is not None and not isinstance(value, type(default)) else value
