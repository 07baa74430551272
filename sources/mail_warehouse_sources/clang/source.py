"""`clang_source()`: Clang/Deployteq's activity and broadcast exports on SFTP as a dlt source.

One resource per table: `activities`, `broadcasts`, `rejected_rows` (merged per file: dlt deletes a file's rows
and inserts its new version's, `merge_key` source_file) and `loaded_files` (merged on `source_file`). Each
resource keeps the version of every file it loaded (size, mtime, sha256, load time) in its own dlt resource
state, committed with its rows in the same load package, so a run fetches only files some selected resource
lacks, and loading some tables first never costs the others a file. The first resource that runs lists the
folder, downloads what the selected resources lack over a few SFTP sessions at once and reads the files of each
kind in DuckDB passes of about PARSE_PASS_BYTES, two at once while the next files download; each resource takes
its share of that work.
"""

from __future__ import annotations

import datetime as dt
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import dlt
import pyarrow as pa
import pyarrow.parquet as pq
from dlt.common.schema.typing import TColumnSchema, TWriteDispositionConfig

from mail_warehouse_sources.clang.parse import (
    VERSION_WITHOUT_ROWS,
    Downloaded,
    FileRejected,
    Parsed,
    arrow_table,
    check_header,
    count_records,
    drop_forgotten,
    flags_parquet,
    normalized,
    parse_files,
    readable,
    rejects_table,
)
from mail_warehouse_sources.clang.settings import DATE_COLUMNS, KINDS, ClangConfiguration
from mail_warehouse_sources.selection import selected_resources
from mail_warehouse_sources.sftp import ReconnectingSftp, SftpSession, glob_to_regex
from mail_warehouse_sources.suppression import Suppression

