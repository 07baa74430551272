"""The Spotler Mail+ dlt sources: `spotler_source()`, one resource per `raw_spotler` table, and
`spotler_contacts_source(external_ids)`, the per-contact histories on demand.

Resources share one client (one call budget) and one `SpotlerSync`, which fetches what several tables need
once per run, whichever resource asks first, and keeps it by what was asked: the mailing list by its `since`,
a mailing's details by its id (mailings, mailing_links), the campaign mailings and their details (their
lists, campaign_mailings, mailing_links), the forms (their results). So any extract order of dlt's gives the
same calls and rows, and a whole run asks each thing once.

State (dlt's, committed with the load it belongs to) is each resource's own, so any selection of resources,
run in any order and followed by the whole source, loads what one whole run loads:
- mailings, mailing_links, mailing_statistics_snapshots and clicks each keep the mailings they know
  (`mailings`: id and scheduled start) and their own mailing-list cursor (`mailings_since`, moved once the
  resource got through); mailings and mailing_links fetch the details of the listed mailings they do not know,
  the statistics and clicks take the ones they know still settling plus those they do not know, whatever age;
- mailing_links and campaign_mailings each keep the campaign mailings they know (`campaign_mailings`);
- the campaign lists and form_results keep a date cursor per item (`cursors`); the three account-wide feeds
  and the contacts are `dlt.sources.incremental` on their change date (contacts: lastChanged);
- the call budget: each resource keeps whether its last run was cut short (`budget_reached`) and the items it
  fetched in the current cycle (`cycle_done`); see `ResourceWork`.
A resource without state of its own in a pipeline the older code wrote starts from a copy of the source-level
`mailings`, `mailings_since`, `campaign_mailings` and `cycle_done` it left (read, never written).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import dlt
import pyarrow as pa
from dlt.extract.items_transform import MapItem

from mail_warehouse_sources.spotler import rows
from mail_warehouse_sources.spotler.client import CallBudgetReached, SpotlerClient
from mail_warehouse_sources.spotler.config import SpotlerSourceConfiguration, iso, require_time
from mail_warehouse_sources.suppression import Suppression

FEEDS = {"sent": "recipients", "opened": "opens", "bounced": "bounces"}
CAMPAIGN_LISTS = {
    "recipients": "campaign_recipients",
    "opens": "campaign_opens",
    "clicks": "campaign_clicks",
    "bounces": "campaign_bounces",
}
CURSOR_OVERLAP = dt.timedelta(days=1)
Item = TypeVar("Item")
Result = TypeVar("Result")
# Contacts are asked from far back on the first sync, whatever start_date says: the address map and consent
# need everyone, also those who last changed long ago.
CONTACTS_FIRST_CHANGE = dt.datetime(
    2000, 1, 1, tzinfo=dt.UTC
)  # date filters are re-asked with a day's overlap; keys merge it away


@dataclass
class SyncReport:
    """What a run cost and brought: calls per endpoint, rows per table, and why it stopped."""

    rows: Counter = field(default_factory=Counter)
    calls: Counter = field(default_factory=Counter)
    settling: int = 0
    new_mailings: int = 0
    budget_reached: bool = False
    suppressed_rows: int = 0  # rows of forgotten people left out (`rows` counts what was loaded)
    suppressed_contacts: int = 0  # contacts asked for whose histories were not fetched: they were forgotten

    def lines(self) -> list[str]:
        out = [
            f"spotler: {sum(self.calls.values())} calls, {self.new_mailings} new mailings, {self.settling} "
            f"mailings still settling"
            + ("; stopped at max_calls_per_run, the next run carries on" if self.budget_reached else "")
            + (f"; {self.suppressed_rows:,} rows of forgotten people left out" if self.suppressed_rows else "")
            + (
                f"; {self.suppressed_contacts:,} forgotten contacts' histories not fetched"
                if self.suppressed_contacts
                else ""
            )
        ]
        out.append("  calls: " + ", ".join(f"{k} {v}" for k, v in sorted(self.calls.items())))
        out.append("  rows: " + (", ".join(f"{k} {v:,}" for k, v in sorted(self.rows.items())) or "none"))
        return out


class SpotlerSync:
    """One run's shared fetches, each made once, whichever resource asks first, and kept by what was asked
    (the mailing list by its `since`, details by mailing id), so resources whose cursors agree share the calls.

    A fetch holds no state; each resource keeps its own in its `ResourceWork`. What the budget left unfetched
    is not kept: every resource asking for it is told the budget ran out.
    """

    def __init__(
        self, client: SpotlerClient, config: SpotlerSourceConfiguration, report: SyncReport, now: dt.datetime
    ) -> None:
        self.client, self.config, self.report, self.now = client, config, report, now
        self.zone = config.zone
        self.start = config.first_day(now)
        self._once: dict[object, tuple[object, bool]] = {}
        self._each: dict[str, dict[str, object]] = {}
        self._new_cycle: bool | None = None

    def new_cycle(self) -> bool:
        """Whether this run starts a new budget cycle: no selected resource's last run was cut short. Read once,
        before any resource of this run writes its own flag; a resource that never ran since the upgrade counts
        with the flag the old code kept in the source's state."""
        if self._new_cycle is None:
            source_state = dlt.current.source_state()
            flags = source_state.get("resources", {})
            old_flag = source_state.get("budget_reached", False)
            self._new_cycle = not any(
                flags.get(name, {}).get("budget_reached", old_flag) for name in dlt.current.source().selected_resources
            )
        return self._new_cycle

    def parallel(self, action: Callable[[Item], Result], items: list[Item]) -> tuple[list[tuple[Item, Result]], bool]:
        """(item, result) of each item the budget allowed, in order, calls in parallel; and whether that was all."""

        def attempt(item):
            try:
                return item, action(item), True
            except CallBudgetReached:
                return item, None, False

        done: list[tuple[Item, Result]] = []
        complete = True
        with ThreadPoolExecutor(self.config.max_parallel_requests, thread_name_prefix="spotler") as pool:
            for item, result, ok in pool.map(attempt, items):
                if ok:
                    done.append((item, result))
                complete = complete and ok
        return done, complete

    def once(self, work: ResourceWork, name: object, fetch: Callable[[], Result], nothing: Result) -> Result:
        """The result of `fetch`, fetched on first use in this run; `nothing` when the budget ran out first."""
        if name not in self._once:
            try:
                self._once[name] = (fetch(), True)
            except CallBudgetReached:
                self._once[name] = (nothing, False)
        result, complete = self._once[name]
        if not complete:
            work.budget_reached()
        return result  # type: ignore[return-value]

    def each(
        self,
        work: ResourceWork,
        name: str,
        action: Callable[[Item], Result],
        items: Iterable[Item],
        ident: Callable[[Item], str],
    ) -> list[tuple[Item, Result]]:
        """(item, result) of `action` for each item, fetched once per run and item (`name`: which fetch), calls
        in parallel; items the budget left unfetched are left out."""
        fetched = self._each.setdefault(name, {})
        items = list(items)
        todo = list({ident(item): item for item in items if ident(item) not in fetched}.values())
        done, complete = self.parallel(action, todo)
        fetched.update((ident(item), result) for item, result in done)
        if not complete:
            work.budget_reached()
        return [(item, fetched[ident(item)]) for item in items if ident(item) in fetched]  # type: ignore[misc]

    def since(self, cursors: dict, name: str) -> dt.datetime:
        """Where a date-filtered list resumes: its cursor less a day's overlap, or the first day."""
        return require_time(cursors[name]) - CURSOR_OVERLAP if name in cursors else self.start

    def emit(self, table: str, items: list[dict]) -> Iterator[pa.Table]:
        if items:
            self.report.rows[table] += len(items)
            yield rows.arrow_table(items, table)

    # --- what several tables share ------------------------------------------------------------------

    def mailing_list(self, work: ResourceWork) -> list[dict]:
        """Every mailing listed since the resource's cursor (`GET /mailing`, once per run and `since`)."""
        since = self.since(work.state, "mailings_since")

        def fetch() -> list[dict]:
            return [
                rows.mailing(m, self.zone)
                for m in self.client.get("GET /mailing", "/mailing", {"fromDate": iso(since), "toDate": iso(self.now)})
            ]

        return self.once(work, ("mailings", iso(since)), fetch, nothing=[])

    def new_mailings(self, work: ResourceWork) -> tuple[list[dict], list[tuple[dict, dict]]]:
        """(every mailing listed since the resource's cursor, (mailing, details) of those it does not know)."""
        listed = self.mailing_list(work)
        known = work.known_mailings()
        new = self.each(
            work,
            "mailing details",
            lambda m: self.client.get("GET /mailing/{encryptedMailingId}", f"/mailing/{m['encrypted_id']}"),
            [m for m in listed if m["encrypted_id"] not in known],
            ident=lambda m: m["encrypted_id"],
        )
        self.report.new_mailings = len(self._each["mailing details"])
        return listed, new

    def settling(self, work: ResourceWork) -> list[dict]:
        """The mailings the resource knows that are still settling (sent within `settle_days`), and the new
        ones once whatever their age."""
        known = work.known_mailings()
        window = self.now - dt.timedelta(days=self.config.settle_days)
        chosen = {mid: sent for mid, sent in known.items() if require_time(sent) >= window}
        self.report.settling = max(self.report.settling, len(chosen))
        for m in self.mailing_list(work):
            if m["encrypted_id"] not in known:
                chosen.setdefault(m["encrypted_id"], iso(m["scheduled_start_date"]))
        return [{"encrypted_id": mid, "sent": sent} for mid, sent in chosen.items()]

    def campaigns(self, work: ResourceWork) -> list[dict]:
        return self.once(work, "campaigns", lambda: self.client.get("GET /campaign/list", "/campaign/list"), [])

    def campaign_mailings(self, work: ResourceWork) -> list[tuple[str, dict]]:
        """(campaign id, mailing) of every campaign, asked every run."""
        listed = self.each(
            work,
            "campaign mailings",
            lambda c: self.client.get(
                "GET /campaign/{encryptedCampaignId}/mailing", f"/campaign/{c['encryptedId']}/mailing"
            ),
            self.campaigns(work),
            ident=lambda c: c["encryptedId"],
        )
        return [(c["encryptedId"], m) for c, mailings in listed for m in mailings]

    def new_campaign_mailing_details(self, work: ResourceWork) -> list[tuple[tuple[str, dict], dict]]:
        """((campaign id, mailing), details) of the campaign mailings the resource does not know yet; it knows
        them from now on."""
        known: list = work.state["campaign_mailings"]
        details = self.each(
            work,
            "campaign mailing details",
            lambda item: self.client.get(
                "GET /campaign-mailing/{encryptedMailingId}", f"/campaign-mailing/{item[1]['encryptedId']}"
            ),
            [(cid, m) for cid, m in self.campaign_mailings(work) if m["encryptedId"] not in known],
            ident=lambda item: item[1]["encryptedId"],
        )
        known.extend(m["encryptedId"] for (_, m), _ in details)
        return details

    def forms(self, work: ResourceWork) -> list[dict]:
        return self.once(work, "forms", lambda: self.client.get("GET /form/list", "/form/list"), [])


