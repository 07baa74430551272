"""Directo customers XML into `raw_directo` (`warehouse load directo [--full]`).

- The request is a form POST to the configured `.../xmlcore.asp` with `get=1&what=customer&key=...` and,
  after the first run, `ts=DD.MM.YYYY`: the day of the last sync minus `overlap_days` (Directo filters by
  day, and whether the bound is inclusive is unconfirmed: the overlap is merged away on customer code).
  POSTing keeps the key out of every URL, so it cannot leak through an error or a log line.
- The answer is streamed and parsed incrementally (lxml iterparse, each customer cleared once read), in
  Arrow batches: bounded memory whatever its size.
- Hostile or broken input: a DOCTYPE is refused before parsing (no DTD, no entities, no billion laughs);
  malformed XML fails the run before anything is loaded (dlt commits nothing of a failed extract);
  Directo's error answers (`<result type=.../>`, `<err>`, `<error desc code/>`) become clear errors.
- `customers` merge on `code` (the latest version wins); `datafields` follow their customer (rows of
  an older version of a customer are removed). OPTIN values are read in English, Estonian and as
  booleans; anything else is kept raw and flagged. `--full` also marks customers missing from the answer
  as deleted, with the time it was noticed.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dlt
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import requests
from dlt.common.configuration.resolve import resolve_configuration
from dlt.common.configuration.specs import configspec
from dlt.common.typing import TSecretStrValue
from dlt.pipeline.exceptions import PipelineStepFailed
from lxml import etree

from mail_warehouse import settings as warehouse_settings
from mail_warehouse.settings import sql_literal

DATASET = "raw_directo"
# The two bounds on memory (a 1M-customer answer peaks at about 380 MB with these, first load and full reload
# alike): DuckDB spills beyond LOAD_MEMORY_LIMIT while dlt loads and while customers are compared with what
# is loaded, and the parse holds at most BATCH_CUSTOMERS customers in Python.
LOAD_MEMORY_LIMIT = "128MB"
PIPELINE_NAME = "directo"
BATCH_CUSTOMERS = 10_000
STRING_ATTRIBUTES = (
    "code", "name", "object", "address1", "address2", "address3", "deliveryaddress1", "deliveryaddress2",
    "deliveryaddress3", "country", "county", "contact", "phone", "email", "regno", "loyaltycard", "vatregno",
    "class", "comment", "payterm", "priceformula", "specialpriceformula", "salesman", "currency")
INT_ATTRIBUTES = ("vatregion", "deliveryinvoice", "closed")
DECIMAL_ATTRIBUTES = ("balance", "creditlimit", "creditbalance", "discount")
OPTIN_TRUE = {"yes", "jah", "true", "1", "y", "j"}
OPTIN_FALSE = {"no", "ei", "false", "0", "n", "e"}
DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


@configspec
class DirectoConfiguration:
    """`[sources.directo]` in .dlt/config.toml, or SOURCES__DIRECTO__<NAME> environment variables."""
    url: str = None
    optin_datafield: str = "OPTIN"
    timezone: str = "Europe/Tallinn"
    overlap_days: int = 2
    timeout_seconds: float = 300.0
    max_attempts: int = 4
    retry_delay_seconds: float = 2.0
    key: Optional[TSecretStrValue] = None


class DirectoError(RuntimeError):
    """A failed sync; the message says what and what to check, and never holds the key."""


class DirectoSettingsError(DirectoError, ValueError):
    pass


@dataclass(frozen=True)
class DirectoSettings:
    url: str
    key: str
    optin_datafield: str
    timezone: str
    overlap_days: int
    timeout: float
    max_attempts: int
    retry_delay: float

    def __repr__(self) -> str:
        return f"DirectoSettings({self.url})"


def load_settings() -> DirectoSettings:
    config = resolve_configuration(DirectoConfiguration(), sections=("sources", "directo"), accept_partial=True)
    if not config.url:
        raise DirectoSettingsError("missing setting sources.directo.url (env SOURCES__DIRECTO__URL): the company "
                                   "database's .../xmlcore.asp address")
    if "key=" in config.url.lower():
        raise DirectoSettingsError("SOURCES__DIRECTO__URL must not hold the key: put it in the secret "
                                   "SOURCES__DIRECTO__KEY (the loader adds get, what, key and ts itself)")
    if not config.key:
        raise DirectoSettingsError("missing secret sources.directo.key (env SOURCES__DIRECTO__KEY)")
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DirectoSettingsError(f"SOURCES__DIRECTO__TIMEZONE {config.timezone!r} is not a time zone name") from None
    if int(config.overlap_days) < 0:
        raise DirectoSettingsError("SOURCES__DIRECTO__OVERLAP_DAYS must be 0 or more")
    return DirectoSettings(config.url, str(config.key), config.optin_datafield, config.timezone,
                           int(config.overlap_days), float(config.timeout_seconds), max(1, int(config.max_attempts)),
                           float(config.retry_delay_seconds))


def redact(text: str, settings: DirectoSettings) -> str:
    return text.replace(settings.key, "***") if settings.key else text


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
                raise DirectoError("Directo's answer declares a DTD or entities; refused (no DTD, entity or external "
                                   "reference is ever resolved)")
            first = ROOT_TAG.search(self.head)  # the prolog ends at the first element's start tag
            if first or not chunk:
                self.root = first.group(1).decode("ascii", "replace") if first else ""
                self.head = b""
        return chunk


ROOT_TAG = re.compile(rb"<([A-Za-z_][\w.-]*)")
ERROR_ROOTS = ("result", "err", "error")


def _error_answer(element, settings: DirectoSettings) -> DirectoError | None:
    tag = element.tag
    if tag == "result":
        kind, desc = element.get("type", ""), element.get("desc", "")
        if kind == "5" or "unauthor" in desc.lower():
            return DirectoError(f"Directo refused the key ({desc or 'type ' + kind}): check the secret "
                                "SOURCES__DIRECTO__KEY and that the XML output is ordered for this database")
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
    customers: int = 0
    datafields: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0
    flagged_optin: int = 0
    unreadable_numbers: int = 0
    since: str | None = None
    seconds: float = 0.0

    def line(self) -> str:
        scope = f"changed since {self.since}" if self.since else "full answer"
        return (f"directo: {self.customers:,} customers ({scope}): {self.new:,} new, {self.changed:,} changed, "
                f"{self.unchanged:,} unchanged, {self.deleted:,} marked deleted; {self.datafields:,} datafields; "
                f"{self.flagged_optin:,} OPTIN values not understood (kept raw, flagged)"
                + (f"; {self.unreadable_numbers:,} unreadable numbers left empty" if self.unreadable_numbers else "")
                + f"; {self.seconds:.1f} s")


# A customer's attributes as read ("code" first), then what its datafields say: the last OPTIN datafield's
# content and param, and how many datafields it has.
RAW_SCHEMA_NAMES = (*STRING_ATTRIBUTES, *INT_ATTRIBUTES, *DECIMAL_ATTRIBUTES, "ts")
RAW_SCHEMA = pa.schema([*[(n, pa.string()) for n in RAW_SCHEMA_NAMES], ("optin_raw", pa.string()),
                        ("optin_param", pa.string()), ("datafield_count", pa.int64())])
DATAFIELD_SCHEMA = pa.schema([
    pa.field("customer_code", pa.string(), nullable=False), pa.field("datafield_code", pa.string(), nullable=False),
    ("content", pa.string()), ("param", pa.string()), pa.field("position", pa.int64(), nullable=False),
    ("customer_loaded_at", pa.timestamp("us", tz="UTC"))])


class _Typing:
    """Types a batch of raw attribute strings in one DuckDB query: numbers, Directo's local `ts` to UTC,
    the OPTIN datafield's value and date. Time zones are DuckDB's, as in staging, so the warehouse has one
    rule: a time in the spring-forward gap moves forward by the gap, a time in the repeated autumn hour is
    read as the later (standard-time) one."""

    def __init__(self, settings: DirectoSettings) -> None:
        self.con = duckdb.connect()
        self.con.execute("set TimeZone = 'UTC'; set threads = 1")
        self.settings = settings
        true_values = ", ".join(sql_literal(v) for v in OPTIN_TRUE)
        false_values = ", ".join(sql_literal(v) for v in OPTIN_FALSE)
        numbers = ", ".join([f"try_cast(nullif(trim({n}), '') as bigint) as {n}" for n in INT_ATTRIBUTES]
                            + [f"try_cast(nullif(replace(trim({n}), ',', '.'), '') as decimal(18, 4)) as {n}"
                               for n in DECIMAL_ATTRIBUTES])
        self.customers_sql = f"""
            select {", ".join(f'"{n}"' for n in STRING_ATTRIBUTES)}, {numbers},
                   timezone({sql_literal(settings.timezone)},
                            try_strptime(replace(left(ts, 19), ' ', 'T'), '%Y-%m-%dT%H:%M:%S')) as ts,
                   ts as ts_local,
                   case when lower(trim(optin_raw)) in ({true_values}) then true
                        when lower(trim(optin_raw)) in ({false_values}) then false end as optin,
                   optin_raw,
                   coalesce(try_strptime(trim(optin_param), '%d.%m.%Y'), try_strptime(trim(optin_param), '%Y-%m-%d'),
                            try_strptime(trim(optin_param), '%d.%m.%Y %H:%M:%S'))::date as optin_date,
                   optin_raw is not null and lower(trim(optin_raw)) not in ({true_values}, {false_values})
                       as optin_flagged,
                   datafield_count,
                   timestamptz '{{loaded_at}}' as loaded_at, null::timestamptz as deleted_at
            from raw
        """
        self.unreadable_sql = " + ".join(
            f"count(*) filter (where nullif(trim({n}), '') is not null and try_cast(replace(trim({n}), ',', '.') "
            f"as {'bigint' if n in INT_ATTRIBUTES else 'decimal(18, 4)'}) is null)"
            for n in (*INT_ATTRIBUTES, *DECIMAL_ATTRIBUTES))

    def __call__(self, rows: list[tuple], datafields: dict[str, list], loaded_at: dt.datetime,
                 summary: SyncSummary) -> tuple[pa.Table, pa.Table]:
        columns = zip(*rows) if rows else [[] for _ in RAW_SCHEMA.names]
        raw = pa.table([pa.array(column, field.type) for column, field in zip(columns, RAW_SCHEMA)], schema=RAW_SCHEMA)
        fields = pa.table({**datafields, "customer_loaded_at": pa.nulls(len(datafields["position"]),
                                                                        pa.timestamp("us", tz="UTC")).fill_null(loaded_at)},
                          schema=DATAFIELD_SCHEMA)
        self.con.register("raw", raw)
        try:
            customers = self.con.sql(self.customers_sql.replace("{loaded_at}", loaded_at.isoformat())).to_arrow_table()
            summary.unreadable_numbers += self.con.sql(f"select {self.unreadable_sql} from raw").fetchall()[0][0]
        finally:
            self.con.unregister("raw")
        summary.flagged_optin += pc.sum(customers.column("optin_flagged")).as_py() or 0
        code = customers.schema.get_field_index("code")
        customers = customers.cast(customers.schema.set(code, pa.field("code", pa.string(), nullable=False)))
        return customers, fields

    def close(self) -> None:
        self.con.close()


def read_customers(stream, settings: DirectoSettings, summary: SyncSummary, loaded_at: dt.datetime):
    """Parse the answer incrementally; yield (customers, datafields) Arrow tables per batch."""
    source = _RefuseDoctype(stream)
    context = etree.iterparse(source, events=("end",), tag=("customer", *ERROR_ROOTS), resolve_entities=False,
                              no_network=True, load_dtd=False, huge_tree=False, remove_comments=True)
    typing = _Typing(settings)
    # The parse makes tens of millions of small acyclic objects; the cyclic garbage collector would walk
    # the growing batch again and again (a third of the parse time) and finds nothing to free.
    collecting = gc.isenabled()
    gc.disable()
    optin_code = settings.optin_datafield.upper()
    rows: list[tuple] = []
    fields = {"customer_code": [], "datafield_code": [], "content": [], "param": [], "position": []}
    try:
        for _, element in context:
            if element.tag != "customer":
                if source.root in ERROR_ROOTS and element.getparent() is None:
                    raise _error_answer(element, settings)
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
        raise DirectoError(f"Directo's answer is not well-formed XML ({error.msg}, line {error.lineno}); nothing "
                           "was loaded from it") from None
    finally:
        typing.close()
        if collecting:
            gc.enable()


# --- fetching ---------------------------------------------------------------------------------------

def fetch(settings: DirectoSettings, since: dt.date | None) -> requests.Response:
    form = {"get": "1", "what": "customer", "key": settings.key}
    if since is not None:
        form["ts"] = since.strftime("%d.%m.%Y")
    for attempt in range(1, settings.max_attempts + 1):
        try:
            response = requests.post(settings.url, data=form, stream=True, timeout=settings.timeout)
        except requests.RequestException as error:
            failure = f"{type(error).__name__}"
        else:
            if response.status_code == 200:
                response.raw.decode_content = True
                return response
            failure = f"HTTP {response.status_code}"
            response.close()
            if response.status_code in (401, 403, 404):
                raise DirectoError(f"Directo answered {failure} at {settings.url}: check SOURCES__DIRECTO__URL")
        if attempt == settings.max_attempts:
            raise DirectoError(f"Directo at {settings.url} failed after {attempt} attempts ({failure})")
        time.sleep(settings.retry_delay * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


# --- the dlt source and the run ----------------------------------------------------------------------

def make_pipeline(warehouse: Path) -> dlt.Pipeline:
    return warehouse_settings.make_pipeline(PIPELINE_NAME, DATASET, warehouse, memory_limit=LOAD_MEMORY_LIMIT)


# The latest version of a customer wins: delete-insert on its code. One answer holds each customer once,
# so no de-duplication pass (over a million rows it would cost more than the whole parse).
CUSTOMER_HINTS = dlt.mark.make_hints(
    table_name="customers", write_disposition={"disposition": "merge", "strategy": "delete-insert"},
    merge_key="code")
# A customer's datafields are replaced with it: delete-insert on the customer's code.
DATAFIELD_HINTS = dlt.mark.make_hints(
    table_name="datafields", write_disposition={"disposition": "merge", "strategy": "delete-insert"},
    merge_key="customer_code")


def directo_items(response, settings: DirectoSettings, summary: SyncSummary, loaded_at: dt.datetime,
                  run_day: dt.date):
    try:
        for customers, datafields in read_customers(response.raw, settings, summary, loaded_at):
            yield dlt.mark.with_hints(customers, CUSTOMER_HINTS, create_table_variant=True)
            if datafields.num_rows:
                yield dlt.mark.with_hints(datafields, DATAFIELD_HINTS, create_table_variant=True)
    finally:
        response.close()
    # Committed with the load, so a failed run leaves the cursor where it was.
    dlt.current.resource_state()["last_sync_day"] = run_day.isoformat()


def _content_hashes(con) -> str:
    """A query of (code, content_hash): a customer's attributes and its datafields, as loaded."""
    columns = ", ".join(f"c.{name}" for name in (*[f'"{n}"' for n in STRING_ATTRIBUTES], *INT_ATTRIBUTES,
                                                 *DECIMAL_ATTRIBUTES, "ts", "optin_raw", "optin_date"))
    has_fields = con.execute("select count(*) from information_schema.tables where table_schema = $s and "
                             "table_name = 'datafields'", {"s": DATASET}).fetchone()[0]
    # bit_xor of each datafield's hash (its position included): a fixed-size aggregate, where a list of
    # every customer's datafields would hold them all in memory.
    fields = (f"""left join (select customer_code as code, bit_xor(hash(position, datafield_code, content, param))
                                                                  as fields_hash
                            from {DATASET}.datafields group by 1) f using (code)""" if has_fields
              else "left join (select null as code, null as fields_hash) f using (code)")
    return f"select c.code, c.loaded_at, hash(row({columns}), f.fields_hash) as content_hash from {DATASET}.customers c {fields}"


