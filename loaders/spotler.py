"""Spotler Mail+ reporting API into `raw_spotler` (`warehouse load spotler [--contacts FILE]`).

What one run asks for, and so what it costs (the API is paid in calls):
- `GET /mailing` once, for mailings sent since the last sync; details (message, links) once per new mailing;
- statistics and the click list (the only list with link ids) of each mailing still settling (sent within
  `settle_days`): every run, each statistics fetch kept as a snapshot with its `fetched_at`;
- the account-wide feeds `/mailing-interaction/sent|opened|bounced` from their change-date cursors:
  pages of what is new only;
- campaigns: the list, each campaign's mailings, details of new campaign mailings, and each campaign
  mailing's recipients, opens, clicks and bounces from a date cursor (these lists filter by date);
- forms: the list, and each form's results from a date cursor.
A new mailing costs 3 calls once (details, statistics, clicks) plus its share of feed pages. A second run
with nothing new costs: 1 + 2 per settling mailing + 3 feed calls + campaign and form calls
(1 + campaigns + 4 per campaign mailing + 1 + forms), each list one call while it fits a page. `max_calls_per_run` stops a run cleanly: what was
fetched is loaded and the cursors of finished steps are saved; the next run carries on.

Cursors live in dlt state, committed with the load they belong to. Whole pages go to dlt as Arrow tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dlt
import pyarrow as pa
import requests
from dlt.common.configuration.resolve import resolve_configuration
from dlt.common.configuration.specs import configspec
from dlt.common.typing import TSecretStrValue
from dlt.pipeline.exceptions import PipelineStepFailed
from oauthlib.oauth1 import Client as OAuthClient

from mail_warehouse import settings as warehouse_settings

DATASET = "raw_spotler"
PIPELINE_NAME = "spotler"
RESOURCE = "spotler"
LOAD_MEMORY_LIMIT = "1GB"
FEEDS = {"sent": "recipients", "opened": "opens", "bounced": "bounces"}
CAMPAIGN_LISTS = {"recipients": "campaign_recipients", "opens": "campaign_opens", "clicks": "campaign_clicks",
                  "bounces": "campaign_bounces"}
CURSOR_OVERLAP = dt.timedelta(days=1)   # date filters are re-asked with a day's overlap; keys merge it away


@configspec
class SpotlerConfiguration:
    """`[sources.spotler]` in .dlt/config.toml, or SOURCES__SPOTLER__<NAME> environment variables."""
    base_url: str = "https://restapi.mailplus.nl/integrationservice-1.1.0"
    start_date: Optional[str] = None
    settle_days: int = 30
    page_size: int = 1000
    max_calls_per_run: int = 0
    max_parallel_requests: int = 4
    timezone: str = "Europe/Amsterdam"
    timeout_seconds: float = 60.0
    max_attempts: int = 5
    retry_delay_seconds: float = 1.0
    max_retry_after_seconds: float = 300.0
    consumer_key: Optional[TSecretStrValue] = None
    consumer_secret: Optional[TSecretStrValue] = None


class SpotlerError(RuntimeError):
    """A failed run; names the endpoint and the setting to check, never a secret."""


class SpotlerSettingsError(SpotlerError, ValueError):
    pass


class CallBudgetReached(Exception):
    pass


@dataclass(frozen=True)
class SpotlerSettings:
    base_url: str
    start_date: dt.datetime
    settle_days: int
    page_size: int
    max_calls: int
    parallel: int
    timezone: ZoneInfo
    timeout: float
    max_attempts: int
    retry_delay: float
    max_retry_after: float
    consumer_key: str
    consumer_secret: str

    def __repr__(self) -> str:
        return f"SpotlerSettings({self.base_url})"


def load_settings(now: dt.datetime | None = None) -> SpotlerSettings:
    config = resolve_configuration(SpotlerConfiguration(), sections=("sources", "spotler"), accept_partial=True)
    for secret in ("consumer_key", "consumer_secret"):
        if not getattr(config, secret):
            raise SpotlerSettingsError(f"missing secret sources.spotler.{secret} (env SOURCES__SPOTLER__{secret.upper()})")
    try:
        zone = ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpotlerSettingsError(f"SOURCES__SPOTLER__TIMEZONE {config.timezone!r} is not a time zone name") from None
    now = now or dt.datetime.now(dt.UTC)
    if config.start_date:
        try:
            start = parse_time(str(config.start_date), zone)
        except ValueError:
            raise SpotlerSettingsError(f"SOURCES__SPOTLER__START_DATE {config.start_date!r} is not a date (YYYY-MM-DD)") from None
    else:
        start = now - dt.timedelta(days=365)
    if not 1 <= int(config.page_size) <= 10_000:
        raise SpotlerSettingsError("SOURCES__SPOTLER__PAGE_SIZE must be between 1 and 10000")
    return SpotlerSettings(config.base_url.rstrip("/"), start, int(config.settle_days), int(config.page_size),
                           int(config.max_calls_per_run), max(1, int(config.max_parallel_requests)), zone,
                           float(config.timeout_seconds), max(1, int(config.max_attempts)),
                           float(config.retry_delay_seconds), float(config.max_retry_after_seconds),
                           str(config.consumer_key), str(config.consumer_secret))


def parse_time(value, zone: ZoneInfo = ZoneInfo("Europe/Amsterdam")) -> dt.datetime | None:
    """ISO 8601 with or without an offset (without: `zone`), or epoch milliseconds, as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    text = str(value).strip()
    if text.isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(dt.UTC)


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the HTTP client ---------------------------------------------------------------------------------