# The keys the source's state held before each resource kept its own (read to upgrade, never written).
MAILING_KEYS = ("mailings", "mailings_since")
CAMPAIGN_MAILING_KEYS = ("campaign_mailings",)


class ResourceWork:
    """One resource's part of a run: its own dlt resource state, and in it its part of the call-budget cycle.

    When the budget runs out, what was fetched is kept (its cursors move) and the rest waits. Until a run gets
    through everything, items a resource already fetched in this cycle are skipped, so a budget smaller than
    one whole run still gets through, run by run. Each resource keeps its own cycle (the items it fetched) and
    whether its last run was cut short; a new cycle starts only when no selected resource's last run was: a
    resource that got through must not start over while another still waits for the budget. Made inside the
    resource's generator, where dlt knows whose state it is.
    """

    def __init__(self, sync: SpotlerSync, defaults: dict | None = None, legacy: tuple[str, ...] = ()) -> None:
        self.sync = sync
        self.new_cycle = sync.new_cycle()  # read before this resource writes its own flag below
        self.state = dlt.current.resource_state()
        # a pipeline whose source-level state the old code wrote: start from a copy of what it knew
        if legacy and not any(key in self.state for key in legacy):
            old = dlt.current.source_state()
            self.state.update({key: copy.deepcopy(old[key]) for key in legacy if key in old})
        for key, value in (defaults or {}).items():
            self.state.setdefault(key, value)
        self.state["budget_reached"] = self.exhausted = False
        self._cycle: list[str] | None = None

    def budget_reached(self) -> None:
        self.state["budget_reached"] = self.exhausted = self.sync.report.budget_reached = True

    @property
    def cycle(self) -> list[str]:
        """Keys of the items this resource fetched in the current cycle."""
        if self._cycle is None:
            if self.new_cycle:
                self.state["cycle_done"] = []
            elif "cycle_done" not in self.state:  # the cycle the old code kept in the source's state
                self.state["cycle_done"] = list(dlt.current.source_state().get("cycle_done", []))
            self._cycle = self.state["cycle_done"]
        return self._cycle

    def known_mailings(self) -> dict[str, str]:
        """{mailing id: scheduled start} of the mailings this resource has fetched."""
        return self.state["mailings"]

    def know_mailings(self, listed: Iterable[dict]) -> None:
        self.known_mailings().update((m["encrypted_id"], iso(m["scheduled_start_date"])) for m in listed)

    def mailings_done(self) -> None:
        """The mailing-list cursor moves once the resource got through everything."""
        if not self.exhausted:
            self.state["mailings_since"] = iso(self.sync.now)

    def gather(
        self, action: Callable[[Item], Result], items: Iterable[Item], key: Callable[[Item], str]
    ) -> list[tuple[Item, Result]]:
        """(item, result) for each item, in order, calls in parallel; items whose `key` this resource fetched in
        this cycle are skipped."""
        cycle = self.cycle
        done, complete = self.sync.parallel(action, [item for item in items if key(item) not in cycle])
        cycle.extend(key(item) for item, _ in done)
        if not complete:
            self.budget_reached()
        return done