def _tables_present(con) -> set[str]:
    return {r[0] for r in con.execute("select table_name from information_schema.tables where table_schema = $s",
                                      {"s": DATASET}).fetchall()}


def _connect(warehouse: Path):
    """The warehouse, held to the load's memory bound (DuckDB spills beyond it)."""
    con = warehouse_settings.connect(warehouse)
    con.execute(f"set memory_limit = {sql_literal(LOAD_MEMORY_LIMIT)}; set preserve_insertion_order = false")
    return con


def _snapshot(warehouse: Path) -> bool:
    """Remember each customer's content before the load, to tell new, changed and unchanged apart after it."""
    con = _connect(warehouse)
    try:
        if "customers" not in _tables_present(con):
            return False
        con.execute(f"create or replace table {DATASET}._before_sync as select code, content_hash "
                    f"from ({_content_hashes(con)})")
        return True
    finally:
        con.close()


def _after_load(warehouse: Path, summary: SyncSummary, loaded_at: dt.datetime, had_snapshot: bool, full: bool) -> None:
    con = _connect(warehouse)
    try:
        tables = _tables_present(con)
        if "customers" not in tables:
            return
        if "datafields" in tables:  # a customer that now has no datafields keeps none of its old ones
            con.execute(f"""delete from {DATASET}.datafields d using {DATASET}.customers c
                            where d.customer_code = c.code and d.customer_loaded_at <> c.loaded_at""")
        stamp = {"at": loaded_at}
        if had_snapshot:
            summary.new, summary.changed, summary.unchanged = con.execute(f"""
                select count(*) filter (where b.code is null),
                       count(*) filter (where b.code is not null and b.content_hash <> n.content_hash),
                       count(*) filter (where b.code is not null and b.content_hash = n.content_hash)
                from ({_content_hashes(con)}) n left join {DATASET}._before_sync b using (code)
                where n.loaded_at = $at""", stamp).fetchone()
            con.execute(f"drop table {DATASET}._before_sync")
        else:
            summary.new = con.execute(f"select count(*) from {DATASET}.customers where loaded_at = $at", stamp).fetchone()[0]
        if full:
            summary.deleted = con.execute(f"""
                update {DATASET}.customers set deleted_at = $at
                where loaded_at < $at and deleted_at is null""", stamp).fetchone()[0]
    finally:
        con.close()


