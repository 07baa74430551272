"""A stand-in for Directo's XMLCore: `/xmlcore/<db>/xmlcore.asp?get=1&what=customer&key=...[&ts=DD.MM.YYYY]`.

Answers as Directo does, with HTTP 200 for errors too: a wrong key gives `<result type="5" desc="Unauthorized"/>`,
a missing key `<err>token required</err>`, anything else it does not know `<error desc=".." code=".."/>`.
Parameters come as a GET query or as a form POST. `ts` returns customers changed since that day (Estonian
local midnight, inclusive). The answer is streamed from the demo world's tables.

Writes (the opt-out sync) are `put=1&what=customer&key=...&xmldata=<customers><customer code="C1"><datafields>
<data code="OPTIN" content="no" param="..."/></datafields></customer></customers>`, as a form POST. Directo
publishes no write specification we could read: the request and its answer are inferred from public client
code of XMLCore. The answer has one `<Result Type=".." Desc=".." docid="<code>" doctype="customer"
submit="Customers"/>` per customer element, in order, inside `<results>`: Type 0 applied, 1 unknown customer,
2 no code (on the customer or one of its data elements), 4 refused by the test (`refuse_customers`). xmldata
that is malformed or declares a DTD or entities (refused before parsing; nothing is ever resolved) is one
`<Result Type="3" .../>` and nothing of it is applied. An applied customer's datafields replace or add to the
world's, held in memory (the world's database stays read-only; no customer is ever created), and its `ts`
becomes the write's moment, so every later read, full or by `ts`, serves it so. `writes` lists every datafield
written, in order; a process outside reads it as JSON from `GET /_standin/writes`.

Tests can replace the next answers, to reads or writes, with any body (`serve_raw`), for hostile and broken
XML; a write so answered is not applied.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl
from xml.sax.saxutils import quoteattr

from lxml import etree

from mail_warehouse.settings import connect
from mail_warehouse_demo.directo_xml import DIRECTO_TIME_ZONE, render_transport
from mail_warehouse_demo.standins.http import ADMIN_PREFIX, Request, Response, StandinServer
from mail_warehouse_demo.writers import iter_directo_customers

DEMO_DATABASE = "demo_ee"
DEMO_KEY = "demo-directo-key"
PATH_PATTERN = re.compile(r"^/xmlcore/(?P<database>[^/]+)/xmlcore\.asp$")
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
# Refused before lxml sees the text: a stand-in that resolved entities would hide a client that sends them.
DECLARES_DTD_OR_ENTITY = re.compile(r"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _xml(body: str | bytes) -> Response:
    return Response(200, body.encode() if isinstance(body, str) else body, content_type="text/xml")


def _file_chunks(path: Path, size: int = 1 << 20):
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def _form(request: Request) -> dict[str, str]:
    params = dict(request.query)
    if request.method == "POST":
        params.update(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def _customer_result(result_type: int, desc: str, code: str = "") -> str:
    docid = f" docid={quoteattr(code)}" if code else ""
    return f'<Result Type="{result_type}" Desc={quoteattr(desc)}{docid} doctype="customer" submit="Customers"/>'


def _results(*results: str) -> Response:
    return _xml(f"{XML_DECLARATION}<results>{''.join(results)}</results>")


def _refused_request(desc: str) -> Response:
    """The whole xmldata refused: one Type 3 result, nothing applied."""
    return _results(f'<Result Type="3" Desc={quoteattr(desc)}/>')


@dataclass(frozen=True)
class _WrittenCustomer:
    """What was written to one customer; replaced, never changed, so a read's snapshot stays as it was."""

    changed_at: dt.datetime
    datafields: dict[str, tuple[str | None, str | None]]  # datafield code -> (content, param)

    def applied_to(self, customer: dict, datafields: list[tuple]) -> tuple[dict, list[tuple]]:
        """The world's customer as it reads after the writes: written datafields replace or add to the world's
        (in the world's order, by code) and `ts` is the last write's moment."""
        merged = {code: (code, content, param) for code, content, param in datafields}
        merged.update((code, (code, content, param)) for code, (content, param) in self.datafields.items())
        return {**customer, "ts": self.changed_at}, sorted(merged.values(), key=lambda item: item[0])


