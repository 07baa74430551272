"""Clang/Deployteq activity and broadcast exports from SFTP into `raw_clang` (`warehouse load clang`).

Fast path: list the folder with paramiko, fetch only new or changed files (name, size, mtime) with
prefetching `get()`, parse each with DuckDB's CSV reader and hand Arrow batches to dlt.

Exactly once: every row carries `source_file`, `source_line` and `file_loaded_at`, the version of its file.
`loaded_files` records each file's size, mtime, checksum, time zone and version in the same load as its
rows; rows of any other version of a file are removed once that record is in. So:
- nothing new: nothing downloaded, nothing added;
- a file delivered again with the same content: downloaded, recognised by its checksum, nothing added;
- a file delivered again with other content: its rows are replaced;
- a file gone from the server: its rows stay;
- a run killed mid-download or mid-load: the next run first finishes dlt's pending load, then fetches what
  `loaded_files` does not yet hold.

Raw codes and local times are kept as delivered: `activiteit` as is, dates as local timestamps; the zone
they are in is the file's `source_timezone` in `loaded_files`; staging (dbt) maps codes and converts to UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dlt
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from dlt.common.configuration.specs import configspec
from dlt.common.configuration.resolve import resolve_configuration
from dlt.common.normalizers.naming.snake_case import NamingConvention

from mail_warehouse import settings as warehouse_settings
from mail_warehouse.settings import sql_literal
from loaders.sftp import ReconnectingSftp, SftpSession, SftpSettings, glob_to_regex
from loaders.sftp_config import SftpConfiguration

DATASET = "raw_clang"
LOAD_MEMORY_LIMIT = "1GB"  # DuckDB spills beyond this while dlt loads
PIPELINE_NAME = "clang"
ACTIVITY_COLUMNS = ["Broadcastid", "Customerid", "Extern klantnummer", "E-mailadres", "Activiteit",
                    "Activiteitdatum", "Beschrijving activiteit"]
BROADCAST_COLUMNS = ["Broadcastid", "Broadcast type", "Beschrijving", "Onderwerp", "Verzonden op"]
DATE_COLUMNS = {"activity": "Activiteitdatum", "broadcast": "Verzonden op"}  # the date of each kind of file
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"  # Activiteitdatum and Verzonden op, local time without a zone
PARSE_MEMORY_LIMIT = "1GB"
NATIVE_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8", "utf-16": "utf-16",
                    "latin-1": "latin-1", "latin1": "latin-1", "iso-8859-1": "latin-1"}


@configspec
class ClangConfiguration(SftpConfiguration):
    """`[sources.clang]` in .dlt/config.toml, or SOURCES__CLANG__<NAME> environment variables."""
    remote_dir: str = "."
    activity_glob: str = "**/activiteiten_*.csv"
    broadcast_glob: str = "**/broadcasts_*.csv"
    delimiter: str = ";"
    has_header: bool = True
    encoding: str = "utf-8"
    activity_columns: list[str] = None
    broadcast_columns: list[str] = None
    timezone: str = "Europe/Amsterdam"


class ClangSettingsError(ValueError):
    pass


@dataclass(frozen=True)
class ClangSettings:
    sftp: SftpSettings
    remote_dir: str
    activity_glob: str
    broadcast_glob: str
    delimiter: str
    has_header: bool
    encoding: str
    activity_columns: tuple[str, ...]
    broadcast_columns: tuple[str, ...]
    timezone: str

    def columns(self, kind: str) -> tuple[str, ...]:
        return self.activity_columns if kind == "activity" else self.broadcast_columns


def _as_list(value, name: str, default: list[str]) -> tuple[str, ...]:
    if value is None:
        return tuple(default)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ClangSettingsError(f"SOURCES__CLANG__{name.upper()} must be a JSON list of column names") from None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ClangSettingsError(f"SOURCES__CLANG__{name.upper()} must be a non-empty list of column names")
    return tuple(value)


def load_settings() -> ClangSettings:
    """Resolve `[sources.clang]` the dlt way and check it, naming the setting that is wrong."""
    config = resolve_configuration(ClangConfiguration(), sections=("sources", "clang"), accept_partial=True)
    for required in ("host", "username"):
        if not getattr(config, required):
            raise ClangSettingsError(f"missing setting sources.clang.{required} (env SOURCES__CLANG__{required.upper()})")
    delimiter = "\t" if config.delimiter in ("\\t", "\t", "tab") else config.delimiter
    if len(delimiter) != 1:
        raise ClangSettingsError(f"SOURCES__CLANG__DELIMITER takes one character (\\t for tab), got {config.delimiter!r}")
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ClangSettingsError(f"SOURCES__CLANG__TIMEZONE {config.timezone!r} is not a time zone name") from None
    try:
        "".encode(config.encoding)
    except LookupError:
        raise ClangSettingsError(f"SOURCES__CLANG__ENCODING {config.encoding!r} is not an encoding Python knows") from None
    activity_columns = _as_list(config.activity_columns, "activity_columns", ACTIVITY_COLUMNS)
    broadcast_columns = _as_list(config.broadcast_columns, "broadcast_columns", BROADCAST_COLUMNS)
    for kind, columns in (("activity", activity_columns), ("broadcast", broadcast_columns)):
        missing = [c for c in ("Broadcastid", DATE_COLUMNS[kind]) if c not in columns]
        if missing:
            raise ClangSettingsError(f"SOURCES__CLANG__{kind.upper()}_COLUMNS lacks {missing}")
    sftp = config.sftp_settings("SOURCES__CLANG__")
    return ClangSettings(sftp, config.remote_dir or ".", config.activity_glob, config.broadcast_glob, delimiter,
                         bool(config.has_header), config.encoding.lower(), activity_columns, broadcast_columns,
                         config.timezone)


# --- what is on the server, and what is new --------------------------------------------------------

@dataclass(frozen=True)
class RemoteFile:
    path: str            # relative to remote_dir, with forward slashes: the row's source_file
    kind: str            # activity | broadcast
    size: int
    mtime: int


@dataclass
class RunSummary:
    seen: int = 0
    loaded: int = 0
    unchanged: int = 0
    same_content: int = 0
    failed: list[str] = field(default_factory=list)
    activity_rows: int = 0
    broadcast_rows: int = 0
    rejected_rows: int = 0
    bytes_downloaded: int = 0

    def line(self) -> str:
        return (f"clang: {self.seen} files seen, {self.loaded} loaded, {self.unchanged} skipped as unchanged, "
                f"{self.same_content} re-delivered with the same content, {len(self.failed)} failed; "
                f"{self.activity_rows:,} activity rows, {self.broadcast_rows:,} broadcast rows, "
                f"{self.rejected_rows:,} rejected rows; {self.bytes_downloaded / 1e6:,.1f} MB downloaded")


def classify(path: str, settings: ClangSettings) -> str | None:
    if glob_to_regex(settings.activity_glob).match(path):
        return "activity"
    if glob_to_regex(settings.broadcast_glob).match(path):
        return "broadcast"
    return None


def list_remote(session: SftpSession, settings: ClangSettings) -> list[RemoteFile]:
    recursive = any("/" in g or "**" in g for g in (settings.activity_glob, settings.broadcast_glob))
    found = []
    for path, attributes in session.walk(settings.remote_dir, recursive):
        kind = classify(path, settings)
        if kind:
            found.append(RemoteFile(path, kind, int(attributes.st_size or 0), int(attributes.st_mtime or 0)))
    return sorted(found, key=lambda f: (f.path, f.kind))


def loaded_files(warehouse: Path) -> dict[str, dict]:
    if not warehouse.exists():
        return {}
    con = warehouse_settings.connect(warehouse, read_only=True)
    try:
        exists = con.execute("select count(*) from information_schema.tables where table_schema = $s and "
                             "table_name = 'loaded_files'", {"s": DATASET}).fetchone()[0]
        if not exists:
            return {}
        rows = con.execute(f"""select source_file, size, mtime, file_sha256, loaded_at, source_timezone, data_rows,
                                      rejected_rows from {DATASET}.loaded_files""").fetchall()
        return {r[0]: {"size": r[1], "mtime": r[2], "sha256": r[3], "loaded_at": r[4], "timezone": r[5],
                       "data_rows": r[6], "rejected_rows": r[7]} for r in rows}
    finally:
        con.close()


# --- parsing one downloaded file ----------------------------------------------------------------------

class FileRejected(Exception):
    """The whole file is refused (its header does not match the configured columns)."""


def _check_header(local: Path, remote: RemoteFile, settings: ClangSettings) -> None:
    if not settings.has_header or local.stat().st_size == 0:
        return
    with local.open("r", encoding=_python_encoding(settings.encoding), newline="") as handle:
        first = handle.readline().rstrip("\r\n")
    header = next(csv.reader([first], delimiter=settings.delimiter), [])
    expected = list(settings.columns(remote.kind))
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
        setting = "ACTIVITY_COLUMNS" if remote.kind == "activity" else "BROADCAST_COLUMNS"
        raise FileRejected(f"{remote.path}: header does not match SOURCES__CLANG__{setting}: {'; '.join(detail)}")


def _python_encoding(encoding: str) -> str:
    return "utf-8-sig" if encoding in ("utf-8", "utf8", "utf-8-sig") else encoding


def _to_utf8(local: Path, settings: ClangSettings) -> tuple[Path, str]:
    """DuckDB reads UTF-8, UTF-16 and Latin-1 itself; anything else is transcoded to UTF-8 first."""
    if settings.encoding in NATIVE_ENCODINGS:
        return local, NATIVE_ENCODINGS[settings.encoding]
    target = local.with_suffix(".utf8")
    with local.open("r", encoding=settings.encoding, newline="") as source, target.open("w", encoding="utf-8",
                                                                                       newline="") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    return target, "utf-8"


def parse_file(local: Path, remote: RemoteFile, settings: ClangSettings, loaded_at: dt.datetime,
               parquet: Path) -> tuple[int, pa.Table]:
    """Write the file's valid rows to `parquet`; return their count and the rejected rows.

    Line numbers count records as DuckDB does: the header is line 1, each record one line (a quoted
    field holding a newline does not move the numbers of later records).
    """
    _check_header(local, remote, settings)
    columns = settings.columns(remote.kind)
    if local.stat().st_size == 0:
        return 0, _rejects_table([], remote, loaded_at)
    readable, encoding = _to_utf8(local, settings)
    con = duckdb.connect()
    try:
        # Bounded memory: DuckDB spills to disk beside the download rather than grow past this.
        con.execute(f"set memory_limit = '{PARSE_MEMORY_LIMIT}'; set temp_directory = {sql_literal(str(parquet.parent))};"
                    "set TimeZone = 'UTC'")
        return _parse(con, readable, encoding, remote, settings, loaded_at, parquet, columns)
    finally:
        con.close()


def _parse(con, readable, encoding, remote, settings, loaded_at, parquet, columns):
    names = [f"c{i}" for i in range(len(columns))]
    spec = "{" + ", ".join(f"{sql_literal(n)}: 'VARCHAR'" for n in names) + "}"
    date_column = names[columns.index(DATE_COLUMNS[remote.kind])]
    id_column = names[columns.index("Broadcastid")]
    read = f"""read_csv({sql_literal(str(readable))}, delim={sql_literal(settings.delimiter)}, quote='"', escape='"',
                        header={str(settings.has_header).lower()}, columns={spec}, auto_detect=false,
                        encoding={sql_literal(encoding)}, store_rejects=true, rejects_table='reject_errors',
                        rejects_scan='reject_scans', strict_mode=true, null_padding=false, max_line_size=10000000)"""
    # Pass 1, a quick scan: how many records DuckDB accepts, and which lines it rejects for their shape.
    # fetchall, not fetchone: DuckDB writes the rejects table only once the scan has run to its end.
    accepted_records = con.execute(f"select count(*) from {read}").fetchall()[0][0]
    has_rejects = con.execute("select count(*) from duckdb_tables() where table_name = 'reject_errors'").fetchone()[0]
    con.execute(f"""
        create temp table structural_rejects as
        select line, min(error_type)::varchar as error_type, min(csv_line) as csv_line, min(error_message) as message
        from {"reject_errors" if has_rejects else "(select null::bigint as line, null as error_type, null as csv_line, null as error_message where false)"}
        group by line
    """)
    structural = con.execute("select count(*) from structural_rejects").fetchone()[0]
    first_line = 2 if settings.has_header else 1
    if structural:
        # The k-th accepted record sits on the k-th record line that DuckDB did not reject.
        con.execute(f"""
            create temp table record_lines as
            select line, row_number() over (order by line) as ordinal
            from range({first_line}, {first_line + accepted_records + structural}) r(line)
            where line not in (select line from structural_rejects)
        """)
        numbered = f"""(select p.*, l.line from (select *, row_number() over () as ordinal from {read}) p
                        join record_lines l using (ordinal))"""
    else:
        numbered = f"(select *, row_number() over () + {first_line - 1} as line from {read})"
    date_required = remote.kind == "activity"
    parsed_date = f"try_strptime(nullif(trim({date_column}), ''), '{DATE_FORMAT}')"
    reject_reason = f"""
        case when nullif(trim({id_column}), '') is null then 'empty Broadcastid'
             when {parsed_date} is null and nullif(trim({date_column}), '') is not null
                  then 'unparseable date ' || {date_column} || ' (expected yyyy-mm-dd hh:mm:ss)'
             {f"when {parsed_date} is null then 'missing date'" if date_required else ""}
        end"""
    output = column_names(remote.kind, settings)
    selected = ", ".join(f"{parsed_date if n == date_column else n} as {_sql_identifier(output[i])}"
                         for i, n in enumerate(names))
    # Pass 2: the valid rows straight to Parquet, in file order.
    written = con.execute(f"""
        copy (
            select {selected}, {sql_literal(remote.path)} as source_file, line::bigint as source_line,
                   {sql_literal(loaded_at.isoformat())}::timestamptz as file_loaded_at
            from {numbered} where {reject_reason} is null
        ) to {sql_literal(str(parquet))} (format parquet, row_group_size 500000)
    """).fetchone()[0]
    rejects = []
    if written < accepted_records:  # pass 3, only for files with invalid values: which rows and why
        delimiter = sql_literal(settings.delimiter)
        rejects = con.execute(f"""
            select line, {reject_reason} as reason,
                   concat_ws({delimiter}, {", ".join(f"coalesce({n}, '')" for n in names)}) as raw_text
            from {numbered} where {reject_reason} is not null
        """).fetchall()
    rejects += con.execute("""
        select line, case error_type when 'TOO MANY COLUMNS' then 'too many fields'
                                     when 'MISSING COLUMNS' then 'too few fields'
                                     else lower(error_type) end || ': ' || message, csv_line
        from structural_rejects
    """).fetchall()
    rejects.sort()
    return written, _rejects_table(rejects, remote, loaded_at)


def _sql_identifier(header: str) -> str:
    return '"' + header.replace('"', '""') + '"'


def _rejects_table(rejects, remote: RemoteFile, loaded_at: dt.datetime) -> pa.Table:
    return pa.table({
        "source_file": pa.array([remote.path] * len(rejects), pa.string()),
        "source_line": pa.array([r[0] for r in rejects], pa.int64()),
        "file_kind": pa.array([remote.kind] * len(rejects), pa.string()),
        "reason": pa.array([r[1] for r in rejects], pa.string()),
        "raw_text": pa.array([r[2] for r in rejects], pa.string()),
        "file_loaded_at": pa.array([loaded_at] * len(rejects), pa.timestamp("us", tz="UTC")),
    })


# --- the dlt source and the run ----------------------------------------------------------------------

DATA_TABLES = ("activities", "broadcasts", "rejected_rows")
TABLE_OF_KIND = {"activity": "activities", "broadcast": "broadcasts"}
_naming = NamingConvention()


def column_names(kind: str, settings: ClangSettings) -> list[str]:
    """Raw column names: the configured headers as dlt normalises them (`Extern klantnummer` -> `extern_klantnummer`)."""
    return [_naming.normalize_identifier(c) for c in settings.columns(kind)]


def _columns_hint(kind: str, settings: ClangSettings, parquet: Path) -> dict:
    """Column types for the raw table, with each column's nullability as DuckDB wrote it into the Parquet
    file: any difference would make dlt rewrite the whole file in its normalize step."""
    date_name = _naming.normalize_identifier(DATE_COLUMNS[kind])
    types = {name: "text" for name in column_names(kind, settings)}
    types.update({date_name: "timestamp", "source_file": "text", "source_line": "bigint",
                  "file_loaded_at": "timestamp"})
    written = {f.name: f.nullable for f in pq.read_schema(parquet)}
    columns = {}
    for name, data_type in types.items():
        columns[name] = {"name": name, "data_type": data_type, "nullable": written.get(name, True)}
        if name == date_name:
            columns[name]["timezone"] = False  # local time as delivered; staging converts to UTC
    return columns


@dataclass
class PreparedFile:
    remote: RemoteFile
    parquet: Path | None
    rows: int


class Reporter:
    """Progress on stderr: large files and files with rejects by name, the rest every 10 seconds."""

    def __init__(self, stream=sys.stderr, large_file_bytes: int = 50_000_000, every_seconds: float = 10.0) -> None:
        self.stream, self.large, self.every = stream, large_file_bytes, every_seconds
        self._last = time.monotonic()

    def say(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def file_done(self, remote: RemoteFile, done: int, total: int, rows: int, rejected: int) -> None:
        now = time.monotonic()
        if remote.size >= self.large or rejected:
            self.say(f"  {remote.path}: {rows:,} rows" + (f", {rejected} rejected" if rejected else ""))
        elif now - self._last >= self.every or done == total:
            self.say(f"  {done} of {total} files fetched ({remote.path})")
        else:
            return
        self._last = now

    def download_progress(self, remote: RemoteFile):
        if remote.size < self.large:
            return None
        state = {"next": 0.0, "started": time.monotonic()}

        def callback(done: int, total: int) -> None:
            if total and done / total >= state["next"]:
                rate = done / max(1e-6, time.monotonic() - state["started"]) / 1e6
                self.say(f"  {remote.path}: {done / 1e6:,.0f} of {total / 1e6:,.0f} MB ({rate:,.0f} MB/s)")
                state["next"] += 0.25
        return callback


def _file_records(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=pa.schema([
        pa.field("source_file", pa.string(), nullable=False), ("file_kind", pa.string()), ("size", pa.int64()),
        ("mtime", pa.int64()), ("file_sha256", pa.string()), ("source_timezone", pa.string()), ("data_rows", pa.int64()),
        ("rejected_rows", pa.int64()), ("status", pa.string()), ("loaded_at", pa.timestamp("us", tz="UTC"))]))


def prepare_files(sftp: ReconnectingSftp, settings: ClangSettings, todo: list[RemoteFile], known: dict[str, dict],
                  workdir: Path, summary: RunSummary, reporter: Reporter
                  ) -> tuple[list[PreparedFile], list[pa.Table], pa.Table]:
    """Download, check and parse each file in turn: Parquet of its rows, its rejects, its `loaded_files` record."""
    prepared, rejects, records = [], [], []
    for index, remote in enumerate(todo):
        local = workdir / f"{index:06d}.download"  # never a remote name on the local disk
        remote_path = remote.path if settings.remote_dir in ("", ".") else f"{settings.remote_dir.rstrip('/')}/{remote.path}"
        sha256 = sftp.call(lambda s: s.download(remote_path, local, reporter.download_progress(remote)),
                           f"downloading {remote.path}")
        summary.bytes_downloaded += local.stat().st_size
        loaded_at = dt.datetime.now(dt.UTC)
        record = {"source_file": remote.path, "file_kind": remote.kind, "size": remote.size, "mtime": remote.mtime,
                  "file_sha256": sha256, "source_timezone": settings.timezone, "loaded_at": loaded_at}
        previous = known.get(remote.path)
        if previous and previous["sha256"] == sha256:
            summary.same_content += 1  # its rows stay as they are, with the version they were loaded as
            records.append({**record, "loaded_at": previous["loaded_at"], "source_timezone": previous["timezone"],
                            "data_rows": previous["data_rows"], "rejected_rows": previous["rejected_rows"],
                            "status": "same content"})
            local.unlink()
            continue
        parquet = workdir / f"{index:06d}.parquet"
        try:
            rows, rejected = parse_file(local, remote, settings, loaded_at, parquet)
        except FileRejected as error:
            summary.failed.append(str(error))
            reporter.say(f"  FAILED {error}")
            continue
        finally:
            local.unlink(missing_ok=True)
            local.with_suffix(".utf8").unlink(missing_ok=True)
        prepared.append(PreparedFile(remote, parquet if parquet.exists() else None, rows))
        if rejected.num_rows:
            rejects.append(rejected)
        records.append({**record, "data_rows": rows, "rejected_rows": rejected.num_rows, "status": "loaded"})
        summary.loaded += 1
        summary.rejected_rows += rejected.num_rows
        if remote.kind == "activity":
            summary.activity_rows += rows
        else:
            summary.broadcast_rows += rows
        reporter.file_done(remote, index + 1, len(todo), rows, rejected.num_rows)
    return prepared, rejects, _file_records(records)


def _imports(files: list[PreparedFile], columns: dict):
    hints = dlt.mark.make_hints(columns=columns)
    for file in files:
        yield dlt.mark.with_file_import(str(file.parquet), "parquet", file.rows, hints=hints)


def clang_source(settings: ClangSettings, prepared: list[PreparedFile], rejects: list[pa.Table], records: pa.Table):
    """The load of one run. Rows are appended; a file's older version is removed once its new record is in
    (`remove_superseded_rows`), so `loaded_files` and the rows always agree on each file's checksum."""
    resources = []
    for kind, table in TABLE_OF_KIND.items():
        files = [p for p in prepared if p.remote.kind == kind and p.parquet is not None]
        if not files:
            continue
        columns = _columns_hint(kind, settings, files[0].parquet)
        resources.append(dlt.resource(_imports(files, columns), name=table, write_disposition="append", columns=columns))
    if rejects:
        resources.append(dlt.resource(pa.concat_tables(rejects), name="rejected_rows", write_disposition="append"))
    resources.append(dlt.resource(records, name="loaded_files", write_disposition="merge", primary_key="source_file"))
    return resources


