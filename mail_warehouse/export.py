"""`warehouse export [SEGMENT ...]`: each segment to every target it declares whose platform is configured.
Deployteq CSV triggers over SFTP are here, each trigger delivered once; Spotler campaign triggers and audiences
are in `export_spotler`; both go through the one consent guard (`consent_guard`).

A CSV placed in the brand's `Upload` folder starts the campaign its file name selects; Deployteq moves it
to `Active`, then `Done` or `Failed`. A file delivered twice mails every contact in it twice, so each trigger
goes out exactly once, whatever fails. For each segment model whose yml `meta.csv_trigger` declares a trigger
(file-name template with the date, columns with their header names, delimiter, encoding):

1. intents an earlier run left without an outcome are reconciled first: the file name is looked for in
   `Upload`, `Active`, `Done` and `Failed`; found means delivered (recorded so, never sent again), not found
   means not sent (recorded so; this run writes a new one); a leftover `.part` scratch file is removed;
2. the segment's rows are read and checked again against `marts.contacts`: whatever the segment's SQL says, a
   contact that may not be mailed is never exported; the CSV is written by DuckDB in a fixed row order;
3. if the file name is already on the server in one of those folders, nothing is sent (it went out before);
4. the intent (export id, segment, file name, rows, size, sha256) is committed;
5. the file is uploaded under a dot-name ending in `.part` (which the watcher ignores; one per attempt), its
   remote size and sha256 checked by reading it back, and renamed into place in one step. A retry after a
   dropped connection first removes the scratch files, then looks for the final name: a rename the server
   carried out but whose reply was lost is not repeated, and one it carries out late finds nothing to move.
   Beside the upload the exported contacts are recorded; if the run dies before they are, step 1 reads them
   back from the copy kept in `local_dir` when it finds the file delivered;
6. the outcome is committed.

A run killed anywhere leaves either no intent (nothing was sent) or an intent that step 1 resolves from what
is on the server. One export at a time per warehouse (a lock beside it); the same segment is not uploaded
twice on one day unless `--force`; an empty segment uploads nothing unless `upload_empty`; `--dry-run` writes
the file locally and says what it would upload.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import posixpath
import shutil
import stat
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mail_warehouse import export_spotler
from mail_warehouse import settings as warehouse_settings
from mail_warehouse.build import project_manifest, project_models
from mail_warehouse.consent_guard import SEGMENT_SCHEMA, ConsentGuard, normalized_email
from mail_warehouse.export_config import SETTING_PREFIX, ExportError, ExportSettings, load_settings
from mail_warehouse.export_spotler import SpotlerTargetError, SpotlerTargets, SpotlerWayBack, targets_from_meta
from mail_warehouse.lock import WarehouseLock
from mail_warehouse.settings import sql_literal
from mail_warehouse_sources.sftp import RETRYABLE, ReconnectingSftp, SftpError, SftpSession

if TYPE_CHECKING:
    from paramiko import SFTPAttributes

LOG_SCHEMA = "exports"
DEFAULT_LOCK_WAIT_SECONDS = 300
DELIVERED = ("uploaded", "done")  # statuses of a trigger that reached Deployteq and was not rejected


# --- the triggers the segments declare ----------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    segment: str
    file_name: str  # template, e.g. reactivatie_{date:%Y%m%d}.csv
    columns: dict[str, str]  # segment column -> header name
    delimiter: str = ";"
    encoding: str = "utf-8"

    @property
    def is_utf8(self) -> bool:
        return self.encoding.lower().replace("_", "-") in ("utf-8", "utf8")

    def name_for(self, day: dt.date) -> str:
        return self.file_name.format(date=day)


def _segment_metas(manifest: dict | None) -> Iterator[tuple[str, str, dict]]:
    """(the yml that declares it, segment, meta) of every segment model, as dbt's manifest has them."""
    for node in project_models(manifest or project_manifest(), SEGMENT_SCHEMA):
        where = (node.get("patch_path") or node["original_file_path"]).split("://")[-1]
        yield where, node["name"], (node.get("config") or {}).get("meta") or node.get("meta") or {}