# --- the resources --------------------------------------------------------------------------------------


def _merge(table: str) -> dict:
    return {"name": table, "write_disposition": "merge", "primary_key": rows.PRIMARY_KEYS[table]}


def _mailing_work(sync: SpotlerSync, *, campaign_mailings: bool = False) -> ResourceWork:
    """The state of a resource that follows the mailing list: the mailings it knows and its cursor."""
    if campaign_mailings:
        return ResourceWork(sync, {"mailings": {}, "campaign_mailings": []}, MAILING_KEYS + CAMPAIGN_MAILING_KEYS)
    return ResourceWork(sync, {"mailings": {}}, MAILING_KEYS)


def _mailing_resources(sync: SpotlerSync) -> list:
    @dlt.resource(**_merge("mailings"))
    def mailings():
        work = _mailing_work(sync)
        listed, new = sync.new_mailings(work)
        details = {m["encrypted_id"]: body for m, body in new}

        def with_details(m: dict, body: dict) -> dict:  # a copy: the listing is shared with other resources
            return {
                **m,
                "sender": body.get("sender"),
                "target_group": body.get("targetGroup"),
                **rows.message(body),
                "details_fetched_at": sync.now,
            }

        # A mailing this resource loaded with its details is not emitted again when the list's day of overlap
        # shows it once more: the merge would replace its row with one without sender, subject and content.
        known = set(work.known_mailings())
        found = [
            with_details(m, details[m["encrypted_id"]]) if m["encrypted_id"] in details else m
            for m in listed
            if m["encrypted_id"] in details or m["encrypted_id"] not in known
        ]
        work.know_mailings(m for m, _ in new)
        work.mailings_done()
        yield from sync.emit("mailings", found)

    @dlt.resource(**_merge("mailing_links"))
    def mailing_links():
        work = _mailing_work(sync, campaign_mailings=True)
        _, new = sync.new_mailings(work)
        work.know_mailings(m for m, _ in new)
        campaign_details = sync.new_campaign_mailing_details(work)
        work.mailings_done()
        yield from sync.emit(
            "mailing_links", [link for m, body in new for link in rows.links(body, "mailing", m["encrypted_id"])]
        )
        yield from sync.emit(
            "mailing_links",
            [
                link
                for (_, m), body in campaign_details
                for link in rows.links(body, "campaign_mailing", m["encryptedId"])
            ],
        )

    @dlt.resource(name="mailing_statistics_snapshots", write_disposition="append")
    def mailing_statistics_snapshots():
        work = _mailing_work(sync)
        fetched = work.gather(
            lambda m: sync.client.get(
                "GET /mailing/{encryptedMailingId}/statistics", f"/mailing/{m['encrypted_id']}/statistics"
            ),
            sync.settling(work),
            key=lambda m: f"statistics:{m['encrypted_id']}",
        )
        work.known_mailings().update((m["encrypted_id"], m["sent"]) for m, _ in fetched)
        work.mailings_done()
        yield from sync.emit(
            "mailing_statistics_snapshots",
            [{"mailing_id": m["encrypted_id"], "fetched_at": sync.now, **rows.statistics(body)} for m, body in fetched],
        )

    @dlt.resource(**_merge("clicks"))
    def clicks():
        """The clicks of each settling mailing: the only list with link ids."""
        work = _mailing_work(sync)

        def fetch(m: dict) -> list[dict]:
            mid = m["encrypted_id"]
            return [
                rows.click(mid, item, sync.zone)
                for page in sync.client.pages(
                    "GET /mailing/{encryptedMailingId}/clicks", f"/mailing/{mid}/clicks", "clicks"
                )
                for item in page
            ]

        fetched = work.gather(fetch, sync.settling(work), key=lambda m: f"clicks:{m['encrypted_id']}")
        work.known_mailings().update((m["encrypted_id"], m["sent"]) for m, _ in fetched)
        work.mailings_done()
        yield from sync.emit("clicks", [row for _, found in fetched for row in found])

    return [mailings, mailing_links, mailing_statistics_snapshots, clicks]