# The files of one kind read in one DuckDB pass: about this many bytes, so the first passes run while the last
# files download; a pass costs a connection, a Parquet file and a dlt load job, so not one per file.
PARSE_PASS_BYTES = 48_000_000
# Passes that run at once. Numbering each file's lines keeps a pass to one core (DuckDB numbers rows in order),
# so two passes side by side use two cores: the backlog is read in half the time.
PARSE_PASSES_AT_ONCE = 2

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
    suppressed_rows: int = 0  # rows and rejects of forgotten people, left out (the counts above are without them)
    bytes_downloaded: int = 0

    def line(self) -> str:
        return (
            f"clang: {self.seen} files seen, {self.loaded} loaded, {self.unchanged} skipped as unchanged, "
            f"{self.same_content} re-delivered with the same content, {len(self.failed)} failed; "
            f"{self.activity_rows:,} activity rows, {self.broadcast_rows:,} broadcast rows, "
            f"{self.rejected_rows:,} rejected rows"
            + (f", {self.suppressed_rows:,} rows of forgotten people left out" if self.suppressed_rows else "")
            + f"; {self.bytes_downloaded / 1e6:,.1f} MB downloaded"
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


Fetched = tuple[RemoteFile, Path, str, int | None]  # a downloaded file, its local copy, sha256, records counted


def download_all(
    first: ReconnectingSftp,
    settings: ClangConfiguration,
    todo: list[RemoteFile],
    workdir: Path,
    report: RunReport,
    on_retry: Callable[[int, BaseException], None] | None,
    on_fetched: Callable[[int, Fetched], None] | None = None,
) -> list[Fetched]:
    """Download `todo` over up to `download_sessions` sessions at once (small files wait mostly on round trips);
    return (file, local copy, sha256, records counted) in the order of `todo`, and hand each to `on_fetched`
    (with its index in `todo`) as soon as it is on disk. The first failure stops every session."""
    pending: queue.SimpleQueue = queue.SimpleQueue()
    for index, remote in enumerate(todo):
        pending.put((index, remote))
    results: dict[int, Fetched] = {}
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
            if on_fetched is not None:
                on_fetched(index, results[index])
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


# The columns of an activities file that name a person, as the Parquet file names them, and the kind of
# identifier each holds (suppression.py); a broadcasts file names nobody.
PERSON_COLUMNS = {
    normalized("Customerid"): "clang_customer_id",
    normalized("Extern klantnummer"): "customer_number",
    normalized("E-mailadres"): "email",
}
# The kinds of file each resource holds rows of. Each resource keeps, in its own dlt resource state, the version
# of every file it loaded (`files`: source_file -> size, mtime, sha256, loaded_at, timezone, row counts), so any
# selection of resources, run in any order, then the whole source, loads what one whole run loads.
RESOURCE_KINDS = {
    "activities": ("activity",),
    "broadcasts": ("broadcast",),
    "rejected_rows": KINDS,
    "loaded_files": KINDS,
}


@dataclass
class Batch:
    """One DuckDB pass over files of one kind that share a version stamp (`loaded_at`)."""

    kind: str
    loaded_at: dt.datetime
    parsed: Parsed


@dataclass
class Plan:
    """What one run brings each resource: the files it must load (`fresh`), the files delivered again with the
    content it already holds (`same`), each file's version, and the parsed batches."""

    versions: dict[str, dict] = field(default_factory=dict)  # source_file -> its version in this delivery
    kinds: dict[str, str] = field(default_factory=dict)  # source_file -> activity | broadcast
    fresh: dict[str, set[str]] = field(default_factory=dict)  # resource -> source_files
    same: dict[str, set[str]] = field(default_factory=dict)  # resource -> source_files
    held: dict[str, set[str]] = field(default_factory=dict)  # resource -> source_files it loaded a version of
    batches: list[Batch] = field(default_factory=list)


def _loaded_versions(resource: str) -> dict[str, dict]:
    """The versions a resource loaded, read without writing any state: its own `files`, or for a pipeline the
    source state of an earlier release wrote (one `loaded_files` for the whole source), a copy of that."""
    state = dlt.current.source_state()
    own = state.get("resources", {}).get(resource, {}).get("files")
    if own is not None:
        return own
    return {path: dict(version) for path, version in state.get("loaded_files", {}).items()}


class Delivery:
    """The new files of one run: listed, downloaded and parsed once for every selected resource, by whichever
    resource asks first. A file is fetched when any selected resource lacks its current version; each resource
    takes its share and records what it loaded in its own state."""

    def __init__(self, settings: ClangConfiguration, report: RunReport, suppression: Suppression) -> None:
        self.settings, self.report, self.suppression = settings, report, suppression
        self._plan: Plan | None = None
        self._workdir: tempfile.TemporaryDirectory | None = None

    def plan(self) -> Plan:
        if self._plan is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="clang-download-")  # removed with this object
            self._plan = self._fetch_and_parse(Path(self._workdir.name))
        return self._plan

    def _on_retry(self, attempt: int, error: BaseException) -> None:
        self.report.say(
            f"  connection lost ({type(error).__name__}); retrying "
            f"(attempt {attempt + 1} of {self.settings.sftp().max_attempts})"
        )

    def _fetch_and_parse(self, workdir: Path) -> Plan:
        settings, report, summary = self.settings, self.report, self.report.summary
        selected = selected_resources(RESOURCE_KINDS)
        loaded = {name: _loaded_versions(name) for name in RESOURCE_KINDS}  # every resource's, to reuse stamps
        run_stamp = dt.datetime.now(dt.UTC)  # the version of every file first loaded in this run
        plan = Plan(
            fresh={name: set() for name in selected},
            same={name: set() for name in selected},
            held={name: set(loaded[name]) for name in selected},
        )
        # files of one kind and version stamp, read in one DuckDB pass once about PARSE_PASS_BYTES of them are on
        # disk: the pass runs while the next files download (DuckDB lets go of the GIL), and is counted into the
        # plan, in the order the passes began, once it is done
        to_parse: dict[tuple[str, dt.datetime], list[tuple[RemoteFile, Downloaded]]] = {}
        with _Passes(self, plan, workdir) as passes:
            with ReconnectingSftp(settings.sftp(), on_retry=self._on_retry) as sftp:  # lists, then downloads
                remote_files = sftp.call(lambda s: list_remote(s, settings), f"listing {settings.remote_dir}")
                wanted = {
                    name: {
                        f.path
                        for f in remote_files
                        if f.kind in RESOURCE_KINDS[name] and not _unchanged(loaded[name].get(f.path), f)
                    }
                    for name in selected
                }
                todo = [f for f in remote_files if any(f.path in paths for paths in wanted.values())]
                summary.seen, summary.unchanged = len(remote_files), len(remote_files) - len(todo)
                report.say(
                    f"clang: {summary.seen} files on {settings.sftp().where}/{settings.remote_dir}, "
                    f"{len(todo)} new or changed"
                )
                for remote, local, sha256, counted in self._fetched_in_order(sftp, todo, workdir):
                    summary.bytes_downloaded += local.stat().st_size
                    plan.kinds[remote.path] = remote.kind
                    needing = [name for name in selected if remote.path in wanted[name]]
                    for name in needing:
                        previous = loaded[name].get(remote.path)
                        same = previous is not None and previous["sha256"] == sha256
                        (plan.same if same else plan.fresh)[name].add(remote.path)
                    # the version of this content some resource already loaded keeps its stamp, so every table says
                    # the same `loaded_at` for it, whichever run loaded it
                    known = next(
                        (
                            v
                            for versions in loaded.values()
                            if (v := versions.get(remote.path)) is not None
                            and v["sha256"] == sha256
                            and "loaded_at" in v
                        ),
                        None,
                    )
                    version = {"size": remote.size, "mtime": remote.mtime, "sha256": sha256}
                    plan.versions[remote.path] = (
                        {**known, **version}
                        if known
                        else {**version, "loaded_at": run_stamp.isoformat(), "timezone": settings.timezone}
                    )
                    must_parse = [
                        name
                        for name in needing
                        if remote.path in plan.fresh[name] and (name != "loaded_files" or known is None)
                    ]
                    if not must_parse:
                        if not any(remote.path in plan.fresh[name] for name in needing):
                            summary.same_content += 1
                        local.unlink()
                        continue
                    try:
                        file = Downloaded(remote.path, remote.kind, local, counted)
                        check_header(file, settings)
                        stamp = dt.datetime.fromisoformat(plan.versions[remote.path]["loaded_at"])
                        entries = to_parse.setdefault((remote.kind, stamp), [])
                        entries.append((remote, readable(file, settings)))
                    except FileRejected as error:
                        self._refused(plan, remote.path, str(error))
                        continue
                    if sum(entry.size for entry, _ in entries) >= PARSE_PASS_BYTES:
                        passes.start(remote.kind, stamp, to_parse.pop((remote.kind, stamp)))
                    passes.count_finished()
            for (kind, stamp), entries in to_parse.items():
                passes.start(kind, stamp, entries)
            passes.count_all()
        return plan

    def _fetched_in_order(self, sftp: ReconnectingSftp, todo: list[RemoteFile], workdir: Path) -> Iterator[Fetched]:
        """The downloads of `todo`, in its order, each as soon as it and those before it are on disk (the
        downloads run in a thread of their own meanwhile); a failed download raises its error here."""
        if not todo:
            return
        arrived: dict[int, Fetched] = {}
        changed = threading.Condition()

        def on_fetched(index: int, fetched: Fetched) -> None:
            with changed:
                arrived[index] = fetched
                changed.notify()

        with ThreadPoolExecutor(1, thread_name_prefix="clang-fetch") as runner:
            downloads = runner.submit(
                download_all, sftp, self.settings, todo, workdir, self.report, self._on_retry, on_fetched
            )
            downloads.add_done_callback(lambda _: _notify(changed))
            for index in range(len(todo)):
                with changed:
                    while index not in arrived and not downloads.done():
                        changed.wait()
                    fetched = arrived.pop(index, None)
                if fetched is None:
                    downloads.result()  # raises what stopped the downloads
                    raise AssertionError(f"download {index} of {len(todo)} went missing")  # not reached
                yield fetched
            downloads.result()

    def _read(self, kind: str, stamp: dt.datetime, files: list[Downloaded], parquet: Path) -> tuple[Parsed, int]:
        """One DuckDB pass over `files` (of one kind and stamp) into `parquet`, forgotten people's rows left out
        before anything is counted; returns what it gave and how many rows and rejects were left out. Runs on a
        pass's own thread: it touches nothing of the plan."""
        parsed = parse_files(files, kind, self.settings, stamp, parquet)
        suppressed = drop_forgotten(parsed, self.suppression, PERSON_COLUMNS) if self.suppression else 0
        return parsed, suppressed

    def _count(
        self,
        plan: Plan,
        kind: str,
        stamp: dt.datetime,
        entries: list[tuple[RemoteFile, Downloaded]],
        read: tuple[Parsed, int],
    ) -> None:
        """A finished pass over `entries` counted into the summary and added to the plan as a batch."""
        report, summary = self.report, self.report.summary
        parsed, suppressed = read
        summary.suppressed_rows += suppressed
        for reason in parsed.failed:
            self._refused(plan, reason.split(": ", 1)[0], reason)
        rejected: dict[str, int] = {}
        for reject in parsed.rejects:
            rejected[reject[0]] = rejected.get(reject[0], 0) + 1
        for remote, _ in entries:
            if remote.path not in parsed.rows_per_file:
                continue  # failed whole
            rows = parsed.rows_per_file[remote.path]
            plan.versions[remote.path].update(data_rows=rows, rejected_rows=rejected.get(remote.path, 0))
            report.file_parsed(remote.path, rows, rejected.get(remote.path, 0), remote.size)
            summary.loaded += 1
        summary.rejected_rows += len(parsed.rejects)
        setattr(summary, f"{kind}_rows", getattr(summary, f"{kind}_rows") + parsed.rows)
        plan.batches.append(Batch(kind, stamp, parsed))

    def _refused(self, plan: Plan, path: str, reason: str) -> None:
        """A file refused whole: no resource loads it or records it; the next run tries again."""
        self.report.failed(reason)
        plan.versions.pop(path, None)
        for paths in (*plan.fresh.values(), *plan.same.values()):
            paths.discard(path)

    def record(self, resource: str) -> None:
        """Write what `resource` loaded in this run into its own state (called by the resource, after its rows)."""
        plan = self.plan()
        files = dlt.current.resource_state(resource).setdefault("files", _loaded_versions(resource))
        for path in plan.fresh.get(resource, set()) | plan.same.get(resource, set()):
            if path in plan.versions:
                files[path] = dict(plan.versions[path])

    def _disposition(self, resource: str) -> TWriteDispositionConfig:
        """The write disposition of this run's rows of `resource`: merged per file when the table holds an
        earlier version of any file it loads now; else (the first run, each day's new files) appended, which
        spares the destination the merge's staging copy and its pass over every row the table holds."""
        plan = self.plan()
        replacing = plan.fresh.get(resource, set()) & plan.held.get(resource, set())
        return REPLACED_PER_FILE if replacing else "append"

    def rows(self, resource: str, kind: str):
        plan = self.plan()
        fresh = plan.fresh.get(resource, set())
        disposition = self._disposition(resource)
        for index, batch in enumerate(plan.batches):
            parsed = batch.parsed
            if batch.kind != kind:
                continue
            with_rows = {path for path, rows in parsed.rows_per_file.items() if rows and path in fresh}
            if parsed.parquet is not None and with_rows:
                hints = dlt.mark.make_hints(
                    columns=_columns_hint(kind, self.settings, parsed.parquet, disposition),
                    write_disposition=disposition,
                )
                if with_rows == {path for path, rows in parsed.rows_per_file.items() if rows}:
                    yield dlt.mark.with_file_import(str(parsed.parquet), "parquet", parsed.rows, hints=hints)
                else:  # the batch also holds files another resource needed: this resource's share only
                    table = pq.read_table(parsed.parquet, filters=[("source_file", "in", sorted(with_rows))])
                    yield dlt.mark.with_hints(table, hints)
            replaced = self._replaced_by_nothing(resource, set(parsed.rows_per_file) & fresh - with_rows)
            if replaced:
                assert self._workdir is not None  # plan() made it
                flags = flags_parquet(
                    replaced,
                    kind,
                    self.settings,
                    batch.loaded_at,
                    Path(self._workdir.name) / f"{resource}-{index}.flags.parquet",
                )
                hints = dlt.mark.make_hints(
                    columns=_columns_hint(kind, self.settings, flags, disposition), write_disposition=disposition
                )
                yield dlt.mark.with_file_import(str(flags), "parquet", len(replaced), hints=hints)
        self.record(resource)

    def rejected_rows(self, resource: str):
        plan = self.plan()
        fresh = plan.fresh.get(resource, set())
        disposition = self._disposition(resource)
        for batch in plan.batches:
            rejects = [reject for reject in batch.parsed.rejects if reject[0] in fresh]
            if rejects:
                table = rejects_table(rejects, batch.kind, batch.loaded_at)
                yield dlt.mark.with_hints(
                    table, dlt.mark.make_hints(columns=version_flag(disposition), write_disposition=disposition)
                )
            with_rejects = {reject[0] for reject in rejects}
            replaced = self._replaced_by_nothing(resource, set(batch.parsed.rows_per_file) & fresh - with_rejects)
            if replaced:
                flags = pa.table(
                    {
                        "source_file": pa.array(replaced, pa.string()),
                        "file_loaded_at": pa.array([batch.loaded_at] * len(replaced), pa.timestamp("us", tz="UTC")),
                        VERSION_WITHOUT_ROWS: pa.array([True] * len(replaced), pa.bool_()),
                    }
                )
                yield dlt.mark.with_hints(
                    flags, dlt.mark.make_hints(columns=version_flag(disposition), write_disposition=disposition)
                )
        self.record(resource)

    def _replaced_by_nothing(self, resource: str, files: set[str]) -> list[str]:
        """Of `files`, whose new version has no rows for this table, those the table holds an earlier version
        of: each gets one row flagged `version_without_rows`, which dlt's merge deletes the file's rows by and
        never inserts."""
        return sorted(files & self.plan().held.get(resource, set()))

    def file_records(self, resource: str):
        plan = self.plan()
        records = [
            _record(path, plan.kinds[path], plan.versions[path], status)
            for status, paths in (
                ("loaded", plan.fresh.get(resource, set())),
                ("same content", plan.same.get(resource, set())),
            )
            for path in sorted(paths)
            if path in plan.versions
        ]
        if records:
            yield arrow_table([tuple(r[f] for f in FILE_RECORD_SCHEMA.names) for r in records], FILE_RECORD_SCHEMA)
        self.record(resource)