def declared_triggers(manifest: dict | None = None) -> dict[str, Trigger]:
    """The CSV triggers the segments declare (`csv_trigger` in their yml meta); `manifest`: dbt's, by default
    the project's."""
    triggers = {}
    for where, segment, segment_meta in _segment_metas(manifest):
        meta = segment_meta.get("csv_trigger")
        if not meta:
            continue
        columns = meta.get("columns") or {}
        if not meta.get("file_name") or not columns or "email" not in columns:
            raise ExportError(f"{where}: the csv_trigger of {segment} needs file_name and columns, email among them")
        if "{date" not in meta["file_name"] or meta["file_name"].startswith("."):
            # Each day's trigger is a new name: that is how the export and Deployteq tell a file delivered
            # before from today's, and a dot-name is what the watcher ignores.
            raise ExportError(
                f"{where}: the csv_trigger file_name of {segment} ({meta['file_name']!r}) must "
                "carry the date, e.g. name_{date:%Y%m%d}.csv, and not start with a dot"
            )
        triggers[segment] = Trigger(
            segment, meta["file_name"], dict(columns), meta.get("delimiter", ";"), meta.get("encoding", "utf-8")
        )
    return triggers


def declared_spotler_targets(manifest: dict | None = None) -> dict[str, SpotlerTargets]:
    """The Spotler campaign triggers and audiences the segments declare (`spotler_campaign_trigger`,
    `spotler_audience` in their yml meta)."""
    found = {}
    for where, segment, meta in _segment_metas(manifest):
        try:
            targets = targets_from_meta(segment, meta, where)
        except SpotlerTargetError as error:
            raise ExportError(str(error)) from None
        if targets is not None:
            found[segment] = targets
    return found


# --- the log ----------------------------------------------------------------------------------------

LOG_COLUMNS_ADDED_WITH_INTENTS = {
    "export_day": "date",
    "size": "bigint",
    "recorded_at": "timestamptz",
    "note": "varchar",
}


def ensure_log(con) -> None:
    """`csv_trigger_log`: one row per trigger file, `intent` until its outcome is known, then `uploaded`, `done`,
    `failed` (Deployteq's verdicts) or `not-sent`; `csv_trigger_contacts`: the contacts each file holds."""
    con.execute(f"create schema if not exists {LOG_SCHEMA}")
    con.execute(f"""create table if not exists {LOG_SCHEMA}.csv_trigger_log (
        export_id varchar primary key, segment varchar not null, file_name varchar not null, rows bigint not null,
        excluded_by_consent bigint not null, sha256 varchar not null, uploaded_at timestamptz,
        status varchar not null, status_checked_at timestamptz,
        export_day date, size bigint, recorded_at timestamptz, note varchar)""")
    present = {
        row[0]
        for row in con.execute(
            f"""select column_name from information_schema.columns
            where table_schema = '{LOG_SCHEMA}' and table_name = 'csv_trigger_log'"""
        ).fetchall()
    }
    missing = {column: kind for column, kind in LOG_COLUMNS_ADDED_WITH_INTENTS.items() if column not in present}
    if missing:  # a log written before intents were recorded: every row in it was an upload
        for column, kind in missing.items():
            con.execute(f"alter table {LOG_SCHEMA}.csv_trigger_log add column {column} {kind}")
        con.execute(f"alter table {LOG_SCHEMA}.csv_trigger_log alter column uploaded_at drop not null")
        con.execute(f"""update {LOG_SCHEMA}.csv_trigger_log
                        set export_day = coalesce(export_day, cast(uploaded_at as date)),
                            recorded_at = coalesce(recorded_at, uploaded_at)""")
    con.execute(f"""create table if not exists {LOG_SCHEMA}.csv_trigger_contacts (
        export_id varchar not null, email varchar not null, contact_key varchar)""")