def make_pipeline(warehouse: Path) -> dlt.Pipeline:
    return warehouse_settings.make_pipeline(PIPELINE_NAME, DATASET, warehouse, memory_limit=LOAD_MEMORY_LIMIT)


def _existing_tables(con) -> set[str]:
    return {r[0] for r in con.execute("select table_name from information_schema.tables where table_schema = $s",
                                      {"s": DATASET}).fetchall()}


def remove_superseded_rows(warehouse: Path, *, deduplicate: bool = False) -> None:
    """Keep only rows of the version of each file that `loaded_files` holds.

    With `deduplicate`, also drop rows loaded twice (a load killed after DuckDB committed a job but before
    dlt marked it done is run again by the next run).
    """
    con = warehouse_settings.connect(warehouse)
    try:
        existing = _existing_tables(con)
        if "loaded_files" not in existing:
            return
        for table in DATA_TABLES:
            if table not in existing:
                continue
            con.execute(f"""delete from {DATASET}.{table} t using {DATASET}.loaded_files f
                            where t.source_file = f.source_file and t.file_loaded_at <> f.loaded_at""")
            if deduplicate:
                con.execute(f"""
                    delete from {DATASET}.{table} where rowid in (
                        select rowid from (
                            select rowid, row_number() over (partition by source_file, source_line, file_loaded_at
                                                             order by rowid) as copy
                            from {DATASET}.{table}) where copy > 1)""")
    finally:
        con.close()


