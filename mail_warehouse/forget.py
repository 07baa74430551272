"""`warehouse forget`: erase a person everywhere the project keeps data, and keep them out (GDPR article 17).

A person is named by their address. Every id the data ties to it (Clang's customer id and external customer
number, Spotler's external and encrypted contact ids, Directo's customer codes) is found first; each becomes a
keyed hash on the suppression list (`privacy.suppression`, see mail_warehouse_sources/suppression.py), which
every loader applies before it writes anything. Entering the hashes is the erasure's intent: the sweep that
follows deletes every row naming anyone on the list, so a forget killed at any point is finished by the next
`forget` or `warehouse run` (both sweep while an erasure is unfinished), and a sweep done twice removes nothing
more.

The places swept, in order:
1. dlt's pipeline folders: a load an earlier run left pending is finished first (its rows then go with the
   rest), then every completed load package and run trace is removed (dlt keeps them on disk otherwise);
2. the warehouse file: every table of every schema (raw, dlt's `*_staging`, models, segments, export logs)
   whose identifier columns (IDENTIFIER_COLUMNS) or free text name the person; incremental models that add
   people up without naming them (per-link click counts) are dropped, so the next build makes them again from
   what is left, as a full refresh would;
3. the BI copy (`analytics.duckdb`) the same way; its standby copy is removed (the next publish starts from a
   copy of the published file);
4. the exported CSV copies in `[export.deployteq] local_dir`: the person's lines removed;
5. the Spark side, when there is one: the lake's parquet files and the Spark tables' parquet files that name
   the person, rewritten without their rows;
6. every DuckDB file rewritten (`COPY FROM DATABASE` into a new file, renamed into place): DuckDB keeps deleted
   rows' bytes in a file until then.
Then the erasure is marked finished, with how many rows went from each place (`privacy.erasure_runs`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from mail_warehouse.privacy import SCHEMA, create_privacy_tables, read_suppression, require_secret
from mail_warehouse.settings import PROJECT_DIR, connect, sql_literal, warehouse_path
from mail_warehouse_sources.suppression import TEXT_KINDS, TOKEN_SEPARATORS, Suppression, normalised

# Columns that identify a person, by name, wherever they appear (raw tables, models, export logs, the lake),
# and the kinds of identifier each holds. Names that mean something else elsewhere are per table below.
IDENTIFIER_COLUMNS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "e_mailadres": ("email",),
    "customerid": ("clang_customer_id",),
    "clang_customer_id": ("clang_customer_id",),
    "extern_klantnummer": ("customer_number",),
    "clang_external_customer_id": ("customer_number",),
    "external_customer_id": ("customer_number",),
    "external_contact_id": ("customer_number",),
    "spotler_external_id": ("customer_number",),
    "customer_code": ("customer_number",),
    "directo_customer_code": ("customer_number",),
    "primary_customer_code": ("customer_number",),
    "encrypted_contact_id": ("spotler_contact",),
    "source_contact_id": ("clang_customer_id", "spotler_contact"),
}
# (dataset without `_staging`, table) -> columns whose name alone says nothing (a Directo `code`, an `encrypted_id`)
TABLE_IDENTIFIER_COLUMNS: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("raw_directo", "customers"): {"code": ("customer_number",)},
    ("raw_spotler", "contacts"): {"external_id": ("customer_number",), "encrypted_id": ("spotler_contact",)},
}
# Free text searched for an address or a Spotler contact id (TEXT_KINDS: a rejected CSV line, a form's answers,
# a contact's properties); every other text column is searched for the person's address.
TEXT_COLUMNS: dict[tuple[str, str], tuple[str, ...]] = {
    ("raw_clang", "rejected_rows"): ("raw_text",),
    ("raw_spotler", "form_results"): ("answers",),
    ("raw_spotler", "contacts"): ("properties",),
}
# Keys the models derive from an identifier: contact_key = md5 of the address (dbt.hash), person_key =
# contact_key or 'external:' || customer number (macros/mail_event_rules.sql). tests/test_forget.py holds the two
# sides together: a key spelt otherwise here leaves rows (int_mailing_person_events holds no address) that the
# full refresh it compares with has not.
DERIVED_KEYS = ("contact_key", "person_key")
SKIPPED_SCHEMAS = (SCHEMA, "information_schema", "pg_catalog")
# DuckDB spills beyond this while it deletes and rewrites (its default is most of the machine's memory)
MEMORY_LIMIT = "2GB"


class ForgetError(RuntimeError):
    """A forget that cannot start (no secret, no address); nothing was changed."""


@dataclass
class Matched:
    """The identifiers of forgotten people found in the data, by kind, normalised."""

    values: dict[str, set[str]] = field(default_factory=lambda: {})

    def add(self, kind: str, found: Iterable[str]) -> None:
        for value in found:
            text = normalised(kind, value)
            if text is not None:
                self.values.setdefault(kind, set()).add(text)

    def of(self, kind: str) -> set[str]:
        if kind == "contact_key":
            return {hashlib.md5(email.encode()).hexdigest() for email in self.values.get("email", set())}
        if kind == "person_key":
            return self.of("contact_key") | {f"external:{n}" for n in self.values.get("customer_number", set())}
        return self.values.get(kind, set())


@dataclass
class Sweep:
    """What one sweep removed (or, in a dry run, would remove): place -> rows."""

    dry_run: bool
    stream: object = sys.stderr
    removed: dict[str, int] = field(default_factory=dict)

    def count(self, place: str, rows: int, unit: str = "rows") -> None:
        if rows:
            self.removed[place] = self.removed.get(place, 0) + rows
            self.say(f"  {place}: {'would remove' if self.dry_run else 'removed'} {rows:,} {unit}")

    def say(self, message: str) -> None:
        print(message, file=self.stream, flush=True)  # type: ignore[call-overload]

    @property
    def total(self) -> int:
        return sum(self.removed.values())


def _key_of(schema: str, table: str) -> tuple[str, str]:
    return (schema.removesuffix("_staging"), table)


def identifier_columns(schema: str, table: str, columns: Iterable[str]) -> dict[str, tuple[str, ...]]:
    own = TABLE_IDENTIFIER_COLUMNS.get(_key_of(schema, table), {})
    return {c: own.get(c) or IDENTIFIER_COLUMNS[c] for c in columns if c in own or c in IDENTIFIER_COLUMNS}


# --- DuckDB files ---------------------------------------------------------------------------------------------


def _tables(con: duckdb.DuckDBPyConnection, catalog: str) -> list[tuple[str, str, dict[str, str]]]:
    """(schema, table, {column: type}) of every base table of `catalog` that can hold rows of a person."""
    rows = con.execute(
        """select c.table_schema, c.table_name, c.column_name, c.data_type
           from information_schema.columns c
           join information_schema.tables t using (table_catalog, table_schema, table_name)
           where c.table_catalog = ? and t.table_type = 'BASE TABLE'
           order by c.table_schema, c.table_name, c.ordinal_position""",
        [catalog],
    ).fetchall()
    tables: dict[tuple[str, str], dict[str, str]] = {}
    for schema, table, column, data_type in rows:
        if schema in SKIPPED_SCHEMAS or table.startswith("_dlt_"):
            continue
        tables.setdefault((schema, table), {})[column] = data_type
    return [(schema, table, columns) for (schema, table), columns in tables.items()]


def _q(*names: str) -> str:
    return ".".join('"' + n.replace('"', '""') + '"' for n in names)


def _text(column: str) -> str:
    return f"trim(cast({_q(column)} as varchar))"


def find_identifiers(con: duckdb.DuckDBPyConnection, catalog: str, suppression: Suppression, matched: Matched) -> None:
    """Add to `matched` every identifier value in `catalog`'s tables that is on the suppression list, and (for a
    person found by address) the ids the same rows tie to it."""
    seen: dict[str, set[str]] = {}  # kind -> every value in any table, each hashed once
    for schema, table, columns in _tables(con, catalog):
        for column, kinds in identifier_columns(schema, table, columns).items():
            if columns[column].endswith("[]"):
                continue
            query = f"select distinct {_text(column)} from {_q(catalog, schema, table)} where {_q(column)} is not null"
            values = {v for (v,) in con.execute(query).fetchall()}
            for kind in kinds:
                seen.setdefault(kind, set()).update(values)
    for kind, values in seen.items():
        matched.add(kind, suppression.matching(kind, values))
    tie_identifiers(con, catalog, matched)


def tie_identifiers(con: duckdb.DuckDBPyConnection, catalog: str, matched: Matched) -> None:
    """Add to `matched` the ids tied to its addresses: found in the rows that hold both."""
    for schema, table, columns in _tables(con, catalog):
        ids = identifier_columns(schema, table, columns)
        emails = [c for c, kinds in ids.items() if kinds == ("email",)]
        if not emails or not matched.of("email"):
            continue
        # a column that may hold either of two kinds (source_contact_id) ties nothing: which one it is is unknown
        others = {c: k for c, k in ids.items() if len(k) == 1 and k != ("email",) and not columns[c].endswith("[]")}
        if not others:
            continue
        condition = " or ".join(f"lower({_text(c)}) in (select unnest($emails))" for c in emails)
        for column, kinds in others.items():
            found = con.execute(
                f"select distinct {_text(column)} from {_q(catalog, schema, table)} where {condition}",
                {"emails": sorted(matched.of("email"))},
            ).fetchall()
            for kind in kinds:
                matched.add(kind, (v for (v,) in found if v))


def erase_in_database(con: duckdb.DuckDBPyConnection, catalog: str, place: str, matched: Matched, sweep: Sweep) -> None:
    """Delete (or count) every row of `catalog` naming a forgotten person: by identifier columns, derived keys,
    free text holding any identifier, and any other text holding their address."""
    emails = sorted(matched.of("email"))
    # what free text is searched for (TEXT_KINDS), as it may spell it (tokens are compared in lower case)
    everything = {v.lower() for kind in TEXT_KINDS for v in matched.of(kind)}
    for schema, table, columns in _tables(con, catalog):
        conditions: list[str] = []
        parameters: dict[str, list] = {}
        for column, kinds in identifier_columns(schema, table, columns).items():
            if columns[column].endswith("[]"):
                continue
            values = sorted(set().union(*(matched.of(kind) for kind in kinds)))
            if values:
                name = f"p{len(parameters)}"
                parameters[name] = values
                lowered = f"lower({_text(column)})" if kinds == ("email",) else _text(column)
                conditions.append(f"{lowered} in (select unnest(${name}))")
        for column in DERIVED_KEYS:
            if column in columns and matched.of(column):
                name = f"p{len(parameters)}"
                parameters[name] = sorted(matched.of(column))
                conditions.append(f"{_q(column)} in (select unnest(${name}))")
        text_columns = TEXT_COLUMNS.get(_key_of(schema, table), ())
        free = [
            c
            for c, data_type in columns.items()
            if data_type in ("VARCHAR", "JSON") and c not in identifier_columns(schema, table, columns)
        ]
        target = _q(catalog, schema, table)
        for column in free:  # free text: any identifier in the known ones, the address in every other
            known = column in text_columns
            needles = sorted(everything if known else set(emails))
            if not needles:
                continue
            name = f"p{len(parameters)}"
            parameters[name] = needles
            tokens = f"regexp_split_to_array(lower(cast({_q(column)} as varchar)), {sql_literal(TOKEN_SEPARATORS)})"
            prefilter = "" if known else f"{_q(column)} like '%@%' and "
            conditions.append(f"({prefilter}list_has_any({tokens}, ${name}))")
        where = " or ".join(conditions)
        if not where:
            continue
        if sweep.dry_run:
            (rows,) = con.execute(f"select count(*) from {target} where {where}", parameters).fetchall()[0]
        else:
            (rows,) = con.execute(f"delete from {target} where {where}", parameters).fetchall()[0]
        sweep.count(f"{place} {schema}.{table}", rows)


def parquet_catalog(folders: Iterable[Path]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding, of every table stored as parquet files under `folders` (the lake:
    <dataset>/<table>/*.parquet; Spark's tables: <schema>.db/<table>/), its identifier columns: where
    `find_identifiers` looks on the Spark side."""
    con = duckdb.connect()
    for folder in folders:
        for table_dir in sorted({p.parent for p in folder.rglob("*.parquet")} if folder.is_dir() else []):
            parts = table_dir.relative_to(folder).parts
            if len(parts) != 2 or parts[1].startswith("_dlt_"):
                continue
            schema, table = parts[0].removesuffix(".db"), parts[1]
            files = sql_literal(str(table_dir / "*.parquet"))
            names = [
                c
                for (c,) in con.execute(
                    f"select name from parquet_schema({files}) where num_children is null"
                ).fetchall()
            ]
            wanted = [*identifier_columns(schema, table, names), *(c for c in DERIVED_KEYS if c in names)]
            if not wanted:
                continue
            con.execute(f"create schema if not exists {_q(schema)}")
            selected = ", ".join(f"cast({_q(c)} as varchar) as {_q(c)}" for c in dict.fromkeys(wanted))
            con.execute(
                f"create or replace table {_q(schema, table)} as "
                f"select distinct {selected} from read_parquet({files}, union_by_name = true)"
            )
    return con