@dataclass
class ExportResult:
    segment: str
    status: str  # uploaded | skipped | dry-run | failed | reconciled
    file_name: str | None = None
    rows: int = 0
    excluded: int = 0
    message: str = ""
    excluded_by_reason: dict[str, int] | None = None
    target: str | None = None  # named when it is not the segment's CSV trigger going out (not configured)

    def line(self) -> str:
        detail = f" {self.file_name}" if self.file_name else ""
        reasons = ", ".join(f"{count:,} {reason}" for reason, count in (self.excluded_by_reason or {}).items())
        counted = self.status != "reconciled" and not self.target
        return (
            f"export {self.segment}{' to ' + self.target if self.target else ''}: {self.status}{detail}"
            + (f", {self.rows:,} contacts" if counted else "")
            + (
                f" ({self.excluded:,} left out by the consent guard" + (f": {reasons}" if reasons else "") + ")"
                if self.excluded
                else ""
            )
            + (f"; {self.message}" if self.message else "")
        )


# --- the CSV --------------------------------------------------------------------------------------------


def _write_csv(con, trigger: Trigger, target: Path, guard: ConsentGuard | None = None) -> tuple[int, int]:
    """Write the guarded rows as the trigger's CSV with DuckDB, in one pass and in a fixed order (the same
    warehouse gives the same bytes, so a file found on the server can be recognised); return (rows written,
    rows the guard left out)."""
    guard = guard or ConsentGuard.of(con)
    columns = ", ".join(f's."{source}" as "{header}"' for source, header in trigger.columns.items())
    written = target if trigger.is_utf8 else target.with_suffix(".utf8")
    (kept,) = con.execute(f"""copy (select {columns} from {guard.rows(trigger)} order by all)
                              to {sql_literal(str(written))}
                              (format csv, header true, delimiter {sql_literal(trigger.delimiter)})""").fetchone()
    (total,) = con.execute(f"select count(*) from {SEGMENT_SCHEMA}.{trigger.segment}").fetchone()
    if written != target:
        with (
            written.open("r", encoding="utf-8", newline="") as source,
            target.open("w", encoding=trigger.encoding, newline="") as out,
        ):
            shutil.copyfileobj(source, out, 1 << 20)
        written.unlink()
    return kept, total - kept


# --- Deployteq's folders --------------------------------------------------------------------------------

STATUS_OF_FOLDER = {
    "UPLOAD_DIR": "uploaded",
    "ACTIVE_DIR": "uploaded",
    "DONE_DIR": "done",
    "FAILED_DIR": "failed",
    "IMPORT_DIR": "uploaded",  # the contacts sync's files (mail_warehouse.sync.contacts)
}


@dataclass(frozen=True)
class Found:
    setting: str  # the folder's setting, UPLOAD_DIR ... FAILED_DIR, IMPORT_DIR
    folder: str
    size: int
    mtime: float | None = None

    @property
    def status(self) -> str:
        return STATUS_OF_FOLDER[self.setting]