def _feed_resource(sync: SpotlerSync, feed: str, table: str):
    """An account-wide interaction feed, paged from its change-date cursor: only what is new."""

    def interactions(
        change_date=dlt.sources.incremental("change_date", initial_value=sync.start, on_cursor_value_missing="include"),
    ):
        work = ResourceWork(sync)
        try:
            for page in sync.client.pages(
                f"GET /mailing-interaction/{feed}",
                f"/mailing-interaction/{feed}",
                "interactions",
                {"fromChangeDate": iso(change_date.start_value)},
            ):
                yield from sync.emit(table, [rows.interaction(item, feed, sync.zone) for item in page])
        except CallBudgetReached:
            work.budget_reached()  # the pages loaded so far move the cursor; the next run carries on

    return dlt.resource(interactions, **_merge(table))


def _contacts_resource(sync: SpotlerSync):
    """Every contact changed since the last sync (lastChanged within [cursor, now]): address, channels."""

    @dlt.resource(**_merge("contacts"))
    def contacts(last_changed_at=dlt.sources.incremental("last_changed_at", initial_value=CONTACTS_FIRST_CHANGE)):
        work = ResourceWork(sync)
        try:
            for page in sync.client.pages(
                "GET /contact/updates/list",
                "/contact/updates/list",
                "contacts",
                {"fromDate": iso(last_changed_at.start_value), "toDate": iso(sync.now)},
            ):
                yield from sync.emit("contacts", [rows.contact_record(item, sync.zone) for item in page])
        except CallBudgetReached:
            work.budget_reached()  # the pages loaded so far move the cursor; the next run carries on

    return contacts


