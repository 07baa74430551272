"""People who asked to be forgotten, kept out: a suppression list of keyed hashes, never the addresses or ids.

Each entry is HMAC-SHA256, under a secret key, of one identifier of a forgotten person: their address or an id
the systems know them by. Without the key nobody can test an address against the list (a plain hash of an
address is guessed from a list of addresses); with it, a loader drops every row that names a forgotten person
before it writes anything. The sources take a `Suppression` (`suppression=`); empty, nothing is dropped.

Identifier kinds (the hash input is `<kind>:<value as normalised>`):
- `email`: an address, trimmed and lower-case (the models' one spelling, macros/normalize_email.sql);
- `customer_number`: the customer's number the systems share: Directo's customer code, Clang's external
  customer number (`Extern klantnummer`), Spotler's external contact id;
- `clang_customer_id`: Clang's own customer id (`Customerid`);
- `spotler_contact`: Spotler's encrypted contact id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

KINDS = ("email", "customer_number", "clang_customer_id", "spotler_contact")
# What free text is searched for: addresses and Spotler's long opaque contact ids. Short numbers (customer
# numbers, Clang's ids) are not: in text they are as likely a house number, a broadcast id or a quantity of
# someone else's, and a row of theirs must never go.
TEXT_KINDS = ("email", "spotler_contact")
# Free text (a rejected CSV line, a form's answers) is split into tokens, each of which could be an address or
# an id, at these characters; the same pattern (RE2 and Python alike) for the erasure's SQL and the loaders.
_SEPARATORS = r"\s;,\"'<>(){}\[\]|:="
TOKEN_SEPARATORS = f"[{_SEPARATORS}]+"
_TOKEN = re.compile(f"[^{_SEPARATORS}]+")


def normalised(kind: str, value: object) -> str | None:
    """The one spelling of an identifier that is hashed: trimmed (an address also lower-case); empty as None."""
    if value is None:
        return None
    text = str(value).strip()
    if kind == "email":
        text = text.lower()
    return text or None


class Suppression:
    """The keyed hashes of forgotten people's identifiers, and the tests loaders and the erasure apply."""

    def __init__(self, secret: str | bytes | None = None, hashes: Iterable[str] = ()) -> None:
        self._key = secret.encode("utf-8") if isinstance(secret, str) else secret
        self.hashes = frozenset(hashes)
        if self.hashes and not self._key:
            raise ValueError("a suppression list needs the secret its hashes were made with")

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def __len__(self) -> int:
        return len(self.hashes)

    def key(self, kind: str, value: object) -> str | None:
        """The keyed hash of one identifier (None for an empty one)."""
        if kind not in KINDS:
            raise ValueError(f"unknown identifier kind {kind!r}: one of {', '.join(KINDS)}")
        if not self._key:
            raise ValueError("no secret to hash identifiers with")
        text = normalised(kind, value)
        if text is None:
            return None
        return hmac.new(self._key, f"{kind}:{text}".encode(), hashlib.sha256).hexdigest()

    def with_hashes(self, hashes: Iterable[str]) -> Suppression:
        return Suppression(self._key, self.hashes | set(hashes))

    def matching(self, kind: str, values: Iterable[object]) -> set[str]:
        """Of `values`, those (as given, as text) that name a forgotten person."""
        if not self.hashes:
            return set()
        return {str(v) for v in values if v is not None and self.key(kind, v) in self.hashes}

    def names_anyone_in(self, text: object, kinds: Iterable[str] = TEXT_KINDS) -> bool:
        """Whether free text (a rejected line, a form's answers) holds an address (or another identifier of
        `kinds`) of a forgotten person."""
        if not self.hashes or text is None:
            return False
        tokens = set(_TOKEN.findall(str(text)))
        return any(self.matching(kind, tokens) for kind in kinds)

    def keep_mask(self, table: pa.Table, columns: Mapping[str, str], text_columns: Iterable[str] = ()) -> pa.Array:
        """A boolean mask of the rows of `table` naming nobody forgotten: `columns` maps a column to the kind of
        identifier it holds; `text_columns` are searched token by token for any kind."""
        keep = pa.array([True] * table.num_rows, pa.bool_())
        if not self.hashes or table.num_rows == 0:
            return keep
        for column, kind in columns.items():
            if column not in table.column_names:
                continue
            values = table.column(column)
            if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
                values = pc.cast(values, pa.string())
            hit = self.matching(kind, pc.unique(values).to_pylist())
            if hit:
                keep = pc.and_(keep, pc.invert(pc.fill_null(pc.is_in(values, pa.array(sorted(hit))), False)))
        for column in text_columns:
            if column not in table.column_names:
                continue
            flags = [not self.names_anyone_in(v) for v in table.column(column).to_pylist()]
            keep = pc.and_(keep, pa.array(flags, pa.bool_()))
        return keep

    def drop_rows(
        self, table: pa.Table, columns: Mapping[str, str], text_columns: Iterable[str] = ()
    ) -> tuple[pa.Table, int]:
        """`table` without the rows naming a forgotten person, and how many went."""
        if not self.hashes or table.num_rows == 0:
            return table, 0
        kept = table.filter(self.keep_mask(table, columns, text_columns))
        return kept, table.num_rows - kept.num_rows

    def drop_records(
        self, records: Iterable[dict], columns: Mapping[str, str], text_columns: Iterable[str] = ()
    ) -> Iterable[dict]:
        """The records (dicts) naming nobody forgotten, lazily."""
        for record in records:
            if self.hashes and (
                any(
                    self.key(kind, record.get(column)) in self.hashes
                    for column, kind in columns.items()
                    if record.get(column) is not None
                )
                or any(self.names_anyone_in(record.get(column)) for column in text_columns)
            ):
                continue
            yield record