class Deployteq:
    """Deployteq's folders over one reconnecting SFTP session: by default the CSV triggers' (a file is delivered
    to Upload and may move on to Active, Done or Failed); `folders` (setting -> folder, the one delivered to
    first) for other files, such as the contacts sync's import folder."""

    def __init__(self, settings: ExportSettings, folders: dict[str, str] | None = None) -> None:
        if settings.sftp is None:
            raise ExportError(f"Deployteq {NOT_CONFIGURED['deployteq']}")
        self.settings = settings
        self.folders = folders or settings.folders
        self.delivery_setting, self.delivery_dir = next(iter(self.folders.items()))
        self.sftp = ReconnectingSftp(settings.sftp)
        self.where = settings.sftp.where
        self._folders_checked = False

    def close(self) -> None:
        self.sftp.close()

    def _check_folders(self) -> None:
        """Every folder exists and is a folder, else fail at once naming it and its setting (a file looked for
        in a folder that does not exist would otherwise just be 'not there')."""
        if self._folders_checked:
            return
        for setting, folder in self.folders.items():

            def stat_folder(session: SftpSession, folder: str = folder) -> SFTPAttributes:
                return session.client.stat(folder)

            attributes = self.sftp.call(stat_folder, f"checking the folder {folder}", remote=folder, setting=setting)
            if not stat.S_ISDIR(attributes.st_mode or 0):
                raise ExportError(f"{folder} on {self.where} is not a folder; check {SETTING_PREFIX}{setting}")
        self._folders_checked = True

    def _look(self, session: SftpSession, file_name: str) -> Found | None:
        return next(self._look_everywhere(session, file_name), None)

    def _look_everywhere(self, session: SftpSession, file_name: str) -> Iterator[Found]:
        """Every folder that holds a file of this name, in the order Deployteq moves a trigger through them."""
        for setting, folder in self.folders.items():
            try:
                attributes = session.client.stat(posixpath.join(folder, file_name))
            except FileNotFoundError:
                continue
            yield Found(setting, folder, attributes.st_size, attributes.st_mtime)

    def locate(self, file_name: str) -> Found | None:
        """Where a file of this name is among this delivery's folders (the triggers': Upload, Active, Done and
        Failed), if anywhere."""
        self._check_folders()
        return self.sftp.call(lambda session: self._look(session, file_name), f"looking for {file_name}")

    def _remove_scratch_files(self, session: SftpSession, file_name: str) -> int:
        removed = 0
        for name in session.client.listdir(self.delivery_dir):
            if _is_scratch_of(name, file_name):
                try:
                    session.client.remove(posixpath.join(self.delivery_dir, name))
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed

    def remove_scratch(self, file_name: str) -> bool:
        """Remove every `.part` of this file name that a dead run (or a dropped attempt) left in the delivery
        folder; True if there was one."""
        self._check_folders()
        return bool(
            self.sftp.call(
                lambda session: self._remove_scratch_files(session, file_name),
                f"removing the scratch files of {file_name}",
                remote=self.delivery_dir,
                setting=self.delivery_setting,
            )
        )

    def deliver(self, local: Path, file_name: str, size: int, sha256: str, *, export_id: str, force: bool) -> Found:
        """Upload under a name the watcher ignores, check size and checksum, rename into place; return where the
        file is.

        A retry (the connection dropped or timed out) may follow a rename the server carried out, or one the
        server still has queued and carries out later. So a retry first removes the scratch files of this name
        (a late rename then finds nothing to move), then looks for the final name: found, the file went out
        and is not sent again. Each attempt uploads under a scratch name of its own, so a late request of an
        earlier attempt never touches the file of a later one. With --force the name may be on the server from
        an earlier delivery: only a file that was not there before this delivery, or changed since, counts."""
        self._check_folders()
        final = posixpath.join(self.delivery_dir, file_name)
        attempts = 0
        before: dict[str, float | None] = {}

        def send(session: SftpSession) -> Found:
            nonlocal attempts, before
            attempts += 1
            if attempts == 1 and force:
                before = {found.setting: found.mtime for found in self._look_everywhere(session, file_name)}
            if attempts > 1:
                self._remove_scratch_files(session, file_name)
                for found in self._look_everywhere(session, file_name):
                    if found.setting in before and before[found.setting] == found.mtime:
                        continue  # there before this delivery (--force)
                    if found.size != size:
                        raise ExportError(
                            f"{found.folder}/{file_name} appeared on {self.where} with "
                            f"{found.size} bytes, not the {size} sent; not sending it again: check "
                            "what wrote it"
                        )
                    return found
            scratch = posixpath.join(self.delivery_dir, f".{file_name}.{export_id[:8]}-{attempts}.part")
            with local.open("rb") as source:
                sent = session.upload(source, scratch)
            if sent != sha256:
                raise ExportError(
                    f"{local} changed after its intent was recorded (sha256 differs); not renaming it into place"
                )
            remote_size = session.client.stat(scratch).st_size
            if remote_size != size:
                raise ExportError(f"{scratch} holds {remote_size} bytes, not {size}")
            if session.sha256(scratch) != sent:
                raise ExportError(f"{scratch} does not hold what was sent (sha256 differs)")
            try:
                session.client.posix_rename(scratch, final)
            except OSError:
                if not session.is_connected():
                    raise
                session.client.rename(scratch, final)  # a server without posix-rename@openssh.com
            return Found(self.delivery_setting, self.delivery_dir, size)

        return self.sftp.call(send, f"uploading {file_name}", remote=self.delivery_dir, setting=self.delivery_setting)

    def listing(self, setting: str) -> set[str]:
        folder = self.folders[setting]
        return set(
            self.sftp.call(
                lambda session: session.client.listdir(folder), f"listing {folder}", remote=folder, setting=setting
            )
        )