class SpotlerClient:
    """Signed GETs with retries, call counting per endpoint and the per-run call budget."""

    RETRY_STATUSES = {429, 500, 502, 503, 504}

    def __init__(self, settings: SpotlerSettings, log: Callable[[str], None] = lambda m: None) -> None:
        self.settings = settings
        self.calls: Counter[str] = Counter()
        self.log = log
        self._lock = threading.Lock()
        self._local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _charge(self, endpoint: str) -> None:
        with self._lock:
            if self.settings.max_calls and sum(self.calls.values()) >= self.settings.max_calls:
                raise CallBudgetReached(endpoint)
            self.calls[endpoint] += 1

    def get(self, endpoint: str, path_or_url: str, params: dict | None = None):
        """`endpoint` names the call in counts and errors (`GET /mailing/{encryptedMailingId}/opens`)."""
        url = path_or_url if path_or_url.startswith("http") else self.settings.base_url + path_or_url
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        for attempt in range(1, self.settings.max_attempts + 1):
            self._charge(endpoint)
            signed_url, headers, _ = OAuthClient(self.settings.consumer_key, client_secret=self.settings.consumer_secret,
                                                 signature_method="HMAC-SHA1").sign(url)
            headers["Accept"] = "application/json"
            delay = self.settings.retry_delay * 2 ** (attempt - 1)
            try:
                response = self._session().get(signed_url, headers=headers, timeout=self.settings.timeout)
                if response.status_code == 200:
                    return response.json()
                problem = f"HTTP {response.status_code}"
                if response.status_code in (401, 403):
                    raise SpotlerError(f"{endpoint}: Spotler refused the credentials (HTTP {response.status_code}): "
                                       "check the secrets SOURCES__SPOTLER__CONSUMER_KEY and "
                                       "SOURCES__SPOTLER__CONSUMER_SECRET")
                if response.status_code not in self.RETRY_STATUSES:
                    raise SpotlerError(f"{endpoint}: HTTP {response.status_code} {_error_text(response)}")
                if response.status_code == 429 and response.headers.get("Retry-After", "").strip().isdigit():
                    delay = min(float(response.headers["Retry-After"]), self.settings.max_retry_after)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError, ValueError) as error:
                if isinstance(error, SpotlerError):
                    raise
                problem = type(error).__name__
            if attempt == self.settings.max_attempts:
                raise SpotlerError(f"{endpoint}: failed after {attempt} attempts (last: {problem}); nothing of this "
                                   "run was loaded and the cursors are where they were")
            self.log(f"  {endpoint}: {problem}, retrying in {delay:.1f} s")
            time.sleep(delay)
        raise AssertionError("unreachable")

    def pages(self, endpoint: str, path: str, item_key: str, params: dict | None = None) -> Iterator[list[dict]]:
        """Every page of a paged list, following `next` (signed anew) until the last page."""
        body = self.get(endpoint, path, {**(params or {}), "pageSize": self.settings.page_size})
        while True:
            yield body.get(item_key) or []
            following = (body.get("paging") or {}).get("next")
            if not following:
                return
            body = self.get(endpoint, following)


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('errorType', '')}: {body.get('message', '')}"
    except ValueError:
        return response.text[:200]


