"""Segments to Spotler Mail+: external campaign triggers and audiences, each contact sent once.

A segment's yml `meta` declares its Spotler targets beside a Deployteq `csv_trigger`:

    spotler_campaign_trigger: reactivatie            # the external trigger's name in Spotler
    spotler_audience: {external_id: reactivatie, name: Reactivatie}

They go out through the `sources.spotler` account (the reporting API's base URL and OAuth keys). Only contacts
the consent guard allows (`marts.contacts.is_mailable`) with a Spotler contact id are sent.

**Campaign triggers: exactly once per contact.** Spotler starts the campaign for one contact per call
(`POST /campaign/trigger/{id}`), so each contact is a delivery of its own:

1. intents an earlier run left unfinished are resumed first (their contacts still pending are checked against
   the guard again: one no longer mailable is recorded `not-sent`);
2. a segment sent to this trigger today is not sent again (no call at all) unless `--force`;
3. the trigger is resolved by name in `GET /campaign/list`: an unknown trigger or an inactive campaign fails
   this target, naming the segment and the trigger;
4. the intent (the export and every contact, `pending`) is committed before the first call;
5. before each group of calls its contacts are recorded `calling`, after it their answers: 204 `triggered`;
   "Contact already in campaign" (or "already active") `triggered` when an earlier call of ours for the contact
   went unanswered (the connection dropped after Spotler acted, in this run or a killed one), else
   `already-in-campaign`; any other refusal `refused` with Spotler's message, the rest going on. 429 (after
   its Retry-After) and 5xx are retried by the loaders' one retry policy.

A run killed anywhere leaves contacts `pending` (never called: called by the next run) or `calling` (perhaps
carried out: called again, and Spotler's "already in campaign" says it was). Nobody is started twice by us and
nobody of the intent is left out.

**Audiences: mirrored.** The audience is created when missing; members who joined the segment are added and
members who left removed (`POST|DELETE /audience/{id}/contact`, at most 2,500 per call), from the members this
warehouse put there (`spotler_export_contacts`). Both calls are idempotent, so an interrupted batch is simply
sent again; contacts Spotler does not know are recorded `refused` and the rest of their batch sent again.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote

from mail_warehouse.consent_guard import ConsentGuard

LOG_SCHEMA = "exports"
MAX_AUDIENCE_BATCH = 2500
UNSETTLED = ("pending", "calling")  # a contact's statuses while its answer is not known
ALREADY_IN_CAMPAIGN = ("already in campaign", "already active in campaign")


class SpotlerTargetError(RuntimeError):
    """A Spotler target that cannot go on; the message names the segment, the target and what to do."""


@dataclass(frozen=True)
class AudienceTarget:
    external_id: str
    name: str


@dataclass(frozen=True)
class SpotlerTargets:
    segment: str
    campaign_trigger: str | None = None
    audience: AudienceTarget | None = None


def targets_from_meta(segment: str, meta: dict, where: str) -> SpotlerTargets | None:
    """The Spotler targets a segment's `meta` declares, checked; None when it declares none."""
    trigger, audience = meta.get("spotler_campaign_trigger"), meta.get("spotler_audience")
    if trigger is None and audience is None:
        return None
    if trigger is not None and (not isinstance(trigger, str) or not trigger.strip()):
        raise SpotlerTargetError(f"{where}: the spotler_campaign_trigger of {segment} must be the trigger's name")
    if audience is not None:
        if not isinstance(audience, dict) or not str(audience.get("external_id") or "").strip():
            raise SpotlerTargetError(f"{where}: the spotler_audience of {segment} needs external_id (and a name)")
        audience = AudienceTarget(
            str(audience["external_id"]).strip(), str(audience.get("name") or audience["external_id"]).strip()
        )
    return SpotlerTargets(segment, trigger.strip() if trigger else None, audience)


# --- the log ----------------------------------------------------------------------------------------------


