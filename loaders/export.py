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
import hashlib
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml
from dlt.common.configuration.resolve import resolve_configuration
from dlt.common.configuration.specs import configspec

from loaders import settings as warehouse_settings
from loaders.settings import sql_literal
from loaders.sftp import ReconnectingSftp, SftpConfiguration, SftpError, SftpSettings, file_sha256

SEGMENT_MODELS = warehouse_settings.PROJECT_DIR / "models" / "segments"
SEGMENT_SCHEMA = "segments"
LOG_SCHEMA = "exports"
CONSENT_GUARD = """c.is_opted_in and not c.is_hard_bounced and not c.has_complained and not c.is_unsubscribed
                   and not c.is_closed_in_directo"""


@configspec
class DeployteqConfiguration(SftpConfiguration):
    """`[export.deployteq]` in .dlt/config.toml, or EXPORT__DEPLOYTEQ__<NAME> environment variables."""
    upload_dir: str = "Upload"
    done_dir: str = "Done"
    failed_dir: str = "Failed"
    upload_empty: bool = False
    local_dir: str = "exports"


class ExportError(RuntimeError):
    pass


@dataclass(frozen=True)
class ExportSettings:
    sftp: SftpSettings | None
    upload_dir: str
    done_dir: str
    failed_dir: str
    upload_empty: bool
    local_dir: Path


def load_settings(*, need_sftp: bool = True) -> ExportSettings:
    config = resolve_configuration(DeployteqConfiguration(), sections=("export", "deployteq"), accept_partial=True)
    sftp = None
    if config.host and config.username:
        sftp = config.sftp_settings("EXPORT__DEPLOYTEQ__")
    elif need_sftp:
        raise ExportError("missing settings export.deployteq.host and username (env EXPORT__DEPLOYTEQ__HOST, "
                          "EXPORT__DEPLOYTEQ__USERNAME)")
    local = Path(config.local_dir)
    return ExportSettings(sftp, config.upload_dir.strip("/") or ".", config.done_dir.strip("/"),
                          config.failed_dir.strip("/"), bool(config.upload_empty),
                          local if local.is_absolute() else warehouse_settings.PROJECT_DIR / local)


# --- the triggers the segments declare ----------------------------------------------------------------

@dataclass(frozen=True)
class Trigger:
    segment: str
    file_name: str             # template, e.g. reactivatie_{date:%Y%m%d}.csv
    columns: dict[str, str]    # segment column -> header name
    delimiter: str = ";"
    encoding: str = "utf-8"

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


@dataclass
class _Prepared:
    local: Path
    rows: int
    excluded: int
    sha256: str


def _prepare(con, trigger: Trigger, target: Path) -> _Prepared:
    """Write the guarded segment to `target` with DuckDB; return its counts and checksum."""
    relation = f"{SEGMENT_SCHEMA}.{trigger.segment}"
    con.execute(f"""
        create or replace temp table export_rows as
        select s.*, c.contact_key as guarded_contact_key
        from {relation} s
        inner join marts.contacts c on c.email = lower(trim(s.email))
        where {CONSENT_GUARD}
    """)
    total = con.execute(f"select count(*) from {relation}").fetchone()[0]
    rows = con.execute("select count(*) from export_rows").fetchone()[0]
    columns = ", ".join(f'"{source}" as "{header}"' for source, header in trigger.columns.items())
    target.parent.mkdir(parents=True, exist_ok=True)
    written = target if trigger.encoding.lower().replace("_", "-") in ("utf-8", "utf8") else target.with_suffix(".utf8")
    con.execute(f"""copy (select {columns} from export_rows)
                    to {sql_literal(str(written))} (format csv, header true, delimiter {sql_literal(trigger.delimiter)})""")
    if written != target:
        with written.open("r", encoding="utf-8", newline="") as source, \
                target.open("w", encoding=trigger.encoding, newline="") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        written.unlink()
    return _Prepared(target, rows, total - rows, file_sha256(target))


class _HashingSink:
    """A write-only file object that only hashes what is written to it."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return len(data)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _upload(settings: ExportSettings, local: Path, file_name: str, sha256: str) -> None:
    """Upload under a name the watcher ignores, check size and checksum, rename into place."""
    upload = settings.upload_dir
    temporary = f"{upload}/.{file_name}.part"
    final = f"{upload}/{file_name}"
    expected_size = local.stat().st_size

    def send(session) -> None:
        session.sftp.put(str(local), temporary, confirm=True)
        remote_size = session.sftp.stat(temporary).st_size
        if remote_size != expected_size:
            raise ExportError(f"{temporary} holds {remote_size} bytes, not {expected_size}")
        digest = _HashingSink()
        session.sftp.getfo(temporary, digest, prefetch=True)  # read back with prefetch, hashed as it streams
        if digest.hexdigest() != sha256:
            raise ExportError(f"{temporary} does not hold what was sent (sha256 differs)")
        try:
            session.sftp.posix_rename(temporary, final)
        except OSError:
            session.sftp.rename(temporary, final)

    with ReconnectingSftp(settings.sftp) as sftp:
        sftp.call(send, f"uploading {file_name}")


def export_segments(names: list[str] | None = None, *, force: bool = False, dry_run: bool = False,
                    today: dt.date | None = None, stream=sys.stderr) -> list[ExportResult]:
    settings = load_settings(need_sftp=not dry_run)
    triggers = declared_triggers()
    unknown = [n for n in (names or []) if n not in triggers]
    if unknown:
        raise ExportError(f"no csv_trigger declared for {unknown}; segments with one: {sorted(triggers)}")
    today = today or dt.datetime.now(dt.UTC).date()
    results = []
    con = warehouse_settings.connect()
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
            local = settings.local_dir / file_name
            prepared = _prepare(con, trigger, local)
            if dry_run:
                results.append(ExportResult(name, "dry-run", file_name, prepared.rows, prepared.excluded,
                                            f"written to {local}, would go to {settings.upload_dir}/{file_name}"))
                continue
            if prepared.rows == 0 and not settings.upload_empty:
                results.append(ExportResult(name, "skipped", None, 0, prepared.excluded,
                                            "the segment is empty (upload_empty uploads it anyway)"))
                continue
            print(f"export {name}: uploading {file_name} ({prepared.rows:,} contacts) to "
                  f"{settings.sftp.where}/{settings.upload_dir}", file=stream, flush=True)
            try:
                _upload(settings, local, file_name, prepared.sha256)
            except (SftpError, ExportError) as error:
                results.append(ExportResult(name, "failed", file_name, prepared.rows, prepared.excluded, str(error)))
                continue
            export_id = str(uuid.uuid4())
            con.execute("begin")
            con.execute(f"insert into {LOG_SCHEMA}.csv_trigger_log values ($id, $s, $f, $r, $x, $h, now(), 'uploaded', null)",
                        {"id": export_id, "s": name, "f": file_name, "r": prepared.rows, "x": prepared.excluded,
                         "h": prepared.sha256})
            con.execute(f"""insert into {LOG_SCHEMA}.csv_trigger_contacts
                            select $id, lower(trim(email)), guarded_contact_key from export_rows""", {"id": export_id})
            con.execute("commit")
            results.append(ExportResult(name, "uploaded", file_name, prepared.rows, prepared.excluded))
    finally:
        con.close()
    return results


def check_status(stream=sys.stderr) -> list[str]:
    """Read Deployteq's Done and Failed folders; record and report what became of earlier exports."""
    settings = load_settings()
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
