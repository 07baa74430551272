"""The Spotler Mail+ dlt sources: `spotler_source()`, one resource per `raw_spotler` table, and
`spotler_contacts_source(external_ids)`, the per-contact histories on demand.

Resources share one client (one call budget) and one `SpotlerSync`, which fetches what several tables need
once, whichever resource asks first: the mailing list and the details of new mailings (mailings,
mailing_links), the settling mailings (statistics, clicks), the campaign mailings (their lists, links),
the forms (their results). So any extract order of dlt's gives the same calls and rows.

State (dlt's, committed with the load it belongs to): in the source's state the known mailings, the
mailing-list cursor and the budget cycle; in each resource's own state its per-item cursors; the three
account-wide feeds and the contacts are `dlt.sources.incremental` on their change date (contacts: lastChanged).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import dlt
import pyarrow as pa

from mail_warehouse_sources.spotler import rows
from mail_warehouse_sources.spotler.client import CallBudgetReached, SpotlerClient
from mail_warehouse_sources.spotler.config import SpotlerSourceConfiguration, iso, require_time

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

    def lines(self) -> list[str]:
        out = [
            f"spotler: {sum(self.calls.values())} calls, {self.new_mailings} new mailings, {self.settling} "
            f"mailings still settling"
            + ("; stopped at max_calls_per_run, the next run carries on" if self.budget_reached else "")
        ]
        out.append("  calls: " + ", ".join(f"{k} {v}" for k, v in sorted(self.calls.items())))
        out.append("  rows: " + (", ".join(f"{k} {v:,}" for k, v in sorted(self.rows.items())) or "none"))
        return out


class SpotlerSync:
    """One run's shared fetches, each made once, and the call budget's cycle.

    When the budget runs out, what was fetched is kept (its cursors move) and the rest waits. Until a run gets
    through everything, items already fetched in this cycle are skipped, so a budget smaller than one whole
    run still gets through, run by run.
    """

    def __init__(
        self, client: SpotlerClient, config: SpotlerSourceConfiguration, report: SyncReport, now: dt.datetime
    ) -> None:
        self.client, self.config, self.report, self.now = client, config, report, now
        self.zone = config.zone
        self.start = config.first_day(now)
        self._fetched: dict[str, object] = {}
        self._cycle: list[str] | None = None
        self.exhausted = False

    # --- the budget and its cycle -------------------------------------------------------------------

    def cycle_done(self) -> list[str]:
        """Keys of items fetched in this cycle; a new cycle starts after a run that spent no budget out."""
        if self._cycle is None:
            state = dlt.current.source_state()
            if not state.get("budget_reached"):
                state["cycle_done"] = []
            state["budget_reached"] = False
            self._cycle = state.setdefault("cycle_done", [])
        return self._cycle

    def budget_reached(self) -> None:
        self.cycle_done()
        dlt.current.source_state()["budget_reached"] = True
        self.exhausted = self.report.budget_reached = True

    def gather(
        self, action: Callable[[Item], Result], items: Iterable[Item], key: Callable[[Item], str] | None
    ) -> list[tuple[Item, Result]]:
        """(item, result) for each item, in order, calls in parallel; items whose `key` was fetched in this
        cycle are skipped (`key` None: fetched every run, for what later steps need)."""
        done_in_cycle = self.cycle_done()
        todo = [item for item in items if key is None or key(item) not in done_in_cycle]

        def attempt(item):
            try:
                return item, action(item), True
            except CallBudgetReached:
                return item, None, False

        done: list[tuple[Item, Result]] = []
        with ThreadPoolExecutor(self.config.max_parallel_requests, thread_name_prefix="spotler") as pool:
            for item, result, ok in pool.map(attempt, todo):
                if not ok:
                    self.budget_reached()
                    continue
                done.append((item, result))
                if key is not None:
                    done_in_cycle.append(key(item))
        return done

    def once(self, name: str, fetch: Callable[[], object], nothing: object = ()):
        """The result of `fetch`, fetched on first use in this run; `nothing` when the budget ran out first."""
        if name not in self._fetched:
            try:
                self._fetched[name] = fetch()
            except CallBudgetReached:
                self.budget_reached()
                self._fetched[name] = nothing
        return self._fetched[name]

    def since(self, cursors: dict, name: str) -> dt.datetime:
        """Where a date-filtered list resumes: its cursor less a day's overlap, or the first day."""
        return require_time(cursors[name]) - CURSOR_OVERLAP if name in cursors else self.start

    def emit(self, table: str, items: list[dict]) -> Iterator[pa.Table]:
        if items:
            self.report.rows[table] += len(items)
            yield rows.arrow_table(items, table)

    # --- what several tables share ------------------------------------------------------------------

    def mailings(self) -> tuple[list[dict], list[tuple[dict, dict]]]:
        """(every mailing listed since the last sync, (mailing, details) of the new ones)."""
        return self.once("mailings", self._fetch_mailings, nothing=((), ()))

    def _fetch_mailings(self):
        state = dlt.current.source_state()
        known: dict[str, str] = state.setdefault("mailings", {})
        since = self.since(state, "mailings_since")
        listed = [
            rows.mailing(m, self.zone)
            for m in self.client.get("GET /mailing", "/mailing", {"fromDate": iso(since), "toDate": iso(self.now)})
        ]
        new = self.gather(
            lambda m: self.client.get("GET /mailing/{encryptedMailingId}", f"/mailing/{m['encrypted_id']}"),
            [m for m in listed if m["encrypted_id"] not in known],
            key=lambda m: f"details:{m['encrypted_id']}",
        )
        self.report.settling = len(self.settling_among(known))
        self.report.new_mailings = len(new)
        for m, _ in new:
            known[m["encrypted_id"]] = iso(m["scheduled_start_date"])
        if not self.exhausted:
            state["mailings_since"] = iso(self.now)
        return listed, new

    def settling_among(self, known: dict[str, str]) -> list[str]:
        window = self.now - dt.timedelta(days=self.config.settle_days)
        return [mid for mid, sent in known.items() if require_time(sent) >= window]

    def settling(self) -> list[str]:
        """Mailings still settling, and new ones once whatever their age."""

        def pick():
            _, new = self.mailings()
            known = dlt.current.source_state().setdefault("mailings", {})
            chosen = self.settling_among(known)
            return chosen + [m["encrypted_id"] for m, _ in new if m["encrypted_id"] not in chosen]

        return self.once("settling", pick)

    def campaigns(self) -> list[dict]:
        return self.once("campaigns", lambda: self.client.get("GET /campaign/list", "/campaign/list"))

    def campaign_mailings(self) -> list[tuple[str, dict]]:
        """(campaign id, mailing) of every campaign, asked every run."""

        def fetch():
            listed = self.gather(
                lambda c: self.client.get(
                    "GET /campaign/{encryptedCampaignId}/mailing", f"/campaign/{c['encryptedId']}/mailing"
                ),
                self.campaigns(),
                key=None,
            )
            return [(c["encryptedId"], m) for c, mailings in listed for m in mailings]

        return self.once("campaign_mailings", fetch)

    def new_campaign_mailing_details(self) -> list[tuple[tuple[str, dict], dict]]:
        def fetch():
            known: list = dlt.current.source_state().setdefault("campaign_mailings", [])
            details = self.gather(
                lambda item: self.client.get(
                    "GET /campaign-mailing/{encryptedMailingId}", f"/campaign-mailing/{item[1]['encryptedId']}"
                ),
                [(cid, m) for cid, m in self.campaign_mailings() if m["encryptedId"] not in known],
                key=lambda item: f"campaign-details:{item[1]['encryptedId']}",
            )
            known.extend(m["encryptedId"] for (_, m), _ in details)
            return details

        return self.once("campaign_mailing_details", fetch)

    def forms(self) -> list[dict]:
        return self.once("forms", lambda: self.client.get("GET /form/list", "/form/list"))


