"""Directo customers XML as a dlt source, `directo_source()` (`warehouse load directo [--full]` into
`raw_directo`): the parsed answer (`customer_answer`, not a table) feeds two transformers, `customers`
and `datafields`; settings from `[sources.directo]`; each table's last sync day in its own dlt resource state.

- The request is a form POST to the configured `.../xmlcore.asp` with `get=1&what=customer&key=...` and,
  once every table the run loads has a last sync day, `ts=DD.MM.YYYY`: the earliest of them minus `overlap_days`
  (Directo filters by day, and whether the bound is inclusive is unconfirmed: the overlap is merged away on
  customer code). A table not loaded in a run (`with_resources`) keeps its day.
  POSTing keeps the key out of every URL, so it cannot leak through an error or a log line.
- The answer is streamed and parsed incrementally (lxml iterparse, each customer cleared once read), in
  Arrow batches: bounded memory whatever its size.
- Hostile or broken input: a DOCTYPE is refused before parsing (no DTD, no entities, no billion laughs);
  malformed XML fails the run before anything is loaded (dlt commits nothing of a failed extract);
  Directo's error answers (`<result type=.../>`, `<err>`, `<error desc code/>`) become clear errors.
- `customers` merge on `code` (the latest version wins); `datafields` follow their customer. OPTIN values
  are read in English, Estonian and as booleans; anything else is kept raw and flagged.
- What only the warehouse can tell (new, changed and unchanged customers; with `--full`, customers missing
  from the answer marked deleted; datafields of a customer's older version removed) is done after the load
  by `mail_warehouse.loads`, which runs this source into the warehouse.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dlt
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import requests
from dlt.common.configuration.exceptions import ConfigurationValueError
from dlt.common.configuration.specs import configspec
from dlt.common.typing import TSecretStrValue
from lxml import etree

from mail_warehouse_sources.retry import call_with_retries
from mail_warehouse_sources.selection import selected_resources
from mail_warehouse_sources.settings_scope import OwnSectionConfiguration, missing_setting
from mail_warehouse_sources.suppression import Suppression

DATASET = "raw_directo"
SECTION = ("sources", "directo")
TABLES = ("customers", "datafields")  # the tables of the source, each with its own last sync day
# The parse holds at most BATCH_CUSTOMERS customers in Python (the other bound on a load's memory is the
# destination's: mail_warehouse.loads holds DuckDB to 128 MB; together a 1M-customer answer peaks near 380 MB).
BATCH_CUSTOMERS = 10_000
STRING_ATTRIBUTES = (
    "code",
    "name",
    "object",
    "address1",
    "address2",
    "address3",
    "deliveryaddress1",
    "deliveryaddress2",
    "deliveryaddress3",
    "country",
    "county",
    "contact",
    "phone",
    "email",
    "regno",
    "loyaltycard",
    "vatregno",
    "class",
    "comment",
    "payterm",
    "priceformula",
    "specialpriceformula",
    "salesman",
    "currency",
)
INT_ATTRIBUTES = ("vatregion", "deliveryinvoice", "closed")
DECIMAL_ATTRIBUTES = ("balance", "creditlimit", "creditbalance", "discount")
OPTIN_TRUE = {"yes", "jah", "true", "1", "y", "j"}
OPTIN_FALSE = {"no", "ei", "false", "0", "n", "e"}
DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


class DirectoError(RuntimeError):
    """A failed sync; the message says what and what to check, and never holds the key."""


class DirectoSettingsError(ConfigurationValueError):
    """A setting is missing or wrong; the message names it by its environment variable (a dlt configuration
    error, as dlt's own: exit code 2)."""


# Directo dates its OPTIN statements by the day in the ERP's time zone; `warehouse build` passes the setting to
# dbt (macros/mail_event_rules.sql, whose default for a plain `dbt build` a test ties to this one).
DEFAULT_TIMEZONE = "Europe/Tallinn"


@configspec
class DirectoSourceConfiguration(OwnSectionConfiguration):
    """`[sources.directo]` in .dlt/config.toml (the key in .dlt/secrets.toml), or SOURCES__DIRECTO__<NAME> (only
    those: see settings_scope)."""

    __own_section__ = SECTION

    url: str | None = None
    optin_datafield: str = "OPTIN"
    timezone: str = DEFAULT_TIMEZONE
    overlap_days: int = 2
    timeout_seconds: float = 300.0
    max_attempts: int = 4
    retry_delay_seconds: float = 2.0
    key: TSecretStrValue | None = None

    def on_resolved(self) -> None:
        if not self.url:
            raise DirectoSettingsError(
                missing_setting(SECTION, "url") + ": the company database's .../xmlcore.asp address"
            )
        if "key=" in self.url.lower():
            raise DirectoSettingsError(
                "SOURCES__DIRECTO__URL must not hold the key: put it in the secret "
                "SOURCES__DIRECTO__KEY (the loader adds get, what, key and ts itself)"
            )
        if not self.key:
            raise DirectoSettingsError(missing_setting(SECTION, "key", "secret"))
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise DirectoSettingsError(
                f"SOURCES__DIRECTO__TIMEZONE {self.timezone!r} is not a time zone name"
            ) from None
        if self.overlap_days < 0:
            raise DirectoSettingsError("SOURCES__DIRECTO__OVERLAP_DAYS must be 0 or more")
        self.max_attempts = max(1, self.max_attempts)

    def __repr__(self) -> str:
        return f"DirectoSourceConfiguration({self.url})"


# --- reading the answer -------------------------------------------------------------------------------


class _RefuseDoctype:
    """A file-like wrapper that refuses a DOCTYPE or ENTITY declaration before lxml ever sees it, and
    notes the root element's name (Directo's error answers are small documents with their own root)."""

    def __init__(self, raw, chunk_size: int = 1 << 16) -> None:
        self.raw, self.chunk_size = raw, chunk_size
        self.root: str | None = None
        self.head = b""

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(self.chunk_size if size is None or size < 0 else size)
        if self.root is None:
            self.head += chunk
            if DOCTYPE.search(self.head):
                raise DirectoError(
                    "Directo's answer declares a DTD or entities; refused (no DTD, entity or external "
                    "reference is ever resolved)"
                )
            first = ROOT_TAG.search(self.head)  # the prolog ends at the first element's start tag
            if first or not chunk:
                self.root = first.group(1).decode("ascii", "replace") if first else ""
                self.head = b""
        return chunk


ROOT_TAG = re.compile(rb"<([A-Za-z_][\w.-]*)")
ERROR_ROOTS = ("result", "err", "error")


def _error_answer(element) -> DirectoError | None:
    tag = element.tag
    if tag == "result":
        kind, desc = element.get("type", ""), element.get("desc", "")
        if kind == "5" or "unauthor" in desc.lower():
            return DirectoError(
                f"Directo refused the key ({desc or 'type ' + kind}): check the secret "
                "SOURCES__DIRECTO__KEY and that the XML output is ordered for this database"
            )
        return DirectoError(f"Directo answered result type {kind}: {desc}")
    if tag == "err":
        text = (element.text or "").strip()
        hint = ": set the secret SOURCES__DIRECTO__KEY" if "token" in text.lower() else ""
        return DirectoError(f"Directo answered an error: {text}{hint}")
    if tag == "error":
        return DirectoError(f"Directo answered error code {element.get('code', '?')}: {element.get('desc', '')}")
    return None


@dataclass
class SyncSummary:
    """What one sync read (the source counts customers, datafields, flags) and changed in the warehouse (new,
    changed, unchanged and deleted, counted after the load by whoever loads it)."""

    customers: int = 0
    datafields: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    flagged_optin: int = 0
    unreadable_numbers: int = 0
    suppressed_customers: int = 0  # forgotten people's customers, left out with their datafields (not counted above)
    since: str | None = None
    seconds: float = 0.0

    def line(self) -> str:
        scope = f"changed since {self.since}" if self.since else "full answer"
        return (
            f"directo: {self.customers:,} customers ({scope}): {self.new:,} new, {self.changed:,} changed, "
            f"{self.unchanged:,} unchanged, {self.deleted:,} marked deleted; {self.datafields:,} datafields; "
            f"{self.flagged_optin:,} OPTIN values not understood (kept raw, flagged)"
            + (f"; {self.unreadable_numbers:,} unreadable numbers left empty" if self.unreadable_numbers else "")
            + (
                f"; {self.suppressed_customers:,} customers of forgotten people left out"
                if self.suppressed_customers
                else ""
            )
            + f"; {self.seconds:.1f} s"
        )


# A customer's attributes as read ("code" first), then what its datafields say: the last OPTIN datafield's
# content and param, and how many datafields it has.
RAW_SCHEMA_NAMES = (*STRING_ATTRIBUTES, *INT_ATTRIBUTES, *DECIMAL_ATTRIBUTES, "ts")
RAW_SCHEMA = pa.schema(
    [
        *[(n, pa.string()) for n in RAW_SCHEMA_NAMES],
        ("optin_raw", pa.string()),
        ("optin_param", pa.string()),
        ("datafield_count", pa.int64()),
    ]
)
# A customer's attributes that name a person, and the kind of identifier each holds (suppression.py); the
# e-mail field may hold several addresses, so it is also searched as text.
PERSON_COLUMNS = {"code": "customer_number", "email": "email"}
TEXT_NAMING_PEOPLE = ("email",)
DATAFIELD_SCHEMA = pa.schema(
    [
        pa.field("customer_code", pa.string(), nullable=False),
        pa.field("datafield_code", pa.string(), nullable=False),
        ("content", pa.string()),
        ("param", pa.string()),
        pa.field("position", pa.int64(), nullable=False),
        ("customer_loaded_at", pa.timestamp("us", tz="UTC")),
    ]
)


class _Typing:
    """Types a batch of raw attribute strings in one DuckDB query: numbers, Directo's local `ts` to UTC,
    the OPTIN datafield's value and date. Time zones are DuckDB's, as in staging, so the warehouse has one
    rule: a time in the spring-forward gap moves forward by the gap, a time in the repeated autumn hour is
    read as the later (standard-time) one."""

    def __init__(self, config: DirectoSourceConfiguration, suppression: Suppression | None = None) -> None:
        self.suppression = suppression
        self.con = duckdb.connect()
        self.con.execute("set TimeZone = 'UTC'; set threads = 1")
        self.params = {
            "zone": config.timezone,
            "true_values": sorted(OPTIN_TRUE),
            "false_values": sorted(OPTIN_FALSE),
            "known_values": sorted(OPTIN_TRUE | OPTIN_FALSE),
        }
        numbers = ", ".join(
            [f"try_cast(nullif(trim({n}), '') as bigint) as {n}" for n in INT_ATTRIBUTES]
            + [
                f"try_cast(nullif(replace(trim({n}), ',', '.'), '') as decimal(18, 4)) as {n}"
                for n in DECIMAL_ATTRIBUTES
            ]
        )
        self.customers_sql = f"""
            select {", ".join(f'"{n}"' for n in STRING_ATTRIBUTES)}, {numbers},
                   timezone($zone,
                            try_strptime(replace(left(ts, 19), ' ', 'T'), '%Y-%m-%dT%H:%M:%S')) as ts,
                   ts as ts_local,
                   case when list_contains($true_values, lower(trim(optin_raw))) then true
                        when list_contains($false_values, lower(trim(optin_raw))) then false end as optin,
                   optin_raw,
                   coalesce(try_strptime(trim(optin_param), '%d.%m.%Y'), try_strptime(trim(optin_param), '%Y-%m-%d'),
                            try_strptime(trim(optin_param), '%d.%m.%Y %H:%M:%S'))::date as optin_date,
                   optin_raw is not null and not list_contains($known_values, lower(trim(optin_raw)))
                       as optin_flagged,
                   datafield_count,
                   $loaded_at::timestamptz as loaded_at, null::timestamptz as deleted_at
            from raw
        """
        self.unreadable_sql = " + ".join(
            f"count(*) filter (where nullif(trim({n}), '') is not null and try_cast(replace(trim({n}), ',', '.') "
            f"as {'bigint' if n in INT_ATTRIBUTES else 'decimal(18, 4)'}) is null)"
            for n in (*INT_ATTRIBUTES, *DECIMAL_ATTRIBUTES)
        )

    def __call__(
        self, rows: list[tuple], datafields: dict[str, list], loaded_at: dt.datetime, summary: SyncSummary
    ) -> tuple[pa.Table, pa.Table]:
        columns = zip(*rows, strict=True) if rows else [[] for _ in RAW_SCHEMA.names]
        raw = pa.table(
            [pa.array(column, field.type) for column, field in zip(columns, RAW_SCHEMA, strict=True)], schema=RAW_SCHEMA
        )
        fields = pa.table(
            {
                **datafields,
                "customer_loaded_at": pa.nulls(len(datafields["position"]), pa.timestamp("us", tz="UTC")).fill_null(
                    loaded_at
                ),
            },
            schema=DATAFIELD_SCHEMA,
        )
        if self.suppression:  # before anything is typed or counted: the counts are of what is loaded
            raw, fields = self._without_forgotten(raw, fields, summary)
        self.con.register("raw", raw)
        try:
            customers = self.con.sql(
                self.customers_sql, params={**self.params, "loaded_at": loaded_at}
            ).to_arrow_table()
            summary.unreadable_numbers += self.con.sql(f"select {self.unreadable_sql} from raw").fetchall()[0][0]
        finally:
            self.con.unregister("raw")
        summary.flagged_optin += pc.sum(customers.column("optin_flagged")).as_py() or 0
        code = customers.schema.get_field_index("code")
        customers = customers.cast(customers.schema.set(code, pa.field("code", pa.string(), nullable=False)))
        return customers, fields

    def _without_forgotten(self, raw: pa.Table, fields: pa.Table, summary: SyncSummary) -> tuple[pa.Table, pa.Table]:
        """The batch without the customers naming a forgotten person, nor their datafields (whichever identifier
        named them: a datafield holds its customer's code only)."""
        assert self.suppression is not None
        keep = self.suppression.keep_mask(raw, PERSON_COLUMNS, TEXT_NAMING_PEOPLE)
        gone = raw.filter(pc.invert(keep)).column("code").combine_chunks()
        if not len(gone):
            return raw, fields
        kept_fields = fields.filter(pc.invert(pc.is_in(fields.column("customer_code"), gone)))
        summary.customers -= len(gone)
        summary.datafields -= fields.num_rows - kept_fields.num_rows
        summary.suppressed_customers += len(gone)
        return raw.filter(keep), kept_fields

    def close(self) -> None:
        self.con.close()


def read_customers(
    stream,
    config: DirectoSourceConfiguration,
    summary: SyncSummary,
    loaded_at: dt.datetime,
    suppression: Suppression | None = None,
):
    """Parse the answer incrementally; yield (customers, datafields) Arrow tables per batch, without the
    customers `suppression` names as forgotten and their datafields."""
    source = _RefuseDoctype(stream)
    context = etree.iterparse(
        source,
        events=("end",),
        tag=("customer", *ERROR_ROOTS),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
    )
    typing = _Typing(config, suppression)
    # The parse makes tens of millions of small acyclic objects; the cyclic garbage collector would walk
    # the growing batch again and again (a third of the parse time) and finds nothing to free.
    collecting = gc.isenabled()
    gc.disable()
    optin_code = config.optin_datafield.upper()
    rows: list[tuple] = []
    fields: dict[str, list] = {"customer_code": [], "datafield_code": [], "content": [], "param": [], "position": []}
    try:
        for _, element in context:
            if element.tag != "customer":
                if source.root in ERROR_ROOTS and element.getparent() is None:
                    error = _error_answer(element)
                    # iterparse yields only `customer` and the ERROR_ROOTS, and _error_answer knows each of those
                    assert error is not None
                    raise error
                continue
            # The schema's attributes in a fixed order (others are not part of Directo's customer output).
            record = tuple(map(element.get, RAW_SCHEMA_NAMES))
            code = (record[0] or "").strip()
            if code:
                position, optin = 0, (None, None)
                for datafields in element:
                    for data in datafields:
                        position += 1
                        field_code, content, param = data.get("code") or "", data.get("content"), data.get("param")
                        if field_code.upper() == optin_code:
                            optin = (content, param)
                        fields["customer_code"].append(code)
                        fields["datafield_code"].append(field_code)
                        fields["content"].append(content)
                        fields["param"].append(param)
                        fields["position"].append(position)
                rows.append((code, *record[1:], *optin, position))
                summary.datafields += position
            element.clear()
            while element.getprevious() is not None:
                del element.getparent()[0]
            if len(rows) >= BATCH_CUSTOMERS:
                summary.customers += len(rows)
                yield typing(rows, fields, loaded_at, summary)
                rows = []
                fields = {k: [] for k in fields}
        if rows:
            summary.customers += len(rows)
            yield typing(rows, fields, loaded_at, summary)
    except etree.XMLSyntaxError as error:
        raise DirectoError(
            f"Directo's answer is not well-formed XML ({error.msg}, line {error.lineno}); nothing was loaded from it"
        ) from None
    finally:
        typing.close()
        if collecting:
            gc.enable()


# --- fetching ---------------------------------------------------------------------------------------


class _Transient(Exception):
    """A failure worth another attempt: no connection, a timeout, a 5xx."""


def fetch(config: DirectoSourceConfiguration, since: dt.date | None) -> requests.Response:
    """Ask for the customers (changed since a day); the answer streamed."""
    form = {"get": "1", "what": "customer", "key": config.key}
    if since is not None:
        form["ts"] = since.strftime("%d.%m.%Y")
    return _post(config, form, stream=True)


def _post(config: DirectoSourceConfiguration, form: dict, *, stream: bool) -> requests.Response:
    """POST a form to XMLCore (the key in the form body, never in a URL), no connection, a timeout or a 5xx tried
    again with the one retry policy; an HTTP status other than 200 is a wrong address."""
    url = config.url
    if not url:  # on_resolved refuses a configuration without one
        raise DirectoSettingsError(missing_setting(SECTION, "url"))

    def attempt() -> requests.Response:
        try:
            response = requests.post(url, data=form, stream=stream, timeout=config.timeout_seconds)
        except requests.RequestException as error:
            raise _Transient(type(error).__name__) from None
        if response.status_code == 200:
            response.raw.decode_content = True
            return response
        response.close()
        if response.status_code >= 500:
            raise _Transient(f"HTTP {response.status_code}")
        raise DirectoError(f"Directo answered HTTP {response.status_code} at {url}: check SOURCES__DIRECTO__URL")

    try:
        return call_with_retries(
            attempt,
            attempts=config.max_attempts,
            first_delay=config.retry_delay_seconds,
            is_transient=lambda error: isinstance(error, _Transient),
        )
    except _Transient as last:
        raise DirectoError(f"Directo at {url} failed after {config.max_attempts} attempts ({last})") from None


# --- writing a customer's datafields --------------------------------------------------------------------
#
# Directo publishes no specification of XMLCore's writes that we could read; the format is inferred from public
# client code: a form POST to the same address with put=1, what=customer, the key and `xmldata` holding
# `<customers><customer code=".."><datafields><data code=".." content=".." param=".."/></datafields></customer>
# </customers>`, answered `<results><Result Type="0" .../></results>` (Type 0: applied; any other: refused, with
# a Desc). README: how a company checks it on a Directo test database before switching it on.


@dataclass(frozen=True)
class WriteAnswer:
    applied: bool
    message: str  # Directo's Desc (or what it answered instead)


def customer_datafields_xml(customer_code: str, datafields: dict[str, tuple[str, str | None]]) -> str:
    """The `xmldata` of one customer's datafields: code -> (content, param)."""
    customer = etree.Element("customer", code=customer_code)
    fields = etree.SubElement(customer, "datafields")
    for code, (content, param) in datafields.items():
        data = etree.SubElement(fields, "data", code=code, content=content)
        if param is not None:
            data.set("param", param)
    customers = etree.Element("customers")
    customers.append(customer)
    return etree.tostring(customers, encoding="unicode")


def write_customer_datafields(
    config: DirectoSourceConfiguration, customer_code: str, datafields: dict[str, tuple[str, str | None]]
) -> WriteAnswer:
    """Write one customer's datafields through XMLCore (the key in the form body, never in a URL or a message).
    A refusal of this customer is an answer; a refused key, an unreadable answer or a server that keeps failing
    raise DirectoError: no later customer would fare better."""
    form = {
        "put": "1",
        "what": "customer",
        "key": config.key,
        "xmldata": customer_datafields_xml(customer_code, datafields),
    }
    body = _post(config, form, stream=False).content
    return _write_answer(body, customer_code)


def _write_answer(body: bytes, customer_code: str) -> WriteAnswer:
    if DOCTYPE.search(body):
        raise DirectoError("Directo's answer declares a DTD or entities; refused")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as error:
        raise DirectoError(f"Directo's answer to the write of customer {customer_code} is no XML: {error}") from None
    refused = _error_answer(root)
    if refused is not None:
        raise refused
    results = root.findall("Result") if root.tag == "results" else []
    if len(results) != 1:
        raise DirectoError(
            f"Directo answered the write of customer {customer_code} with {len(results)} results "
            f"(<{root.tag}>), not one: not taken as written"
        )
    kind, desc = results[0].get("Type", ""), results[0].get("Desc", "")
    return WriteAnswer(kind == "0", desc or f"Type {kind}")


# --- the dlt source ----------------------------------------------------------------------------------


@dataclass
class CustomerBatch:
    """One batch of the answer: its customers and their datafields, bound for two tables."""

    customers: pa.Table
    datafields: pa.Table


@dataclass
class AnswerRead:
    """The answer's end, sent after its last batch: each table that gets it advances its own last sync day."""

    day: str

    def advance(self, table: str) -> None:
        dlt.current.resource_state(table)["last_sync_day"] = self.day  # committed with the load, as dlt state is


# Before each table kept its own day, the hidden parent resource kept one for both: a table without a day of its
# own starts from it, and it goes once every table has one.
SHARED_DAY_RESOURCE = "customer_answer"


@dlt.source(name="directo", section="directo", spec=DirectoSourceConfiguration)
def directo_source(
    # dlt passes the resolved spec to the argument annotated with exactly the spec class, so it cannot be Optional
    config: DirectoSourceConfiguration = None,  # type: ignore[assignment]
    full: bool = False,
    loaded_at: dt.datetime | None = None,
    summary: SyncSummary | None = None,
    log: Callable[[str], None] = lambda message: None,
    suppression: Suppression | None = None,
):
    """Directo's customers and their datafields.

    Each table keeps its own last sync day in its dlt resource state, so a run of some of them
    (`with_resources`) never skips what the others have not loaded yet. A run asks for the customers changed
    since the earliest day among its tables, minus `overlap_days`; for every customer when one of them has no
    day yet, or with `full`. `loaded_at` stamps the rows of this sync (default now); `summary` collects what was
    read; `suppression` (none: nothing left out) names forgotten people, whose customers (by code or address) are
    left out with their datafields (each table's day moves all the same).
    """
    summary = summary if summary is not None else SyncSummary()
    stamp = loaded_at or dt.datetime.now(dt.UTC)

    @dlt.resource(name=SHARED_DAY_RESOURCE, selected=False)
    def customer_answer():
        """Directo's answer, parsed as it streams in; feeds the two tables below, then tells them it was read."""
        run_day = dt.datetime.now(ZoneInfo(config.timezone)).date()
        states = dlt.current.source_state().get("resources", {})  # read only: a table's day is its own to write
        shared_day = states.get(SHARED_DAY_RESOURCE, {}).get("last_sync_day")
        tables = selected_resources(TABLES)
        days = [states.get(table, {}).get("last_sync_day") or shared_day for table in tables]
        since = None
        if not full and days and all(days):
            since = min(map(dt.date.fromisoformat, days)) - dt.timedelta(days=config.overlap_days)
        summary.since = since.strftime("%d.%m.%Y") if since else None
        log(
            f"directo: asking {config.url} for "
            + (f"customers changed since {summary.since}" if since else "all customers")
        )
        response = fetch(config, since)
        try:
            for customers, datafields in read_customers(response.raw, config, summary, stamp, suppression):
                yield CustomerBatch(customers, datafields)
        finally:
            response.close()
        # only once the whole answer was read (dlt commits nothing of a failed extract, state included)
        if shared_day and all(table in tables or states.get(table, {}).get("last_sync_day") for table in TABLES):
            dlt.current.resource_state(SHARED_DAY_RESOURCE).pop("last_sync_day")
        yield AnswerRead(run_day.isoformat())

    # The latest version of a customer wins: delete-insert on its code. One answer holds each customer once,
    # so no de-duplication pass (over a million rows it would cost more than the whole parse).
    # dlt types transformer's write_disposition without the dict form that dlt.resource takes (and it passes on)
    @dlt.transformer(  # type: ignore[call-overload]
        data_from=customer_answer,
        name="customers",
        merge_key="code",
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
    )
    def customers(item: CustomerBatch | AnswerRead):
        if isinstance(item, AnswerRead):
            item.advance("customers")
        elif item.customers.num_rows:  # none left: every customer of the batch was a forgotten person's
            yield item.customers

    # A customer's datafields are replaced with it: delete-insert on the customer's code.
    # dlt types transformer's write_disposition without the dict form that dlt.resource takes (and it passes on)
    @dlt.transformer(  # type: ignore[call-overload]
        data_from=customer_answer,
        name="datafields",
        merge_key="customer_code",
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
    )
    def datafields(item: CustomerBatch | AnswerRead):
        if isinstance(item, AnswerRead):
            item.advance("datafields")
        elif item.datafields.num_rows:
            yield item.datafields

    return customer_answer, customers, datafields
