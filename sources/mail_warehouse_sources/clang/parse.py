"""Reading downloaded Clang files with DuckDB: every new file of one kind in one `read_csv` pass.

Each valid row goes to one Parquet file per kind with its `source_file`, `source_line`, `file_loaded_at` and an
empty `version_without_rows` (the flag of a version without rows, see source.py: written here so that the file
has the table's every column and dlt imports it as it is);
each invalid one to the rejects with its file, line, reason and raw text. Line numbers count records as
DuckDB does: the header is line 1, each record one line (a quoted field holding a newline does not move the
numbers of later records).
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dlt.common.normalizers.naming.snake_case import NamingConvention

from mail_warehouse_sources.clang.settings import DATE_COLUMNS, SETTING_PREFIX, ClangConfiguration
from mail_warehouse_sources.suppression import Suppression

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"  # Activiteitdatum and Verzonden op, local time without a zone
PARSE_MEMORY_LIMIT = "1GB"  # DuckDB spills to disk beside the downloads rather than grow past this
NATIVE_ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-8-sig": "utf-8",
    "utf-16": "utf-16",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
}
# The flag of a file's version without rows for a table (see source.py), a column of each table of rows.
VERSION_WITHOUT_ROWS = "version_without_rows"
REJECTS_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("file_kind", pa.string()),
        ("reason", pa.string()),
        ("raw_text", pa.string()),
        ("file_loaded_at", pa.timestamp("us", tz="UTC")),
    ]
)


_naming = NamingConvention()


def normalized(header: str) -> str:
    """A configured header as dlt names its column (`Extern klantnummer` -> `extern_klantnummer`)."""
    return _naming.normalize_identifier(header)


class FileRejected(Exception):
    """The whole file is refused (its header does not match the configured columns, or DuckDB cannot read it)."""


@dataclass(frozen=True)
class Downloaded:
    source_file: str  # the path relative to remote_dir: the rows' source_file
    kind: str  # activity | broadcast
    local: Path  # a name we chose, never the remote name
    records: int | None = None  # as counted by `count_records`, None where only DuckDB can tell


@dataclass
class Parsed:
    """What one pass over the files of one kind gave."""

    parquet: Path | None  # the valid rows, None when there are none
    rows: int = 0
    rows_per_file: dict[str, int] = field(default_factory=dict)
    rejects: list[tuple] = field(default_factory=list)  # (source_file, line, reason, raw text)
    failed: list[str] = field(default_factory=list)  # files refused whole, with the reason


def check_header(file: Downloaded, settings: ClangConfiguration) -> None:
    if not settings.has_header or file.local.stat().st_size == 0:
        return
    with file.local.open("r", encoding=_python_encoding(settings.encoding), newline="") as handle:
        first = handle.readline().rstrip("\r\n")
    header = next(csv.reader([first], delimiter=settings.delimiter), [])
    expected = settings.columns(file.kind)
    if [h.strip() for h in header] != expected:
        missing = [c for c in expected if c not in header]
        unexpected = [h for h in header if h not in expected]
        detail = []
        if missing:
            detail.append(f"missing {missing}")
        if unexpected:
            detail.append(f"unexpected {unexpected}")
        if not detail:
            detail.append(f"order differs: {header} instead of {expected}")
        setting = "ACTIVITY_COLUMNS" if file.kind == "activity" else "BROADCAST_COLUMNS"
        raise FileRejected(f"{file.source_file}: header does not match {SETTING_PREFIX}{setting}: {'; '.join(detail)}")


def _python_encoding(encoding: str) -> str:
    return "utf-8-sig" if encoding in ("utf-8", "utf8", "utf-8-sig") else encoding


def readable(file: Downloaded, settings: ClangConfiguration) -> Downloaded:
    """DuckDB reads UTF-8, UTF-16 and Latin-1 itself; anything else is transcoded to UTF-8 first."""
    if settings.encoding in NATIVE_ENCODINGS:
        return file
    target = file.local.with_suffix(".utf8")
    with (
        file.local.open("r", encoding=settings.encoding, newline="") as source,
        target.open("w", encoding="utf-8", newline="") as out,
    ):
        shutil.copyfileobj(source, out, 1 << 20)
    file.local.unlink()
    return Downloaded(file.source_file, file.kind, target, file.records)


def count_records(local: Path, settings: ClangConfiguration) -> int | None:
    """The records of a file without a quote character, counted by its line ends (a few milliseconds for a file
    DuckDB takes a quarter of a second to scan). None where only DuckDB can tell: a quoted field may hold a line
    end, and a line end is not one byte in every encoding."""
    if NATIVE_ENCODINGS.get(settings.encoding) not in ("utf-8", "latin-1"):
        return None
    line_ends, last = 0, b""
    with local.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            if b'"' in chunk:
                return None
            line_ends += chunk.count(b"\n")
            last = chunk[-1:]
    lines = line_ends + (1 if last not in (b"", b"\n") else 0)
    return max(0, lines - (1 if settings.has_header else 0))


def duckdb_encoding(settings: ClangConfiguration) -> str:
    return NATIVE_ENCODINGS.get(settings.encoding, "utf-8")


def parse_files(
    files: list[Downloaded], kind: str, settings: ClangConfiguration, loaded_at: dt.datetime, parquet: Path
) -> Parsed:
    """All `files` of one kind in one DuckDB pass. A file DuckDB cannot read at all fails alone: the others are
    then read again without it."""
    readable_files = [f for f in files if f.local.stat().st_size > 0]  # an empty file has no rows and no header
    empty = {f.source_file: 0 for f in files if f.local.stat().st_size == 0}
    try:
        parsed = _parse_together(readable_files, kind, settings, loaded_at, parquet)
    except duckdb.Error as error:
        if len(readable_files) == 1:
            return Parsed(
                None, failed=[f"{readable_files[0].source_file}: DuckDB cannot read it: {error}"], rows_per_file=empty
            )
        good, failed, probe = [], [], parquet.with_suffix(".probe.parquet")
        for file in readable_files:
            alone = parse_files([file], kind, settings, loaded_at, probe)
            if alone.failed:
                failed += alone.failed
            else:
                good.append(file)
        probe.unlink(missing_ok=True)
        parsed = _parse_together(good, kind, settings, loaded_at, parquet)
        parsed.failed = failed
    parsed.rows_per_file.update(empty)
    return parsed


def _parse_together(
    files: list[Downloaded], kind: str, settings: ClangConfiguration, loaded_at: dt.datetime, parquet: Path
) -> Parsed:
    if not files:
        return Parsed(None)
    con = duckdb.connect()
    try:
        con.execute(
            f"set memory_limit = '{PARSE_MEMORY_LIMIT}'; set temp_directory = {_literal(str(parquet.parent))};"
            "set TimeZone = 'UTC'"
        )
        return _Pass(con, files, kind, settings, loaded_at).to_parquet(parquet)
    finally:
        con.close()


class _Pass:
    """The SQL of one pass: the CSV read, the line of each record, the reason a row is rejected."""

    def __init__(self, con, files: list[Downloaded], kind: str, settings: ClangConfiguration, loaded_at: dt.datetime):
        self.con, self.files, self.kind, self.settings, self.loaded_at = con, files, kind, settings, loaded_at
        columns = settings.columns(kind)
        self.names = [f"c{i}" for i in range(len(columns))]
        spec = "{" + ", ".join(f"{_literal(n)}: 'VARCHAR'" for n in self.names) + "}"
        paths = "[" + ", ".join(_literal(str(f.local)) for f in files) + "]"
        self.read = f"""read_csv({paths}, delim={_literal(settings.delimiter)}, quote='"', escape='"',
                            header={str(settings.has_header).lower()}, columns={spec}, auto_detect=false,
                            encoding={_literal(duckdb_encoding(settings))}, store_rejects=true,
                            rejects_table='reject_errors', rejects_scan='reject_scans', strict_mode=true,
                            null_padding=false, max_line_size=10000000, filename=true)"""
        self.first_line = 2 if settings.has_header else 1
        date_column = self.names[columns.index(DATE_COLUMNS[kind])]
        id_column = self.names[columns.index("Broadcastid")]
        date_text = f"nullif(trim({date_column}), '')"
        self.date_column = date_column
        self.reject_reason = f"""
            case when nullif(trim({id_column}), '') is null then 'empty Broadcastid'
                 when parsed_date is null and {date_text} is not null
                      then 'unparseable date ' || {date_column} || ' (expected yyyy-mm-dd hh:mm:ss)'
                 {"when parsed_date is null then 'missing date'" if kind == "activity" else ""}
            end"""
        self.parsed_date = f"try_strptime({date_text}, '{DATE_FORMAT}') as parsed_date"

    def _checked(self) -> str:
        """The records read, each with its date parsed once and the reason it is refused (null: it is valid)."""
        return f"(select *, {self.reject_reason} as reject_reason from (select *, {self.parsed_date} from {self.read}))"

    def to_parquet(self, parquet: Path) -> Parsed:
        counted = {f.source_file: f.records for f in self.files}
        known = {source_file: records for source_file, records in counted.items() if records is not None}
        if len(known) == len(counted):
            # Every record count is known: DuckDB reads the files once, and the counts are checked afterwards.
            self._files_table(known)
            self._keep_structural_rejects()  # none yet: the read has not run
            parsed = self._write(parquet, known)
            if self._counts_hold(parsed):
                return parsed
            self.con.execute("drop table files; drop table structural_rejects")  # a count was wrong: ask DuckDB
        return self._write(parquet, self._scan())

    def _counts_hold(self, parsed: Parsed) -> bool:
        """The counted records were DuckDB's: no line rejected for its shape, each file's rows as many as counted."""
        if self._found_structural_rejects():
            return False
        written = (
            dict(
                self.con.execute(
                    f"select source_file, count(*) from read_parquet({_literal(str(parsed.parquet))}) group by 1"
                ).fetchall()
            )
            if parsed.parquet
            else {}
        )
        return all(written.get(path, 0) == rows for path, rows in parsed.rows_per_file.items())

    def _write(self, parquet: Path, accepted: dict[str, int]) -> Parsed:
        """The valid rows to `parquet`, the invalid ones with their reasons; `accepted`: records per file."""
        checked = self._numbered()
        output = self.settings.columns(self.kind)
        selected = ", ".join(
            f"{'parsed_date' if n == self.date_column else n} as {_identifier(normalized(output[i]))}"
            for i, n in enumerate(self.names)
        )
        # the valid rows straight to Parquet
        written = self.con.execute(f"""
            copy (
                select {selected}, source_file, line::bigint as source_line,
                       {_literal(self.loaded_at.isoformat())}::timestamptz as file_loaded_at,
                       null::boolean as {VERSION_WITHOUT_ROWS}
                from {checked} where reject_reason is null
            ) to {_literal(str(parquet))} (format parquet)
        """).fetchone()[0]
        value_rejects = []
        if written < sum(accepted.values()):  # only for files with invalid values: which rows and why
            delimiter = _literal(self.settings.delimiter)
            value_rejects = self.con.execute(f"""
                select source_file, line, reject_reason,
                       concat_ws({delimiter}, {", ".join(f"coalesce({n}, '')" for n in self.names)}) as raw_text
                from {checked} where reject_reason is not null
            """).fetchall()
        rows_per_file = dict(accepted)
        for source_file, *_ in value_rejects:
            rows_per_file[source_file] -= 1
        structural_rejects = self.con.execute("""
            select source_file, line,
                   case error_type when 'TOO MANY COLUMNS' then 'too many fields'
                                   when 'MISSING COLUMNS' then 'too few fields'
                                   else lower(error_type) end || ': ' || message, csv_line
            from structural_rejects
        """).fetchall()
        rejects = sorted(value_rejects + structural_rejects)
        return Parsed(parquet if written else None, written, rows_per_file, rejects)

    def _scan(self) -> dict[str, int]:
        """A quick scan: how many records DuckDB accepts in each file, and which lines it rejects for their shape."""
        # fetchall, not fetchone: DuckDB writes the rejects table only once the scan has run to its end
        counted = dict(self.con.execute(f"select filename, count(*) from {self.read} group by filename").fetchall())
        accepted = {f.source_file: counted.get(str(f.local), 0) for f in self.files}
        self._files_table(accepted)
        self._keep_structural_rejects()
        return accepted

    def _keep_structural_rejects(self) -> None:
        self._found_structural_rejects()
        self.con.execute("create temp table structural_rejects as select * from structural_rejects_found")
        self.structural = self.con.execute("select count(*) from structural_rejects").fetchone()[0]

    def _files_table(self, accepted: dict[str, int]) -> None:
        """Each file's name as DuckDB reports it, its source_file, and how many records come before its first."""
        offsets, offset = [], 0
        for file in self.files:  # DuckDB reads the files in the order given, records in file order
            offsets.append((str(file.local), file.source_file, offset, accepted[file.source_file]))
            offset += accepted[file.source_file]
        self.con.execute(
            "create temp table files (filename varchar, source_file varchar, record_offset bigint, accepted bigint)"
        )
        self.con.executemany("insert into files values (?, ?, ?, ?)", offsets)

    def _found_structural_rejects(self) -> int:
        """The lines the last read rejected for their shape, one row per line (as `structural_rejects_found`)."""
        has_rejects = self.con.execute(
            "select count(*) from duckdb_tables() where table_name = 'reject_errors'"
        ).fetchone()[0]
        errors = (
            "(select e.line, e.error_type, e.csv_line, e.error_message, s.file_path as filename "
            "from reject_errors e join reject_scans s using (scan_id, file_id))"
            if has_rejects
            else "(select null::bigint as line, null as error_type, null as csv_line, null as error_message, "
            "null::varchar as filename where false)"
        )
        self.con.execute(f"""
            create or replace temp table structural_rejects_found as
            select f.source_file, e.filename, e.line, min(e.error_type)::varchar as error_type,
                   min(e.csv_line) as csv_line, min(e.error_message) as message
            from {errors} e join files f using (filename)
            group by all
        """)
        return self.con.execute("select count(*) from structural_rejects_found").fetchone()[0]

    def _numbered(self) -> str:
        """The checked rows with their file and line. Without structural rejects the k-th record of a file is on
        line k + first_line - 1; in a file with some, on the k-th line DuckDB did not reject. Dates and reasons
        are worked out below the numbering: a filter on them above it would have DuckDB work them out twice."""
        rows = f"(select *, row_number() over () as ordinal from {self._checked()})"
        if not self.structural:
            return f"""(select p.*, f.source_file, p.ordinal - f.record_offset + {self.first_line - 1} as line
                        from {rows} p join files f using (filename))"""
        self.con.execute(f"""
            create temp table record_lines as
            with candidate as (
                select filename, unnest(range({self.first_line}, {self.first_line} + accepted
                                              + (select count(*) from structural_rejects s
                                                 where s.filename = files.filename))) as line
                from files where filename in (select filename from structural_rejects)
            )
            select filename, line, row_number() over (partition by filename order by line) as ordinal
            from candidate anti join structural_rejects using (filename, line)
        """)
        return f"""(select p.*, f.source_file,
                           coalesce(l.line, p.ordinal - f.record_offset + {self.first_line - 1}) as line
                    from {rows} p join files f using (filename)
                    left join record_lines l on l.filename = p.filename and l.ordinal = p.ordinal - f.record_offset)"""