def counting_people(manifest: dict | None) -> list[tuple[str, str]]:
    """(schema, table) of the incremental models that add people up without naming them (`meta: counts_people`):
    dropped by an erasure, made again in full by the next build."""
    if not manifest:
        return []
    from mail_warehouse.build import project_models

    found = []
    for node in project_models(manifest):
        meta = {**node.get("meta", {}), **node.get("config", {}).get("meta", {})}
        if meta.get("counts_people"):
            found.append((node["schema"], node.get("alias") or node["name"]))
    return found


def drop_counting_models(
    con: duckdb.DuckDBPyConnection, catalog: str, models: list[tuple[str, str]], sweep: Sweep
) -> list[str]:
    tables = {(schema, table) for schema, table, _ in _tables(con, catalog)}
    dropped = []
    for schema, table in models:
        if (schema, table) in tables:
            if not sweep.dry_run:
                con.execute(f"drop table {_q(catalog, schema, table)}")
            dropped.append(f"{schema}.{table}")
    return dropped


def storage_version_of(path: Path) -> str:
    """The storage format `path` is written in, as ATTACH's storage_version takes it (e.g. v1.0.0)."""
    from mail_warehouse.publish import storage_tag_of

    con = duckdb.connect()
    try:
        return (storage_tag_of(con, path) or "").rstrip("+") or "v1.0.0"
    finally:
        con.close()


