"""`[sources.spotler]`: the Spotler source's one configspec, validated once, where it is declared; and the
time parsing every part of the source shares."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dlt.common.configuration.exceptions import ConfigurationValueError
from dlt.common.configuration.specs import configspec
from dlt.common.typing import TSecretStrValue

from mail_warehouse_sources.settings_scope import OwnSectionConfiguration, missing_setting

SECTION = ("sources", "spotler")
DEFAULT_HISTORY_DAYS = 365  # the first sync reaches this far back unless start_date says otherwise


class SpotlerError(RuntimeError):
    """A failed run; names the endpoint and the setting to check, never a secret."""


class SpotlerCredentialsRefused(SpotlerError):
    """Spotler refused the account's credentials (401/403): every later call would be refused too."""


class SpotlerSettingsError(ConfigurationValueError):
    """A setting is missing or wrong; the message names it by its environment variable (a dlt configuration
    error, as dlt's own: exit code 2)."""


@configspec
class SpotlerSourceConfiguration(OwnSectionConfiguration):
    """`[sources.spotler]` in .dlt/config.toml (secrets in .dlt/secrets.toml), or SOURCES__SPOTLER__<NAME> (only
    those: see settings_scope)."""

    __own_section__ = SECTION

    base_url: str = "https://restapi.mailplus.nl/integrationservice-1.1.0"
    start_date: str | None = None
    settle_days: int = 30
    page_size: int = 1000
    max_calls_per_run: int = 0
    max_parallel_requests: int = 4
    timezone: str = "Europe/Amsterdam"
    timeout_seconds: float = 60.0
    max_attempts: int = 5
    retry_delay_seconds: float = 1.0
    max_retry_after_seconds: float = 300.0
    consumer_key: TSecretStrValue | None = None
    consumer_secret: TSecretStrValue | None = None

    def on_resolved(self) -> None:
        for secret in ("consumer_key", "consumer_secret"):
            if not getattr(self, secret):
                raise SpotlerSettingsError(missing_setting(SECTION, secret, "secret"))
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SpotlerSettingsError(
                f"SOURCES__SPOTLER__TIMEZONE {self.timezone!r} is not a time zone name"
            ) from None
        if self.start_date:
            try:
                parse_time(str(self.start_date), self.zone)
            except ValueError:
                raise SpotlerSettingsError(
                    f"SOURCES__SPOTLER__START_DATE {self.start_date!r} is not a date (YYYY-MM-DD)"
                ) from None
        if not 1 <= self.page_size <= 10_000:
            raise SpotlerSettingsError("SOURCES__SPOTLER__PAGE_SIZE must be between 1 and 10000")
        for name in ("max_calls_per_run", "settle_days"):
            if getattr(self, name) < 0:
                raise SpotlerSettingsError(f"SOURCES__SPOTLER__{name.upper()} must be 0 or more")
        self.base_url = self.base_url.rstrip("/")
        self.max_parallel_requests = max(1, self.max_parallel_requests)
        self.max_attempts = max(1, self.max_attempts)

    @property
    def zone(self) -> ZoneInfo:
        """The zone of API dates written without an offset."""
        return ZoneInfo(self.timezone)

    def first_day(self, now: dt.datetime) -> dt.datetime:
        """Where the first sync starts: start_date, or a year before `now`."""
        if self.start_date:
            return require_time(str(self.start_date), self.zone)
        return now - dt.timedelta(days=DEFAULT_HISTORY_DAYS)

    def __repr__(self) -> str:
        return f"SpotlerSourceConfiguration({self.base_url})"


def parse_time(value, zone: ZoneInfo = ZoneInfo("Europe/Amsterdam")) -> dt.datetime | None:
    """ISO 8601 with or without an offset (without: `zone`), or epoch milliseconds, as UTC."""
    if value is None or value == "":
        return None
    return require_time(value, zone)


def require_time(value, zone: ZoneInfo = ZoneInfo("Europe/Amsterdam")) -> dt.datetime:
    """`parse_time` of a value that must be a time (a cursor this source wrote, a checked setting): an empty one
    is a ValueError."""
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    text = str(value).strip()
    if text.isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(dt.UTC)


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
