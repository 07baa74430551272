"""`clang_source()`: Clang/Deployteq's activity and broadcast exports on SFTP as a dlt source.

One resource per table: `activities`, `broadcasts`, `rejected_rows` (appended) and `loaded_files` (merged on
`source_file`). Which version of each file was loaded (size, mtime, sha256, load time) is kept in dlt's source
state, committed with the rows in the same load package, so a run fetches only new or changed files.
The first resource that runs lists the folder, downloads the new files over a few SFTP sessions at once and
reads all files of each kind in one DuckDB pass; the others take their share of that work.
"""

from __future__ import annotations

import datetime as dt
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import dlt
import pyarrow as pa
import pyarrow.parquet as pq

from mail_warehouse_sources.clang.parse import (
    Downloaded,
    FileRejected,
    Parsed,
    arrow_table,
    check_header,
    count_records,
    normalized,
    parse_files,
    readable,
    rejects_table,
)
from mail_warehouse_sources.clang.settings import DATE_COLUMNS, KINDS, ClangConfiguration
from mail_warehouse_sources.sftp import ReconnectingSftp, SftpSession, glob_to_regex

FILE_RECORD_SCHEMA = pa.schema(
    [
        pa.field("source_file", pa.string(), nullable=False),
        ("file_kind", pa.string()),
        ("size", pa.int64()),
        ("mtime", pa.int64()),
        ("file_sha256", pa.string()),
        ("source_timezone", pa.string()),
        ("data_rows", pa.int64()),
        ("rejected_rows", pa.int64()),
        ("status", pa.string()),
        ("loaded_at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class RemoteFile:
    path: str  # relative to remote_dir, with forward slashes: the row's source_file
    kind: str  # activity | broadcast
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
        return (
            f"clang: {self.seen} files seen, {self.loaded} loaded, {self.unchanged} skipped as unchanged, "
            f"{self.same_content} re-delivered with the same content, {len(self.failed)} failed; "
            f"{self.activity_rows:,} activity rows, {self.broadcast_rows:,} broadcast rows, "
            f"{self.rejected_rows:,} rejected rows; {self.bytes_downloaded / 1e6:,.1f} MB downloaded"
        )


class RunReport:
    """The summary of one run, and its progress on `stream` (stderr for the CLI; none by default): large files
    and files with rejects by name, the rest every 10 seconds."""

    def __init__(
        self, stream: TextIO | None = None, large_file_bytes: int = 50_000_000, every_seconds: float = 10.0
    ) -> None:
        self.stream, self.large, self.every = stream, large_file_bytes, every_seconds
        self.summary = RunSummary()
        self._last = time.monotonic()
        self._lock = threading.Lock()  # downloads report from several threads

    def say(self, message: str) -> None:
        if self.stream is not None:
            with self._lock:
                print(message, file=self.stream, flush=True)

    def file_fetched(self, remote: RemoteFile, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self._last >= self.every:
            self._last = now
            self.say(f"  {done} of {total} files fetched ({remote.path})")

    def file_parsed(self, path: str, rows: int, rejected: int, size: int) -> None:
        if size >= self.large or rejected:
            self.say(f"  {path}: {rows:,} rows" + (f", {rejected} rejected" if rejected else ""))

    def failed(self, reason: str) -> None:
        self.summary.failed.append(reason)
        self.say(f"  FAILED {reason}")

    def download_progress(self, remote: RemoteFile):
        if remote.size < self.large or self.stream is None:
            return None
        state = {"next": 0.0, "started": time.monotonic()}

        def callback(done: int, total: int) -> None:
            if total and done / total >= state["next"]:
                rate = done / max(1e-6, time.monotonic() - state["started"]) / 1e6
                self.say(f"  {remote.path}: {done / 1e6:,.0f} of {total / 1e6:,.0f} MB ({rate:,.0f} MB/s)")
                state["next"] += 0.25

        return callback


def list_remote(session: SftpSession, settings: ClangConfiguration) -> list[RemoteFile]:
    patterns = {kind: glob_to_regex(settings.glob(kind)) for kind in KINDS}
    recursive = any("/" in settings.glob(kind) or "**" in settings.glob(kind) for kind in KINDS)
    found = []
    for path, attributes in session.walk(settings.remote_dir, recursive):
        kind = next((k for k in KINDS if patterns[k].match(path)), None)
        if kind:
            found.append(RemoteFile(path, kind, int(attributes.st_size or 0), int(attributes.st_mtime or 0)))
    return sorted(found, key=lambda f: (f.path, f.kind))


def _remote_path(settings: ClangConfiguration, remote: RemoteFile) -> str:
    return remote.path if settings.remote_dir in ("", ".") else f"{settings.remote_dir.rstrip('/')}/{remote.path}"


def download_all(
    first: ReconnectingSftp,
    settings: ClangConfiguration,
    todo: list[RemoteFile],
    workdir: Path,
    report: RunReport,
    on_retry: Callable[[int, BaseException], None] | None,
) -> list[tuple[RemoteFile, Path, str, int | None]]:
    """Download `todo` over up to `download_sessions` sessions at once (small files wait mostly on round trips);
    return (file, local copy, sha256, records counted) in the order of `todo`. The first failure stops every
    session."""
    pending: queue.SimpleQueue = queue.SimpleQueue()
    for index, remote in enumerate(todo):
        pending.put((index, remote))
    results: dict[int, tuple[RemoteFile, Path, str, int | None]] = {}
    stop = threading.Event()
    extra = [
        ReconnectingSftp(settings.sftp(), on_retry=on_retry)
        for _ in range(min(settings.download_sessions, len(todo)) - 1)
    ]

    def work(sftp: ReconnectingSftp) -> None:
        while not stop.is_set():
            try:
                index, remote = pending.get_nowait()
            except queue.Empty:
                return
            local = workdir / f"{index:06d}.download"  # never a remote name on the local disk

            def download(s: SftpSession, remote: RemoteFile = remote, local: Path = local) -> str:
                return s.download(_remote_path(settings, remote), local, report.download_progress(remote))

            try:
                sha256 = sftp.call(download, f"downloading {remote.path}")
            except BaseException:
                stop.set()
                raise
            results[index] = (remote, local, sha256, count_records(local, settings))
            report.file_fetched(remote, len(results), len(todo))

    try:
        with ThreadPoolExecutor(1 + len(extra), thread_name_prefix="clang-download") as pool:
            futures = [pool.submit(work, sftp) for sftp in [first, *extra]]
        for future in futures:
            future.result()
    finally:
        for sftp in extra:
            sftp.close()
    return [results[index] for index in sorted(results)]


@dataclass
class Prepared:
    parsed: dict[str, Parsed]  # per kind
    rejects: pa.Table
    records: pa.Table


class Delivery:
    """The new files of one run: listed, downloaded and parsed once, by whichever resource asks first."""

    def __init__(self, settings: ClangConfiguration, report: RunReport) -> None:
        self.settings, self.report = settings, report
        self._prepared: Prepared | None = None
        self._workdir: tempfile.TemporaryDirectory | None = None

    def prepared(self) -> Prepared:
        if self._prepared is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="clang-download-")  # removed with this object
            self._prepared = self._fetch_and_parse(Path(self._workdir.name))
        return self._prepared

    def _on_retry(self, attempt: int, error: BaseException) -> None:
        self.report.say(
            f"  connection lost ({type(error).__name__}); retrying "
            f"(attempt {attempt + 1} of {self.settings.sftp().max_attempts})"
        )

    def _fetch_and_parse(self, workdir: Path) -> Prepared:
        settings, report, summary = self.settings, self.report, self.report.summary
        loaded = dlt.current.source_state().setdefault("loaded_files", {})  # source_file -> its loaded version
        with ReconnectingSftp(settings.sftp(), on_retry=self._on_retry) as sftp:  # lists, then downloads
            remote_files = sftp.call(lambda s: list_remote(s, settings), f"listing {settings.remote_dir}")
            todo = [f for f in remote_files if not _unchanged(loaded.get(f.path), f)]
            summary.seen, summary.unchanged = len(remote_files), len(remote_files) - len(todo)
            report.say(
                f"clang: {summary.seen} files on {settings.sftp().where}/{settings.remote_dir}, "
                f"{len(todo)} new or changed"
            )
            downloads = download_all(sftp, settings, todo, workdir, report, self._on_retry) if todo else []
        loaded_at = dt.datetime.now(dt.UTC)  # the version of every file this run loads
        records: list[dict] = []
        to_parse: dict[str, list[tuple[RemoteFile, dict, Downloaded]]] = {kind: [] for kind in KINDS}
        for remote, local, sha256, counted in downloads:
            summary.bytes_downloaded += local.stat().st_size
            version = {"size": remote.size, "mtime": remote.mtime, "sha256": sha256}
            previous = loaded.get(remote.path)
            if previous and previous["sha256"] == sha256:
                summary.same_content += 1  # its rows stay as they are, with the version they were loaded as
                previous.update(version)
                records.append(_record(remote, previous, "same content"))
                local.unlink()
                continue
            try:
                file = Downloaded(remote.path, remote.kind, local, counted)
                check_header(file, settings)
                to_parse[remote.kind].append((remote, version, readable(file, settings)))
            except FileRejected as error:
                report.failed(str(error))
        parsed = {}
        for kind, entries in to_parse.items():
            parsed[kind] = parse_files([e[2] for e in entries], kind, settings, loaded_at, workdir / f"{kind}.parquet")
            for reason in parsed[kind].failed:
                report.failed(reason)
            rejected: dict[str, int] = {}
            for reject in parsed[kind].rejects:
                rejected[reject[0]] = rejected.get(reject[0], 0) + 1
            for remote, version, _ in entries:
                if remote.path not in parsed[kind].rows_per_file:
                    continue  # failed whole
                rows = parsed[kind].rows_per_file[remote.path]
                loaded[remote.path] = {
                    **version,
                    "loaded_at": loaded_at.isoformat(),
                    "timezone": settings.timezone,
                    "data_rows": rows,
                    "rejected_rows": rejected.get(remote.path, 0),
                }
                records.append(_record(remote, loaded[remote.path], "loaded"))
                report.file_parsed(remote.path, rows, rejected.get(remote.path, 0), remote.size)
                summary.loaded += 1
            summary.rejected_rows += len(parsed[kind].rejects)
            setattr(summary, f"{kind}_rows", parsed[kind].rows)
        rejects = pa.concat_tables([rejects_table(parsed[k].rejects, k, loaded_at) for k in KINDS])
        return Prepared(
            parsed,
            rejects,
            arrow_table([tuple(r[f] for f in FILE_RECORD_SCHEMA.names) for r in records], FILE_RECORD_SCHEMA),
        )

    def rows(self, kind: str):
        parsed = self.prepared().parsed[kind]
        if parsed.parquet is not None:
            yield dlt.mark.with_file_import(
                str(parsed.parquet),
                "parquet",
                parsed.rows,
                hints=dlt.mark.make_hints(columns=_columns_hint(kind, self.settings, parsed.parquet)),
            )

    def rejected_rows(self):
        if self.prepared().rejects.num_rows:
            yield self.prepared().rejects

    def file_records(self):
        if self.prepared().records.num_rows:
            yield self.prepared().records


def _unchanged(previous: dict | None, remote: RemoteFile) -> bool:
    return previous is not None and previous["size"] == remote.size and previous["mtime"] == remote.mtime


def _record(remote: RemoteFile, version: dict, status: str) -> dict:
    return {
        "source_file": remote.path,
        "file_kind": remote.kind,
        "size": version["size"],
        "mtime": version["mtime"],
        "file_sha256": version["sha256"],
        "source_timezone": version["timezone"],
        "data_rows": version["data_rows"],
        "rejected_rows": version["rejected_rows"],
        "status": status,
        "loaded_at": dt.datetime.fromisoformat(version["loaded_at"]),
    }


def _columns_hint(kind: str, settings: ClangConfiguration, parquet: Path) -> dict:
    """Column types for the raw table, with each column's nullability as DuckDB wrote it into the Parquet
    file: any difference would make dlt rewrite the whole file in its normalize step."""
    date_name = normalized(DATE_COLUMNS[kind])
    types = {normalized(name): "text" for name in settings.columns(kind)}
    types.update(
        {date_name: "timestamp", "source_file": "text", "source_line": "bigint", "file_loaded_at": "timestamp"}
    )
    written = {f.name: f.nullable for f in pq.read_schema(parquet)}
    columns = {}
    for name, data_type in types.items():
        columns[name] = {"name": name, "data_type": data_type, "nullable": written.get(name, True)}
        if name == date_name:
            columns[name]["timezone"] = False  # local time as delivered; staging converts to UTC
    return columns


@dlt.resource(name="activities", write_disposition="append")
def activities(delivery: Delivery):
    """One row per line of an activities file, with its `source_file`, `source_line` and `file_loaded_at`."""
    yield from delivery.rows("activity")


@dlt.resource(name="broadcasts", write_disposition="append")
def broadcasts(delivery: Delivery):
    """One row per line of a broadcasts file, with its `source_file`, `source_line` and `file_loaded_at`."""
    yield from delivery.rows("broadcast")


@dlt.resource(name="rejected_rows", write_disposition="append")
def rejected_rows(delivery: Delivery):
    """Each refused line: its file, line, kind, reason and raw text."""
    yield from delivery.rejected_rows()


@dlt.resource(name="loaded_files", write_disposition="merge", primary_key="source_file")
def loaded_files(delivery: Delivery):
    """The version of each file that was loaded: size, mtime, sha256, time zone of its dates, row counts."""
    yield from delivery.file_records()


@dlt.source(name="clang", section="clang", spec=ClangConfiguration, max_table_nesting=0)
def clang_source(
    # dlt passes the resolved spec to the argument annotated with exactly the spec class, so it cannot be Optional
    settings: ClangConfiguration = None,  # type: ignore[assignment]
    report: RunReport | None = None,
):
    """Clang/Deployteq's exports on SFTP. Settings from `[sources.clang]` (SOURCES__CLANG__HOST, ...), or pass
    `settings=ClangConfiguration(...)`; `report` collects the run's summary and prints progress."""
    delivery = Delivery(settings, report or RunReport())
    return activities(delivery), broadcasts(delivery), rejected_rows(delivery), loaded_files(delivery)
