"""Directo's customers XML, rendered as XMLCore answers it (`<transport><customers><customer .../>`).

Used by the demo-data writer (a full export on disk) and by the Directo stand-in (answers filtered by `ts`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from xml.sax.saxutils import quoteattr
from zoneinfo import ZoneInfo

# Attribute order of ws_kliendid.xsd.
CUSTOMER_ATTRIBUTES = (
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
    "vatregion",
    "priceformula",
    "specialpriceformula",
    "balance",
    "creditlimit",
    "creditbalance",
    "deliveryinvoice",
    "salesman",
    "currency",
    "discount",
    "closed",
    "ts",
)
DIRECTO_TIME_ZONE = ZoneInfo("Europe/Tallinn")


def directo_timestamp(value: dt.datetime) -> str:
    """Directo writes `ts` in Estonian local time without an offset."""
    return value.astimezone(DIRECTO_TIME_ZONE).strftime("%Y-%m-%dT%H:%M:%S")


def _attribute(name: str, value) -> str:
    if isinstance(value, dt.datetime):
        value = directo_timestamp(value)
    return f" {name}={quoteattr(str(value))}"


def render_customer(customer: dict, datafields: Iterable[tuple[str, str | None, str | None]]) -> str:
    attributes = "".join(
        _attribute(name, customer[name]) for name in CUSTOMER_ATTRIBUTES if customer.get(name) is not None
    )
    data = "".join(
        f"<data code={quoteattr(code)} content={quoteattr(content or '')}"
        + (f" param={quoteattr(param)}" if param is not None else "")
        + "/>"
        for code, content, param in datafields
    )
    return f"<customer{attributes}><datafields>{data}</datafields></customer>\n"


def render_transport(customers: Iterable[tuple[dict, list]], *, chunk_size: int = 1 << 16) -> Iterator[bytes]:
    """The whole answer in UTF-8 chunks; an empty result is `<transport></transport>` as Directo sends it."""
    yield b'<?xml version="1.0" encoding="UTF-8"?>\n<transport>'
    buffer: list[str] = []
    size = 0
    opened = False
    for customer, datafields in customers:
        if not opened:
            buffer.append("<customers>\n")
            opened = True
        text = render_customer(customer, datafields)
        buffer.append(text)
        size += len(text)
        if size >= chunk_size:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if opened:
        buffer.append("</customers>")
    buffer.append("</transport>\n")
    yield "".join(buffer).encode()