# --- the resources --------------------------------------------------------------------------------------


def _merge(table: str) -> dict:
    return {"name": table, "write_disposition": "merge", "primary_key": rows.PRIMARY_KEYS[table]}


def _mailing_resources(sync: SpotlerSync) -> list:
    @dlt.resource(**_merge("mailings"))
    def mailings():
        listed, new = sync.mailings()
        detailed = {m["encrypted_id"] for m, _ in new}
        for m, body in new:
            m.update(
                {
                    "sender": body.get("sender"),
                    "target_group": body.get("targetGroup"),
                    **rows.message(body),
                    "details_fetched_at": sync.now,
                }
            )
        yield from sync.emit("mailings", [m for m, _ in new] + [m for m in listed if m["encrypted_id"] not in detailed])

    @dlt.resource(**_merge("mailing_links"))
    def mailing_links():
        _, new = sync.mailings()
        yield from sync.emit(
            "mailing_links", [link for m, body in new for link in rows.links(body, "mailing", m["encrypted_id"])]
        )
        yield from sync.emit(
            "mailing_links",
            [
                link
                for (_, m), body in sync.new_campaign_mailing_details()
                for link in rows.links(body, "campaign_mailing", m["encryptedId"])
            ],
        )

    @dlt.resource(name="mailing_statistics_snapshots", write_disposition="append")
    def mailing_statistics_snapshots():
        fetched = sync.gather(
            lambda mid: sync.client.get("GET /mailing/{encryptedMailingId}/statistics", f"/mailing/{mid}/statistics"),
            sync.settling(),
            key=lambda mid: f"statistics:{mid}",
        )
        yield from sync.emit(
            "mailing_statistics_snapshots",
            [{"mailing_id": mid, "fetched_at": sync.now, **rows.statistics(body)} for mid, body in fetched],
        )

    @dlt.resource(**_merge("clicks"))
    def clicks():
        """The clicks of each settling mailing: the only list with link ids."""

        def fetch(mid):
            return [
                rows.click(mid, item, sync.zone)
                for page in sync.client.pages(
                    "GET /mailing/{encryptedMailingId}/clicks", f"/mailing/{mid}/clicks", "clicks"
                )
                for item in page
            ]

        fetched = sync.gather(fetch, sync.settling(), key=lambda mid: f"clicks:{mid}")
        yield from sync.emit("clicks", [row for _, found in fetched for row in found])

    return [mailings, mailing_links, mailing_statistics_snapshots, clicks]