# --- rows ------------------------------------------------------------------------------------------

def _key(*parts) -> str:
    return hashlib.sha1("|".join("" if p is None else str(p) for p in parts).encode()).hexdigest()


def _table(rows: list[dict], name: str) -> pa.Table:
    keys = PRIMARY_KEYS.get(name, ())
    keys = (keys,) if isinstance(keys, str) else keys
    schema = pa.schema([pa.field(c, TYPES[name].get(c, pa.string()), nullable=c not in keys) for c in COLUMNS[name]])
    return pa.Table.from_pylist(rows, schema=schema)


TS = pa.timestamp("us", tz="UTC")
COLUMNS: dict[str, tuple[str, ...]] = {
    "mailings": ("encrypted_id", "mailing_name", "scheduled_start_date", "mailing_type", "archive_link", "sent_count",
                 "sender", "target_group", "message_name", "message_author", "subject", "from_name", "from_email",
                 "details_fetched_at"),
    "mailing_links": ("link_key", "mailing_kind", "mailing_id", "link_id", "link_name", "url", "link_code", "link_type"),
    "mailing_statistics_snapshots": (
        "mailing_id", "fetched_at", "sent_count", "accepted_count", "open_count", "open_rendered_count", "click_count",
        "hardbounce_count", "softbounce_count", "not_retained_after_bounce_count", "conversion_click_count",
        "unsubscribe_count", "to_webshop_count", "shoppingcart_created_count", "shoppingcart_converted_count",
        "conversion_value"),
    "recipients": ("interaction_id", "mailing_id", "external_contact_id", "sent_at", "change_date", "mailing_name",
                   "subject", "online_version_link", "trend_report_id"),
    "opens": ("interaction_id", "mailing_id", "external_contact_id", "opened_at", "change_date", "trend_report_id"),
    "bounces": ("interaction_id", "mailing_id", "external_contact_id", "bounced_at", "change_date", "bounce_type",
                "trend_report_id"),
    "clicks": ("click_key", "mailing_id", "external_contact_id", "encrypted_contact_id", "clicked_at", "link_id"),
    "campaigns": ("encrypted_id", "campaign_name", "active", "triggers"),
    "campaign_mailings": ("encrypted_id", "campaign_id", "mailing_name", "mailing_type", "message_name",
                          "message_author", "subject", "from_name", "from_email"),
    "campaign_recipients": ("event_key", "mailing_id", "campaign_subscription_id", "external_contact_id",
                            "encrypted_contact_id", "sent_at"),
    "campaign_opens": ("event_key", "mailing_id", "campaign_subscription_id", "external_contact_id",
                       "encrypted_contact_id", "opened_at"),
    "campaign_clicks": ("event_key", "mailing_id", "campaign_subscription_id", "external_contact_id",
                        "encrypted_contact_id", "clicked_at", "link_id"),
    "campaign_bounces": ("event_key", "mailing_id", "campaign_subscription_id", "external_contact_id",
                         "encrypted_contact_id", "bounced_at", "bounce_type"),
    "forms": ("form_id", "form_name", "form_sub_type", "form_state"),
    "form_results": ("form_id", "form_result_id", "submitted_at", "test_result", "completed", "answers"),
    "contact_mailing_history": ("history_key", "external_contact_id", "mailing_id", "mailing_name", "sent_at",
                                "opened", "clicked", "bounce", "fetched_at"),
    "contact_campaign_mailing_history": ("history_key", "external_contact_id", "mailing_id", "mailing_name",
                                         "mailing_type", "campaign_subscription_id", "sent_at", "opened", "clicked",
                                         "bounce", "fetched_at"),
    "contact_form_history": ("history_key", "external_contact_id", "form_id", "form_name", "form_result_id",
                             "submitted_at", "completed", "fetched_at"),
}
TYPES: dict[str, dict[str, pa.DataType]] = {name: {} for name in COLUMNS}
for _name, _columns in COLUMNS.items():
    for _column in _columns:
        if _column.endswith(("_at", "_date")):
            TYPES[_name][_column] = TS
        elif _column.endswith("_count") or _column in ("link_id", "conversion_value", "form_id", "form_result_id",
                                                         "campaign_subscription_id", "trend_report_id", "interaction_id"):
            TYPES[_name][_column] = pa.int64()
        elif _column in ("active", "test_result", "completed", "opened", "clicked"):
            TYPES[_name][_column] = pa.bool_()
