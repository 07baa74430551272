"""Segments to Deployteq CSV triggers over SFTP (`warehouse export [SEGMENT ...]`).

A CSV placed in the brand's `Upload` folder starts the campaign its file name selects; Deployteq moves it
to `Active`, then `Done` or `Failed`. For each segment model whose yml `meta.csv_trigger` declares a
trigger (file-name template, columns with their header names, delimiter, encoding):

1. the segment's rows are read and checked again against `marts.contacts`: whatever the segment's SQL
   says, a contact that is not opted in, or is hard-bounced, complained, unsubscribed or closed, is never
   exported;
2. the CSV is written by DuckDB, uploaded under a dot-name ending in `.part` (which the watcher ignores),
   its remote size and sha256 checked by reading it back, then renamed into place in one step;
3. the export is recorded in `exports.csv_trigger_log` and every exported contact in
   `exports.csv_trigger_contacts` (segments use these for their cooldown).

The same segment is not uploaded twice on one day unless `--force`; an empty segment uploads nothing
unless `upload_empty`; `--dry-run` writes the file locally and says what it would upload.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from mail_warehouse import settings as warehouse_settings
from mail_warehouse.settings import sql_literal
from loaders.sftp import RETRYABLE, ReconnectingSftp, SftpError

if TYPE_CHECKING:
    from mail_warehouse.export_config import ExportSettings

SEGMENT_MODELS = warehouse_settings.PROJECT_DIR / "models" / "segments"
SEGMENT_SCHEMA = "segments"
LOG_SCHEMA = "exports"
CONSENT_GUARD = """c.is_opted_in and not c.is_hard_bounced and not c.has_complained and not c.is_unsubscribed
                   and not c.is_closed_in_directo"""


class ExportError(RuntimeError):
    pass


def _settings(*, need_sftp: bool = True) -> ExportSettings:
    from mail_warehouse.export_config import load_settings  # imports dlt: see export_config

    return load_settings(need_sftp=need_sftp)


# --- the triggers the segments declare ----------------------------------------------------------------

@dataclass(frozen=True)
class Trigger:
    segment: str
    file_name: str             # template, e.g. reactivatie_{date:%Y%m%d}.csv
    columns: dict[str, str]    # segment column -> header name
    delimiter: str = ";"
    encoding: str = "utf-8"

    @property
    def is_utf8(self) -> bool:
        return self.encoding.lower().replace("_", "-") in ("utf-8", "utf8")

    def name_for(self, day: dt.date) -> str:
        return self.file_name.format(date=day)


def declared_triggers(folder: Path = SEGMENT_MODELS) -> dict[str, Trigger]:
    triggers = {}
    for path in sorted(folder.glob("*.yml")):
        for model in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models", []) or []:
            meta = ((model.get("config") or {}).get("meta") or model.get("meta") or {}).get("csv_trigger")
            if not meta:
                continue
            columns = meta.get("columns") or {}
            if not meta.get("file_name") or not columns or "email" not in columns:
                raise ExportError(f"{path.name}: the csv_trigger of {model['name']} needs file_name and columns, "
                                  "email among them")
            triggers[model["name"]] = Trigger(model["name"], meta["file_name"], dict(columns),
                                              meta.get("delimiter", ";"), meta.get("encoding", "utf-8"))
    return triggers


# --- the log ----------------------------------------------------------------------------------------

def ensure_log(con) -> None:
    con.execute(f"create schema if not exists {LOG_SCHEMA}")
    con.execute(f"""create table if not exists {LOG_SCHEMA}.csv_trigger_log (
        export_id varchar primary key, segment varchar not null, file_name varchar not null, rows bigint not null,
        excluded_by_consent bigint not null, sha256 varchar not null, uploaded_at timestamptz not null,
        status varchar not null, status_checked_at timestamptz)""")
    con.execute(f"""create table if not exists {LOG_SCHEMA}.csv_trigger_contacts (
        export_id varchar not null, email varchar not null, contact_key varchar)""")


@dataclass
class ExportResult:
    segment: str
    status: str                # uploaded | skipped | dry-run | failed
    file_name: str | None = None
    rows: int = 0
    excluded: int = 0
    message: str = ""

    def line(self) -> str:
        detail = f" {self.file_name}" if self.file_name else ""
        return (f"export {self.segment}: {self.status}{detail}, {self.rows:,} contacts"
                + (f" ({self.excluded:,} left out by the consent guard)" if self.excluded else "")
                + (f"; {self.message}" if self.message else ""))


def _guarded_rows(trigger: Trigger) -> str:
    """The segment's rows that pass the consent guard, with the contact they matched (alias `c`)."""
    return f"""{SEGMENT_SCHEMA}.{trigger.segment} s
        inner join marts.contacts c on c.email = lower(trim(s.email))
        where {CONSENT_GUARD}"""