def ensure_log(con) -> None:
    """`spotler_export_log`: one row per export of a segment to a Spotler target, `intent` until every contact
    has an answer, then `done` with the counts; `spotler_export_contacts`: each contact's action and outcome."""
    con.execute(f"create schema if not exists {LOG_SCHEMA}")
    con.execute(f"""create table if not exists {LOG_SCHEMA}.spotler_export_log (
        export_id varchar primary key, segment varchar not null, target_kind varchar not null,
        target varchar not null, target_id varchar, export_day date not null, contacts bigint not null,
        excluded_by_consent bigint not null, status varchar not null, recorded_at timestamptz not null,
        finished_at timestamptz, triggered bigint, already_in_campaign bigint, refused bigint, not_sent bigint,
        added bigint, removed bigint, note varchar)""")
    con.execute(f"""create table if not exists {LOG_SCHEMA}.spotler_export_contacts (
        export_id varchar not null, contact_key varchar, email varchar, external_contact_id varchar not null,
        action varchar not null, status varchar not null, attempts integer not null default 0,
        message varchar, answered_at timestamptz)""")


@dataclass
class SpotlerResult:
    segment: str
    target: str  # e.g. Spotler trigger 'reactivatie'
    status: str  # sent | skipped | dry-run | failed | resumed
    counts: dict[str, int] = field(default_factory=dict)
    excluded: int = 0
    excluded_by_reason: dict[str, int] | None = None
    message: str = ""

    def line(self) -> str:
        counts = ", ".join(f"{count:,} {status.replace('-', ' ')}" for status, count in self.counts.items() if count)
        reasons = ", ".join(f"{count:,} {reason}" for reason, count in (self.excluded_by_reason or {}).items())
        return (
            f"export {self.segment} to {self.target}: {self.status}"
            + (f", {counts}" if counts else "")
            + (f" ({self.excluded:,} left out" + (f": {reasons}" if reasons else "") + ")" if self.excluded else "")
            + (f"; {self.message}" if self.message else "")
        )


# --- the way back ---------------------------------------------------------------------------------------------