def _feed_resource(sync: SpotlerSync, feed: str, table: str):
    """An account-wide interaction feed, paged from its change-date cursor: only what is new."""

    def interactions(
        change_date=dlt.sources.incremental("change_date", initial_value=sync.start, on_cursor_value_missing="include"),
    ):
        try:
            for page in sync.client.pages(
                f"GET /mailing-interaction/{feed}",
                f"/mailing-interaction/{feed}",
                "interactions",
                {"fromChangeDate": iso(change_date.start_value)},
            ):
                yield from sync.emit(table, [rows.interaction(item, feed, sync.zone) for item in page])
        except CallBudgetReached:
            sync.budget_reached()  # the pages loaded so far move the cursor; the next run carries on

    return dlt.resource(interactions, **_merge(table))


def _contacts_resource(sync: SpotlerSync):
    """Every contact changed since the last sync (lastChanged within [cursor, now]): address, channels."""

    @dlt.resource(**_merge("contacts"))
    def contacts(last_changed_at=dlt.sources.incremental("last_changed_at", initial_value=CONTACTS_FIRST_CHANGE)):
        try:
            for page in sync.client.pages(
                "GET /contact/updates/list",
                "/contact/updates/list",
                "contacts",
                {"fromDate": iso(last_changed_at.start_value), "toDate": iso(sync.now)},
            ):
                yield from sync.emit("contacts", [rows.contact_record(item, sync.zone) for item in page])
        except CallBudgetReached:
            sync.budget_reached()  # the pages loaded so far move the cursor; the next run carries on

    return contacts


