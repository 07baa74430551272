"""`warehouse sync contacts`: the customers the warehouse knows from Directo, one row per address, to each
configured mail platform; only the rows that changed since the platform last received them.

The rows are `marts.contacts`' addresses with a Directo customer (a shared address resolved as that model
resolves it: the open customer changed last speaks for it): the address, customer code, name, country, consent as
1 or 0 with the day it was stated (in Directo's time zone), and the Directo datafields and class `[sync]` names.
Each row has a hash of its values; `sync.contact_state` keeps, per platform and address, the hash the platform
last received. A row whose hash differs (or that the platform never received) is a change.

- **Deployteq** (`[export.deployteq]` configured): one `;`-separated CSV of the changes in the import folder
  (`import_dir`, default `Import`), delivered exactly once with the CSV trigger's mechanism (`export.Deployteq`):
  the file and its rows recorded as an intent, uploaded under a scratch name, its size and sha256 read back,
  renamed into place; an intent an earlier run left is reconciled first from what the folder holds (found:
  delivered, its rows' hashes taken as received; not found: not sent, its rows still changes). Nothing changed,
  nothing delivered. Deployteq may take the file away once imported: an intent whose file it took before a killed
  run was reconciled counts as not sent and its rows go again in the next file, which is harmless (an import
  of the same values again changes nothing).
- **Spotler** (the `sources.spotler` account configured): `spotler_contacts.push_contacts`: new contacts with
  `POST /contact/list`, changed ones with `PUT /contact/{externalId}`, the EMAIL channel permission from consent.
  A contact's hash is recorded once Spotler answered that it holds it; a run killed midway sends the rest (and at
  most the batch in flight) again: creating falls back to updating, so nobody is created twice.

A contact deleted from Directo is not sent (the platforms keep what they have). `--dry-run` writes the CSV
locally and says per platform what would be sent; it sends and records nothing.
"""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from dataclasses import dataclass, field

from mail_warehouse import settings as warehouse_settings
from mail_warehouse.config import CONTACT_COLUMNS, SyncConfiguration
from mail_warehouse.export_config import ExportError
from mail_warehouse.lock import WarehouseLock
from mail_warehouse.settings import sql_literal
from mail_warehouse.sync import SyncError, table_exists, table_or_empty
from mail_warehouse_sources.sftp import SftpError
from mail_warehouse_sources.spotler.config import SpotlerError

STATE = "sync.contact_state"
FILES = "sync.contact_files"
FILE_ROWS = "sync.contact_file_rows"
CURRENT = "current_contact_rows"  # a temporary table of this run's rows
DEPLOYTEQ_CHANGES = "deployteq_contact_changes"  # a temporary table: this run's rows Deployteq has not received
DEPLOYTEQ, SPOTLER = "deployteq", "spotler"


@dataclass
class PlatformResult:
    platform: str
    status: str  # delivered | nothing-changed | dry-run | skipped | failed | reconciled
    rows: int = 0
    new: int = 0
    file_name: str | None = None
    message: str = ""
    refused: int = 0

    def line(self) -> str:
        where = "Deployteq" if self.platform == DEPLOYTEQ else "Spotler"
        if self.status in ("skipped", "reconciled") or (self.status == "failed" and not self.rows):
            return f"sync contacts to {where}: {self.status}; {self.message}"
        if self.status == "nothing-changed":
            return f"sync contacts to {where}: nothing changed since the last delivery; nothing sent"
        counted = f"{self.rows:,} contacts ({self.new:,} new, {self.rows - self.new:,} changed)"
        what = f"{self.file_name} with {counted}" if self.file_name else counted
        verb = "would send" if self.status == "dry-run" else "sent"  # failed: these went, the message says the rest
        refused = f", {self.refused:,} refused" if self.refused else ""
        return f"sync contacts to {where}: {verb} {what}{refused}" + (f"; {self.message}" if self.message else "")


