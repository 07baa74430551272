"""Clang/Deployteq activity and broadcast exports from SFTP into `raw_clang` (`warehouse load clang`).

Fast path: list the folder with paramiko, fetch only new or changed files (name, size, mtime) with
prefetching `get()`, parse each with DuckDB's CSV reader and hand Arrow batches to dlt.

Exactly once: every row carries `source_file`, `source_line` and the file's `file_sha256`. Rows are merged
per file (dlt delete-insert on `source_file`), `loaded_files` records each file's size, mtime and checksum
in the same load, so:
- nothing new: nothing downloaded, nothing added;
- a file delivered again with the same content: downloaded, recognised by its checksum, nothing added;
- a file delivered again with other content: its rows are replaced;
- a file gone from the server: its rows stay;
- a run killed mid-download or mid-load: the next run first finishes dlt's pending load, then fetches what
  `loaded_files` does not yet hold.

Raw codes and local times are kept as delivered: `activiteit` as is, dates as local timestamps with the
`source_timezone` they are in; staging (dbt) maps codes and converts to UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dlt
import duckdb
import pyarrow as pa
from dlt.common.configuration.specs import configspec
from dlt.common.configuration.resolve import resolve_configuration
from dlt.common.typing import TSecretStrValue
from dlt.pipeline.exceptions import PipelineStepFailed

from loaders import settings as warehouse_settings
from loaders.sftp import ReconnectingSftp, SftpError, SftpSession, SftpSettings, glob_to_regex

DATASET = "raw_clang"
PIPELINE_NAME = "clang"
ACTIVITY_COLUMNS = ["Broadcastid", "Customerid", "Extern klantnummer", "E-mailadres", "Activiteit",
                    "Activiteitdatum", "Beschrijving activiteit"]
BROADCAST_COLUMNS = ["Broadcastid", "Broadcast type", "Beschrijving", "Onderwerp", "Verzonden op"]
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"  # Activiteitdatum and Verzonden op, local time without a zone
BATCH_ROWS = 500_000
NATIVE_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8", "utf-16": "utf-16",
                    "latin-1": "latin-1", "latin1": "latin-1", "iso-8859-1": "latin-1"}


@configspec
class ClangConfiguration:
    """`[sources.clang]` in .dlt/config.toml, or SOURCES__CLANG__<NAME> environment variables."""
    host: str = None
    port: int = 22
    username: str = None
    remote_dir: str = "."
    activity_glob: str = "**/activiteiten_*.csv"
    broadcast_glob: str = "**/broadcasts_*.csv"
    delimiter: str = ";"
    has_header: bool = True
    encoding: str = "utf-8"
    activity_columns: list[str] = None
    broadcast_columns: list[str] = None
    timezone: str = "Europe/Amsterdam"
    known_hosts: Optional[str] = None
    host_key_fingerprint: Optional[str] = None
    accept_new_host_key: bool = False
    max_attempts: int = 4
    retry_delay_seconds: float = 1.0
    password: Optional[TSecretStrValue] = None
    private_key_path: Optional[TSecretStrValue] = None
    private_key_passphrase: Optional[TSecretStrValue] = None


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
    for name, columns, standard in (("activity_columns", activity_columns, ACTIVITY_COLUMNS),
                                    ("broadcast_columns", broadcast_columns, BROADCAST_COLUMNS)):
        missing = [c for c in ("Broadcastid", standard[5] if name == "activity_columns" else "Verzonden op")
                   if c not in columns]
        if missing:
            raise ClangSettingsError(f"SOURCES__CLANG__{name.upper()} lacks {missing}")
    sftp = SftpSettings(
        host=config.host, port=int(config.port), username=config.username, password=config.password,
        private_key_path=config.private_key_path, private_key_passphrase=config.private_key_passphrase,
        known_hosts=config.known_hosts, host_key_fingerprint=config.host_key_fingerprint,
        accept_new_host_key=bool(config.accept_new_host_key), max_attempts=max(1, int(config.max_attempts)),
        retry_delay=float(config.retry_delay_seconds), setting_prefix="SOURCES__CLANG__")
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
        rows = con.execute(f"select source_file, size, mtime, file_sha256 from {DATASET}.loaded_files").fetchall()
        return {r[0]: {"size": r[1], "mtime": r[2], "sha256": r[3]} for r in rows}
    finally:
        con.close()


# --- parsing one downloaded file ----------------------------------------------------------------------

class FileRejected(Exception):
    """The whole file is refused (its header does not match the configured columns)."""


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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


def parse_file(local: Path, remote: RemoteFile, sha256: str, settings: ClangSettings, loaded_at: dt.datetime
               ) -> tuple[Iterator[pa.RecordBatch], pa.Table, int]:
    """Rows as Arrow batches, rejected rows as a table, and the number of accepted rows.

    Line numbers count records as DuckDB does: the header is line 1, each record one line.
    """
    _check_header(local, remote, settings)
    columns = settings.columns(remote.kind)
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    if local.stat().st_size == 0:
        con.close()
        return iter(()), _rejects_table([], remote, sha256, loaded_at), 0
    readable, encoding = _to_utf8(local, settings)
    names = [f"c{i}" for i in range(len(columns))]
    spec = "{" + ", ".join(f"{_sql_string(n)}: 'VARCHAR'" for n in names) + "}"
    con.execute(f"""
        create temp table parsed as
        select *, row_number() over () as ordinal
        from read_csv({_sql_string(str(readable))}, delim={_sql_string(settings.delimiter)}, quote='"', escape='"',
                      header={str(settings.has_header).lower()}, columns={spec}, auto_detect=false,
                      encoding={_sql_string(encoding)}, store_rejects=true, rejects_table='reject_errors',
                      rejects_scan='reject_scans', strict_mode=true, null_padding=false, max_line_size=10000000)
    """)
    first_line = 2 if settings.has_header else 1
    date_column = names[columns.index("Activiteitdatum" if remote.kind == "activity" else "Verzonden op")]
    id_column = names[columns.index("Broadcastid")]
    con.execute(f"""
        create temp table structural_rejects as
        select line, min(error_type)::varchar as error_type, min(csv_line) as csv_line, min(error_message) as message
        from reject_errors group by line
    """)
    total_records = con.execute("select (select count(*) from parsed) + (select count(*) from structural_rejects)"
                                ).fetchone()[0]
    # The k-th accepted record sits on the k-th record line that DuckDB did not reject.
    con.execute(f"""
        create temp table numbered as
        with lines as (
            select line, row_number() over (order by line) as ordinal
            from range({first_line}, {first_line + total_records}) r(line)
            where line not in (select line from structural_rejects)
        )
        select p.*, l.line, try_strptime(nullif(trim(p.{date_column}), ''), '{DATE_FORMAT}') as parsed_date
        from parsed p join lines l using (ordinal)
    """)
    date_required = remote.kind == "activity"
    reject_reason = f"""
        case when nullif(trim({id_column}), '') is null then 'empty Broadcastid'
             when parsed_date is null and nullif(trim({date_column}), '') is not null
                  then 'unparseable date ' || {date_column} || ' (expected yyyy-mm-dd hh:mm:ss)'
             {"when parsed_date is null then 'missing date'" if date_required else ""}
        end"""
    delimiter = _sql_string(settings.delimiter)
    rejects = con.execute(f"""
        select line, reason, raw_text from (
            select line, {reject_reason} as reason,
                   concat_ws({delimiter}, {", ".join(f"coalesce({n}, '')" for n in names)}) as raw_text
            from numbered
        ) where reason is not null
        union all
        select line, case error_type when 'TOO MANY COLUMNS' then 'too many fields'
                                     when 'MISSING COLUMNS' then 'too few fields'
                                     else lower(error_type) end || ': ' || message, csv_line
        from structural_rejects
        order by line
    """).fetchall()
    date_name = "activiteitdatum" if remote.kind == "activity" else "verzonden_op"
    selected = ", ".join(
        f"parsed_date as {date_name}" if n == date_column else f"{n} as {_sql_identifier(columns[i])}"
        for i, n in enumerate(names))
    query = con.sql(f"""
        select {selected}, {_sql_string(settings.timezone)} as source_timezone,
               {_sql_string(remote.path)} as source_file, line::bigint as source_line,
               {_sql_string(sha256)} as file_sha256
        from numbered where {reject_reason} is null order by line
    """)
    reader = query.to_arrow_reader(BATCH_ROWS)

    def batches():
        try:
            yield from reader
        finally:
            con.close()

    return batches(), _rejects_table(rejects, remote, sha256, loaded_at), total_records - len(rejects)


def _sql_identifier(header: str) -> str:
    return '"' + header.replace('"', '""') + '"'


def _rejects_table(rejects, remote: RemoteFile, sha256: str, loaded_at: dt.datetime) -> pa.Table:
    return pa.table({
        "source_file": pa.array([remote.path] * len(rejects), pa.string()),
        "source_line": pa.array([r[0] for r in rejects], pa.int64()),
        "file_kind": pa.array([remote.kind] * len(rejects), pa.string()),
        "reason": pa.array([r[1] for r in rejects], pa.string()),
        "raw_text": pa.array([r[2] for r in rejects], pa.string()),
        "file_sha256": pa.array([sha256] * len(rejects), pa.string()),
        "rejected_at": pa.array([loaded_at] * len(rejects), pa.timestamp("us", tz="UTC")),
    })


# --- the dlt source and the run ----------------------------------------------------------------------

_MERGE_PER_FILE = {"disposition": "merge", "strategy": "delete-insert"}
TABLE_HINTS = {
    "activities": dlt.mark.make_hints(
        table_name="activities", write_disposition=_MERGE_PER_FILE, primary_key=["source_file", "source_line"],
        merge_key="source_file", columns={"activiteitdatum": {"data_type": "timestamp", "timezone": False}}),
    "broadcasts": dlt.mark.make_hints(
        table_name="broadcasts", write_disposition=_MERGE_PER_FILE, primary_key=["source_file", "source_line"],
        merge_key="source_file", columns={"verzonden_op": {"data_type": "timestamp", "timezone": False}}),
    "rejected_rows": dlt.mark.make_hints(
        table_name="rejected_rows", write_disposition=_MERGE_PER_FILE, primary_key=["source_file", "source_line"],
        merge_key="source_file"),
    "loaded_files": dlt.mark.make_hints(table_name="loaded_files", write_disposition="merge", primary_key="source_file"),
}
DATA_TABLES = ("activities", "broadcasts", "rejected_rows")
REQUIRED_FIELDS = {"source_file", "source_line"}


def _required(batch):
    """Key columns are never null: say so in the Arrow schema, as dlt's schema does."""
    schema = pa.schema([f.with_nullable(f.name not in REQUIRED_FIELDS) for f in batch.schema])
    return batch.cast(schema) if isinstance(batch, pa.Table) else pa.Table.from_batches([batch]).cast(schema)