def _campaign_resources(sync: SpotlerSync) -> list:
    @dlt.resource(**_merge("campaigns"))
    def campaigns():
        yield from sync.emit("campaigns", [rows.campaign(c) for c in sync.campaigns(ResourceWork(sync))])

    @dlt.resource(**_merge("campaign_mailings"))
    def campaign_mailings():
        work = ResourceWork(sync, {"campaign_mailings": []}, CAMPAIGN_MAILING_KEYS)
        yield from sync.emit(
            "campaign_mailings",
            [
                {
                    "encrypted_id": m["encryptedId"],
                    "campaign_id": cid,
                    "mailing_name": m.get("name"),
                    "mailing_type": m.get("type"),
                    **rows.message(body),
                }
                for (cid, m), body in sync.new_campaign_mailing_details(work)
            ],
        )

    return [campaigns, campaign_mailings] + [
        _campaign_list_resource(sync, kind, table) for kind, table in CAMPAIGN_LISTS.items()
    ]


def _campaign_list_resource(sync: SpotlerSync, kind: str, table: str):
    """One of each campaign mailing's lists (recipients, opens, clicks, bounces), each from its own date
    cursor: these lists filter by event date, so a day's overlap is asked again and merged away."""

    def events():
        work = ResourceWork(sync, {"cursors": {}})
        cursors: dict = work.state["cursors"]

        def fetch(mailing_id: str) -> list[dict]:
            since = sync.since(cursors, mailing_id)
            return [
                rows.campaign_event(mailing_id, kind, item, sync.zone)
                for page in sync.client.pages(
                    f"GET /campaign-mailing/{{encryptedMailingId}}/{kind}",
                    f"/campaign-mailing/{mailing_id}/{kind}",
                    kind,
                    {"fromDate": iso(since)},
                )
                for item in page
            ]

        fetched = work.gather(
            fetch,
            [m["encryptedId"] for _, m in sync.campaign_mailings(work)],
            key=lambda mailing_id: f"campaign-list:{mailing_id}:{kind}",
        )
        yield from sync.emit(table, [row for _, found in fetched for row in found])
        for mailing_id, _ in fetched:
            cursors[mailing_id] = iso(sync.now)

    return dlt.resource(events, **_merge(table))