def _is_scratch_of(name: str, file_name: str) -> bool:
    return name.startswith(f".{file_name}.") and name.endswith(".part")


def file_sha256(path: Path) -> str:
    with path.open("rb") as source:
        return hashlib.file_digest(source, "sha256").hexdigest()


# --- intents and outcomes ----------------------------------------------------------------------------


def reconcile(con, deployteq: Deployteq, segment: str | None = None) -> list[ExportResult]:
    """Give every intent without an outcome (of `segment`, or all) the outcome the server shows: a file found in
    Upload, Active, Done or Failed was delivered and is recorded so; one found nowhere was not sent (its contacts
    are no longer counted as exported). A leftover scratch file is removed either way."""
    pending = con.execute(
        f"""select export_id, segment, file_name, size from {LOG_SCHEMA}.csv_trigger_log
                              where status = 'intent' and ($segment is null or segment = $segment)
                              order by recorded_at""",
        {"segment": segment},
    ).fetchall()
    results = []
    for export_id, intent_segment, file_name, size in pending:
        # the scratch files first: a rename the dead run's server still had queued then has nothing to move
        scratch_removed = deployteq.remove_scratch(file_name)
        found = deployteq.locate(file_name)
        scratch = "; its leftover scratch file was removed" if scratch_removed else ""
        if found is not None:
            odd = "" if found.size == size else f" (it has {found.size} bytes, the intent {size})"
            note = f"found in {found.folder}/ by a later run{odd}"
            if not _recover_contacts(con, deployteq.settings, export_id, intent_segment, file_name):
                note += "; its contacts were not recorded and its local copy is gone, so they are not counted"
            _record_outcome(con, export_id, found.status, note, found_later=True)
            results.append(
                ExportResult(
                    intent_segment,
                    "reconciled",
                    file_name,
                    message=(
                        f"an earlier run was interrupted after sending it; found in {found.folder}/{odd}, recorded as "
                        f"{found.status}, not sent again{scratch}"
                    ),
                )
            )
        else:
            con.execute("begin")
            con.execute(f"delete from {LOG_SCHEMA}.csv_trigger_contacts where export_id = $id", {"id": export_id})
            con.execute(
                f"""update {LOG_SCHEMA}.csv_trigger_log set status = 'not-sent', status_checked_at = now(),
                            note = 'an interrupted run; the file never reached the server' where export_id = $id""",
                {"id": export_id},
            )
            con.execute("commit")
            results.append(
                ExportResult(
                    intent_segment,
                    "reconciled",
                    file_name,
                    message=(
                        f"an earlier run was interrupted before it reached the server; recorded as not sent{scratch}"
                    ),
                )
            )
    return results


def _recover_contacts(con, settings: ExportSettings, export_id: str, segment: str, file_name: str) -> bool:
    """The contacts of a delivered file whose run died before recording them, read from the copy kept in local_dir
    (the same bytes that went out); True when they are recorded."""
    if con.execute(
        f"select count(*) from {LOG_SCHEMA}.csv_trigger_contacts where export_id = $id", {"id": export_id}
    ).fetchone()[0]:
        return True
    local, trigger = settings.local_dir / file_name, declared_triggers().get(segment)
    if trigger is None or not local.exists():
        return False
    email_header = trigger.columns["email"].replace('"', '""')
    file_email = normalized_email(f'f."{email_header}"')
    encoding = "" if trigger.is_utf8 else f", encoding = {sql_literal(trigger.encoding)}"
    con.execute(
        f"""insert into {LOG_SCHEMA}.csv_trigger_contacts
                    select $id, c.email, c.contact_key
                    from read_csv({sql_literal(str(local))}, header = true, all_varchar = true,
                                  delim = {sql_literal(trigger.delimiter)}{encoding}) f
                    inner join marts.contacts c on c.email = {file_email}""",
        {"id": export_id},
    )
    return True