def _tagged(item, table: str):
    return dlt.mark.with_hints(_required(item), TABLE_HINTS[table], create_table_variant=True)


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _file_record(remote: RemoteFile, sha256: str, rows: int, rejected: int, status: str, loaded_at: dt.datetime):
    return pa.table({
        "source_file": [remote.path], "file_kind": [remote.kind], "size": pa.array([remote.size], pa.int64()),
        "mtime": pa.array([remote.mtime], pa.int64()), "file_sha256": [sha256],
        "data_rows": pa.array([rows], pa.int64()), "rejected_rows": pa.array([rejected], pa.int64()),
        "status": [status], "loaded_at": pa.array([loaded_at], pa.timestamp("us", tz="UTC")),
    })


def export_items(settings: ClangSettings, todo: list[RemoteFile], known: dict[str, dict], workdir: Path,
                 summary: RunSummary, reporter: Reporter):
    """Download, check and parse each file in turn; yield its rows, rejects and `loaded_files` record."""
    with ReconnectingSftp(settings.sftp, on_retry=lambda n, e: reporter.say(
            f"  connection lost ({type(e).__name__}); retrying (attempt {n + 1} of {settings.sftp.max_attempts})")
    ) as sftp:
        for index, remote in enumerate(todo):
            local = workdir / f"{index:06d}.download"  # never a remote name on the local disk
            remote_path = f"{settings.remote_dir.rstrip('/')}/{remote.path}" if settings.remote_dir not in ("", ".") \
                else remote.path
            sftp.call(lambda s: s.download(remote_path, local, reporter.download_progress(remote)),
                      f"downloading {remote.path}")
            summary.bytes_downloaded += local.stat().st_size
            sha256 = _sha256(local)
            loaded_at = dt.datetime.now(dt.UTC)
            previous = known.get(remote.path)
            if previous and previous["sha256"] == sha256:
                summary.same_content += 1
                yield _tagged(_file_record(remote, sha256, -1, -1, "same content", loaded_at), "loaded_files")
                local.unlink()
                continue
            try:
                batches, rejects, accepted = parse_file(local, remote, sha256, settings, loaded_at)
            except FileRejected as error:
                summary.failed.append(str(error))
                reporter.say(f"  FAILED {error}")
                local.unlink()
                continue
            table = "activities" if remote.kind == "activity" else "broadcasts"
            for batch in batches:
                yield _tagged(batch, table)
            if rejects.num_rows:
                yield _tagged(rejects, "rejected_rows")
            yield _tagged(_file_record(remote, sha256, accepted, rejects.num_rows, "loaded", loaded_at),
                          "loaded_files")
            summary.loaded += 1
            summary.rejected_rows += rejects.num_rows
            if remote.kind == "activity":
                summary.activity_rows += accepted
            else:
                summary.broadcast_rows += accepted
            reporter.file_done(remote, index + 1, len(todo), accepted, rejects.num_rows)
            local.unlink(missing_ok=True)
            local.with_suffix(".utf8").unlink(missing_ok=True)