class _Passes:
    """The DuckDB passes of one delivery, PARSE_PASSES_AT_ONCE at a time beside the downloads; each is counted
    into the plan on the thread that started it, in the order they began, so the plan is the same however the
    passes interleave. Leaving the `with` block waits for every pass still running."""

    def __init__(self, delivery: Delivery, plan: Plan, workdir: Path) -> None:
        self.delivery, self.plan, self.workdir = delivery, plan, workdir
        self.pool = ThreadPoolExecutor(PARSE_PASSES_AT_ONCE, thread_name_prefix="clang-parse")
        self.running: list[tuple[str, dt.datetime, list[tuple[RemoteFile, Downloaded]], Future]] = []
        self.started = 0

    def __enter__(self) -> _Passes:
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def start(self, kind: str, stamp: dt.datetime, entries: list[tuple[RemoteFile, Downloaded]]) -> None:
        parquet = self.workdir / f"{kind}-{self.started}.parquet"
        self.started += 1
        files = [downloaded for _, downloaded in entries]
        self.running.append((kind, stamp, entries, self.pool.submit(self.delivery._read, kind, stamp, files, parquet)))

    def count_finished(self) -> None:
        """Count the passes done so far, up to the first one still running."""
        while self.running and self.running[0][3].done():
            self._count_first()

    def count_all(self) -> None:
        while self.running:
            self._count_first()

    def _count_first(self) -> None:
        kind, stamp, entries, future = self.running.pop(0)
        self.delivery._count(self.plan, kind, stamp, entries, future.result())