PRIMARY_KEYS = {
    "mailings": "encrypted_id", "mailing_links": "link_key", "recipients": "interaction_id", "opens": "interaction_id",
    "bounces": "interaction_id", "clicks": "click_key", "campaigns": "encrypted_id", "campaign_mailings": "encrypted_id",
    "campaign_recipients": "event_key", "campaign_opens": "event_key", "campaign_clicks": "event_key",
    "campaign_bounces": "event_key", "forms": "form_id", "form_results": ("form_id", "form_result_id"),
    "contact_mailing_history": "history_key", "contact_campaign_mailing_history": "history_key",
    "contact_form_history": "history_key",
}


def _tagged(rows: list[dict], table: str):
    if table == "mailing_statistics_snapshots":
        hints = dlt.mark.make_hints(table_name=table, write_disposition="append")
    else:
        hints = dlt.mark.make_hints(table_name=table, write_disposition="merge", primary_key=PRIMARY_KEYS[table])
    return dlt.mark.with_hints(_table(rows, table), hints, create_table_variant=True)


def _message(body: dict) -> dict:
    message = body.get("message") or {}
    return {"message_name": message.get("name"), "message_author": message.get("author"),
            "subject": message.get("subject"), "from_name": message.get("fromName"), "from_email": message.get("fromEmail")}


def _links(body: dict, kind: str, mailing_id: str) -> list[dict]:
    return [{"link_key": _key(kind, mailing_id, link.get("id")), "mailing_kind": kind, "mailing_id": mailing_id,
             "link_id": link.get("id"), "link_name": link.get("name"), "url": link.get("url"),
             "link_code": link.get("code"), "link_type": link.get("type")} for link in body.get("links") or []]


def _contact(item: dict) -> tuple[str | None, str | None]:
    contact = item.get("contactIdentifier") or {}
    return contact.get("externalId"), contact.get("encryptedId")


# --- one run -----------------------------------------------------------------------------------------

@dataclass
class RunSummary:
    rows: Counter = field(default_factory=Counter)
    calls: Counter = field(default_factory=Counter)
    settling: int = 0
    new_mailings: int = 0
    budget_reached: bool = False

    def lines(self) -> list[str]:
        out = [f"spotler: {sum(self.calls.values())} calls, {self.new_mailings} new mailings, {self.settling} "
               f"mailings still settling" + ("; stopped at max_calls_per_run, the next run carries on"
                                            if self.budget_reached else "")]
        out.append("  calls: " + ", ".join(f"{k} {v}" for k, v in sorted(self.calls.items())))
        out.append("  rows: " + (", ".join(f"{k} {v:,}" for k, v in sorted(self.rows.items())) or "none"))
        return out