def _record_outcome(con, export_id: str, status: str, note: str | None = None, *, found_later: bool = False) -> None:
    """`found_later`: the delivery was seen by a later run, so its time is taken as the intent's (the upload
    began within seconds of it), not the moment it was found."""
    con.execute(
        f"""update {LOG_SCHEMA}.csv_trigger_log
                    set status = $status, note = coalesce($note, note),
                        uploaded_at = coalesce(uploaded_at, case when $found_later then recorded_at end, now()),
                        status_checked_at = case when $status in ('done', 'failed') then now() end
                    where export_id = $id""",
        {"status": status, "note": note, "id": export_id, "found_later": found_later},
    )


def _record_contacts(con, guard: ConsentGuard, trigger: Trigger, export_id: str) -> None:
    """The exported contacts of a recorded intent, in one statement (all or none), run beside the upload. Nothing
    else writes the warehouse while this connection holds it, so the guard gives the rows the CSV holds."""
    con.execute(
        f"""insert into {LOG_SCHEMA}.csv_trigger_contacts
                    select $id, c.email, c.contact_key from {guard.rows(trigger)}""",
        {"id": export_id},
    )


def _open_destination(dry_run: bool) -> tuple[ExportSettings, Deployteq | None]:
    """The settings and, unless a dry run or Deployteq is not configured, an SFTP session already through its
    handshake (a failed first attempt is left to the first call, which retries and reports)."""
    settings = load_settings(need_sftp=False)
    if dry_run or settings.sftp is None:
        return settings, None
    deployteq = Deployteq(settings)
    try:
        deployteq.sftp.connect()
    except (SftpError, *RETRYABLE):
        pass
    return settings, deployteq


# --- the export ---------------------------------------------------------------------------------------

NOT_CONFIGURED = {
    "deployteq": f"not configured: set export.deployteq.host and username ({SETTING_PREFIX}HOST, "
    f"{SETTING_PREFIX}USERNAME)",
    "spotler": "not configured: set the sources.spotler account (SOURCES__SPOTLER__CONSUMER_KEY, "
    "SOURCES__SPOTLER__CONSUMER_SECRET)",
}


def export_segments(
    names: list[str] | None = None,
    *,
    force: bool = False,
    dry_run: bool = False,
    today: dt.date | None = None,
    wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
    stream=sys.stderr,
) -> list:
    """Each segment to every target it declares whose platform is configured: Deployteq CSV triggers
    (`[export.deployteq]`), Spotler campaign triggers and audiences (the `sources.spotler` account). A target
    whose platform is not configured is named in the results as skipped."""
    manifest = project_manifest()
    triggers, spotler_targets = declared_triggers(manifest), declared_spotler_targets(manifest)
    segments = sorted(set(triggers) | set(spotler_targets))
    unknown = [n for n in (names or []) if n not in segments]
    if unknown:
        raise ExportError(
            f"no csv_trigger, spotler_campaign_trigger or spotler_audience declared for {unknown}; "
            f"segments with one: {segments}"
        )
    today = today or dt.datetime.now(dt.UTC).date()
    chosen = names or segments
    with WarehouseLock(warehouse_settings.warehouse_path(), wait_seconds, command="export"):
        con = warehouse_settings.connect()
        # Beside the main thread: reading the settings (dlt's configuration machinery) and the SSH handshake
        # while DuckDB writes the guarded CSV and records its contacts; on the second worker, the file's sha256.
        beside = ThreadPoolExecutor(2)
        destination = beside.submit(_open_destination, dry_run)
        try:
            ensure_log(con)
            export_spotler.ensure_log(con)
            guard = ConsentGuard.of(con)
            results: list = []
            spotler: SpotlerWayBack | Literal[False] | None = None  # False: the Spotler account is not configured
            for name in chosen:
                if name in triggers:
                    results.extend(
                        _export_one(con, beside, destination, guard, triggers[name], today, force, dry_run, stream)
                    )
                if name in spotler_targets:
                    if spotler is None:
                        destination.result()  # dlt's settings read once, not from two threads at a time
                        try:
                            account = export_spotler.spotler_account()
                        except ValueError as error:  # dlt's configuration errors: the message names the setting
                            raise ExportError(f"the Spotler account's settings: {error}") from None
                        spotler = (
                            SpotlerWayBack(con, account, today=today, force=force, dry_run=dry_run, stream=stream)
                            if account is not None
                            else False
                        )
                    if spotler:
                        results.extend(spotler.export(spotler_targets[name]))
                    else:
                        results.append(
                            ExportResult(name, "skipped", target="Spotler", message=NOT_CONFIGURED["spotler"])
                        )
            return results
        finally:
            beside.shutdown()
            con.close()
            if destination.done() and not destination.exception():
                deployteq = destination.result()[1]
                if deployteq:
                    deployteq.close()