def _notify(condition: threading.Condition) -> None:
    with condition:
        condition.notify_all()


def _unchanged(previous: dict | None, remote: RemoteFile) -> bool:
    return previous is not None and previous["size"] == remote.size and previous["mtime"] == remote.mtime


def _record(path: str, kind: str, version: dict, status: str) -> dict:
    return {
        "source_file": path,
        "file_kind": kind,
        "size": version["size"],
        "mtime": version["mtime"],
        "file_sha256": version["sha256"],
        "source_timezone": version["timezone"],
        "data_rows": version["data_rows"],
        "rejected_rows": version["rejected_rows"],
        "status": status,
        "loaded_at": dt.datetime.fromisoformat(version["loaded_at"]),
    }


def _columns_hint(kind: str, settings: ClangConfiguration, parquet: Path, disposition: TWriteDispositionConfig) -> dict:
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
    return {**columns, **version_flag(disposition)}


# A file delivered again with other content replaces its rows: dlt deletes the rows of each file it loads
# (merge key `source_file`) and inserts the new version's, on every destination that merges; a run that loads
# only files the table never held appends (`Delivery._disposition`). An append-only destination (dlt's
# filesystem) keeps every version: its reader keeps each file's latest `file_loaded_at`.
REPLACED_PER_FILE: TWriteDispositionConfig = {"disposition": "merge", "strategy": "delete-insert"}
_REPLACED_PER_FILE = {"write_disposition": REPLACED_PER_FILE, "merge_key": "source_file"}