def _our_error(failure: Exception) -> Exception:
    """dlt wraps what a resource raised; our own errors already say what failed and what to do."""
    seen = failure
    while seen is not None:
        if isinstance(seen, SftpError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return failure


def make_pipeline(warehouse: Path) -> dlt.Pipeline:
    return dlt.pipeline(pipeline_name=PIPELINE_NAME, destination=dlt.destinations.duckdb(str(warehouse)),
                        dataset_name=DATASET, pipelines_dir=str(warehouse_settings.pipelines_dir(warehouse)))


def remove_superseded_rows(warehouse: Path) -> None:
    """Rows of an older version of a file whose new version has none for that table (delete-insert needs a key)."""
    con = warehouse_settings.connect(warehouse)
    try:
        existing = {r[0] for r in con.execute("select table_name from information_schema.tables where table_schema = $s",
                                              {"s": DATASET}).fetchall()}
        if "loaded_files" not in existing:
            return
        for table in DATA_TABLES:
            if table in existing:
                con.execute(f"""delete from {DATASET}.{table} t using {DATASET}.loaded_files f
                                where t.source_file = f.source_file and t.file_sha256 <> f.file_sha256""")
    finally:
        con.close()


def run(reporter: Reporter | None = None) -> RunSummary:
    """One `warehouse load clang`: returns the summary; raises on settings or connection failures."""
    reporter = reporter or Reporter()
    settings = load_settings()
    warehouse = warehouse_settings.warehouse_path()
    pipeline = make_pipeline(warehouse)
    if pipeline.has_pending_data:
        reporter.say("clang: finishing the load an earlier run left pending")
        pipeline.normalize()
        pipeline.load()
    if warehouse.exists():
        remove_superseded_rows(warehouse)
    known = loaded_files(warehouse)
    summary = RunSummary()
    with ReconnectingSftp(settings.sftp) as sftp:
        remote_files = sftp.call(lambda s: list_remote(s, settings), f"listing {settings.remote_dir}")
    summary.seen = len(remote_files)
    todo = [f for f in remote_files if not (f.path in known and known[f.path]["size"] == f.size
                                             and known[f.path]["mtime"] == f.mtime)]
    summary.unchanged = summary.seen - len(todo)
    reporter.say(f"clang: {summary.seen} files on {settings.sftp.where}/{settings.remote_dir}, "
                 f"{len(todo)} new or changed")
    if todo:
        workdir = Path(tempfile.mkdtemp(prefix="clang-download-"))
        try:
            resource = dlt.resource(export_items(settings, todo, known, workdir, summary, reporter),
                                    name="clang_export")
            try:
                pipeline.run(resource)
            except PipelineStepFailed as failure:
                raise _our_error(failure) from None
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        remove_superseded_rows(warehouse)
    return summary
