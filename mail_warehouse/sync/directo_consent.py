"""`warehouse sync consent`: the opt-outs Directo does not know, written to its OPTIN datafield.

Which customers: `marts.directo_optins_to_withdraw` (the rule lives in that model: a live customer whose OPTIN
says yes, undated or dated on or before the day of the address's latest opt-out, which a mail platform stated).
Each gets OPTIN=no dated with the opt-out's day through XMLCore (`write_customer_datafields`). Never an opt-in,
never a bounce, never over a newer Directo date: the model holds none of those.

Exactly once, with a ledger (`sync.directo_consent_writes`, one row per customer and opt-out day):
1. an intent per customer is committed before its call (status `intent`);
2. Directo's answer is recorded: `written`, or `refused` with Directo's Desc;
3. a later run skips every customer whose opt-out is `written`; it calls again for an `intent` (a run killed
   between the call and its record) or a `refused` one. Writing OPTIN=no with the same day twice leaves Directo
   as one write does, so the one call a killed run may repeat changes nothing; nothing else is ever repeated.
Once Directo's next load brings the no back, the model no longer lists the customer at all.

The key is only ever in the form body of the call: never in a URL, a message or the ledger.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
import uuid
from dataclasses import dataclass, field

from mail_warehouse import settings as warehouse_settings
from mail_warehouse.lock import WarehouseLock
from mail_warehouse.sync import SyncError, table_exists, table_or_empty

LEDGER = "sync.directo_consent_writes"
MODEL = "marts.directo_optins_to_withdraw"
OPTOUT_CONTENT = "no"


@dataclass(frozen=True)
class ConsentWrite:
    customer_code: str
    opted_out_on: dt.date
    opted_out_by: str
    directo_optin_date: dt.date | None

    def describe(self) -> str:
        known = f"yes dated {self.directo_optin_date}" if self.directo_optin_date else "an undated yes"
        return (
            f"customer {self.customer_code}: OPTIN=no dated {self.opted_out_on} "
            f"(opted out: {self.opted_out_by.replace('_', ' ')}; Directo has {known})"
        )


@dataclass
class ConsentSyncResult:
    dry_run: bool
    to_write: int = 0
    written: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # customer code -> Directo's Desc
    already_written: int = 0
    status: str = "ok"  # ok | failed | skipped
    message: str = ""

    def line(self) -> str:
        if self.status == "skipped":
            return f"sync consent: skipped; {self.message}"
        if not self.to_write:
            head = "sync consent" + (" (dry run)" if self.dry_run else "") + ": no opt-out Directo does not know"
        elif self.dry_run:
            head = f"sync consent (dry run): would write OPTIN=no for {self.to_write:,} Directo customers"
        else:
            head = f"sync consent: {self.written:,} of {self.to_write:,} Directo customers written OPTIN=no"
            if self.refused:
                head += f", {len(self.refused):,} refused by Directo"
        tail = f"; {self.already_written:,} written by earlier runs left alone" if self.already_written else ""
        return head + tail + (f"; {self.message}" if self.message else "")


def ensure_ledger(con) -> None:
    con.execute("create schema if not exists sync")
    con.execute(f"""create table if not exists {LEDGER} (
        customer_code varchar not null, opted_out_on date not null, opted_out_by varchar not null,
        status varchar not null, attempts integer not null, message varchar, run_id varchar not null,
        recorded_at timestamptz not null, written_at timestamptz,
        primary key (customer_code, opted_out_on))""")


def pending_writes(con) -> tuple[list[ConsentWrite], int]:
    """The customers whose opt-out Directo must learn and no earlier run wrote; and how many an earlier run
    wrote already (the model lists them until Directo's next load). Before any real run nothing was written."""
    ledger = table_or_empty(con, LEDGER, {"customer_code": "varchar", "opted_out_on": "date", "status": "varchar"})
    rows = con.execute(f"""select m.customer_code, m.opted_out_on, m.opted_out_by, m.directo_optin_date,
                                  coalesce(l.status = 'written', false) as done
                           from {MODEL} m
                           left join {ledger} l using (customer_code, opted_out_on)
                           order by m.customer_code""").fetchall()
    pending = [ConsentWrite(code, day, by, known) for code, day, by, known, done in rows if not done]
    return pending, sum(1 for *_, done in rows if done)


def _record(con, run_id: str, writes: list[ConsentWrite]) -> None:
    """Every intent in one transaction, before the first call."""
    con.execute("begin")
    con.executemany(
        f"""insert into {LEDGER} by name
            select $code as customer_code, $day as opted_out_on, $by as opted_out_by, 'intent' as status,
                   1 as attempts, null as message, $run as run_id, now() as recorded_at, null as written_at
            on conflict (customer_code, opted_out_on) do update
            set status = 'intent', attempts = attempts + 1, run_id = excluded.run_id,
                recorded_at = excluded.recorded_at""",
        [{"code": w.customer_code, "day": w.opted_out_on, "by": w.opted_out_by, "run": run_id} for w in writes],
    )
    con.execute("commit")


def _record_answer(con, write: ConsentWrite, applied: bool, message: str) -> None:
    con.execute(
        f"""update {LEDGER} set status = $status, message = $message,
                   written_at = case when $applied then now() end
            where customer_code = $code and opted_out_on = $day""",
        {
            "status": "written" if applied else "refused",
            "message": message,
            "applied": applied,
            "code": write.customer_code,
            "day": write.opted_out_on,
        },
    )


def sync_consent(*, dry_run: bool = False, wait_seconds: float = 300, stream=sys.stderr) -> ConsentSyncResult:
    """Write the opt-outs Directo does not know (each customer's outcome printed as it comes); the summary."""
    from mail_warehouse.config import resolve
    from mail_warehouse.settings import configured_sources
    from mail_warehouse_sources.directo import DirectoSourceConfiguration, write_customer_datafields

    if "directo" not in configured_sources():
        return ConsentSyncResult(dry_run, status="skipped", message="Directo is not configured (SOURCES__DIRECTO__URL)")
    config = resolve(DirectoSourceConfiguration, "sources", "directo")
    warehouse = warehouse_settings.warehouse_path()
    with WarehouseLock(warehouse, wait_seconds, command="sync-consent"):
        con = warehouse_settings.connect(warehouse, read_only=dry_run)
        try:
            if not table_exists(con, MODEL):
                raise SyncError(f"{MODEL} is not built: run `warehouse build` first")
            if not dry_run:
                ensure_ledger(con)
            pending, done_before = pending_writes(con)
            result = ConsentSyncResult(dry_run, to_write=len(pending), already_written=done_before)
            if dry_run:
                for write in pending:
                    print(f"sync consent (dry run): would write {write.describe()}", file=stream)
                return result
            if not pending:
                return result
            run_id = uuid.uuid4().hex
            _record(con, run_id, pending)
            started = last_said = time.monotonic()
            for position, write in enumerate(pending, 1):
                answer = write_customer_datafields(
                    config,
                    write.customer_code,
                    {config.optin_datafield: (OPTOUT_CONTENT, write.opted_out_on.isoformat())},
                )
                _record_answer(con, write, answer.applied, answer.message)
                if answer.applied:
                    result.written += 1
                    print(f"sync consent: wrote {write.describe()}", file=stream)
                else:
                    result.refused[write.customer_code] = answer.message
                    print(
                        f"sync consent: Directo refused customer {write.customer_code}: {answer.message}", file=stream
                    )
                if time.monotonic() - last_said > 10:
                    last_said = time.monotonic()
                    print(
                        f"sync consent: {position:,} of {len(pending):,} customers "
                        f"({time.monotonic() - started:.0f} s)",
                        file=stream,
                        flush=True,
                    )
            if result.refused:
                result.status = "failed"
                result.message = "the refused ones are tried again by the next run"
            return result
        finally:
            con.close()