def version_flag(disposition: TWriteDispositionConfig) -> dict[str, TColumnSchema]:
    """A version without rows for a table is one row flagged `version_without_rows`: dlt's `hard_delete`, which
    deletes the file's earlier rows and is not inserted. Declared with each item, after the data columns; only a
    merge deletes (such rows come only with one), so an appending run says so rather than have dlt warn that the
    hint is ignored."""
    return {
        VERSION_WITHOUT_ROWS: {
            "name": VERSION_WITHOUT_ROWS,
            "data_type": "bool",
            "hard_delete": disposition == REPLACED_PER_FILE,
        }
    }


@dlt.resource(name="activities", **_REPLACED_PER_FILE)  # type: ignore[call-overload]
def activities(delivery: Delivery):
    """One row per line of an activities file, with its `source_file`, `source_line` and `file_loaded_at`."""
    yield from delivery.rows("activities", "activity")


@dlt.resource(name="broadcasts", **_REPLACED_PER_FILE)  # type: ignore[call-overload]
def broadcasts(delivery: Delivery):
    """One row per line of a broadcasts file, with its `source_file`, `source_line` and `file_loaded_at`."""
    yield from delivery.rows("broadcasts", "broadcast")


@dlt.resource(name="rejected_rows", **_REPLACED_PER_FILE)  # type: ignore[call-overload]
def rejected_rows(delivery: Delivery):
    """Each refused line: its file, line, kind, reason and raw text."""
    yield from delivery.rejected_rows("rejected_rows")


@dlt.resource(name="loaded_files", write_disposition="merge", primary_key="source_file")
def loaded_files(delivery: Delivery):
    """The version of each file that was loaded: size, mtime, sha256, time zone of its dates, row counts."""
    yield from delivery.file_records("loaded_files")


@dlt.source(name="clang", section="clang", spec=ClangConfiguration, max_table_nesting=0)
def clang_source(
    # dlt passes the resolved spec to the argument annotated with exactly the spec class, so it cannot be Optional
    settings: ClangConfiguration = None,  # type: ignore[assignment]
    report: RunReport | None = None,
    suppression: Suppression | None = None,
):
    """Clang/Deployteq's exports on SFTP. Settings from `[sources.clang]` (SOURCES__CLANG__HOST, ...), or pass
    `settings=ClangConfiguration(...)`; `report` collects the run's summary and prints progress; `suppression`
    (none: nothing left out) names forgotten people, whose rows and rejected lines are left out of every table
    (the files' versions are recorded as loaded all the same)."""
    delivery = Delivery(settings, report or RunReport(), suppression or Suppression())
    return activities(delivery), broadcasts(delivery), rejected_rows(delivery), loaded_files(delivery)