class _Run:
    def __init__(self, client: SpotlerClient, settings: SpotlerSettings, summary: RunSummary, now: dt.datetime) -> None:
        self.client, self.settings, self.summary, self.now = client, settings, summary, now
        self.pool = ThreadPoolExecutor(settings.parallel, thread_name_prefix="spotler")

    def emit(self, rows: list[dict], table: str):
        if rows:
            self.summary.rows[table] += len(rows)
            yield _tagged(rows, table)

    def gather(self, action, items: list, key: Callable[[object], str] | None) -> list[tuple]:
        """(item, result) for each item, in order, calls in parallel.

        When the call budget runs out, the results already fetched are kept (the caller saves them and their
        cursors) and the step stops after them. Until a run gets through every step, items already fetched
        in this cycle are skipped, so a budget smaller than one whole run still gets through, run by run.
        Calls whose results later steps need (`key` None) are made every run.
        """
        done_in_cycle = set(self.cycle_done)
        todo = [item for item in items if key is None or key(item) not in done_in_cycle]

        def attempt(item):
            try:
                return item, action(item), True
            except CallBudgetReached:
                return item, None, False
        done = []
        for item, result, ok in self.pool.map(attempt, todo):
            if ok:
                done.append((item, result))
                if key is not None:
                    self.cycle_done.append(key(item))
            else:
                self.exhausted = True
        return done

    def finish_step(self) -> None:
        if self.exhausted:
            raise CallBudgetReached()

    def items(self, state: dict):
        settings, now = self.settings, self.now
        self.exhausted = False
        self.cycle_done: list[str] = state.setdefault("cycle_done", [])
        known: dict[str, str] = state.setdefault("mailings", {})
        # 1. mailings sent since the last sync; details of the new ones
        since = parse_time(state["mailings_since"]) - CURSOR_OVERLAP if "mailings_since" in state else settings.start_date
        listed = self.client.get("GET /mailing", "/mailing", {"fromDate": iso(since), "toDate": iso(now)})
        rows = []
        for m in listed:
            rows.append({"encrypted_id": m["encryptedId"], "mailing_name": m.get("name"),
                         "scheduled_start_date": parse_time(m.get("scheduledStartDate"), settings.timezone),
                         "mailing_type": m.get("type"), "archive_link": m.get("archiveLink"), "sent_count": m.get("sentCount")})
        new = self.gather(lambda m: self.client.get("GET /mailing/{encryptedMailingId}", f"/mailing/{m['encrypted_id']}"),
                          [m for m in rows if m["encrypted_id"] not in known], key=lambda m: f"details:{m['encrypted_id']}")
        links = []
        for m, body in new:
            m.update({"sender": body.get("sender"), "target_group": body.get("targetGroup"), **_message(body),
                      "details_fetched_at": now})
            links += _links(body, "mailing", m["encrypted_id"])
        yield from self.emit([m for m, _ in new] + [m for m in rows if m["encrypted_id"] in known], "mailings")
        yield from self.emit(links, "mailing_links")
        # 2. mailings still settling, and new ones once whatever their age: a statistics snapshot and
        # their clicks (the only list with link ids)
        window = now - dt.timedelta(days=settings.settle_days)
        settling = [mid for mid, sent in known.items() if parse_time(sent) >= window]
        self.summary.settling = len(settling)
        self.summary.new_mailings = len(new)
        for m, _ in new:
            known[m["encrypted_id"]] = iso(m["scheduled_start_date"])
            if m["encrypted_id"] not in settling:
                settling.append(m["encrypted_id"])
        if not self.exhausted:
            state["mailings_since"] = iso(now)
        self.finish_step()
        stats = self.gather(lambda mid: self.client.get("GET /mailing/{encryptedMailingId}/statistics",
                                                        f"/mailing/{mid}/statistics"), settling,
                            key=lambda mid: f"statistics:{mid}")
        yield from self.emit([{"mailing_id": mid, "fetched_at": now, **_statistics(body)} for mid, body in stats],
                             "mailing_statistics_snapshots")
        clicks = self.gather(lambda mid: [
            {"click_key": _key(mid, *_contact(c), c.get("clickDate"), c.get("linkId")), "mailing_id": mid,
             "external_contact_id": _contact(c)[0], "encrypted_contact_id": _contact(c)[1],
             "clicked_at": parse_time(c.get("clickDate"), settings.timezone), "link_id": c.get("linkId")}
            for page in self.client.pages("GET /mailing/{encryptedMailingId}/clicks", f"/mailing/{mid}/clicks", "clicks")
            for c in page], settling, key=lambda mid: f"clicks:{mid}")
        yield from self.emit([row for _, rows_ in clicks for row in rows_], "clicks")
        self.finish_step()

        # 3. the account-wide feeds, from their change-date cursors
        cursors = state.setdefault("feed_cursors", {})
        for feed, table in FEEDS.items():
            start = parse_time(cursors[feed]) if feed in cursors else settings.start_date
            for page in self.client.pages(f"GET /mailing-interaction/{feed}", f"/mailing-interaction/{feed}",
                                          "interactions", {"fromChangeDate": iso(start)}):
                yield from self.emit([_interaction(i, feed, settings.timezone) for i in page], table)
                if page:
                    latest = max(parse_time(i.get("changeDate"), settings.timezone) for i in page)
                    cursors[feed] = iso(max(latest, parse_time(cursors[feed]) if feed in cursors else latest))

        # 4. campaigns and their mailings; each campaign mailing's lists from their own date cursors
        campaigns = self.client.get("GET /campaign/list", "/campaign/list")
        yield from self.emit([{"encrypted_id": c["encryptedId"], "campaign_name": c.get("name"), "active": c.get("active"),
                               "triggers": json.dumps(c.get("triggers") or [], ensure_ascii=False)} for c in campaigns],
                             "campaigns")
        per_campaign = self.gather(lambda c: self.client.get("GET /campaign/{encryptedCampaignId}/mailing",
                                                             f"/campaign/{c['encryptedId']}/mailing"), campaigns,
                                   key=None)
        self.finish_step()
        known_campaign_mailings: list = state.setdefault("campaign_mailings", [])
        campaign_mailings = [(c["encryptedId"], m) for c, mailings in per_campaign for m in mailings]
        details = self.gather(lambda item: self.client.get("GET /campaign-mailing/{encryptedMailingId}",
                                                           f"/campaign-mailing/{item[1]['encryptedId']}"),
                              [(cid, m) for cid, m in campaign_mailings if m["encryptedId"] not in known_campaign_mailings],
                              key=lambda item: f"campaign-details:{item[1]['encryptedId']}")
        rows, links = [], []
        for (cid, m), body in details:
            rows.append({"encrypted_id": m["encryptedId"], "campaign_id": cid, "mailing_name": m.get("name"),
                         "mailing_type": m.get("type"), **_message(body)})
            links += _links(body, "campaign_mailing", m["encryptedId"])
        yield from self.emit(rows, "campaign_mailings")
        yield from self.emit(links, "mailing_links")
        known_campaign_mailings.extend(m["encryptedId"] for (_, m), _ in details)
        self.finish_step()
        list_cursors: dict = state.setdefault("campaign_list_cursors", {})
        work = [(m["encryptedId"], kind) for _, m in campaign_mailings for kind in CAMPAIGN_LISTS]

        def since_for(name: str) -> dt.datetime:
            return parse_time(list_cursors[name]) - CURSOR_OVERLAP if name in list_cursors else settings.start_date
        fetched = self.gather(lambda item: self._campaign_events(item[0], item[1], since_for(f"{item[0]}:{item[1]}")),
                              work, key=lambda item: f"campaign-list:{item[0]}:{item[1]}")
        for kind, table in CAMPAIGN_LISTS.items():
            yield from self.emit([row for (_, k), rows_ in fetched if k == kind for row in rows_], table)
        for (mailing_id, kind), _ in fetched:
            list_cursors[f"{mailing_id}:{kind}"] = iso(now)
        self.finish_step()

        # 5. forms and their results, each form from its own cursor
        forms = self.client.get("GET /form/list", "/form/list")
        yield from self.emit([{"form_id": f["id"], "form_name": f.get("name"), "form_sub_type": f.get("formSubType"),
                               "form_state": f.get("formState")} for f in forms], "forms")
        form_cursors: dict = state.setdefault("form_cursors", {})

        def results(form: dict) -> list:
            name = str(form["id"])
            since = parse_time(form_cursors[name]) - CURSOR_OVERLAP if name in form_cursors else settings.start_date
            return self.client.get("GET /form/result/{formId}", f"/form/result/{form['id']}",
                                   {"startDate": since.astimezone(settings.timezone).strftime("%Y%m%d%H%M%S")})
        answered = self.gather(results, forms, key=lambda f: f"form:{f['id']}")
        yield from self.emit([{"form_id": f["id"], "form_result_id": r["formResultId"],
                               "submitted_at": parse_time(r.get("submittedAt"), settings.timezone),
                               "test_result": r.get("testResult"), "completed": r.get("completed"),
                               "answers": json.dumps(r.get("answers") or [], ensure_ascii=False)}
                              for f, rs in answered for r in rs], "form_results")
        for form, _ in answered:
            form_cursors[str(form["id"])] = iso(now)
        self.finish_step()
        self.cycle_done.clear()  # every step done: the next run starts a new cycle

    def _campaign_events(self, mailing_id: str, kind: str, since: dt.datetime) -> list[dict]:
        date_field = {"recipients": "sendDate", "opens": "openDate", "clicks": "clickDate", "bounces": "bounceDate"}[kind]
        column = {"recipients": "sent_at", "opens": "opened_at", "clicks": "clicked_at", "bounces": "bounced_at"}[kind]
        rows = []
        for page in self.client.pages(f"GET /campaign-mailing/{{encryptedMailingId}}/{kind}",
                                      f"/campaign-mailing/{mailing_id}/{kind}", kind, {"fromDate": iso(since)}):
            for item in page:
                external, encrypted = _contact(item)
                row = {"mailing_id": mailing_id, "campaign_subscription_id": item.get("campaignSubscriptionId"),
                       "external_contact_id": external, "encrypted_contact_id": encrypted,
                       column: parse_time(item.get(date_field), self.settings.timezone)}
                if kind == "clicks":
                    row["link_id"] = item.get("linkId")
                if kind == "bounces":
                    row["bounce_type"] = item.get("type")
                row["event_key"] = _key(kind, mailing_id, row["campaign_subscription_id"], external, item.get(date_field),
                                        row.get("link_id"))
                rows.append(row)
        return rows