def _write_csv(con, trigger: Trigger, target: Path) -> tuple[int, int]:
    """Write the guarded rows as the trigger's CSV with DuckDB, in one pass; return (rows written, rows the
    guard left out)."""
    columns = ", ".join(f's."{source}" as "{header}"' for source, header in trigger.columns.items())
    written = target if trigger.is_utf8 else target.with_suffix(".utf8")
    (kept,) = con.execute(f"""copy (select {columns} from {_guarded_rows(trigger)})
                              to {sql_literal(str(written))}
                              (format csv, header true, delimiter {sql_literal(trigger.delimiter)})""").fetchone()
    (total,) = con.execute(f"select count(*) from {SEGMENT_SCHEMA}.{trigger.segment}").fetchone()
    if written != target:
        with written.open("r", encoding="utf-8", newline="") as source, \
                target.open("w", encoding=trigger.encoding, newline="") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        written.unlink()
    return kept, total - kept


def _upload(sftp: ReconnectingSftp, upload_dir: str, local: Path, file_name: str) -> str:
    """Upload under a name the watcher ignores, check size and checksum, rename into place; return the
    file's sha256."""
    temporary = f"{upload_dir}/.{file_name}.part"
    final = f"{upload_dir}/{file_name}"

    def send(session) -> str:
        with local.open("rb") as source:
            sent = session.upload(source, temporary)
        expected_size, remote_size = local.stat().st_size, session.sftp.stat(temporary).st_size
        if remote_size != expected_size:
            raise ExportError(f"{temporary} holds {remote_size} bytes, not {expected_size}")
        if session.sha256(temporary) != sent:
            raise ExportError(f"{temporary} does not hold what was sent (sha256 differs)")
        try:
            session.sftp.posix_rename(temporary, final)
        except OSError:
            session.sftp.rename(temporary, final)
        return sent

    return sftp.call(send, f"uploading {file_name}")


def _stage_contacts(con, trigger: Trigger, export_id: str) -> None:
    """Record the exported contacts in an open transaction, committed once the upload has landed (run
    beside the upload: DuckDB works while paramiko holds the interpreter). Nothing else writes the
    warehouse while this connection holds it, so the guard gives the rows the CSV holds."""
    con.execute("begin")
    con.execute(f"""insert into {LOG_SCHEMA}.csv_trigger_contacts
                    select $id, c.email, c.contact_key from {_guarded_rows(trigger)}""", {"id": export_id})


def _open_destination(dry_run: bool) -> tuple[ExportSettings, ReconnectingSftp | None]:
    """The settings and, unless a dry run, an SFTP session already through its handshake (a failed first
    attempt is left to the upload, which retries and reports)."""
    settings = _settings(need_sftp=not dry_run)
    if dry_run:
        return settings, None
    sftp = ReconnectingSftp(settings.sftp)
    try:
        sftp.connect()
    except (SftpError, *RETRYABLE):
        pass
    return settings, sftp