def _form_resources(sync: SpotlerSync) -> list:
    @dlt.resource(**_merge("forms"))
    def forms():
        yield from sync.emit("forms", [rows.form(f) for f in sync.forms(ResourceWork(sync))])

    @dlt.resource(**_merge("form_results"))
    def form_results():
        """Each form's results from its own cursor (a date filter: a day's overlap, merged away)."""
        work = ResourceWork(sync, {"cursors": {}})
        cursors: dict = work.state["cursors"]

        def fetch(found: dict) -> list:
            since = sync.since(cursors, str(found["id"]))
            return sync.client.get(
                "GET /form/result/{formId}",
                f"/form/result/{found['id']}",
                {"startDate": since.astimezone(sync.zone).strftime("%Y%m%d%H%M%S")},
            )

        answered = work.gather(fetch, sync.forms(work), key=lambda f: f"form:{f['id']}")
        yield from sync.emit(
            "form_results", [rows.form_result(f["id"], r, sync.zone) for f, results in answered for r in results]
        )
        for found, _ in answered:
            cursors[str(found["id"])] = iso(sync.now)

    return [forms, form_results]


class _LeaveOutForgotten(MapItem):
    """The step of a resource's pipe that leaves out the rows naming a forgotten person. dlt places a pipe's
    steps by their affinity to its end, whenever it adds one (its incremental is added again on every copy of
    a resource): this one stays behind the incremental (1), whose cursor so moves over the rows left out too,
    and before `add_limit` (1.1)."""

    placement_affinity: ClassVar[float] = 1.05


def _leaving_out_forgotten(resources: list, suppression: Suppression | None, report: SyncReport) -> list:
    """`resources`, each leaving out the rows that name a forgotten person (suppression.py) after dlt's
    incremental: they are left out on purpose, not missing, and a later run must not ask for them again."""
    if not suppression:
        return resources

    def leaving_out(table_name: str) -> Callable[[pa.Table], pa.Table | None]:
        # one argument only: dlt passes a step of two the item's meta as its second
        def leave_out(table: pa.Table) -> pa.Table | None:
            kept, dropped = suppression.drop_rows(
                table, rows.PERSON_COLUMNS[table_name], rows.TEXT_NAMING_PEOPLE.get(table_name, ())
            )
            if dropped:
                report.rows[table_name] -= dropped
                report.suppressed_rows += dropped
            return kept if kept.num_rows else None

        return leave_out

    for resource in resources:
        resource.add_step(_LeaveOutForgotten(leaving_out(resource.name)))
    return resources