def _export_one(
    con, beside, destination, guard: ConsentGuard, trigger: Trigger, today: dt.date, force: bool, dry_run: bool, stream
) -> list[ExportResult]:
    name, file_name = trigger.segment, trigger.name_for(today)
    results = []
    if (
        not dry_run
        and con.execute(
            f"""select count(*) from {LOG_SCHEMA}.csv_trigger_log
                                       where segment = $s and status = 'intent'""",
            {"s": name},
        ).fetchone()[0]
    ):
        settings, deployteq = destination.result()
        if deployteq is None:  # intents of a time Deployteq was configured: resolved when it is again
            return [ExportResult(name, "skipped", target="Deployteq", message=NOT_CONFIGURED["deployteq"])]
        results.extend(reconcile(con, deployteq, name))
    delivered_today = con.execute(
        f"""select file_name from {LOG_SCHEMA}.csv_trigger_log where segment = $s
                                      and export_day = $d and status in {DELIVERED}""",
        {"s": name, "d": today},
    ).fetchall()
    if delivered_today and not force and not dry_run:
        return [
            *results,
            ExportResult(
                name, "skipped", delivered_today[0][0], message="already uploaded today (--force uploads again)"
            ),
        ]
    # Written beside the warehouse file while the settings are still being read and the SSH handshake runs, then
    # moved into local_dir (a rename when both are on one file system). The file's sha256 is taken on the second
    # worker (hashlib lets go of the GIL) before waiting for them, so it overlaps the settings instead of following.
    scratch = warehouse_settings.warehouse_path().parent / f".{file_name}.{uuid.uuid4().hex}.writing"
    try:
        rows, excluded = _write_csv(con, trigger, scratch, guard)
        hashing = None if dry_run else beside.submit(file_sha256, scratch)
        settings, deployteq = destination.result()
        if settings.sftp is None:
            return [*results, ExportResult(name, "skipped", target="Deployteq", message=NOT_CONFIGURED["deployteq"])]
        size, sha256 = scratch.stat().st_size, hashing.result() if hashing else None
        local = settings.local_dir / file_name
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(scratch, local)
    finally:
        scratch.unlink(missing_ok=True)
    by_reason = guard.left_out_by_reason(con, trigger) if excluded else {}
    if dry_run:
        return [
            *results,
            ExportResult(
                name,
                "dry-run",
                file_name,
                rows,
                excluded,
                f"written to {local}, would go to {settings.upload_dir}/{file_name}",
                by_reason,
            ),
        ]
    if rows == 0 and not settings.upload_empty:
        return [
            *results,
            ExportResult(
                name, "skipped", None, 0, excluded, "the segment is empty (upload_empty uploads it anyway)", by_reason
            ),
        ]
    already = None if force else deployteq.locate(file_name)
    if already is not None and already.setting == "FAILED_DIR" and _known_rejected(con, file_name):
        already = None  # Deployteq rejected the earlier file (recorded by --status): today's may go again
    if already is not None:
        return [
            *results,
            ExportResult(
                name,
                "skipped",
                file_name,
                rows,
                excluded,
                f"{file_name} is already in {already.folder}/ on {settings.sftp.where}: it was delivered before, so it "
                "is not sent twice (--force sends it anyway)",
                by_reason,
            ),
        ]
    export_id = str(uuid.uuid4())
    con.execute(
        f"""insert into {LOG_SCHEMA}.csv_trigger_log (export_id, segment, file_name, rows, excluded_by_consent,
                        sha256, uploaded_at, status, export_day, size, recorded_at)
                    values ($id, $s, $f, $r, $x, $h, null, 'intent', $d, $size, now())""",
        {"id": export_id, "s": name, "f": file_name, "r": rows, "x": excluded, "h": sha256, "d": today, "size": size},
    )
    # The intent is durable (autocommit) before a byte goes out. The contacts are recorded beside the upload: a
    # run killed before they are is reconciled from the file kept in local_dir (_recover_contacts).
    recording = beside.submit(_record_contacts, con, guard, trigger, export_id)
    print(
        f"export {name}: uploading {file_name} ({rows:,} contacts) to {settings.upload_dir} on {settings.sftp.where}",
        file=stream,
        flush=True,
    )
    try:
        try:
            landed = deployteq.deliver(local, file_name, size, sha256, export_id=export_id, force=force)
        finally:
            recording.result()
    except (SftpError, ExportError) as error:
        return [
            *results,
            ExportResult(
                name,
                "failed",
                file_name,
                rows,
                excluded,
                f"{error}; the intent stays recorded: the next export looks for {file_name} on the server and records "
                "it as delivered, or sends it anew if it never arrived",
                by_reason,
            ),
        ]
    _record_outcome(
        con,
        export_id,
        landed.status,
        None
        if landed.setting == "UPLOAD_DIR" and landed.folder == settings.upload_dir
        else f"found in {landed.folder}/ after a dropped connection",
    )
    return [*results, ExportResult(name, "uploaded", file_name, rows, excluded, excluded_by_reason=by_reason)]