def compact(path: Path) -> None:
    """Rewrite the DuckDB file `path` into a new file in its own storage format and rename that into place:
    the bytes of deleted rows do not survive (DuckDB keeps them in a file until it is rewritten). A rewrite cut
    short leaves the original whole; its leftover is removed by the next."""
    scratch = path.with_name(f".{path.name}.compact")
    for leftover in (scratch, scratch.with_name(scratch.name + ".wal")):
        leftover.unlink(missing_ok=True)
    version = storage_version_of(path)
    con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT})
    try:
        # the source under its own name: views that name their catalog bind while they are copied
        con.execute(f"attach {sql_literal(str(path))} as {_q(path.stem)} (read_only)")
        con.execute(f"attach {sql_literal(str(scratch))} as compacted (storage_version {sql_literal(version)})")
        con.execute(f"copy from database {_q(path.stem)} to compacted")
        con.execute("detach compacted")
    finally:
        con.close()
    with scratch.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(scratch, path)
    path.with_name(path.name + ".wal").unlink(missing_ok=True)


# --- files beside the warehouse ---------------------------------------------------------------------------------


def erase_in_csv_files(folder: Path, suppression: Suppression, sweep: Sweep) -> None:
    """The exported CSV copies: each line naming a forgotten person (their address, or an id in a column the
    header names as one) removed; the header and everyone else's lines kept byte for byte."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*.csv")):
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig", errors="replace")
        lines = text.splitlines(keepends=True)
        if not lines:
            continue
        kept = [lines[0]] + [line for line in lines[1:] if not suppression.names_anyone_in(line, ("email",))]
        removed = len(lines) - len(kept)
        sweep.count(f"exports {path.name}", removed)
        if removed and not sweep.dry_run:
            body = "".join(kept).encode("utf-8")
            if raw.startswith(b"\xef\xbb\xbf"):
                body = b"\xef\xbb\xbf" + body
            _replace_file(path, body)


def _replace_file(path: Path, body: bytes) -> None:
    scratch = path.with_name(f".{path.name}.forget")
    scratch.write_bytes(body)
    with scratch.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(scratch, path)


def erase_in_parquet(folder: Path, place: str, suppression: Suppression, matched: Matched, sweep: Sweep) -> None:
    """Every parquet file under `folder` (the lake, Spark's tables) that holds a row naming a forgotten person,
    rewritten without it (under a scratch name, renamed into place)."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*.parquet")):
        table = pq.read_table(path)
        parts = path.relative_to(folder).parts
        dataset = parts[0].removesuffix(".db") if len(parts) > 2 else ""
        columns = identifier_columns(dataset, path.parent.name, table.column_names)
        keep = _keep_mask(table, columns, suppression, matched)
        removed = table.num_rows - pa.compute.sum(keep.cast(pa.int64())).as_py() if table.num_rows else 0
        sweep.count(f"{place} {path.relative_to(folder)}", removed)
        if removed and not sweep.dry_run:
            scratch = path.with_name(f".{path.name}.forget")
            pq.write_table(table.filter(keep), scratch)  # the file's schema and its metadata (Spark's) kept
            os.replace(scratch, path)
            # Hadoop's local file system (Spark's tables) checks a file against its `.crc` beside it: the old
            # checksum would make Spark refuse the new file; without one it reads it unchecked
            path.with_name(f".{path.name}.crc").unlink(missing_ok=True)