def run(*, full: bool = False, stream=sys.stderr) -> SyncSummary:
    settings = load_settings()
    warehouse = warehouse_settings.warehouse_path()
    pipeline = make_pipeline(warehouse)
    warehouse_settings.finish_pending_load(pipeline, stream)
    state = pipeline.state.get("sources", {}).get(PIPELINE_NAME, {}).get("resources", {}).get("customers", {})
    zone = ZoneInfo(settings.timezone)
    run_day = dt.datetime.now(zone).date()
    last = state.get("last_sync_day")
    since = None if full or not last else dt.date.fromisoformat(last) - dt.timedelta(days=settings.overlap_days)
    summary = SyncSummary(since=since.strftime("%d.%m.%Y") if since else None)
    loaded_at = dt.datetime.now(dt.UTC)
    print(f"directo: asking {settings.url} for " + (f"customers changed since {summary.since}" if since
                                                     else "all customers"), file=stream, flush=True)
    started = time.monotonic()
    had_snapshot = _snapshot(warehouse) if warehouse.exists() else False
    response = fetch(settings, since)
    resource = dlt.resource(directo_items(response, settings, summary, loaded_at, run_day), name="customers")
    try:
        pipeline.run(resource)
    except PipelineStepFailed as failure:
        error = warehouse_settings.unwrap(failure, DirectoError)
        if not isinstance(error, DirectoError):
            error = DirectoError(redact(f"loading Directo customers failed: {failure}", settings))
        raise error from None
    _after_load(warehouse, summary, loaded_at, had_snapshot, full)
    summary.seconds = time.monotonic() - started
    return summary