def drop_forgotten(parsed: Parsed, suppression: Suppression, columns: Mapping[str, str]) -> int:
    """Leave out of `parsed` the rows and rejects that name a forgotten person (mail_warehouse_sources/
    suppression.py): `columns` maps a Parquet column to the kind of identifier it holds; a reject's reason and
    raw text are searched for any. The Parquet file is rewritten, batch by batch and with its own schema, only
    when it holds such rows; each file's row count follows. Returns how many rows and rejects went."""
    kept_rejects = [r for r in parsed.rejects if not any(suppression.names_anyone_in(text) for text in r[2:])]
    dropped = len(parsed.rejects) - len(kept_rejects)
    parsed.rejects = kept_rejects
    if parsed.parquet is None:
        return dropped
    hits = _forgotten_values(parsed.parquet, suppression, columns)
    if not hits:
        return dropped
    kept = parsed.parquet.with_suffix(".kept.parquet")
    written = 0
    # the file's own schema, nullability included: the columns hint is read from it (source.py)
    with pq.ParquetFile(parsed.parquet) as original, pq.ParquetWriter(kept, original.schema_arrow) as out:
        for batch in original.iter_batches():
            naming = pa.array([False] * batch.num_rows, pa.bool_())
            for column, values in hits.items():
                naming = pc.or_(naming, pc.fill_null(pc.is_in(batch.column(column), values), False))
            for source_file, rows in Counter(batch.column("source_file").filter(naming).to_pylist()).items():
                parsed.rows_per_file[source_file] -= rows
                parsed.rows -= rows
                dropped += rows
            rest = batch.filter(pc.invert(naming))
            if rest.num_rows:
                out.write_batch(rest)
                written += rest.num_rows
    if written:
        kept.replace(parsed.parquet)
    else:
        kept.unlink()
        parsed.parquet.unlink()
        parsed.parquet = None
    return dropped