def _statistics(body: dict) -> dict:
    names = {"sentCount": "sent_count", "acceptedCount": "accepted_count", "openCount": "open_count",
             "openRenderedCount": "open_rendered_count", "clickCount": "click_count",
             "hardbounceCount": "hardbounce_count", "softbounceCount": "softbounce_count",
             "notRetainedAfterBounceCount": "not_retained_after_bounce_count",
             "conversionClickCount": "conversion_click_count", "unsubscribeCount": "unsubscribe_count",
             "toWebshopCount": "to_webshop_count", "shoppingcartCreatedCount": "shoppingcart_created_count",
             "shoppingcartConvertedCount": "shoppingcart_converted_count", "conversionValue": "conversion_value"}
    return {column: body.get(name) for name, column in names.items()}


def _interaction(item: dict, feed: str, zone: ZoneInfo) -> dict:
    date_column = {"sent": "sent_at", "opened": "opened_at", "bounced": "bounced_at"}[feed]
    row = {"interaction_id": item.get("id"), "mailing_id": item.get("encryptedMailingId"),
           "external_contact_id": item.get("externalContactId"), date_column: parse_time(item.get("date"), zone),
           "change_date": parse_time(item.get("changeDate"), zone), "trend_report_id": item.get("trendReportId")}
    if feed == "sent":
        row.update({"mailing_name": item.get("name"), "subject": item.get("subject"),
                    "online_version_link": item.get("onlineVersionLink")})
    if feed == "bounced":
        row["bounce_type"] = item.get("bounceType")
    return row