def _customers_as_read(cursor, since: dt.datetime | None, written: dict[str, _WrittenCustomer]):
    """The world's customers (changed since `since`, if given) with what was written laid over them."""
    if not written:
        yield from iter_directo_customers(cursor, changed_since=since)
        return
    # A written customer's `ts` is newer than the world's table says, so `since` is applied here, to the whole
    # table: slower, and only once something was written.
    for customer, datafields in iter_directo_customers(cursor):
        if customer["code"] in written:
            customer, datafields = written[customer["code"]].applied_to(customer, datafields)
        if since is None or (customer["ts"] is not None and customer["ts"] >= since):
            yield customer, datafields


class DirectoXmlCore:
    def __init__(self, world_dir: Path, key: str = DEMO_KEY, database: str = DEMO_DATABASE) -> None:
        self.world_dir = Path(world_dir)
        self.key = key
        self.database = database
        self.requests: list[dict[str, str]] = []  # the parameters of every call, for tests of `ts`
        self.writes: list[dict] = []  # every datafield written: customer_code, datafield_code, content, param, at
        self.refuse_customers: dict[str, str] = {}  # customer code -> Desc of a Type 4 refusal, set by tests
        self._written: dict[str, _WrittenCustomer] = {}
        self._raw_answers: deque[bytes | Path] = deque()
        self._lock = threading.Lock()
        self._con = connect(self.world_dir / "world.duckdb", read_only=True)

    def close(self) -> None:
        self._con.close()

    def serve_raw(self, *bodies: str | bytes | Path) -> None:
        """The next answers to authorised requests, reads or writes, are these bodies, as given (for broken
        and hostile XML); a Path is streamed from disk (for answers too large to hold in memory)."""
        with self._lock:
            self._raw_answers.extend(b.encode() if isinstance(b, str) else b for b in bodies)

    @staticmethod
    def endpoint_name(request: Request) -> str:
        """Writes are counted apart from reads, so a test can tell how often the sync wrote."""
        write = " put" if _form(request).get("put") == "1" else ""
        return f"{request.method} /xmlcore.asp{write}"

    def __call__(self, request: Request) -> Response:
        match = PATH_PATTERN.match(request.path)
        if not match or match["database"] != self.database:
            return Response(404, b"Not Found", content_type="text/plain")
        params = _form(request)
        with self._lock:
            self.requests.append({k: ("***" if k == "key" else v) for k, v in params.items()})
        if not params.get("key"):
            return _xml("<err>token required</err>")
        if params["key"] != self.key:
            return _xml(f'{XML_DECLARATION}<result type="5" desc="Unauthorized"/>')
        writing = params.get("put") == "1"
        if not (writing or params.get("get") == "1") or params.get("what") != "customer":
            return _xml(f'{XML_DECLARATION}<error desc="Unknown request: what={params.get("what", "")}" code="1"/>')
        with self._lock:
            raw = self._raw_answers.popleft() if self._raw_answers else None
        if isinstance(raw, Path):
            return Response(200, _file_chunks(raw), content_type="text/xml")
        if raw is not None:
            return _xml(raw)
        if writing:
            return self._write(params.get("xmldata", ""))
        since = None
        if params.get("ts"):
            try:
                day = dt.datetime.strptime(params["ts"], "%d.%m.%Y")
            except ValueError:
                return _xml(f'{XML_DECLARATION}<error desc="Invalid ts, expected DD.MM.YYYY" code="2"/>')
            since = day.replace(tzinfo=DIRECTO_TIME_ZONE)
        with self._lock:
            cursor = self._con.cursor()
            written = dict(self._written)  # the answer is as of the request, whatever is written while it streams
        return Response(200, self._stream(cursor, since, written), content_type="text/xml")

    @staticmethod
    def _stream(cursor, since: dt.datetime | None, written: dict[str, _WrittenCustomer]):
        try:
            yield from render_transport(_customers_as_read(cursor, since, written))
        finally:
            cursor.close()

    def _write(self, xmldata: str) -> Response:
        if not xmldata.strip():
            return _refused_request("xmldata missing")
        if DECLARES_DTD_OR_ENTITY.search(xmldata):
            return _refused_request("xmldata declares a DTD or entities; refused")
        try:
            root = etree.fromstring(xmldata.encode(), SAFE_PARSER)
        except etree.XMLSyntaxError as exc:
            return _refused_request(f"Malformed xmldata: {exc}")
        if root.tag != "customers":
            return _refused_request(f"xmldata must be <customers>, not <{root.tag}>")
        elements = root.findall("customer")
        codes = [(element.get("code") or "").strip() for element in elements]
        known = self._known_customers({code for code in codes if code})
        moment = dt.datetime.now(dt.UTC)
        with self._lock:
            results = [
                self._apply_customer(element, code, known, moment)
                for element, code in zip(elements, codes, strict=True)
            ]
        return _results(*results)

    def _known_customers(self, codes: set[str]) -> set[str]:
        with self._lock:
            cursor = self._con.cursor()
        try:
            rows = cursor.execute(
                "select code from customers where code in (select unnest($codes))", {"codes": sorted(codes)}
            ).fetchall()
        finally:
            cursor.close()
        return {code for (code,) in rows}

    def _apply_customer(self, element, code: str, known: set[str], moment: dt.datetime) -> str:
        """Apply one `<customer>` element and give its `<Result>`; the caller holds the lock."""
        if not code:
            return _customer_result(2, "Customer code missing")
        if code not in known:
            return _customer_result(1, f"Customer {code} not found", code)
        if code in self.refuse_customers:
            return _customer_result(4, self.refuse_customers[code], code)
        datafields = [
            ((data.get("code") or "").strip(), data.get("content"), data.get("param"))
            for data in element.iterfind("datafields/data")
        ]
        if not all(field_code for field_code, _, _ in datafields):
            return _customer_result(2, f"Customer {code}: a data element has no code", code)
        previous = self._written.get(code)
        fields = dict(previous.datafields) if previous else {}
        for field_code, content, param in datafields:
            fields[field_code] = (content, param)
            self.writes.append(
                {"customer_code": code, "datafield_code": field_code, "content": content, "param": param, "at": moment}
            )
        self._written[code] = _WrittenCustomer(moment, fields)
        return _customer_result(0, "OK", code)

    def writes_as_json(self) -> list[dict]:
        with self._lock:
            return [{**write, "at": write["at"].isoformat()} for write in self.writes]

    def url(self, server: StandinServer) -> str:
        return f"{server.url}/xmlcore/{self.database}/xmlcore.asp"


class DirectoServer(StandinServer):
    """The stand-in's HTTP server, with one admin action more for a process outside (a CLI under test):
    `GET /_standin/writes` gives `{"writes": [...], "total": n}`, each write as in `DirectoXmlCore.writes` with
    `at` in ISO 8601 (UTC)."""

    def __init__(self, app: DirectoXmlCore, port: int = 0) -> None:
        super().__init__(app, app.endpoint_name, port=port, on_stop=app.close)
        self.xmlcore = app

    def _admin(self, request: Request) -> Response:
        if request.path == f"{ADMIN_PREFIX}writes" and request.method == "GET":
            writes = self.xmlcore.writes_as_json()
            return Response.json({"writes": writes, "total": len(writes)})
        return super()._admin(request)


def serve(world_dir: Path, *, port: int = 0, key: str = DEMO_KEY) -> tuple[StandinServer, DirectoXmlCore]:
    app = DirectoXmlCore(world_dir, key)
    server = DirectoServer(app, port=port).start()
    return server, app