def _forgotten_values(parquet: Path, suppression: Suppression, columns: Mapping[str, str]) -> dict[str, pa.Array]:
    """Of each column of `columns` in `parquet`, the values naming a forgotten person (none: the column is left
    out). Each distinct value is hashed once, in Python: DuckDB has no keyed hash."""
    present = set(pq.read_schema(parquet).names)
    hits = {}
    con = duckdb.connect()
    try:
        for column, kind in columns.items():
            if column in present:
                distinct = con.execute(
                    f"select distinct {_identifier(column)} from read_parquet({_literal(str(parquet))})"
                )
                found = suppression.matching(kind, (value for (value,) in distinct.fetchall()))
                if found:
                    hits[column] = pa.array(sorted(found), pa.string())
    finally:
        con.close()
    return hits


def flags_parquet(
    files: list[str], kind: str, settings: ClangConfiguration, loaded_at: dt.datetime, parquet: Path
) -> Path:
    """The rows that flag versions without rows of `files` (one each, `version_without_rows` true), written as
    the parsed rows are: a file with the same columns and types, which dlt imports as it is (an Arrow table would
    be normalized, and given `_dlt_load_id` where that is asked for, which the imported files lack)."""
    date_column = DATE_COLUMNS[kind]
    columns = ", ".join(
        f"null::{'timestamp' if name == date_column else 'varchar'} as {_identifier(normalized(name))}"
        for name in settings.columns(kind)
    )
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(
            f"""copy (select {columns}, unnest($files::varchar[]) as source_file, null::bigint as source_line,
                             $loaded_at::timestamptz as file_loaded_at, true as {VERSION_WITHOUT_ROWS})
                to {_literal(str(parquet))} (format parquet)""",
            {"files": files, "loaded_at": loaded_at},
        )
    finally:
        con.close()
    return parquet


def rejects_table(rejects: list[tuple], kind: str, loaded_at: dt.datetime) -> pa.Table:
    return arrow_table(
        [(path, line, kind, reason, raw, loaded_at) for path, line, reason, raw in rejects], REJECTS_SCHEMA
    )


def arrow_table(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    """Rows as an Arrow table, built by DuckDB: handed Python values, pyarrow first imports pandas to see whether
    they are pandas objects (about a second, once per process)."""
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(
            "create table rows (" + ", ".join(f"{_identifier(f.name)} {_DUCKDB_TYPES[f.type]}" for f in schema) + ")"
        )
        if rows:
            con.executemany(f"insert into rows values ({', '.join('?' * len(schema))})", rows)
        return con.sql("select * from rows").to_arrow_table().cast(schema)
    finally:
        con.close()


_DUCKDB_TYPES = {pa.string(): "varchar", pa.int64(): "bigint", pa.timestamp("us", tz="UTC"): "timestamptz"}


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