@dlt.source(name="spotler", section="spotler", spec=SpotlerSourceConfiguration)
def spotler_source(
    # dlt passes the resolved spec to the argument annotated with exactly the spec class, so it cannot be Optional
    config: SpotlerSourceConfiguration = None,  # type: ignore[assignment]
    now: dt.datetime | None = None,
    report: SyncReport | None = None,
    log: Callable[[str], None] = lambda message: None,
    suppression: Suppression | None = None,
):
    """Every `raw_spotler` table, paying only for what is new and for mailings still settling.

    `now` is the sync's clock (default: now); `report` collects calls, rows and why the run stopped;
    `log` is told where the sync goes and about retries; `suppression` (none: nothing left out) names forgotten
    people, whose rows are left out of every table (cursors and state move as if they were loaded).
    """
    report = report if report is not None else SyncReport()
    client = SpotlerClient(config, log)
    report.calls = client.calls
    sync = SpotlerSync(client, config, report, now or dt.datetime.now(dt.UTC))
    log(f"spotler: syncing from {config.base_url}")
    resources = [
        *_mailing_resources(sync),
        *[_feed_resource(sync, feed, table) for feed, table in FEEDS.items()],
        _contacts_resource(sync),
        *_campaign_resources(sync),
        *_form_resources(sync),
    ]
    return _leaving_out_forgotten(resources, suppression, report)


CONTACT_HISTORIES = {  # table: (endpoint suffix, item key, row builder)
    "contact_mailing_history": ("mailings", "mailingHistories", rows.mailing_history),
    "contact_campaign_mailing_history": (
        "campaign-mailings",
        "campaignMailingHistories",
        rows.campaign_mailing_history,
    ),
    "contact_form_history": ("forms", "formHistories", rows.form_history),
}


@dlt.source(name="spotler_contacts", section="spotler", spec=SpotlerSourceConfiguration)
def spotler_contacts_source(
    external_ids: list[str],
    # dlt passes the resolved spec to the argument annotated with exactly the spec class, so it cannot be Optional
    config: SpotlerSourceConfiguration = None,  # type: ignore[assignment]
    now: dt.datetime | None = None,
    report: SyncReport | None = None,
    log: Callable[[str], None] = lambda message: None,
    suppression: Suppression | None = None,
):
    """The mail, campaign and form histories of the given contacts: one paged call per contact and history
    (50 a page). Loaded into the same tables as `spotler_source`'s dataset, beside them. A contact `suppression`
    names as forgotten is not asked for, and no row naming one is loaded."""
    report = report if report is not None else SyncReport()
    if suppression:
        forgotten = suppression.matching("customer_number", external_ids)
        external_ids = [external_id for external_id in external_ids if str(external_id) not in forgotten]
        report.suppressed_contacts += len(forgotten)
    client = SpotlerClient(config, log)
    report.calls = client.calls
    fetched_at = now or dt.datetime.now(dt.UTC)

    def history(table: str, suffix: str, item_key: str, to_row):
        def contacts():
            try:
                for external_id in external_ids:
                    found = [
                        to_row(external_id, item, config.zone, fetched_at)
                        for page in client.pages(
                            f"GET /contact/{{externalId}}/{suffix}", f"/contact/{external_id}/{suffix}", item_key
                        )
                        for item in page
                    ]
                    if found:
                        report.rows[table] += len(found)
                        yield rows.arrow_table(found, table)
            except CallBudgetReached:
                report.budget_reached = True

        return dlt.resource(contacts, **_merge(table))

    return _leaving_out_forgotten(
        [history(table, *spec) for table, spec in CONTACT_HISTORIES.items()], suppression, report
    )