def _keep_mask(table: pa.Table, columns: dict[str, tuple[str, ...]], suppression: Suppression, matched: Matched):
    import pyarrow.compute as pc

    keep = pa.array([True] * table.num_rows, pa.bool_())
    for column, kinds in [*columns.items(), *((c, (c,)) for c in DERIVED_KEYS if c in table.column_names)]:
        values = sorted(set().union(*(matched.of(kind) for kind in kinds)))
        if not values:
            continue
        data = table.column(column)
        if not pa.types.is_string(data.type) and not pa.types.is_large_string(data.type):
            try:
                data = pc.cast(data, pa.string())
            except pa.ArrowInvalid:
                continue
        data = pc.utf8_trim_whitespace(data)
        if kinds == ("email",):
            data = pc.utf8_lower(data)
        keep = pc.and_(keep, pc.invert(pc.fill_null(pc.is_in(data, pa.array(values)), False)))
    for column in table.column_names:  # any other text: searched for their address
        if column in columns or not pa.types.is_string(table.schema.field(column).type):
            continue
        data = table.column(column)
        candidates = pc.unique(pc.filter(data, pc.fill_null(pc.match_substring(data, "@"), False))).to_pylist()
        hits = [v for v in candidates if suppression.names_anyone_in(v, ("email",))]
        if hits:
            keep = pc.and_(keep, pc.invert(pc.fill_null(pc.is_in(data, pa.array(hits)), False)))
    return keep