def _campaign_resources(sync: SpotlerSync) -> list:
    @dlt.resource(**_merge("campaigns"))
    def campaigns():
        yield from sync.emit("campaigns", [rows.campaign(c) for c in sync.campaigns()])

    @dlt.resource(**_merge("campaign_mailings"))
    def campaign_mailings():
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
                for (cid, m), body in sync.new_campaign_mailing_details()
            ],
        )

    return [campaigns, campaign_mailings] + [
        _campaign_list_resource(sync, kind, table) for kind, table in CAMPAIGN_LISTS.items()
    ]


def _campaign_list_resource(sync: SpotlerSync, kind: str, table: str):
    """One of each campaign mailing's lists (recipients, opens, clicks, bounces), each from its own date
    cursor: these lists filter by event date, so a day's overlap is asked again and merged away."""

    def events():
        cursors: dict = dlt.current.resource_state().setdefault("cursors", {})

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

        fetched = sync.gather(
            fetch,
            [m["encryptedId"] for _, m in sync.campaign_mailings()],
            key=lambda mailing_id: f"campaign-list:{mailing_id}:{kind}",
        )
        yield from sync.emit(table, [row for _, found in fetched for row in found])
        for mailing_id, _ in fetched:
            cursors[mailing_id] = iso(sync.now)

    return dlt.resource(events, **_merge(table))


def _form_resources(sync: SpotlerSync) -> list:
    @dlt.resource(**_merge("forms"))
    def forms():
        yield from sync.emit("forms", [rows.form(f) for f in sync.forms()])

    @dlt.resource(**_merge("form_results"))
    def form_results():
        """Each form's results from its own cursor (a date filter: a day's overlap, merged away)."""
        cursors: dict = dlt.current.resource_state().setdefault("cursors", {})

        def fetch(found: dict) -> list:
            since = sync.since(cursors, str(found["id"]))
            return sync.client.get(
                "GET /form/result/{formId}",
                f"/form/result/{found['id']}",
                {"startDate": since.astimezone(sync.zone).strftime("%Y%m%d%H%M%S")},
            )

        answered = sync.gather(fetch, sync.forms(), key=lambda f: f"form:{f['id']}")
        yield from sync.emit(
            "form_results", [rows.form_result(f["id"], r, sync.zone) for f, results in answered for r in results]
        )
        for found, _ in answered:
            cursors[str(found["id"])] = iso(sync.now)

    return [forms, form_results]


@dlt.source(name="spotler", section="spotler", spec=SpotlerSourceConfiguration)
def spotler_source(
    # dlt passes the resolved spec to the argument annotated with exactly the spec class, so it cannot be Optional
    config: SpotlerSourceConfiguration = None,  # type: ignore[assignment]
    now: dt.datetime | None = None,
    report: SyncReport | None = None,
    log: Callable[[str], None] = lambda message: None,
):
    """Every `raw_spotler` table, paying only for what is new and for mailings still settling.

    `now` is the sync's clock (default: now); `report` collects calls, rows and why the run stopped;
    `log` is told where the sync goes and about retries.
    """
    report = report if report is not None else SyncReport()
    client = SpotlerClient(config, log)
    report.calls = client.calls
    sync = SpotlerSync(client, config, report, now or dt.datetime.now(dt.UTC))
    log(f"spotler: syncing from {config.base_url}")
    return [
        *_mailing_resources(sync),
        *[_feed_resource(sync, feed, table) for feed, table in FEEDS.items()],
        _contacts_resource(sync),
        *_campaign_resources(sync),
        *_form_resources(sync),
    ]


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
):
    """The mail, campaign and form histories of the given contacts: one paged call per contact and history
    (50 a page). Loaded into the same tables as `spotler_source`'s dataset, beside them."""
    report = report if report is not None else SyncReport()
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

    return [history(table, *spec) for table, spec in CONTACT_HISTORIES.items()]