class SpotlerWayBack:
    """The Spotler targets of every segment over one client and one warehouse connection."""

    def __init__(
        self,
        con,
        config,
        *,
        today: dt.date,
        force: bool = False,
        dry_run: bool = False,
        stream=sys.stderr,
        audience_batch: int = MAX_AUDIENCE_BATCH,
    ) -> None:
        from mail_warehouse_sources.spotler.client import SpotlerClient

        self.con, self.config, self.today, self.stream = con, config, today, stream
        self.force, self.dry_run = force, dry_run
        self.audience_batch = max(1, min(audience_batch, MAX_AUDIENCE_BATCH))
        self.client = SpotlerClient(config, log=self._say)
        self.workers = max(1, config.max_parallel_requests)
        self.guard = ConsentGuard.of(con, needs="spotler_external_id", missing_reason="no Spotler contact")
        self._campaigns: list[dict] | None = None

    def _say(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def export(self, targets: SpotlerTargets) -> list[SpotlerResult]:
        from mail_warehouse_sources.spotler.config import SpotlerError

        results: list[SpotlerResult] = []
        sends: list[tuple[str, Callable[[str], list[SpotlerResult]]]] = []  # (label, send(label)) of each target
        if targets.campaign_trigger is not None:
            trigger = targets.campaign_trigger
            sends.append(
                (_label("campaign_trigger", trigger), functools.partial(self._trigger, targets.segment, trigger))
            )
        if targets.audience is not None:
            audience = targets.audience
            sends.append(
                (_label("audience", audience.external_id), functools.partial(self._audience, targets.segment, audience))
            )
        for label, send in sends:
            try:
                results.extend(send(label))
            except (SpotlerTargetError, SpotlerError) as error:
                results.append(
                    SpotlerResult(
                        targets.segment,
                        label,
                        "failed",
                        message=(f"{error}; what was recorded stays: the next export carries on from it"),
                    )
                )
        return results

    # --- campaign triggers ---

    def campaigns(self) -> list[dict]:
        if self._campaigns is None:
            from mail_warehouse_sources.spotler.config import SpotlerError

            answer = self.client.send("GET", "GET /campaign/list", "/campaign/list")
            if not answer.ok or not isinstance(answer.body, list):
                raise SpotlerError(f"GET /campaign/list: HTTP {answer.status} {answer.message}")
            self._campaigns = answer.body
        return self._campaigns

    def resolve_trigger(self, segment: str, trigger_name: str) -> str:
        """The encrypted id of the external trigger of this name (exact, else ignoring case), of an active campaign."""
        found = [(c, t) for c in self.campaigns() for t in c.get("triggers") or [] if t.get("name") == trigger_name]
        found = found or [
            (c, t)
            for c in self.campaigns()
            for t in c.get("triggers") or []
            if str(t.get("name", "")).casefold() == trigger_name.casefold()
        ]
        if not found:
            known = sorted({str(t.get("name")) for c in self.campaigns() for t in c.get("triggers") or []})
            raise SpotlerTargetError(
                f"segment {segment}: Spotler has no external campaign trigger named "
                f"{trigger_name!r} (its triggers: {', '.join(known) or 'none'}); check "
                "spotler_campaign_trigger in the segment's yml"
            )
        if len(found) > 1:
            raise SpotlerTargetError(
                f"segment {segment}: {len(found)} Spotler triggers are named {trigger_name!r} "
                f"(campaigns {', '.join(str(c.get('name')) for c, _ in found)}); give one "
                "another name"
            )
        campaign, trigger = found[0]
        if campaign.get("active") is False:
            raise SpotlerTargetError(
                f"segment {segment}: the Spotler campaign {campaign.get('name')!r} of trigger "
                f"{trigger_name!r} is inactive; activate it in Spotler, then export again"
            )
        return str(trigger["encryptedId"])

    def _trigger(self, segment: str, trigger_name: str, label: str) -> list[SpotlerResult]:
        results = [
            self._resume(export_id, segment, label, lambda: self.resolve_trigger(segment, trigger_name))
            for export_id in self._unfinished(segment, "campaign_trigger", trigger_name)
        ]
        skipped = self._sent_today(segment, "campaign_trigger", trigger_name, label)
        if skipped:
            return [*results, skipped]
        trigger_id = self.resolve_trigger(segment, trigger_name)
        rows, excluded, by_reason = self._rows(segment)
        if self.dry_run:
            return [
                *results,
                SpotlerResult(
                    segment,
                    label,
                    "dry-run",
                    {"would trigger": len(rows)},
                    excluded,
                    by_reason,
                    f"the trigger resolves to {trigger_id}; nothing was sent",
                ),
            ]
        if not rows:
            return [
                *results,
                SpotlerResult(segment, label, "skipped", {}, excluded, by_reason, "the segment has nobody to send"),
            ]
        export_id = self._record_intent(
            segment, "campaign_trigger", trigger_name, trigger_id, excluded, [(*row, "trigger") for row in rows]
        )
        self._say(f"export {segment}: triggering {trigger_name!r} in Spotler for {len(rows):,} contacts")
        return [*results, self._send_triggers(export_id, segment, label, trigger_id, excluded, by_reason)]

    def _send_triggers(
        self,
        export_id: str,
        segment: str,
        label: str,
        trigger_id: str,
        excluded: int = 0,
        by_reason: dict[str, int] | None = None,
        status: str = "sent",
    ) -> SpotlerResult:
        todo = self.con.execute(
            f"""select external_contact_id, status from {LOG_SCHEMA}.spotler_export_contacts
                                    where export_id = $id and status in {UNSETTLED} order by external_contact_id""",
            {"id": export_id},
        ).fetchall()
        path = f"/campaign/trigger/{quote(trigger_id, safe='')}"
        done = 0
        with ThreadPoolExecutor(self.workers) as pool:
            for start in range(0, len(todo), self.workers):
                group = todo[start : start + self.workers]
                ids = [contact for contact, _ in group]
                self._mark_calling(export_id, ids)
                answers = pool.map(
                    lambda contact: self.client.send(
                        "POST", "POST /campaign/trigger/{encryptedTriggerId}", path, {"externalContactId": contact}
                    ),
                    ids,
                )
                outcomes = [
                    _trigger_outcome(answer, was_calling=before == "calling")
                    for (_, before), answer in zip(group, answers, strict=True)
                ]
                self._record_answers(
                    export_id, [(contact, *outcome) for contact, outcome in zip(ids, outcomes, strict=True)]
                )
                done += len(group)
                if done % 500 < self.workers or done == len(todo):
                    self._say(f"  {label}: {done:,} of {len(todo):,} contacts answered")
        return self._finish(export_id, segment, label, status, excluded, by_reason)

    # --- audiences ---

    def ensure_audience(self, segment: str, audience: AudienceTarget) -> bool:
        """The audience exists in Spotler with its name; True when this call created it (so it is empty)."""
        path = f"/audience/{quote(audience.external_id, safe='')}"
        found = self.client.send("GET", "GET /audience/{externalId}", path)
        _refuse_without_product(found, segment)
        if found.ok:
            if isinstance(found.body, dict) and found.body.get("name") not in (None, audience.name):
                renamed = self.client.send(
                    "PUT",
                    "PUT /audience/{externalId}",
                    path,
                    {"externalId": audience.external_id, "name": audience.name},
                )
                if not renamed.ok:
                    self._say(
                        f"  audience {audience.external_id}: renaming to {audience.name!r} refused "
                        f"(HTTP {renamed.status} {renamed.message}); members are mirrored all the same"
                    )
            return False
        if found.status != 404:
            raise SpotlerTargetError(
                f"segment {segment}: GET audience {audience.external_id}: HTTP {found.status} {found.message}"
            )
        if self.dry_run:
            return True
        created = self.client.send(
            "POST", "POST /audience", "/audience", {"externalId": audience.external_id, "name": audience.name}
        )
        _refuse_without_product(created, segment)
        if created.ok:
            return True
        if created.status == 417 and "id must be unique" in created.message.lower():
            return False  # created by an earlier attempt whose answer was lost
        raise SpotlerTargetError(
            f"segment {segment}: creating audience {audience.external_id} "
            f"({audience.name!r}) refused: HTTP {created.status} {created.message}"
        )

    def _audience(self, segment: str, audience: AudienceTarget, label: str) -> list[SpotlerResult]:
        results = [
            self._resume(export_id, segment, label, lambda: audience.external_id)
            for export_id in self._unfinished(segment, "audience", audience.external_id)
        ]
        skipped = self._sent_today(segment, "audience", audience.external_id, label)
        if skipped:
            return [*results, skipped]
        created = self.ensure_audience(segment, audience)
        rows, excluded, by_reason = self._rows(segment)
        members = {} if created else self._members(audience.external_id)
        wanted = {row[2]: row for row in rows}
        joined = [(*wanted[c], "add") for c in sorted(set(wanted) - set(members))]
        left = [(*members[c], "remove") for c in sorted(set(members) - set(wanted))]
        if self.dry_run:
            return [
                *results,
                SpotlerResult(
                    segment,
                    label,
                    "dry-run",
                    {"would add": len(joined), "would remove": len(left)},
                    excluded,
                    by_reason,
                    ("the audience would be created; " if created else "")
                    + f"{len(wanted):,} members after; nothing was sent",
                ),
            ]
        export_id = self._record_intent(
            segment, "audience", audience.external_id, audience.external_id, excluded, joined + left
        )
        if joined or left:
            self._say(
                f"export {segment}: audience {audience.external_id}: adding {len(joined):,}, removing {len(left):,}"
            )
        return [*results, self._send_audience(export_id, segment, label, audience.external_id, excluded, by_reason)]

    def _send_audience(
        self,
        export_id: str,
        segment: str,
        label: str,
        audience_id: str,
        excluded: int = 0,
        by_reason: dict[str, int] | None = None,
        status: str = "sent",
    ) -> SpotlerResult:
        path = f"/audience/{quote(audience_id, safe='')}/contact"
        for action, method in (("add", "POST"), ("remove", "DELETE")):
            todo = [
                row[0]
                for row in self.con.execute(
                    f"""select external_contact_id from {LOG_SCHEMA}.spotler_export_contacts
                    where export_id = $id and action = $action and status in {UNSETTLED}
                    order by external_contact_id""",
                    {"id": export_id, "action": action},
                ).fetchall()
            ]
            for start in range(0, len(todo), self.audience_batch):
                self._send_batch(export_id, segment, method, path, todo[start : start + self.audience_batch], action)
        return self._finish(export_id, segment, label, status, excluded, by_reason)

    def _send_batch(self, export_id: str, segment: str, method: str, path: str, batch: list[str], action: str) -> None:
        self._mark_calling(export_id, batch)
        while batch:
            answer = self.client.send(method, f"{method} /audience/{{externalId}}/contact", path, {"contacts": batch})
            _refuse_without_product(answer, segment)
            unknown = (
                set(answer.body.get("externalContactIds") or [])
                if (answer.status == 404 and isinstance(answer.body, dict))
                else set()
            )
            if answer.ok:
                self._record_answers(export_id, [(c, "added" if action == "add" else "removed", None) for c in batch])
                return
            if unknown & set(batch):
                self._record_answers(export_id, [(c, "refused", "Contact not found") for c in batch if c in unknown])
                batch = [c for c in batch if c not in unknown]
                continue
            raise SpotlerTargetError(f"segment {segment}: {method} {path}: HTTP {answer.status} {answer.message}")

    def _members(self, audience_id: str) -> dict[str, tuple]:
        """The members this warehouse put in the audience and has not taken out: each contact's latest add or
        remove that Spotler answered."""
        rows = self.con.execute(
            f"""
            select c.contact_key, c.email, c.external_contact_id, c.status
            from {LOG_SCHEMA}.spotler_export_contacts c
            inner join {LOG_SCHEMA}.spotler_export_log l on l.export_id = c.export_id
            where l.target_kind = 'audience' and l.target = $a and c.status in ('added', 'removed')
            qualify row_number() over (partition by c.external_contact_id
                                       order by c.answered_at desc, l.recorded_at desc) = 1
        """,
            {"a": audience_id},
        ).fetchall()
        return {row[2]: row[:3] for row in rows if row[3] == "added"}

    # --- shared: intents, resuming, outcomes ---

    def _rows(self, segment: str) -> tuple[list[tuple], int, dict[str, int]]:
        rows = self.con.execute(f"""select distinct c.contact_key, c.email, c.spotler_external_id
                                    from {self.guard.rows(segment)} order by 3""").fetchall()
        (total,) = self.con.execute(f"select count(*) from segments.{segment}").fetchone()
        excluded = total - len(rows)
        return rows, excluded, (self.guard.left_out_by_reason(self.con, segment) if excluded else {})

    def _unfinished(self, segment: str, kind: str, target: str) -> list[str]:
        if self.dry_run:
            return []
        return [
            row[0]
            for row in self.con.execute(
                f"""select export_id from {LOG_SCHEMA}.spotler_export_log where segment = $s and target_kind = $k
                and target = $t and status = 'intent' order by recorded_at""",
                {"s": segment, "k": kind, "t": target},
            ).fetchall()
        ]

    def _sent_today(self, segment: str, kind: str, target: str, label: str) -> SpotlerResult | None:
        if self.force or self.dry_run:
            return None
        found = self.con.execute(
            f"""select count(*) from {LOG_SCHEMA}.spotler_export_log where segment = $s
                                     and target_kind = $k and target = $t and export_day = $d and status = 'done'""",
            {"s": segment, "k": kind, "t": target, "d": self.today},
        ).fetchone()[0]
        return (
            SpotlerResult(segment, label, "skipped", message="already sent today (--force sends again)")
            if found
            else None
        )

    def _record_intent(
        self, segment: str, kind: str, target: str, target_id: str, excluded: int, rows: list[tuple]
    ) -> str:
        """The export and every contact it will send, committed in one transaction before the first call."""
        export_id = str(uuid.uuid4())
        self.con.execute("begin")
        try:
            self.con.execute(
                f"""insert into {LOG_SCHEMA}.spotler_export_log (export_id, segment, target_kind,
                                     target, target_id, export_day, contacts, excluded_by_consent, status, recorded_at)
                                 values ($id, $s, $k, $t, $tid, $d, $n, $x, 'intent', now())""",
                {
                    "id": export_id,
                    "s": segment,
                    "k": kind,
                    "t": target,
                    "tid": target_id,
                    "d": self.today,
                    "n": len(rows),
                    "x": excluded,
                },
            )
            if rows:
                self.con.executemany(
                    f"""insert into {LOG_SCHEMA}.spotler_export_contacts
                                             (export_id, contact_key, email, external_contact_id, action, status)
                                         values (?, ?, ?, ?, ?, 'pending')""",
                    [(export_id, *row) for row in rows],
                )
            self.con.execute("commit")
        except BaseException:
            self.con.execute("rollback")
            raise
        return export_id

    def _resume(self, export_id: str, segment: str, label: str, target_id) -> SpotlerResult:
        """Finish an export a killed or failed run left: its pending contacts the guard no longer allows are not
        sent; the rest (and those whose call may have been carried out) are sent."""
        self.con.execute(
            f"""update {LOG_SCHEMA}.spotler_export_contacts x
                             set status = 'not-sent', answered_at = now(),
                                 message = 'no longer mailable when the export was resumed'
                             where export_id = $id and status = 'pending' and action <> 'remove'
                               and not exists (select 1 from marts.contacts c
                                               where c.email = x.email and {self.guard.condition})""",
            {"id": export_id},
        )
        (kind,) = self.con.execute(
            f"select target_kind from {LOG_SCHEMA}.spotler_export_log where export_id = $id", {"id": export_id}
        ).fetchone()
        self._say(f"export {segment}: resuming an interrupted export to {label}")
        if kind == "campaign_trigger":
            return self._send_triggers(export_id, segment, label, target_id(), status="resumed")
        return self._send_audience(export_id, segment, label, target_id(), status="resumed")

    def _mark_calling(self, export_id: str, contacts: list[str]) -> None:
        self.con.execute(
            f"""update {LOG_SCHEMA}.spotler_export_contacts set status = 'calling', attempts = attempts + 1
                             where export_id = $id and external_contact_id in (select unnest($ids))""",
            {"id": export_id, "ids": contacts},
        )

    def _record_answers(self, export_id: str, outcomes: list[tuple[str, str, str | None]]) -> None:
        self.con.executemany(
            f"""update {LOG_SCHEMA}.spotler_export_contacts
                                 set status = ?, message = ?, answered_at = now()
                                 where export_id = ? and external_contact_id = ?""",
            [(status, message, export_id, contact) for contact, status, message in outcomes],
        )

    def _finish(
        self, export_id: str, segment: str, label: str, status: str, excluded: int, by_reason: dict[str, int] | None
    ) -> SpotlerResult:
        counts = dict(
            self.con.execute(
                f"""select status, count(*) from {LOG_SCHEMA}.spotler_export_contacts
                                          where export_id = $id group by 1""",
                {"id": export_id},
            ).fetchall()
        )
        self.con.execute(
            f"""update {LOG_SCHEMA}.spotler_export_log
                             set status = 'done', finished_at = now(), triggered = $t, already_in_campaign = $a,
                                 refused = $r, not_sent = $n, added = $ad, removed = $rm
                             where export_id = $id""",
            {
                "id": export_id,
                "t": counts.get("triggered", 0),
                "a": counts.get("already-in-campaign", 0),
                "r": counts.get("refused", 0),
                "n": counts.get("not-sent", 0),
                "ad": counts.get("added", 0),
                "rm": counts.get("removed", 0),
            },
        )
        refusals = self.con.execute(
            f"""select message, count(*) from {LOG_SCHEMA}.spotler_export_contacts
                                        where export_id = $id and status = 'refused' group by 1 order by 2 desc""",
            {"id": export_id},
        ).fetchall()
        order = ("triggered", "already-in-campaign", "added", "removed", "refused", "not-sent")
        return SpotlerResult(
            segment,
            label,
            status,
            {key: counts.get(key, 0) for key in order},
            excluded,
            by_reason,
            "; ".join(f"refused: {message} {count:,}" for message, count in refusals),
        )


def status_lines(con) -> list[str]:
    """Every Spotler export in the log, newest last: its target, day and per-contact outcomes."""
    rows = con.execute(f"""
        select l.segment, l.target_kind, l.target, l.export_day, l.status, l.contacts,
               count(*) filter (where c.status = 'triggered'), count(*) filter (where c.status = 'already-in-campaign'),
               count(*) filter (where c.status = 'added'), count(*) filter (where c.status = 'removed'),
               count(*) filter (where c.status = 'refused'), count(*) filter (where c.status = 'not-sent'),
               count(*) filter (where c.status in {UNSETTLED})
        from {LOG_SCHEMA}.spotler_export_log l
        left join {LOG_SCHEMA}.spotler_export_contacts c using (export_id)
        group by all order by l.export_day, l.segment, l.target_kind, l.target""").fetchall()
    lines = []
    for segment, kind, target, day, status, _contacts, *counts in rows:
        named = ("triggered", "already in campaign", "added", "removed", "refused", "not sent", "not answered yet")
        told = ", ".join(f"{count:,} {name}" for name, count in zip(named, counts, strict=True) if count)
        state = "interrupted, resumed by the next export" if status == "intent" else status
        lines.append(f"{segment}: {_label(kind, target)} {day:%Y-%m-%d} {state}: {told or 'nobody to send'}")
    return lines


def _label(kind: str, name: str) -> str:
    return f"Spotler trigger {name!r}" if kind == "campaign_trigger" else f"Spotler audience {name!r}"


def _trigger_outcome(answer, *, was_calling: bool) -> tuple[str, str | None]:
    """A trigger call's answer as the contact's status and note."""
    if answer.ok:
        return "triggered", None
    message = answer.message
    if answer.status == 400 and any(text in message.lower() for text in ALREADY_IN_CAMPAIGN):
        if was_calling or answer.after_lost_answer:
            return "triggered", "an earlier call went unanswered; Spotler says it started the campaign"
        return "already-in-campaign", message
    if answer.status == 404:
        raise SpotlerTargetError(
            f"POST /campaign/trigger: HTTP 404 {message or 'trigger not found'} (the trigger "
            "was removed in Spotler during the export)"
        )
    return "refused", f"{message or 'HTTP ' + str(answer.status)}"


def _refuse_without_product(answer, segment: str) -> None:
    if answer.status == 403:
        raise SpotlerTargetError(
            f"segment {segment}: this Spotler account may not use audiences (HTTP 403: "
            f"{answer.message or 'only Automation or eCommerce products can use this call'})"
        )


def spotler_account():
    """The `sources.spotler` account when this company has one configured (its consumer key is set), else None.
    Its settings are checked as the loader checks them."""
    from mail_warehouse.config import resolve
    from mail_warehouse.settings import configured_sources
    from mail_warehouse_sources.spotler.config import SpotlerSourceConfiguration

    if "spotler" not in configured_sources():
        return None
    return resolve(SpotlerSourceConfiguration, "sources", "spotler")