def clear_pipeline_folders(root: Path, sweep: Sweep) -> None:
    """dlt's completed load packages and run traces under `root` (every pipeline's folder): they hold the rows
    each load brought. Pending packages are loaded before a sweep (`finish_pending_loads`)."""
    if not root.is_dir():
        return
    for pipeline in sorted(p for p in root.iterdir() if p.is_dir()):
        packages = [p for p in (pipeline / "load" / "loaded").glob("*") if p.is_dir()]
        trace = pipeline / "trace.pickle"
        sweep.count(f"dlt {root.name}/{pipeline.name}", len(packages), "load packages")
        if not sweep.dry_run:
            for package in packages:
                shutil.rmtree(package)
            trace.unlink(missing_ok=True)


# --- the erasure --------------------------------------------------------------------------------------------------

SOURCE_DATASETS = {"clang": "raw_clang", "spotler": "raw_spotler", "directo": "raw_directo"}


@dataclass
class Erasure:
    """What `forget` did: the people asked for, the identifiers put on the list, the rows removed per place."""

    people: int = 0
    identifiers: int = 0
    sweep: Sweep | None = None
    source_ids: dict[str, set[str]] = field(default_factory=dict)  # what only the source systems can erase
    propagated: bool = True  # False: a source system was asked and refused or did not answer

    def line(self, dry_run: bool) -> str:
        places = len(self.sweep.removed) if self.sweep else 0
        removed = self.sweep.total if self.sweep else 0
        if dry_run:
            return (
                f"forget --dry-run: {_people(self.people)}, {self.identifiers} identifiers found; {removed:,} rows "
                f"and files would go from {places} places; nothing was removed"
            )
        return (
            f"forget: {_people(self.people)}, {self.identifiers} identifiers on the suppression list; {removed:,} "
            f"rows and files removed from {places} places, every DuckDB file rewritten"
        )