def run(reporter: Reporter | None = None) -> RunSummary:
    """One `warehouse load clang`: returns the summary; raises on settings or connection failures."""
    reporter = reporter or Reporter()
    settings = load_settings()
    warehouse = warehouse_settings.warehouse_path()
    pipeline = make_pipeline(warehouse)
    if warehouse_settings.finish_pending_load(pipeline, reporter.stream):
        remove_superseded_rows(warehouse, deduplicate=True)
    elif warehouse.exists():
        remove_superseded_rows(warehouse)
    known = loaded_files(warehouse)
    summary = RunSummary()
    workdir = Path(tempfile.mkdtemp(prefix="clang-download-"))
    try:
        with ReconnectingSftp(settings.sftp, on_retry=lambda n, e: reporter.say(
                f"  connection lost ({type(e).__name__}); retrying (attempt {n + 1} of {settings.sftp.max_attempts})")
        ) as sftp:  # one session lists and downloads
            remote_files = sftp.call(lambda s: list_remote(s, settings), f"listing {settings.remote_dir}")
            summary.seen = len(remote_files)
            todo = [f for f in remote_files if not (f.path in known and known[f.path]["size"] == f.size
                                                     and known[f.path]["mtime"] == f.mtime)]
            summary.unchanged = summary.seen - len(todo)
            reporter.say(f"clang: {summary.seen} files on {settings.sftp.where}/{settings.remote_dir}, "
                         f"{len(todo)} new or changed")
            if not todo:
                return summary
            prepared, rejects, records = prepare_files(sftp, settings, todo, known, workdir, summary, reporter)
        if records.num_rows:
            reporter.say(f"clang: loading {summary.activity_rows + summary.broadcast_rows:,} rows into {warehouse}")
            pipeline.run(clang_source(settings, prepared, rejects, records))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    remove_superseded_rows(warehouse)
    return summary