@dataclass
class ContactsSyncResult:
    platforms: list[PlatformResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(p.status == "failed" for p in self.platforms)

    def lines(self) -> list[str]:
        return [p.line() for p in self.platforms]


def ensure_ledger(con) -> None:
    con.execute("create schema if not exists sync")
    con.execute(f"""create table if not exists {STATE} (
        platform varchar not null, email varchar not null, row_hash varchar not null, external_id varchar,
        synced_at timestamptz not null, primary key (platform, email))""")
    con.execute(f"""create table if not exists {FILES} (
        file_id varchar primary key, file_name varchar not null, rows bigint not null, new_rows bigint not null,
        size bigint not null, sha256 varchar not null, status varchar not null, recorded_at timestamptz not null,
        delivered_at timestamptz, note varchar)""")
    con.execute(f"""create table if not exists {FILE_ROWS} (
        file_id varchar not null, email varchar not null, row_hash varchar not null)""")


# --- the rows -------------------------------------------------------------------------------------------


def _select_current_rows(con, config: SyncConfiguration, directo_timezone: str) -> None:
    """This run's rows into a temporary table: the file's columns (as named in the file), the address and the
    Spotler fields beside them, and the hash of the file's values."""
    names = config.file_columns()
    values = [
        "c.email",
        "c.directo_customer_code",
        "c.full_name",
        "c.country_code",
        "case when c.is_opted_in then 1 else 0 end",
        f"strftime(cast(timezone({sql_literal(directo_timezone)}, c.consent_changed_at) as date), '%Y-%m-%d')",
        *(
            f"json_extract_string(c.directo_datafields, {sql_literal('$.' + _json_key(code))})"
            for code in config.contacts_datafields or []
        ),
        *(["c.directo_class"] if config.contacts_class else []),
    ]
    columns = ", ".join(f'{value} as "{_quoted(name)}"' for value, name in zip(values, names, strict=True))
    hashed = ", ".join(f'cast("{_quoted(name)}" as varchar)' for name in names)
    # Spotler also receives the first name and whether consent is known at all: its hash covers them too
    con.execute(f"""create or replace temporary table {CURRENT} as
        select *,
               md5(cast(json_array({hashed}) as varchar)) as _{DEPLOYTEQ}_hash,
               md5(cast(json_array({hashed}, _first_name, cast(_opted_in as varchar)) as varchar)) as _{SPOTLER}_hash
        from (select c.email as _email, c.first_name as _first_name, c.spotler_external_id as _spotler_id,
                     case when c.consent_source is not null then c.is_opted_in end as _opted_in, {columns}
              from marts.contacts c
              where c.directo_customer_code is not null)""")


def _json_key(code: str) -> str:
    return '"' + code.replace('"', '\\"') + '"'


def _quoted(name: str) -> str:
    return name.replace('"', '""')


def _changes(con, platform: str) -> str:
    """The rows of `CURRENT` that `platform` has not received as they are now, as SQL; `_is_new`: never received.
    Before any sync (a first dry run records nothing) nobody has received anything."""
    state = table_or_empty(
        con, STATE, {"platform": "varchar", "email": "varchar", "row_hash": "varchar", "external_id": "varchar"}
    )
    return f"""select r.*, r._{platform}_hash as _row_hash, s.email is null as _is_new, s.external_id as _known_id
               from {CURRENT} r left join {state} s on s.platform = '{platform}' and s.email = r._email
               where s.row_hash is distinct from r._{platform}_hash"""


# --- Deployteq: a file in the import folder -----------------------------------------------------------------


def _deployteq(con, config: SyncConfiguration, now: dt.datetime, dry_run: bool, stream) -> list[PlatformResult]:
    from mail_warehouse.export import Deployteq, file_sha256
    from mail_warehouse.export_config import load_settings

    settings = load_settings(need_sftp=False)
    if settings.sftp is None:
        return [
            PlatformResult(
                DEPLOYTEQ, "skipped", message="not configured (EXPORT__DEPLOYTEQ__HOST, EXPORT__DEPLOYTEQ__USERNAME)"
            )
        ]
    results = []
    deployteq = None if dry_run else Deployteq(settings, folders={"IMPORT_DIR": settings.import_dir})
    try:
        if deployteq is not None:
            results.extend(_reconcile(con, deployteq))
        # the changes once: the file and the intent's rows are the same rows by construction
        con.execute(f"create or replace temporary table {DEPLOYTEQ_CHANGES} as {_changes(con, DEPLOYTEQ)}")
        (rows, new) = con.execute(f"select count(*), count(*) filter (_is_new) from {DEPLOYTEQ_CHANGES}").fetchone()
        if not rows:
            return [*results, PlatformResult(DEPLOYTEQ, "nothing-changed")]
        file_name = config.contacts_file_name.format(date=now)
        local = settings.local_dir / file_name
        local.parent.mkdir(parents=True, exist_ok=True)
        columns = ", ".join(f'"{_quoted(name)}"' for name in config.file_columns())
        con.execute(f"""copy (select {columns} from {DEPLOYTEQ_CHANGES} order by _email)
                        to {sql_literal(str(local))}
                        (format csv, header true, delimiter {sql_literal(config.contacts_delimiter)})""")
        where = f"{settings.import_dir}/{file_name} on {settings.sftp.where}"
        if dry_run:
            return [
                *results,
                PlatformResult(DEPLOYTEQ, "dry-run", rows, new, file_name, f"written to {local}, would go to {where}"),
            ]
        assert deployteq is not None
        size, sha256 = local.stat().st_size, file_sha256(local)
        file_id = uuid.uuid4().hex
        con.execute("begin")
        con.execute(
            f"""insert into {FILES} (file_id, file_name, rows, new_rows, size, sha256, status, recorded_at)
                values ($id, $name, $rows, $new, $size, $sha, 'intent', now())""",
            {"id": file_id, "name": file_name, "rows": rows, "new": new, "size": size, "sha": sha256},
        )
        con.execute(
            f"insert into {FILE_ROWS} select $id, _email, _row_hash from {DEPLOYTEQ_CHANGES}",
            {"id": file_id},
        )
        con.execute("commit")
        print(f"sync contacts: delivering {file_name} ({rows:,} contacts) to {where}", file=stream, flush=True)
        deployteq.deliver(local, file_name, size, sha256, export_id=file_id, force=False)
        _delivered(con, file_id)
        return [*results, PlatformResult(DEPLOYTEQ, "delivered", rows, new, file_name, f"in {settings.import_dir}/")]
    finally:
        if deployteq is not None:
            deployteq.close()


def _delivered(con, file_id: str, note: str | None = None) -> None:
    """The file reached the import folder: its rows are what Deployteq holds now (one transaction)."""
    con.execute("begin")
    con.execute(
        f"update {FILES} set status = 'delivered', delivered_at = now(), note = $note where file_id = $id",
        {"id": file_id, "note": note},
    )
    con.execute(
        f"""insert or replace into {STATE} (platform, email, row_hash, external_id, synced_at)
            select '{DEPLOYTEQ}', email, row_hash, null, now() from {FILE_ROWS} where file_id = $id""",
        {"id": file_id},
    )
    con.execute("commit")


def _reconcile(con, deployteq) -> list[PlatformResult]:
    pending = con.execute(
        f"select file_id, file_name from {FILES} where status = 'intent' order by recorded_at"
    ).fetchall()
    results = []
    for file_id, file_name in pending:
        deployteq.remove_scratch(file_name)
        if deployteq.locate(file_name) is not None:
            _delivered(con, file_id, "found in the import folder by a later run")
            message = f"{file_name}: an interrupted run had delivered it; recorded as delivered, not sent again"
        else:
            con.execute(
                f"""update {FILES} set status = 'not-sent', note = 'an interrupted run; not in the import folder'
                    where file_id = $id""",
                {"id": file_id},
            )
            message = f"{file_name}: an interrupted run had not delivered it; its rows go in this run's file"
        results.append(PlatformResult(DEPLOYTEQ, "reconciled", message=message))
    return results


# --- Spotler: the contacts API --------------------------------------------------------------------------------


def _spotler(con, config: SyncConfiguration, now: dt.datetime, dry_run: bool, stream) -> list[PlatformResult]:
    from mail_warehouse.export_spotler import spotler_account
    from mail_warehouse.sync.spotler_contacts import ContactChange, push_contacts

    account = spotler_account()
    if account is None:
        return [PlatformResult(SPOTLER, "skipped", message="not configured (the sources.spotler account)")]
    names = config.file_columns()
    extra = names[len(CONTACT_COLUMNS) :]
    header = dict(zip(CONTACT_COLUMNS, names, strict=False))
    select = ", ".join(f'"{_quoted(name)}"' for name in names)
    rows = con.execute(f"""select _email, _first_name, coalesce(_spotler_id, _known_id),
                                  _is_new and _spotler_id is null, _opted_in, _row_hash, {select}
                           from ({_changes(con, SPOTLER)}) order by _email""").fetchall()
    if not rows:
        return [PlatformResult(SPOTLER, "nothing-changed")]
    changes, hashes = [], {}
    for email, first_name, known_id, is_new, opted_in, row_hash, *values in rows:
        row = dict(zip(names, values, strict=True))
        changes.append(
            ContactChange(
                email=email,
                external_id=known_id or row[header["klantnummer"]],
                is_new=bool(is_new),
                first_name=first_name,
                full_name=row[header["naam"]],
                country=row[header["land"]],
                customer_number=row[header["klantnummer"]],
                opted_in=opted_in,
                properties={name: str(row[name]) for name in extra if row[name] is not None},
            )
        )
        hashes[email] = row_hash
    if dry_run:
        new = sum(1 for change in changes if change.is_new)
        push_contacts(None, changes, dry_run=True, say=lambda message: print(message, file=stream, flush=True))
        return [PlatformResult(SPOTLER, "dry-run", len(changes), new)]
    from mail_warehouse_sources.spotler.client import SpotlerClient

    def record(answered: list) -> None:
        """What Spotler now holds, recorded as each call is answered: a run stopped midway sends only the rest."""
        held = [o for o in answered if o.status in ("created", "updated")]
        if held:
            con.executemany(
                f"""insert or replace into {STATE} (platform, email, row_hash, external_id, synced_at)
                    values ('{SPOTLER}', $email, $hash, $id, now())""",
                [{"email": o.email, "hash": hashes[o.email], "id": o.external_id} for o in held],
            )

    client = SpotlerClient(account, log=lambda message: print(message, file=stream, flush=True))
    outcomes = push_contacts(
        client,
        changes,
        workers=max(1, account.max_parallel_requests),
        say=lambda message: print(message, file=stream, flush=True),
        answered=record,
    )
    held = [o for o in outcomes if o.status in ("created", "updated")]
    refused = [o for o in outcomes if o.status == "refused"]
    failed = [o for o in outcomes if o.status == "failed"]
    for outcome in refused[:20]:
        print(f"sync contacts: Spotler refused {outcome.external_id}: {outcome.message}", file=stream)
    if len(refused) > 20:
        print(f"sync contacts: ... and {len(refused) - 20:,} more refused", file=stream)
    message = f"{len(failed):,} not answered, sent again by the next run" if failed else ""
    created = sum(1 for o in held if o.status == "created")
    status = "failed" if failed else "delivered"
    return [PlatformResult(SPOTLER, status, len(held), created, refused=len(refused), message=message)]


# --- the command ----------------------------------------------------------------------------------------------


def sync_contacts(*, dry_run: bool = False, wait_seconds: float = 300, stream=sys.stderr) -> ContactsSyncResult:
    """The Directo customers to each configured platform; a result per platform."""
    from mail_warehouse.config import loader_setting, resolve
    from mail_warehouse.settings import configured_sources
    from mail_warehouse_sources.directo import DirectoSourceConfiguration

    result = ContactsSyncResult()
    if "directo" not in configured_sources():
        reason = "the contacts come from Directo, which is not configured (SOURCES__DIRECTO__URL)"
        result.platforms = [PlatformResult(p, "skipped", message=reason) for p in (DEPLOYTEQ, SPOTLER)]
        return result
    config = resolve(SyncConfiguration, "sync")
    timezone = loader_setting(DirectoSourceConfiguration, "directo", "timezone")
    warehouse = warehouse_settings.warehouse_path()
    with WarehouseLock(warehouse, wait_seconds, command="sync-contacts"):
        con = warehouse_settings.connect(warehouse, read_only=dry_run)
        try:
            if not table_exists(con, "marts.contacts"):
                raise SyncError("marts.contacts is not built: run `warehouse build` first")
            if not dry_run:
                ensure_ledger(con)
            _select_current_rows(con, config, timezone)
            now = dt.datetime.now(dt.UTC)
            for platform, send in ((DEPLOYTEQ, _deployteq), (SPOTLER, _spotler)):
                try:  # one platform's failure is its own: the other still gets its contacts
                    sent = send(con, config, now, dry_run, stream)
                except (SftpError, ExportError, SpotlerError) as error:
                    sent = [PlatformResult(platform, "failed", message=str(error))]
                result.platforms.extend(sent)
            return result
        finally:
            con.close()