def _people(count: int) -> str:
    return f"{count} {'person' if count == 1 else 'people'}"


def read_addresses(addresses: Iterable[str], file: Path | None) -> list[str]:
    """The addresses asked for: on the command line and one a line in `file` (blank lines and # comments
    skipped), normalised, each once."""
    given = list(addresses)
    if file is not None:
        given += [line.split("#", 1)[0] for line in file.read_text(encoding="utf-8-sig").splitlines()]
    found: dict[str, None] = {}
    for raw in given:
        email = normalised("email", raw)
        if email is None:
            continue
        if "@" not in email:
            raise ForgetError(f"{raw.strip()!r} is not an e-mail address")
        found[email] = None
    if not found:
        raise ForgetError("no address to forget: name one or more, or --file with one a line")
    return list(found)


def finish_pending_loads(warehouse: Path, stream) -> None:
    """A load an earlier run left pending is finished before a sweep: its rows are then swept with the rest."""
    from mail_warehouse.pipelines import finish_pending_load, make_pipeline, pipelines_dir

    for name, dataset in SOURCE_DATASETS.items():
        if (pipelines_dir(warehouse) / name).is_dir():
            finish_pending_load(make_pipeline(name, dataset, warehouse), stream)


def forget(addresses: list[str], *, dry_run: bool = False, propagate: bool = False, stream=sys.stderr) -> Erasure:
    """Put `addresses` and the ids tied to them on the suppression list, then sweep every place (module doc).
    The caller holds the warehouse's locks."""
    secret = require_secret()
    warehouse = warehouse_path()
    erasure = Erasure(people=len(addresses))
    con = connect(warehouse, read_only=dry_run and warehouse.exists()) if warehouse.exists() or not dry_run else None
    if con is not None:
        con.execute(f"set memory_limit = {sql_literal(MEMORY_LIMIT)}")
    try:
        if con is not None and not dry_run:
            create_privacy_tables(con)
        asked = Suppression(secret, [])
        asked = asked.with_hashes(asked.key("email", a) or "" for a in addresses)
        matched = Matched()
        matched.add("email", addresses)
        if con is not None:
            tie_identifiers(con, warehouse.stem, matched)
        with parquet_catalog(_parquet_folders().values()) as spark_side:
            tie_identifiers(spark_side, "memory", matched)
        ids = Suppression(secret, []).with_hashes(
            h for kind, values in matched.values.items() for v in values if (h := asked.key(kind, v)) is not None
        )
        all_hashes = asked.hashes | ids.hashes
        erasure.identifiers = len(all_hashes)
        erasure.source_ids = {kind: set(values) for kind, values in matched.values.items() if kind != "email"}
        if con is not None and not dry_run:
            _record_intent(con, addresses, asked, all_hashes)
            print(
                f"forget: {_people(len(addresses))}, {len(all_hashes)} identifiers on the suppression list; sweeping",
                file=stream,
                flush=True,
            )
        if dry_run:
            sweep = Sweep(dry_run=True, stream=stream)
            sweep.say(f"forget --dry-run: {_people(len(addresses))}, {len(all_hashes)} identifiers; nothing is removed")
            _sweep(con, warehouse, Suppression(secret, all_hashes), sweep, matched)
            erasure.sweep = sweep
            if propagate:
                erasure.propagated = propagate_to_sources(erasure, dry_run=True, stream=stream)
            return erasure
    finally:
        if con is not None:
            con.close()
    erasure.sweep = finish_erasures(stream=stream)
    if propagate:
        erasure.propagated = propagate_to_sources(erasure, dry_run=False, stream=stream)
    return erasure