def _known_rejected(con, file_name: str) -> bool:
    return (
        con.execute(
            f"""select count(*) from {LOG_SCHEMA}.csv_trigger_log
                           where file_name = $f and status = 'failed'""",
            {"f": file_name},
        ).fetchone()[0]
        > 0
    )


def check_status(*, wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS, stream=sys.stderr) -> list[str]:
    """Per target, what became of earlier exports. Deployteq (when configured): interrupted exports reconciled,
    then its Done and Failed folders read and recorded. Spotler: each export's per-contact outcomes, from the log
    (Spotler answers every call at once, so there is nothing to ask it afterwards)."""
    settings = load_settings(need_sftp=False)
    with WarehouseLock(warehouse_settings.warehouse_path(), wait_seconds, command="export"):
        con = warehouse_settings.connect()
        try:
            ensure_log(con)
            export_spotler.ensure_log(con)
            report = (
                _deployteq_status(con, settings)
                if settings.sftp is not None
                else [f"Deployteq: {NOT_CONFIGURED['deployteq']}"]
            )
            return report + export_spotler.status_lines(con)
        finally:
            con.close()


def _deployteq_status(con, settings: ExportSettings) -> list[str]:
    deployteq = Deployteq(settings)
    try:
        report = [result.line() for result in reconcile(con, deployteq)]
        pending = con.execute(f"""select export_id, file_name, segment, status from {LOG_SCHEMA}.csv_trigger_log
                                  where status in ('uploaded', 'done', 'failed')""").fetchall()
        done, failed = deployteq.listing("DONE_DIR"), deployteq.listing("FAILED_DIR")
        for export_id, file_name, segment, status in pending:
            new = "failed" if file_name in failed else "done" if file_name in done else status
            if new != status:
                _record_outcome(con, export_id, new)
            if new == "failed":
                report.append(
                    f"{segment}: {file_name} was rejected by Deployteq (in {settings.failed_dir}/); "
                    "check the column names and the campaign the file name selects"
                )
            else:
                report.append(f"{segment}: {file_name} {new}")
        return report
    finally:
        deployteq.close()