def export_segments(names: list[str] | None = None, *, force: bool = False, dry_run: bool = False,
                    today: dt.date | None = None, stream=sys.stderr) -> list[ExportResult]:
    triggers = declared_triggers()
    unknown = [n for n in (names or []) if n not in triggers]
    if unknown:
        raise ExportError(f"no csv_trigger declared for {unknown}; segments with one: {sorted(triggers)}")
    today = today or dt.datetime.now(dt.UTC).date()
    results = []
    con = warehouse_settings.connect()
    # Beside the main thread: reading the settings (dlt's configuration machinery) and the SSH handshake
    # while DuckDB writes the guarded CSV; recording the exported contacts while paramiko uploads.
    beside = ThreadPoolExecutor(1)
    destination = beside.submit(_open_destination, dry_run)
    try:
        ensure_log(con)
        for name in names or sorted(triggers):
            trigger = triggers[name]
            file_name = trigger.name_for(today)
            done_today = con.execute(f"""select file_name from {LOG_SCHEMA}.csv_trigger_log where segment = $s
                                         and cast(uploaded_at as date) = $d and status <> 'failed'""",
                                     {"s": name, "d": today}).fetchall()
            if done_today and not force and not dry_run:
                results.append(ExportResult(name, "skipped", done_today[0][0],
                                            message="already uploaded today (--force uploads again)"))
                continue
            # Written beside the warehouse file while the settings are still being read, then moved into
            # local_dir (a rename when both are on one file system).
            scratch = warehouse_settings.warehouse_path().parent / f".{file_name}.{uuid.uuid4().hex}.writing"
            try:
                rows, excluded = _write_csv(con, trigger, scratch)
                settings, sftp = destination.result()
                local = settings.local_dir / file_name
                local.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(scratch, local)
            finally:
                scratch.unlink(missing_ok=True)
            if dry_run or (rows == 0 and not settings.upload_empty):
                results.append(ExportResult(name, "dry-run", file_name, rows, excluded,
                                            f"written to {local}, would go to {settings.upload_dir}/{file_name}")
                               if dry_run else
                               ExportResult(name, "skipped", None, 0, excluded,
                                            "the segment is empty (upload_empty uploads it anyway)"))
                continue
            print(f"export {name}: uploading {file_name} ({rows:,} contacts) to "
                  f"{settings.sftp.where}/{settings.upload_dir}", file=stream, flush=True)
            export_id = str(uuid.uuid4())
            staging = beside.submit(_stage_contacts, con, trigger, export_id)
            try:
                sha256 = _upload(sftp, settings.upload_dir, local, file_name)
            except (SftpError, ExportError) as error:
                staging.result()
                con.execute("rollback")
                results.append(ExportResult(name, "failed", file_name, rows, excluded, str(error)))
                continue
            staging.result()
            con.execute(f"insert into {LOG_SCHEMA}.csv_trigger_log values ($id, $s, $f, $r, $x, $h, now(), 'uploaded', null)",
                        {"id": export_id, "s": name, "f": file_name, "r": rows, "x": excluded, "h": sha256})
            con.execute("commit")
            results.append(ExportResult(name, "uploaded", file_name, rows, excluded))
    finally:
        beside.shutdown()
        con.close()
        if destination.done() and not destination.exception() and destination.result()[1]:
            destination.result()[1].close()
    return results


def check_status(stream=sys.stderr) -> list[str]:
    """Read Deployteq's Done and Failed folders; record and report what became of earlier exports."""
    settings = _settings()
    con = warehouse_settings.connect()
    try:
        ensure_log(con)
        pending = con.execute(f"select export_id, file_name, segment, status from {LOG_SCHEMA}.csv_trigger_log "
                              f"where status in ('uploaded', 'done', 'failed')").fetchall()
        with ReconnectingSftp(settings.sftp) as sftp:
            def listing(folder):
                try:
                    return set(sftp.call(lambda s: s.sftp.listdir(folder), f"listing {folder}"))
                except SftpError:
                    raise
                except OSError:
                    return set()
            done, failed = listing(settings.done_dir), listing(settings.failed_dir)
        report = []
        for export_id, file_name, segment, status in pending:
            new = "failed" if file_name in failed else "done" if file_name in done else status
            if new != status:
                con.execute(f"update {LOG_SCHEMA}.csv_trigger_log set status = $n, status_checked_at = now() "
                            f"where export_id = $id", {"n": new, "id": export_id})
            if new == "failed":
                report.append(f"{segment}: {file_name} was rejected by Deployteq (in {settings.failed_dir}/); "
                              "check the column names and the campaign the file name selects")
            else:
                report.append(f"{segment}: {file_name} {new}")
        return report
    finally:
        con.close()