def spotler_items(client: SpotlerClient, settings: SpotlerSettings, summary: RunSummary, now: dt.datetime):
    state = dlt.current.resource_state()
    working = json.loads(json.dumps(state))  # cursors move only for steps that finish
    run = _Run(client, settings, summary, now)
    try:
        yield from run.items(working)
    except CallBudgetReached:
        summary.budget_reached = True
    finally:
        run.pool.shutdown(wait=True)
        summary.calls.update(client.calls)
    state.clear()
    state.update(working)


def contact_items(client: SpotlerClient, settings: SpotlerSettings, summary: RunSummary, external_ids: list[str],
                  now: dt.datetime):
    """The per-contact histories, on demand: one paged call per contact and history (50 a page)."""
    zone = settings.timezone
    try:
        for external_id in external_ids:
            mailing_rows, campaign_rows, form_rows = [], [], []
            for page in client.pages("GET /contact/{externalId}/mailings", f"/contact/{external_id}/mailings",
                                     "mailingHistories"):
                for h in page:
                    mailing = h.get("mailing") or {}
                    mailing_rows.append({"history_key": _key(external_id, mailing.get("encryptedId"), h.get("sentDate")),
                                         "external_contact_id": external_id, "mailing_id": mailing.get("encryptedId"),
                                         "mailing_name": mailing.get("name"), "sent_at": parse_time(h.get("sentDate"), zone),
                                         "opened": h.get("opened"), "clicked": h.get("clicked"), "bounce": h.get("bounce"),
                                         "fetched_at": now})
            for page in client.pages("GET /contact/{externalId}/campaign-mailings",
                                     f"/contact/{external_id}/campaign-mailings", "campaignMailingHistories"):
                for h in page:
                    mailing = h.get("campaignMailing") or {}
                    campaign_rows.append({
                        "history_key": _key(external_id, mailing.get("encryptedId"), h.get("campaignSubscriptionId"),
                                            h.get("sentDate")),
                        "external_contact_id": external_id, "mailing_id": mailing.get("encryptedId"),
                        "mailing_name": mailing.get("name"), "mailing_type": mailing.get("type"),
                        "campaign_subscription_id": h.get("campaignSubscriptionId"),
                        "sent_at": parse_time(h.get("sentDate"), zone), "opened": h.get("opened"),
                        "clicked": h.get("clicked"), "bounce": h.get("bounce"), "fetched_at": now})
            for page in client.pages("GET /contact/{externalId}/forms", f"/contact/{external_id}/forms", "formHistories"):
                for h in page:
                    form = h.get("form") or {}
                    form_rows.append({"history_key": _key(external_id, h.get("formResultId")),
                                      "external_contact_id": external_id, "form_id": form.get("id"),
                                      "form_name": form.get("name"), "form_result_id": h.get("formResultId"),
                                      "submitted_at": parse_time(h.get("submitDate"), zone),
                                      "completed": h.get("completed"), "fetched_at": now})
            for rows, table in ((mailing_rows, "contact_mailing_history"),
                                (campaign_rows, "contact_campaign_mailing_history"), (form_rows, "contact_form_history")):
                if rows:
                    summary.rows[table] += len(rows)
                    yield _tagged(rows, table)
    except CallBudgetReached:
        summary.budget_reached = True
    finally:
        summary.calls.update(client.calls)