def _record_intent(con, addresses: list[str], asked: Suppression, hashes: Iterable[str]) -> None:
    """The erasure's intent, in one transaction: the hashes on the list and one unfinished erasure per person."""
    run, now = uuid.uuid4().hex, dt.datetime.now(dt.UTC)
    identifiers = sorted(set(hashes))
    people = [asked.key("email", address) for address in addresses]
    con.execute("begin")
    con.execute(
        f"""insert into {SCHEMA}.suppression select h, $run, $now from unnest($hashes) as t(h)
            on conflict do nothing""",
        {"run": run, "now": now, "hashes": identifiers},
    )
    con.execute(
        f"""insert into {SCHEMA}.erasures (erasure_id, erasure_run, email_hash, requested_at)
            select cast(gen_random_uuid() as varchar), $run, h, $now from unnest($people) as t(h)""",
        {"run": run, "now": now, "people": people},
    )
    con.execute(
        f"insert into {SCHEMA}.erasure_runs (erasure_run, requested_at, people, identifiers) values (?, ?, ?, ?)",
        [run, now, len(people), len(identifiers)],
    )
    con.execute("commit")


def unfinished_erasures(warehouse: Path | None = None) -> int:
    """How many erasures were asked and not finished (a forget killed midway)."""
    warehouse = warehouse or warehouse_path()
    if not warehouse.is_file():  # none yet, or not a warehouse: the run's own steps say so
        return 0
    con = connect(warehouse, read_only=True)
    try:
        exists = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = 'erasure_runs'",
            [SCHEMA],
        ).fetchall()[0][0]
        if not exists:
            return 0
        return con.execute(f"select count(*) from {SCHEMA}.erasure_runs where finished_at is null").fetchall()[0][0]
    finally:
        con.close()


def finish_erasures(*, stream=sys.stderr) -> Sweep:
    """Sweep every place for everyone on the suppression list, then mark every unfinished erasure finished with
    what went. Idempotent: a sweep cut short anywhere is done again whole by the next."""
    warehouse = warehouse_path()
    sweep = Sweep(dry_run=False, stream=stream)
    finish_pending_loads(warehouse, stream)
    con = connect(warehouse)
    con.execute(f"set memory_limit = {sql_literal(MEMORY_LIMIT)}")
    try:
        suppression = read_suppression(con)
        matched = Matched()
        find_identifiers(con, warehouse.stem, suppression, matched)
        with parquet_catalog(_parquet_folders().values()) as spark_side:
            find_identifiers(spark_side, "memory", suppression, matched)
        _sweep(con, warehouse, suppression, sweep, matched)
    finally:
        con.close()
    for path in (warehouse, _analytics(warehouse)):
        if path.exists():
            sweep.say(f"  compacting {path.name}")
            compact(path)
    con = connect(warehouse)
    try:
        now = dt.datetime.now(dt.UTC)
        removed = json.dumps(sweep.removed, sort_keys=True)
        con.execute("begin")
        con.execute(
            f"update {SCHEMA}.erasure_runs set finished_at = ?, rows_removed = ? where finished_at is null",
            [now, removed],
        )
        con.execute(f"update {SCHEMA}.erasures set finished_at = ? where finished_at is null", [now])
        con.execute("commit")
    finally:
        con.close()
    return sweep


def _analytics(warehouse: Path) -> Path:
    from mail_warehouse.publish import analytics_path

    return analytics_path(warehouse)