def make_pipeline(warehouse: Path) -> dlt.Pipeline:
    return warehouse_settings.make_pipeline(PIPELINE_NAME, DATASET, warehouse, memory_limit=LOAD_MEMORY_LIMIT)


def run(*, contacts_file: Path | None = None, stream=sys.stderr, now: dt.datetime | None = None) -> RunSummary:
    settings = load_settings(now)
    warehouse = warehouse_settings.warehouse_path()
    pipeline = make_pipeline(warehouse)
    warehouse_settings.finish_pending_load(pipeline, stream)
    client = SpotlerClient(settings, log=lambda message: print(message, file=stream, flush=True))
    summary = RunSummary()
    now = now or dt.datetime.now(dt.UTC)
    if contacts_file is not None:
        ids = [line.strip() for line in Path(contacts_file).read_text(encoding="utf-8").splitlines() if line.strip()]
        print(f"spotler: fetching the histories of {len(ids)} contacts from {contacts_file}", file=stream, flush=True)
        items = contact_items(client, settings, summary, ids, now)
        name = "spotler_contacts"
    else:
        print(f"spotler: syncing from {settings.base_url}", file=stream, flush=True)
        items = spotler_items(client, settings, summary, now)
        name = RESOURCE
    try:
        pipeline.run(dlt.resource(items, name=name))
    except PipelineStepFailed as failure:
        raise warehouse_settings.unwrap(failure, SpotlerError) from None
    return summary