def _sweep(con, warehouse: Path, suppression: Suppression, sweep: Sweep, matched: Matched) -> None:
    """Every place but the compaction, in the order of the module doc."""
    from mail_warehouse.build import dbt_target_path
    from mail_warehouse.lake import lake_url
    from mail_warehouse.pipelines import pipelines_dir

    if not suppression:
        return
    clear_pipeline_folders(pipelines_dir(warehouse), sweep)
    manifest_path = dbt_target_path() / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    if con is not None:
        erase_in_database(con, warehouse.stem, warehouse.name, matched, sweep)
        for table in drop_counting_models(con, warehouse.stem, counting_people(manifest), sweep):
            verb = "would drop" if sweep.dry_run else "dropped"
            sweep.say(f"  {warehouse.name} {table}: {verb} (counts people; the next build makes it again in full)")
    analytics = _analytics(warehouse)
    if analytics.exists():
        bi = duckdb.connect(str(analytics), read_only=sweep.dry_run, config={"memory_limit": MEMORY_LIMIT})
        try:
            erase_in_database(bi, analytics.stem, analytics.name, matched, sweep)
        finally:
            bi.close()
    standby = analytics.with_name(f".{analytics.name}.standby")
    if standby.exists():
        sweep.count(standby.name, 1, "file")
        if not sweep.dry_run:
            standby.unlink()
    erase_in_csv_files(_exports_dir(), suppression, sweep)
    lake = lake_url()
    if "://" in lake:
        sweep.say(f"  lake {lake}: not a local folder; its files are left to the bucket's owner")
    else:
        clear_pipeline_folders(Path(lake).parent / ".dlt_pipelines" / "lake", sweep)
    for place, folder in _parquet_folders().items():
        erase_in_parquet(folder, place, suppression, matched, sweep)


def _parquet_folders() -> dict[str, Path]:
    """The Spark side's local folders of parquet files: the lake when it is local, and Spark's tables."""
    from mail_warehouse.lake import lake_url

    spark = Path(os.environ.get("SPARK_HOME_DIR") or PROJECT_DIR / "var" / "spark")
    spark = spark if spark.is_absolute() else PROJECT_DIR / spark
    lake = lake_url()
    return {**({} if "://" in lake else {"lake": Path(lake)}), "spark": spark / "warehouse"}


def _exports_dir() -> Path:
    from mail_warehouse.export_config import load_settings

    return load_settings(need_sftp=False).local_dir


def propagate_to_sources(erasure: Erasure, *, dry_run: bool, stream) -> bool:
    """--propagate: Spotler asked to anonymize each of the person's contacts (`PUT /contact/anonymize/{id}`);
    what only Clang/Deployteq and Directo can erase listed with the ids they need. False if Spotler refused
    or could not be reached for any of them."""
    from urllib.parse import quote

    from mail_warehouse.export_spotler import spotler_account

    def say(message: str) -> None:
        print(message, file=stream, flush=True)

    numbers = sorted(erasure.source_ids.get("customer_number", set()))
    clang_ids = sorted(erasure.source_ids.get("clang_customer_id", set()))
    all_done = True
    account = spotler_account()
    if account is None:
        say("spotler: not configured; nothing asked")
    elif not numbers:
        say("spotler: no contact id of theirs is known here; nothing asked")
    else:
        from mail_warehouse_sources.spotler.client import SpotlerClient
        from mail_warehouse_sources.spotler.config import SpotlerError

        client = SpotlerClient(account, log=say)
        for number in numbers:
            if dry_run:
                say(f"spotler: would ask to anonymize contact {number}")
                continue
            try:
                answer = client.send(
                    "PUT", "PUT /contact/anonymize/{externalId}", f"/contact/anonymize/{quote(number)}"
                )
            except SpotlerError as error:
                say(f"spotler: contact {number}: {error}")
                all_done = False
                continue
            if answer.ok:
                say(f"spotler: contact {number} anonymized")
            elif answer.status == 404:
                say(f"spotler: {number} is no Spotler contact")
            else:
                say(f"spotler: contact {number} refused: HTTP {answer.status} {answer.message}")
                all_done = False
    say("only the source systems can erase there (the suppression list keeps what they still send out of here):")
    if clang_ids or numbers:
        say(
            "  Clang/Deployteq: the customer "
            + ", ".join([*(f"customer id {i}" for i in clang_ids), *(f"external number {n}" for n in numbers)])
        )
    if numbers:
        say(f"  Directo: the customer with code {', '.join(numbers)} (if Directo knows it)")
    if not (clang_ids or numbers):
        say("  nothing: no id of theirs is known here")
    return all_done
