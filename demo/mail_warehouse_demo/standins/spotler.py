"""A stand-in for the Spotler Mail+ reporting API, built from the vendor's description and fed by a demo world.

- Routes, required parameters and response models come from `spotler_api.json`; served under
  `/integrationservice` and the alias `/integrationservice-1.1.0`.
- Every request must carry a valid OAuth 1.0a one-legged HMAC-SHA1 signature (query parameters included,
  nonces not replayed, timestamps within five minutes); anything else gets 401 NOT_AUTHORIZED.
- Paged answers use `after` and `pageSize` (default 1000, at most 10000; the two contact histories a fixed
  50): `{"paging": {"next": ..., "after": ...}, "<items>": [...]}`, no `next` on the last page.
- The stand-in has a clock (`now`, by default the world's): mailings and events after it do not exist yet,
  so a test can let time pass and watch statistics settle.
- The write side the export uses: external campaign triggers (`POST /campaign/trigger/{id}`) and audiences,
  held in memory. `triggered` lists every trigger it carried out, in order, so a contact started twice shows
  twice; `automation=False` is an account without Automation or eCommerce (403 on audiences).
- The write side the contact sync uses: contacts added (`POST /contact/list`, at most 100 a call, an answer code
  per contact; `POST /contact`) and changed (`PUT /contact/{externalId}`), held in memory over the world's people:
  `GET /contact/{externalId}` serves them, `contact_writes` lists every add and change carried out, and a
  process outside reads both at `GET /_standin/contacts`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849.utils import escape, parse_authorization_header, unescape

from mail_warehouse.settings import connect
from mail_warehouse_demo.standins import spotler_spec
from mail_warehouse_demo.standins.http import ADMIN_PREFIX, Request, Response, StandinServer

BASE_PATHS = ("/integrationservice-1.1.0", "/integrationservice")
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000
CONTACT_HISTORY_PAGE_SIZE = 50
TIMESTAMP_WINDOW_SECONDS = 300
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
DEMO_CONSUMER_KEY = "demo-consumer-key"
DEMO_CONSUMER_SECRET = "demo-consumer-secret"
INTERACTION_DELAY_SECONDS = 300  # a feed's changeDate trails the event by a few minutes
# A list a client pages through is read once and its pages cut from it (the world is read-only), when it has at most
# this many rows; of the lists read so far, the last few are held.
HELD_LIST_ROWS = 50_000
HELD_LISTS = 4
# The reporting operations of the spec, by path, and the method answering each.
ROUTES = {
    "/mailing": "mailings",
    "/mailing/{encryptedMailingId}": "mailing_details",
    "/mailing/{encryptedMailingId}/statistics": "mailing_statistics",
    "/mailing/{encryptedMailingId}/recipients": "mailing_recipients",
    "/mailing/{encryptedMailingId}/opens": "mailing_opens",
    "/mailing/{encryptedMailingId}/opens/{externalId}": "mailing_contact_opens",
    "/mailing/{encryptedMailingId}/clicks": "mailing_clicks",
    "/mailing/{encryptedMailingId}/clicks/{externalId}": "mailing_contact_clicks",
    "/mailing/{encryptedMailingId}/bounces": "mailing_bounces",
    "/mailing-interaction/sent": "sent_interactions",
    "/mailing-interaction/opened": "opened_interactions",
    "/mailing-interaction/clicked": "clicked_interactions",
    "/mailing-interaction/bounced": "bounced_interactions",
    "/trend-report": "trend_reports",
    "/campaign/list": "campaigns",
    "/campaign/{encryptedCampaignId}/mailing": "campaign_mailings",
    "/campaign-mailing/{encryptedMailingId}": "campaign_mailing_details",
    "/campaign-mailing/{encryptedMailingId}/recipients": "campaign_mailing_recipients",
    "/campaign-mailing/{encryptedMailingId}/opens": "campaign_mailing_opens",
    "/campaign-mailing/{encryptedMailingId}/opens/{campaignSubscriptionId}": "campaign_mailing_opens",
    "/campaign-mailing/{encryptedMailingId}/clicks": "campaign_mailing_clicks",
    "/campaign-mailing/{encryptedMailingId}/clicks/{campaignSubscriptionId}": "campaign_mailing_clicks",
    "/campaign-mailing/{encryptedMailingId}/bounces": "campaign_mailing_bounces",
    "/form/list": "forms",
    "/form/result/{formId}": "form_results",
    "/form/result/{formId}/{formResultId}": "form_result",
    "/contact/{externalId}": "contact",
    "/contact/{externalId}/mailings": "contact_mailing_history",
    "/contact/{externalId}/campaign-mailings": "contact_campaign_mailing_history",
    "/contact/{externalId}/forms": "contact_form_history",
    "/contact/bounces/list": "bounced_contacts",
    "/contact/updates/list": "updated_contacts",
}
# The write operations the export uses, by method and path.
WRITE_ROUTES = {
    ("POST", "/campaign/trigger/{encryptedTriggerId}"): "trigger_campaign",
    ("POST", "/audience"): "create_audience",
    ("GET", "/audience/{externalId}"): "get_audience",
    ("PUT", "/audience/{externalId}"): "update_audience",
    ("DELETE", "/audience/{externalId}"): "delete_audience",
    ("POST", "/audience/{externalId}/contact"): "add_audience_contacts",
    ("DELETE", "/audience/{externalId}/contact"): "remove_audience_contacts",
    ("PUT", "/contact/anonymize/{externalId}"): "anonymize_contact",
    ("POST", "/contact/list"): "insert_contacts",
    ("POST", "/contact"): "insert_contact",
    ("PUT", "/contact/{externalId}"): "update_contact",
}
MAX_AUDIENCE_BATCH = 2500
MAX_CONTACTS_PER_LIST = 100
# The properties every Mail+ account has (a part of what GET /contact/properties/list lists); an account's own
# properties come on top (`contact_properties`).
STANDARD_CONTACT_PROPERTIES = frozenset(
    {
        "email",
        "firstName",
        "infix",
        "lastName",
        "gender",
        "birthday",
        "street",
        "houseNumber",
        "postalCode",
        "city",
        "country",
        "mobileNumber",
    }
)
EXISTS = "Contact already exists"
EMAIL_PATTERN = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;.]{2,}$")


class ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def iso_local(value: dt.datetime | None) -> str | None:
    """Mailing dates as Spotler's Java back end writes them: Amsterdam time with its offset."""
    return None if value is None else value.astimezone(AMSTERDAM).isoformat(timespec="seconds")


def utc_millis_sql(column: str) -> str:
    """Event dates: UTC with milliseconds and a Z, written by DuckDB (in Python it costs more than the query)."""
    return f"strftime(timezone('UTC', {column}), '%Y-%m-%dT%H:%M:%S.%g') || 'Z'"


def epoch_millis(value: dt.datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def parse_iso_param(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=AMSTERDAM)


def parse_date_param(value: str) -> dt.datetime:
    """DateParam: yyyyMMddHHmmss, the time part optional."""
    return dt.datetime.strptime(value, "%Y%m%d%H%M%S" if len(value) > 8 else "%Y%m%d").replace(tzinfo=AMSTERDAM)


def _contact(row: dict) -> dict:
    return {"externalId": row["external_id"], "encryptedId": row["encrypted_id"]}


class _SignedPagedApi:
    """The plumbing: the world's connection and clock, routing, OAuth signatures, parameters, paging."""

    def __init__(
        self,
        world_dir: Path,
        consumer_key: str = DEMO_CONSUMER_KEY,
        consumer_secret: str = DEMO_CONSUMER_SECRET,
        now: dt.datetime | None = None,
    ) -> None:
        self.world_dir = Path(world_dir)
        manifest = json.loads((self.world_dir / "world.json").read_text())
        self.world_now = dt.datetime.fromtimestamp(manifest["now"], dt.UTC)
        self.now = now or self.world_now
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self._con = connect(self.world_dir / "world.duckdb", read_only=True)
        self._con_lock = threading.Lock()
        self._seen_nonces: set[tuple[str, str]] = set()
        self._held_lists: OrderedDict[str, tuple[int, list[dict] | None]] = OrderedDict()
        self._mailings_by_id: dict[str, dict] | None = None
        # True: `paging.next` as a path without scheme and host, as the real server may send it
        self.relative_next = False
        self._init_writes()

    def endpoint_name(self, request: Request) -> str:
        """Calls are counted per spec path (`GET /mailing/{encryptedMailingId}/opens`)."""
        path = self._strip_base(request.path)
        found = spotler_spec.find_operation(request.method, path) if path is not None else None
        return f"{request.method} {found[0].path}" if found else f"{request.method} {request.path}"

    @staticmethod
    def _strip_base(path: str) -> str | None:
        """The path under a base path; one trailing slash is accepted (`/mailing/`), as the real (Java)
        server most likely serves it and a published client asks for it."""
        for base in BASE_PATHS:
            if path.startswith(base + "/"):
                path = path[len(base) :]
                return path[:-1] if path.endswith("/") and len(path) > 1 else path
        return None

    def close(self) -> None:
        self._con.close()

    def query(self, sql: str, params: dict | None = None) -> list[dict]:
        with self._con_lock:
            cursor = self._con.cursor()
        try:
            cursor.execute(sql, {**(params or {}), **({"now": self.now} if "$now" in sql else {})})
            columns = [d[0] for d in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def _list(self, sql: str, params: dict, order_by: str) -> tuple[int, list[dict] | None]:
        """A paged list's length and, when it is short enough to hold, all its rows in order: a client paging
        through it (the same list, `after` growing) costs one query, not a count and a sort for every page."""
        key = json.dumps([sql, order_by, params, self.now], default=str, sort_keys=True)
        with self._con_lock:
            if key in self._held_lists:
                self._held_lists.move_to_end(key)
                return self._held_lists[key]
        rows = self.query(f"select * from ({sql}) order by {order_by} limit {HELD_LIST_ROWS + 1}", params)
        found: tuple[int, list[dict] | None] = (len(rows), rows)
        if len(rows) > HELD_LIST_ROWS:  # too long to hold: counted, and each page read on its own
            found = (self.query(f"select count(*) as n from ({sql})", params)[0]["n"], None)
        with self._con_lock:
            self._held_lists[key] = found
            while len(self._held_lists) > HELD_LISTS:
                self._held_lists.popitem(last=False)
        return found

    def __call__(self, request: Request) -> Response:
        path = self._strip_base(request.path)
        try:
            if path is None:
                raise ApiError(404, "RESOURCE_NOT_FOUND", f"no resource at {request.path}")
            self.verify_signature(request)
            found = spotler_spec.find_operation(request.method, path)
            route = found and (
                WRITE_ROUTES.get((request.method, found[0].path))
                or (ROUTES.get(found[0].path) if request.method == "GET" else None)
            )
            if not route:
                raise ApiError(404, "RESOURCE_NOT_FOUND", f"{request.method} {path} is not served by the stand-in")
            operation, path_params = found
            params = self._validated_params(operation, request.params)
            answer = getattr(self, route)(request=request, operation=operation, **path_params, **params)
            return answer if isinstance(answer, Response) else Response.json(answer)
        except ApiError as error:
            return Response.json({"errorType": error.error_type, "message": error.message}, error.status)

    def verify_signature(self, request: Request) -> None:
        authorization = request.headers.get("authorization", "")
        oauth = (
            {k: unescape(v) for k, v in parse_authorization_header(authorization)}
            if authorization.startswith("OAuth ")
            else {}
        )
        oauth.update({k: v for k, v in request.query if k.startswith("oauth_")})
        if oauth.get("oauth_consumer_key") != self.consumer_key:
            raise ApiError(401, "NOT_AUTHORIZED", "unknown or missing oauth_consumer_key")
        if oauth.get("oauth_signature_method") != "HMAC-SHA1":
            raise ApiError(401, "NOT_AUTHORIZED", "oauth_signature_method must be HMAC-SHA1")
        try:
            stamp = int(oauth.get("oauth_timestamp", ""))
        except ValueError:
            raise ApiError(401, "NOT_AUTHORIZED", "missing oauth_timestamp") from None
        if abs(time.time() - stamp) > TIMESTAMP_WINDOW_SECONDS:
            raise ApiError(401, "NOT_AUTHORIZED", "oauth_timestamp outside the accepted window")
        nonce = (oauth.get("oauth_nonce", ""), str(stamp))
        if not nonce[0] or nonce in self._seen_nonces:
            raise ApiError(401, "NOT_AUTHORIZED", "missing or replayed oauth_nonce")
        parameters = oauth_signature.collect_parameters(
            uri_query=urlencode(request.query),
            headers={"Authorization": authorization} if authorization else None,
            exclude_oauth_signature=True,
        )
        base = oauth_signature.signature_base_string(
            request.method,
            oauth_signature.base_string_uri(request.url),
            oauth_signature.normalize_parameters(parameters),
        )
        # RFC 5849 3.4.2: the key is the escaped consumer secret and an empty token secret.
        digest = hmac.new(f"{escape(self.consumer_secret)}&".encode(), base.encode(), hashlib.sha1).digest()
        expected = base64.b64encode(digest).decode()
        if not hmac.compare_digest(expected, oauth.get("oauth_signature", "")):
            raise ApiError(401, "NOT_AUTHORIZED", "invalid OAuth signature")
        self._seen_nonces.add(nonce)

    def _validated_params(self, operation: spotler_spec.Operation, given: dict[str, str]) -> dict:
        values = {}
        for name, spec in operation.query_parameters.items():
            raw = given.get(name)
            if raw is None or raw == "":
                if spec.get("required") and name != "pageSize":
                    raise ApiError(400, "INVALID_PARAMS", f"Invalid {name} or no {name} given")
                continue
            try:
                if spec["type"] == "integer":
                    values[name] = int(raw)
                elif spec["type"] == "boolean":
                    values[name] = raw.lower() == "true"
                elif spec["type"] == "ISODateParam":
                    values[name] = parse_iso_param(raw)
                elif spec["type"] == "DateParam":
                    values[name] = parse_date_param(raw)
                else:
                    values[name] = raw
            except ValueError:
                raise ApiError(400, "INVALID_PARAMS", f"Invalid {name}: {raw!r}") from None
        return values

    def page(
        self,
        request: Request,
        sql: str,
        params: dict,
        item_key: str,
        to_item: Callable[[dict], dict],
        *,
        after: int | None = None,
        pageSize: int | None = None,
        fixed_page_size: int | None = None,
        order_by: str,
    ) -> dict:
        after = after or 0
        size = fixed_page_size or (DEFAULT_PAGE_SIZE if pageSize is None else pageSize)
        if after < 0 or size < 1 or size > MAX_PAGE_SIZE:
            raise ApiError(400, "INVALID_PARAMS", f"after must be >= 0 and pageSize 1..{MAX_PAGE_SIZE}")
        total, held = self._list(sql, params, order_by)
        if held is not None:
            rows = held[after : after + size]
        else:
            rows = self.query(f"select * from ({sql}) order by {order_by} limit {size} offset {after}", params)
        paging: dict = {}
        if after + len(rows) < total:
            following = [(k, v) for k, v in request.query if k not in ("after",) and not k.startswith("oauth_")]
            following.append(("after", str(after + len(rows))))
            link = request.path if self.relative_next else request.url
            paging = {"next": f"{link}?{urlencode(following)}", "after": after + len(rows)}
        return {"paging": paging, item_key: [to_item(r) for r in rows]}


class _Mailings:
    """Mailings: lists, details, statistics and the per-mailing event lists."""

    def _mailing(self, encryptedMailingId: str, system: str) -> dict:
        if self._mailings_by_id is None:  # the world's mailings, read once: every mailing's calls look one up
            self._mailings_by_id = {
                row["source_id"]: row
                for row in self.query(
                    """
                    select m.*, c.campaign_name from mailings m left join campaigns c using (campaign_index)
                    where m.system in ('spotler', 'spotler_campaign')
                """
                )
            }
        found = self._mailings_by_id.get(encryptedMailingId)
        if found is None or (found["sent_at"] is not None and found["sent_at"] > self.now):
            raise ApiError(404, "MAILING_NOTFOUND", "Mailing not found")
        if found["system"] != system:
            raise ApiError(400, "INVALID_MAILING", "Mailing type invalid")
        return dict(found)

    @staticmethod
    def _archive_link(mailing: dict) -> str:
        return f"https://mailing.example-shop.nl/archive/{mailing['source_id']}"

    def _mailing_summary(self, m: dict) -> dict:
        return {
            "encryptedId": m["source_id"],
            "name": m["mailing_name"],
            "scheduledStartDate": iso_local(m["sent_at"]),
            "type": m["mailing_type"],
            "archiveLink": self._archive_link(m),
            "sentCount": int(m["sent_count"]),
        }

    _MAILING_LIST_SQL = """
        select m.*, (select count(*) from sends s where s.mailing_index = m.mailing_index) as sent_count
        from mailings m where m.system = 'spotler' and m.sent_at <= $now
    """

    def mailings(self, request, operation, fromDate, toDate, **_):
        rows = self.query(
            self._MAILING_LIST_SQL + " and m.sent_at >= $from and m.sent_at <= $to order by m.sent_at",
            {"from": fromDate, "to": toDate},
        )
        return [self._mailing_summary(m) for m in rows]

    def _message(self, m: dict) -> dict:
        message = {
            "name": m["mailing_name"],
            "author": m["sender"],
            "fromName": "Example Shop",
            "fromEmail": "nieuws@example-shop.nl",
        }
        if m["subject"]:
            message["subject"] = m["subject"]
        return message

    def _links(self, m: dict) -> list[dict]:
        rows = self.query("select * from links where mailing_index = $m order by link_id", {"m": m["mailing_index"]})
        return [
            {
                k: v
                for k, v in {
                    "id": r["link_id"],
                    "name": r["link_name"],
                    "url": r["url"],
                    "code": r["link_code"],
                    "type": r["link_type"],
                }.items()
                if v is not None
            }
            for r in rows
        ]

    def mailing_details(self, request, operation, encryptedMailingId, **_):
        m = self._mailing(encryptedMailingId, "spotler")
        m = self.query(self._MAILING_LIST_SQL + " and m.source_id = $id", {"id": encryptedMailingId})[0]
        return {
            **self._mailing_summary(m),
            "sender": m["sender"],
            "targetGroup": m["target_group"],
            "message": self._message(m),
            "links": self._links(m),
        }

    def mailing_statistics(self, request, operation, encryptedMailingId, **_):
        m = self._mailing(encryptedMailingId, "spotler")
        row = self.query(
            """
            with visible as (
                select e.*, l.link_type from events e
                left join links l on l.mailing_index = e.mailing_index and l.link_id = e.link_id
                where e.mailing_index = $m and e.event_at <= $now
            ), carts as (
                select c.* from conversions c
                where c.mailing_index = $m and exists (
                    select 1 from visible v
                    where v.person_id = c.person_id and v.link_type in ('webshop', 'conversion'))
            )
            select
                count(*) filter (where event_type = 'sent') as sent,
                count(*) filter (where event_type = 'hard_bounce') as hard,
                count(*) filter (where event_type = 'soft_bounce') as soft,
                count(distinct person_id) filter (where event_type in ('open', 'click')) as opens,
                count(distinct person_id) filter (where event_type = 'open') as rendered,
                count(distinct person_id)
                    filter (where event_type = 'click' and coalesce(link_type, '') != 'unsubscribe') as clicks,
                count(distinct person_id) filter (where event_type = 'click' and link_type = 'conversion')
                    as conversion_clicks,
                count(distinct person_id) filter (where event_type = 'click' and link_type = 'webshop') as webshop,
                count(distinct person_id) filter (where event_type in ('unsubscribe', 'complaint')) as unsubscribes,
                (select count(*) from carts) as carts, (select count(*) from carts where paid) as paid,
                (select coalesce(sum(value_cents), 0) from carts) as value_cents
            from visible
        """,
            {"m": m["mailing_index"]},
        )[0]
        return {
            "sentCount": row["sent"],
            "acceptedCount": row["sent"] - row["hard"] - row["soft"],
            "openCount": row["opens"],
            "openRenderedCount": row["rendered"],
            "clickCount": row["clicks"],
            "hardbounceCount": row["hard"],
            "softbounceCount": row["soft"],
            "notRetainedAfterBounceCount": row["hard"],
            "conversionClickCount": row["conversion_clicks"],
            "unsubscribeCount": row["unsubscribes"],
            "toWebshopCount": row["webshop"],
            "shoppingcartCreatedCount": row["carts"],
            "shoppingcartConvertedCount": row["paid"],
            "conversionValue": int(row["value_cents"]),
        }

    def _event_sql(self, event_types: str, extra: str = "") -> str:
        return f"""
            select e.event_seq, e.event_at, {utc_millis_sql("e.event_at")} as event_date, e.event_type, e.link_id,
                   e.subscription_id, p.directo_code as external_id, p.spotler_encrypted_id as encrypted_id
            from events e join people p using (person_id)
            where e.mailing_index = $m and e.event_type in ({event_types}) and e.event_at <= $now {extra}
        """

    def _date_filter(self, params: dict, fromDate=None, toDate=None) -> str:
        clauses = ""
        if fromDate is not None:
            params["from"] = fromDate
            clauses += " and e.event_at >= $from"
        if toDate is not None:
            params["to"] = toDate
            clauses += " and e.event_at <= $to"
        return clauses

    def _mailing_events(
        self,
        request,
        system,
        encryptedMailingId,
        event_types,
        item_key,
        to_item,
        *,
        contact_filter: str = "",
        contact_value=None,
        after=None,
        pageSize=None,
        fromDate=None,
        toDate=None,
    ):
        m = self._mailing(encryptedMailingId, system)
        params = {"m": m["mailing_index"]}
        extra = self._date_filter(params, fromDate, toDate)
        if contact_filter:
            params["who"] = contact_value
            extra += f" and {contact_filter} = $who"
        return self.page(
            request,
            self._event_sql(event_types, extra),
            params,
            item_key,
            to_item,
            after=after,
            pageSize=pageSize,
            order_by="event_at, event_seq",
        )

    def mailing_recipients(self, request, operation, encryptedMailingId, **p):
        return self._mailing_events(
            request,
            "spotler",
            encryptedMailingId,
            "'sent'",
            "recipients",
            lambda r: {"contactIdentifier": _contact(r)},
            **p,
        )

    def mailing_opens(self, request, operation, encryptedMailingId, **p):
        return self._mailing_events(
            request,
            "spotler",
            encryptedMailingId,
            "'open'",
            "opens",
            lambda r: {"contactIdentifier": _contact(r), "openDate": r["event_date"]},
            **p,
        )

    def mailing_contact_opens(self, request, operation, encryptedMailingId, externalId, **p):
        return self._mailing_events(
            request,
            "spotler",
            encryptedMailingId,
            "'open'",
            "opens",
            lambda r: {"openDate": r["event_date"]},
            contact_filter="p.directo_code",
            contact_value=externalId,
            **p,
        )

    def mailing_clicks(self, request, operation, encryptedMailingId, **p):
        return self._mailing_events(
            request,
            "spotler",
            encryptedMailingId,
            "'click'",
            "clicks",
            lambda r: {
                "contactIdentifier": _contact(r),
                "clickDate": r["event_date"],
                "linkId": r["link_id"],
            },
            **p,
        )

    def mailing_contact_clicks(self, request, operation, encryptedMailingId, externalId, **p):
        return self._mailing_events(
            request,
            "spotler",
            encryptedMailingId,
            "'click'",
            "clicks",
            lambda r: {"clickDate": r["event_date"], "linkId": r["link_id"]},
            contact_filter="p.directo_code",
            contact_value=externalId,
            **p,
        )

    def mailing_bounces(self, request, operation, encryptedMailingId, **p):
        return self._mailing_events(
            request,
            "spotler",
            encryptedMailingId,
            "'hard_bounce', 'soft_bounce'",
            "bounces",
            lambda r: {
                "contactIdentifier": _contact(r),
                "bounceDate": r["event_date"],
                "type": "HARDBOUNCE" if r["event_type"] == "hard_bounce" else "SOFTBOUNCE",
            },
            **p,
        )


class _InteractionFeeds:
    """The account-wide interaction feeds, filtered on change date, and trend reports."""

    def _interactions(
        self,
        request,
        event_types,
        to_item,
        *,
        fromDate=None,
        toDate=None,
        fromChangeDate=None,
        toChangeDate=None,
        after=None,
        pageSize=None,
        **_,
    ):
        params: dict = {}
        where = ""
        for name, value, column, op in (
            ("from", fromDate, "event_at", ">="),
            ("to", toDate, "event_at", "<="),
            ("fromChange", fromChangeDate, "change_date", ">="),
            ("toChange", toChangeDate, "change_date", "<="),
        ):
            if value is not None:
                params[name] = value
                where += f" and {column} {op} ${name}"
        sql = f"""
            select *, {utc_millis_sql("event_at")} as event_date, {utc_millis_sql("change_date")} as change_date_text
            from (
                select e.event_seq, e.event_at, e.event_type,
                    e.event_at + interval {INTERACTION_DELAY_SECONDS} second as change_date,
                       p.directo_code as external_id, m.source_id, m.mailing_name, m.subject, m.mailing_index
                from events e join mailings m using (mailing_index) join people p using (person_id)
                where m.system = 'spotler' and e.event_type in ({event_types})
            ) where change_date <= $now {where}
        """
        return self.page(
            request,
            sql,
            params,
            "interactions",
            to_item,
            after=after,
            pageSize=pageSize,
            order_by="change_date, event_seq",
        )

    def _interaction(self, r: dict) -> dict:
        return {
            "id": r["event_seq"],
            "externalContactId": r["external_id"],
            "encryptedMailingId": r["source_id"],
            "date": r["event_date"],
            "changeDate": r["change_date_text"],
            "trendReportId": 1,
        }

    def sent_interactions(self, request, operation, **p):
        return self._interactions(
            request,
            "'sent'",
            lambda r: {
                **self._interaction(r),
                "name": r["mailing_name"],
                "subject": r["subject"],
                "onlineVersionLink": f"https://mailing.example-shop.nl/archive/{r['source_id']}",
            },
            **p,
        )

    def opened_interactions(self, request, operation, **p):
        return self._interactions(request, "'open'", self._interaction, **p)

    def clicked_interactions(self, request, operation, **p):
        return self._interactions(request, "'click'", self._interaction, **p)

    def bounced_interactions(self, request, operation, **p):
        return self._interactions(
            request,
            "'hard_bounce', 'soft_bounce'",
            lambda r: {**self._interaction(r), "bounceType": "HARD" if r["event_type"] == "hard_bounce" else "SOFT"},
            **p,
        )

    def trend_reports(self, request, operation, after=None, pageSize=None, **_):
        sql = "select 1 as id, 'Nieuwsbrieven' as name, count(*) as mailings from mailings where system = 'spotler'"
        return self.page(
            request,
            sql,
            {},
            "trendReports",
            lambda r: {
                "id": r["id"],
                "name": r["name"],
                "enabled": True,
                "target": "B2C",
                "contentType": "MARKETING",
                "reportingEnabled": True,
                "mailingCount": r["mailings"],
            },
            after=after,
            pageSize=pageSize,
            order_by="id",
        )


class _Campaigns:
    """Campaigns, their mailings and each campaign mailing's event lists."""

    def campaigns(self, request, operation, **_):
        rows = self._campaign_rows()
        return [
            {
                "encryptedId": c["encrypted_id"],
                "name": c["campaign_name"],
                "active": c["active"],
                "triggers": [{"encryptedId": self._trigger_id(c), "name": c["trigger_name"]}],
            }
            for c in rows
        ]

    def campaign_mailings(self, request, operation, encryptedCampaignId, **_):
        campaign = self.query("select * from campaigns where encrypted_id = $id", {"id": encryptedCampaignId})
        if not campaign:
            raise ApiError(404, "CAMPAIGN_NOTFOUND", "Campaign not found")
        rows = self.query(
            "select * from mailings where system = 'spotler_campaign' and campaign_index = $c "
            "order by offset_days, mailing_index",
            {"c": campaign[0]["campaign_index"]},
        )
        return [{"encryptedId": m["source_id"], "name": m["mailing_name"], "type": m["mailing_type"]} for m in rows]

    def campaign_mailing_details(self, request, operation, encryptedMailingId, **_):
        m = self._mailing(encryptedMailingId, "spotler_campaign")
        return {
            "encryptedId": m["source_id"],
            "name": m["mailing_name"],
            "type": m["mailing_type"],
            "message": self._message(m),
            "links": self._links(m),
        }

    def campaign_mailing_recipients(self, request, operation, encryptedMailingId, **p):
        return self._mailing_events(
            request,
            "spotler_campaign",
            encryptedMailingId,
            "'sent'",
            "recipients",
            lambda r: {
                "contactIdentifier": _contact(r),
                "sendDate": iso_local(r["event_at"]),
                "campaignSubscriptionId": r["subscription_id"],
            },
            **p,
        )

    def campaign_mailing_opens(self, request, operation, encryptedMailingId, campaignSubscriptionId=None, **p):
        if campaignSubscriptionId is not None:
            return self._mailing_events(
                request,
                "spotler_campaign",
                encryptedMailingId,
                "'open'",
                "opens",
                lambda r: {"openDate": r["event_date"]},
                contact_filter="e.subscription_id",
                contact_value=int(campaignSubscriptionId),
                **p,
            )
        return self._mailing_events(
            request,
            "spotler_campaign",
            encryptedMailingId,
            "'open'",
            "opens",
            lambda r: {
                "campaignSubscriptionId": r["subscription_id"],
                "contactIdentifier": _contact(r),
                "openDate": r["event_date"],
            },
            **p,
        )

    def campaign_mailing_clicks(self, request, operation, encryptedMailingId, campaignSubscriptionId=None, **p):
        if campaignSubscriptionId is not None:
            return self._mailing_events(
                request,
                "spotler_campaign",
                encryptedMailingId,
                "'click'",
                "clicks",
                lambda r: {"clickDate": r["event_date"], "linkId": r["link_id"]},
                contact_filter="e.subscription_id",
                contact_value=int(campaignSubscriptionId),
                **p,
            )
        return self._mailing_events(
            request,
            "spotler_campaign",
            encryptedMailingId,
            "'click'",
            "clicks",
            lambda r: {
                "contactIdentifier": _contact(r),
                "clickDate": r["event_date"],
                "linkId": r["link_id"],
                "campaignSubscriptionId": r["subscription_id"],
            },
            **p,
        )

    def campaign_mailing_bounces(self, request, operation, encryptedMailingId, **p):
        return self._mailing_events(
            request,
            "spotler_campaign",
            encryptedMailingId,
            "'hard_bounce', 'soft_bounce'",
            "bounces",
            lambda r: {
                "contactIdentifier": _contact(r),
                "bounceDate": r["event_date"],
                "type": "HARDBOUNCE" if r["event_type"] == "hard_bounce" else "SOFTBOUNCE",
                "campaignSubscriptionId": r["subscription_id"],
            },
            **p,
        )


class _Forms:
    """Forms and their results."""

    @staticmethod
    def _form(form_id: int) -> dict:
        from mail_warehouse_demo.names import FORMS

        for fid, name, sub_type, state in FORMS:
            if fid == form_id:
                return {"id": fid, "name": name, "formSubType": sub_type, "formState": state}
        raise ApiError(404, "FORM_NOT_FOUND", "Form not found")

    def forms(self, request, operation, **_):
        from mail_warehouse_demo.names import FORMS

        return [self._form(fid) for fid, *_ in FORMS]

    @staticmethod
    def _form_result(r: dict) -> dict:
        from mail_warehouse_demo.names import SURVEY_QUESTIONS

        answers = [
            {"rank": rank, "fieldId": field_id, "description": question, "answer": [options[i]]}
            for (rank, field_id, question, options), i in zip(SURVEY_QUESTIONS, r["answer_indexes"] or [], strict=False)
        ]
        result = {
            "formResultId": r["form_result_id"],
            "submittedAt": epoch_millis(r["submitted_at"]),
            "testResult": False,
            "completed": r["completed"],
        }
        if answers:
            result["answers"] = answers
        return result

    def form_results(self, request, operation, formId, completed=None, startDate=None, endDate=None, **_):
        self._form(int(formId))
        sql = "select * from form_results where form_id = $f and submitted_at <= $now"
        params: dict = {"f": int(formId)}
        if completed:
            sql += " and completed"
        if startDate is not None:
            sql, params["start"] = sql + " and submitted_at >= $start", startDate
        if endDate is not None:
            sql, params["end"] = sql + " and submitted_at <= $end", endDate
        return [self._form_result(r) for r in self.query(sql + " order by submitted_at, form_result_id", params)]

    def form_result(self, request, operation, formId, formResultId, **_):
        rows = self.query(
            "select * from form_results where form_id = $f and form_result_id = $r and submitted_at <= $now",
            {"f": int(formId), "r": int(formResultId)},
        )
        if not rows:
            raise ApiError(404, "FORMRESULT_NOT_FOUND", "Form result not found")
        return self._form_result(rows[0])


class _Contacts:
    """Contacts, their mail, campaign and form histories, and bounced contacts."""

    def _person(self, external_id: str) -> dict:
        rows = self.query("select * from people where directo_code = $id and joined_at <= $now", {"id": external_id})
        if not rows:
            raise ApiError(404, "CONTACT_NOT_FOUND", "Given contact not found")
        return rows[0]

    def _contact_object(self, p: dict) -> dict:
        subscribed = self._subscribed(p)
        return {
            "externalId": p["directo_code"],
            "encryptedId": p["spotler_encrypted_id"],
            "created": epoch_millis(p["joined_at"]),
            "lastChanged": epoch_millis(
                max(
                    t
                    for t in (p["joined_at"], p["unsubscribed_at"], p["reoptin_at"])
                    if t is not None and t <= self.now
                )
            ),
            "testGroup": False,
            "temporary": False,
            "properties": {
                "email": p["email"],
                "firstName": p["first_name"],
                "lastName": p["last_name"],
                "country": p["country"],
            },
            "channels": [{"name": "EMAIL", "value": subscribed}, {"name": "SMS", "value": False}],
        }

    # When a person last changed as of `now`: joining, unsubscribing, coming back (as _contact_object says).
    _LAST_CHANGED_SQL = """greatest(joined_at, case when unsubscribed_at <= $now then unsubscribed_at end,
                                    case when reoptin_at <= $now then reoptin_at end)"""

    def updated_contacts(self, request, operation, fromDate, toDate, after=None, pageSize=None, **_):
        """Contacts whose lastChanged lies within [fromDate, toDate], oldest change first."""
        sql = f"""
            select * from (select p.*, {self._LAST_CHANGED_SQL} as last_changed from people p where joined_at <= $now)
            where last_changed >= $from and last_changed <= $to
        """
        return self.page(
            request,
            sql,
            {"from": fromDate, "to": toDate},
            "contacts",
            self._contact_object,
            after=after,
            pageSize=pageSize,
            order_by="last_changed, person_id",
        )

    def contact(self, request, operation, externalId, **_):
        written = self.written_contacts.get(externalId)
        return written if written is not None else self._contact_object(self._person(externalId))

    def _history_sql(self, system: str) -> str:
        return f"""
            select m.*, s.sent_at as sent_date, s.subscription_id,
                   (select count(*) from sends x where x.mailing_index = m.mailing_index) as sent_count,
                   exists (select 1 from events e where e.mailing_index = m.mailing_index and e.person_id = $p
                           and e.event_type in ('open', 'click') and e.event_at <= $now
                           and e.subscription_id is not distinct from s.subscription_id) as opened,
                   exists (select 1 from events e where e.mailing_index = m.mailing_index and e.person_id = $p
                           and e.event_type = 'click' and e.event_at <= $now
                           and e.subscription_id is not distinct from s.subscription_id) as clicked,
                   (select max(e.event_type) from events e where e.mailing_index = m.mailing_index and e.person_id = $p
                    and e.event_type in ('hard_bounce', 'soft_bounce') and e.event_at <= $now
                    and e.subscription_id is not distinct from s.subscription_id) as bounce
            from sends s join mailings m using (mailing_index)
            where s.person_id = $p and m.system = '{system}' and s.sent_at <= $now
        """

    @staticmethod
    def _bounce(value: str | None) -> dict:
        return {} if value is None else {"bounce": "HARDBOUNCE" if value == "hard_bounce" else "SOFTBOUNCE"}

    def contact_mailing_history(self, request, operation, externalId, after=None, **_):
        person = self._person(externalId)
        return self.page(
            request,
            self._history_sql("spotler"),
            {"p": person["person_id"]},
            "mailingHistories",
            lambda r: {
                "mailing": self._mailing_summary(r),
                "sentDate": iso_local(r["sent_date"]),
                "opened": r["opened"],
                "clicked": r["clicked"],
                **self._bounce(r["bounce"]),
            },
            after=after,
            fixed_page_size=CONTACT_HISTORY_PAGE_SIZE,
            order_by="sent_date desc, mailing_index",
        )

    def contact_campaign_mailing_history(self, request, operation, externalId, after=None, **_):
        person = self._person(externalId)
        return self.page(
            request,
            self._history_sql("spotler_campaign"),
            {"p": person["person_id"]},
            "campaignMailingHistories",
            lambda r: {
                "campaignMailing": {
                    "encryptedId": r["source_id"],
                    "name": r["mailing_name"],
                    "type": r["mailing_type"],
                },
                "campaignSubscriptionId": r["subscription_id"],
                "sentDate": iso_local(r["sent_date"]),
                "opened": r["opened"],
                "clicked": r["clicked"],
                **self._bounce(r["bounce"]),
            },
            after=after,
            fixed_page_size=CONTACT_HISTORY_PAGE_SIZE,
            order_by="sent_date desc, mailing_index",
        )

    def contact_form_history(self, request, operation, externalId, after=None, pageSize=None, **_):
        person = self._person(externalId)
        sql = "select * from form_results where person_id = $p and submitted_at <= $now"
        return self.page(
            request,
            sql,
            {"p": person["person_id"]},
            "formHistories",
            lambda r: {
                "form": self._form(r["form_id"]),
                "formResultId": r["form_result_id"],
                "submitDate": iso_local(r["submitted_at"]),
                "completed": r["completed"],
            },
            after=after,
            pageSize=pageSize,
            order_by="submitted_at desc, form_result_id",
        )

    def bounced_contacts(self, request, operation, fromDate, toDate, after=None, pageSize=None, **_):
        sql = """
            select e.event_seq, e.event_at, e.event_type, m.source_id, p.*
            from events e join mailings m using (mailing_index) join people p using (person_id)
            where m.system in ('spotler', 'spotler_campaign') and e.event_type in ('hard_bounce', 'soft_bounce')
              and e.event_at <= $now and e.event_at >= $from and e.event_at <= $to
        """
        return self.page(
            request,
            sql,
            {"from": fromDate, "to": toDate},
            "bounces",
            lambda r: {
                "date": epoch_millis(r["event_at"]),
                "type": "HARDBOUNCE" if r["event_type"] == "hard_bounce" else "SOFTBOUNCE",
                "contact": self._contact_object(r),
                "encryptedActId": r["source_id"],
            },
            after=after,
            pageSize=pageSize,
            order_by="event_at, event_seq",
        )


class _Writes:
    """External campaign triggers and audiences, kept in memory (a restarted stand-in starts empty). Tests set
    the account's state: `automation`, `campaign_changes` ({campaign name: {"active": False}} or
    {"trigger_name": ...}), `refusals` ({externalContactId: Spotler's 400 message}), `in_campaign`."""

    def _init_writes(self) -> None:
        self._writes_lock = threading.Lock()
        self.reset_writes()

    def reset_writes(self) -> None:
        with self._writes_lock:
            self.automation = True
            self.triggered: list[tuple[str, str]] = []  # (campaign name, externalContactId), each carried out
            self.audiences: dict[str, dict] = {}
            self.campaign_changes: dict[str, dict] = {}
            self.refusals: dict[str, str] = {}
            self.in_campaign: dict[str, set[str]] = {}  # campaign name -> contacts in it
            self.anonymized: list[str] = []  # externalIds anonymized, in order
            self.written_contacts: dict[str, dict] = {}  # externalId -> the Contact GET /contact/{externalId} serves
            self.contact_writes: list[tuple[str, str]] = []  # ("create" | "update", externalId), each carried out
            self.contact_properties: set[str] | None = None  # the account's own properties; None: any name is one

    def _campaign_rows(self) -> list[dict]:
        return [
            {**c, **self.campaign_changes.get(c["campaign_name"], {})}
            for c in self.query("select * from campaigns order by campaign_index")
        ]

    @staticmethod
    def _body(request: Request) -> dict:
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            raise ApiError(400, "INVALID_PARAMS", "the body is not JSON") from None
        return body if isinstance(body, dict) else {}

    def _campaign_of_trigger(self, trigger_id: str) -> dict:
        for c in self._campaign_rows():
            if self._trigger_id(c) == trigger_id:
                return c
        raise ApiError(404, "TRIGGER_NOTFOUND", "Trigger not found")

    @staticmethod
    def _trigger_id(campaign: dict) -> str:
        return f"t{campaign['encrypted_id'][:12]}"

    def _subscribed(self, person: dict) -> bool:
        return not person["opted_out"] and not (
            person["unsubscribed_at"] is not None
            and person["unsubscribed_at"] <= self.now
            and not (person["reoptin_at"] is not None and person["reoptin_at"] <= self.now)
        )

    def trigger_campaign(self, request, operation, encryptedTriggerId, **_):
        campaign = self._campaign_of_trigger(encryptedTriggerId)
        contact = str(self._body(request).get("externalContactId") or "")
        if not contact:
            raise ApiError(400, "INVALID_PARAMS", "Invalid externalContactId or no externalContactId given")
        people = self.query("select * from people where directo_code = $id and joined_at <= $now", {"id": contact})
        if not people:
            raise ApiError(400, "CONTACT_NOT_FOUND", "Contact not found")
        if not campaign["active"]:
            raise ApiError(400, "INVALID_STATE", "Campaign inactive")
        if not self._subscribed(people[0]):
            raise ApiError(400, "CONTACT_OPTOUT", "Contact not in selection")
        if contact in self.refusals:
            raise ApiError(400, "INVALID_STATE", self.refusals[contact])
        with self._writes_lock:
            members = self.in_campaign.setdefault(campaign["campaign_name"], set())
            if contact in members:
                raise ApiError(400, "INVALID_STATE", "Contact already in campaign")
            members.add(contact)
            self.triggered.append((campaign["campaign_name"], contact))
        return Response(204)

    def anonymize_contact(self, request, operation, externalId, **_):
        if not self._contact_exists(externalId):
            raise ApiError(404, "CONTACT_NOT_FOUND", "Given contact not found")
        with self._writes_lock:
            self.anonymized.append(externalId)
            written = self.written_contacts.get(externalId)
            if written is not None:  # what the sync wrote about the person goes; the contact stays, anonymous
                self.written_contacts[externalId] = {**written, "properties": {}}
        return Response(204)

    def _audience(self, externalId: str) -> dict:
        if not self.automation:
            raise ApiError(403, "NOT_AUTHORIZED", "Only Automation or eCommerce products can use this call")
        audience = self.audiences.get(externalId)
        if audience is None:
            raise ApiError(404, "RESOURCE_NOT_FOUND", "Audience not found")
        return audience

    @staticmethod
    def _audience_object(audience: dict) -> dict:
        return {
            key: audience[key]
            for key in (
                "externalId",
                "name",
                "description",
                "createDate",
                "changeDate",
                "lastContactAddedAt",
                "lastContactRemovedAt",
            )
            if audience.get(key)
        }

    def create_audience(self, request, operation, **_):
        if not self.automation:
            raise ApiError(403, "NOT_AUTHORIZED", "Only Automation or eCommerce products can use this call")
        body = self._body(request)
        external_id, name = str(body.get("externalId") or ""), str(body.get("name") or "")
        if not external_id or not name or len(name) > 255 or len(external_id) > 255:
            raise ApiError(417, "INVALID_PARAMS", "Audience name can not be empty or more than 255 characters")
        with self._writes_lock:
            if external_id in self.audiences:
                raise ApiError(417, "ID_NOTUNIQUE", "Audience id must be unique")
            if any(a["name"] == name for a in self.audiences.values()):
                raise ApiError(417, "NAME_ALREADY_IN_USE", "Audience name must be unique")
            stamp = iso_local(dt.datetime.now(dt.UTC))
            self.audiences[external_id] = {
                "externalId": external_id,
                "name": name,
                "description": body.get("description"),
                "createDate": stamp,
                "changeDate": stamp,
                "members": set(),
            }
        return self._audience_object(self.audiences[external_id])

    def get_audience(self, request, operation, externalId, **_):
        return self._audience_object(self._audience(externalId))

    def update_audience(self, request, operation, externalId, **_):
        audience = self._audience(externalId)
        body = self._body(request)
        with self._writes_lock:
            for key in ("name", "description"):
                if body.get(key):
                    audience[key] = body[key]
            audience["changeDate"] = iso_local(dt.datetime.now(dt.UTC))
        return Response(204)

    def delete_audience(self, request, operation, externalId, **_):
        self._audience(externalId)
        with self._writes_lock:
            self.audiences.pop(externalId, None)
        return Response(204)

    def _contacts_of(self, request: Request, *, required: bool) -> list[str] | None:
        body = json.loads(request.body or b"null") if request.body else None
        if body is None and not required:
            return None
        contacts = (body or {}).get("contacts") if isinstance(body, dict) else None
        if not isinstance(contacts, list) or not contacts:
            raise ApiError(400, "INVALID_PARAMS", "Invalid contacts or no contacts given")
        if len(contacts) > MAX_AUDIENCE_BATCH:
            raise ApiError(413, "INVALID_PARAMS", "Maximum batch size of contact ids exceeded(maximum is 2500)")
        return [str(c) for c in contacts]

    def add_audience_contacts(self, request, operation, externalId, **_):
        audience = self._audience(externalId)
        contacts = self._contacts_of(request, required=True)
        known = {
            r["directo_code"]
            for r in self.query(
                "select directo_code from people where directo_code in (select unnest($ids)) and joined_at <= $now",
                {"ids": contacts},
            )
        }
        missing = [c for c in contacts if c not in known]
        if missing:
            return Response.json(
                {"errorType": "CONTACT_NOT_FOUND", "message": "Contacts not found", "externalContactIds": missing}, 404
            )
        with self._writes_lock:
            audience["members"].update(contacts)
            audience["lastContactAddedAt"] = iso_local(dt.datetime.now(dt.UTC))
        return Response(204)

    def remove_audience_contacts(self, request, operation, externalId, **_):
        audience = self._audience(externalId)
        contacts = self._contacts_of(request, required=False)
        with self._writes_lock:
            if contacts is None:
                audience["members"].clear()
            else:
                audience["members"].difference_update(contacts)
            audience["lastContactRemovedAt"] = iso_local(dt.datetime.now(dt.UTC))
        return Response(204)


class _ContactWrites:
    """Contacts the sync adds and changes, kept in `written_contacts` over the world's people (a contact written
    there is served from there). `POST /contact/list` answers a code per contact: OK, CONTACT_ALREADY_EXISTS
    (its externalId is taken and `update` is not set), PROPERTY_INVALID (an invalid or missing email, a
    property the account does not have: `contact_properties`); the whole call is refused (400) for more than 100
    contacts or one without an externalId. `PUT /contact/{externalId}`: 204, 404 for an unknown contact, 400 for
    an invalid one. Properties are merged into what the contact has, unless `purge`; `channels` (EMAIL, SMS)
    are set as given."""

    def _contact_exists(self, external_id: str) -> bool:
        return external_id in self.written_contacts or bool(
            self.query("select 1 from people where directo_code = $id and joined_at <= $now", {"id": external_id})
        )

    def _current_contact(self, external_id: str) -> dict:
        written = self.written_contacts.get(external_id)
        return written if written is not None else self._contact_object(self._person(external_id))

    def _contact_problem(self, contact: dict, *, creating: bool) -> str | None:
        """Spotler's message for a contact it would refuse (PROPERTY_INVALID), else None."""
        properties = contact.get("properties") or {}
        if not isinstance(properties, dict):
            return "Property is invalid"
        known = None if self.contact_properties is None else STANDARD_CONTACT_PROPERTIES | self.contact_properties
        for name, value in properties.items():
            if (known is not None and name not in known) or isinstance(value, (dict, list)):
                return f"Property is invalid: {name}"
        email = properties.get("email")
        if (creating and not email) or (email is not None and not EMAIL_PATTERN.match(str(email))):
            return "Email is invalid"
        channels = contact.get("channels") or []
        if not isinstance(channels, list) or not all(
            isinstance(c, dict) and c.get("name") in ("EMAIL", "SMS") and isinstance(c.get("value"), bool)
            for c in channels
        ):
            return "Channel is invalid"
        return None

    def _store_contact(self, external_id: str, contact: dict, *, purge: bool) -> None:
        """Add or change the contact (the caller holds the writes lock and has checked it)."""
        now = epoch_millis(dt.datetime.now(dt.UTC))
        exists = self._contact_exists(external_id)
        base = (
            self._current_contact(external_id)
            if exists
            else {
                "externalId": external_id,
                "encryptedId": "w" + hashlib.sha1(external_id.encode()).hexdigest()[:15],
                "created": now,
                "testGroup": False,
                "temporary": False,
                "properties": {},
                "channels": [{"name": "EMAIL", "value": False}, {"name": "SMS", "value": False}],
            }
        )
        properties = {} if purge else dict(base.get("properties") or {})
        properties.update(contact.get("properties") or {})
        channels = {c["name"]: c["value"] for c in base.get("channels") or []}
        channels.update({c["name"]: c["value"] for c in contact.get("channels") or []})
        self.written_contacts[external_id] = {
            **base,
            "lastChanged": now,
            "properties": {name: value for name, value in properties.items() if value is not None},
            "channels": [{"name": name, "value": value} for name, value in channels.items()],
        }
        self.contact_writes.append(("update" if exists else "create", external_id))

    def insert_contacts(self, request, operation, **_):
        body = self._body(request)
        contacts = body.get("contacts")
        if not isinstance(contacts, list) or not contacts:
            raise ApiError(400, "INVALID_PARAMS", "No contacts provided")
        if len(contacts) > MAX_CONTACTS_PER_LIST:
            raise ApiError(400, "INVALID_PARAMS", f"Too many contacts provided (max is {MAX_CONTACTS_PER_LIST})")
        if not all(isinstance(c, dict) and str(c.get("externalId") or "").strip() for c in contacts):
            raise ApiError(400, "INVALID_PARAMS", "Contact without externalId found")
        update, purge = body.get("update") is True, body.get("purge") is True
        answers = []
        with self._writes_lock:
            for contact in contacts:
                external_id = str(contact["externalId"])
                exists = self._contact_exists(external_id)
                problem = self._contact_problem(contact, creating=not exists)
                if exists and not update:
                    answers.append({"externalId": external_id, "code": "CONTACT_ALREADY_EXISTS", "message": EXISTS})
                elif problem:
                    answers.append({"externalId": external_id, "code": "PROPERTY_INVALID", "message": problem})
                else:
                    self._store_contact(external_id, contact, purge=purge)
                    answers.append({"externalId": external_id, "code": "OK"})
        return answers

    def _contact_request(self, request: Request) -> tuple[dict, bool, bool]:
        body = self._body(request)
        contact = body.get("contact")
        if not isinstance(contact, dict):
            raise ApiError(400, "INVALID_PARAMS", "Invalid contact or no contact given")
        return contact, body.get("update") is True, body.get("purge") is True

    def insert_contact(self, request, operation, **_):
        contact, update, purge = self._contact_request(request)
        external_id = str(contact.get("externalId") or "").strip()
        if not external_id:
            raise ApiError(400, "INVALID_PARAMS", "Contact without externalId found")
        with self._writes_lock:
            exists = self._contact_exists(external_id)
            if exists and not update:
                raise ApiError(400, "CONTACT_ALREADY_EXISTS", EXISTS)
            problem = self._contact_problem(contact, creating=not exists)
            if problem:
                raise ApiError(400, "INVALID_PROPERTY", problem)
            self._store_contact(external_id, contact, purge=purge)
        return Response(204)

    def update_contact(self, request, operation, externalId, **_):
        contact, _update, purge = self._contact_request(request)
        with self._writes_lock:
            if not self._contact_exists(externalId):
                raise ApiError(404, "CONTACT_NOT_FOUND", "Given contact not found")
            problem = self._contact_problem(contact, creating=False)
            if problem:
                raise ApiError(400, "INVALID_PROPERTY", problem)
            self._store_contact(externalId, contact, purge=purge)
        return Response(204)

    def contacts_state(self) -> dict:
        """What `GET /_standin/contacts` tells a process outside: the contacts written and every write, in order."""
        with self._writes_lock:
            return {
                "contacts": dict(self.written_contacts),
                "writes": [{"action": action, "externalId": contact} for action, contact in self.contact_writes],
            }


class SpotlerApi(_Mailings, _InteractionFeeds, _Campaigns, _Forms, _Contacts, _ContactWrites, _Writes, _SignedPagedApi):
    """The application: answers signed requests from world.duckdb as of `self.now`; each part above
    serves one group of the spec's operations (ROUTES names the method for each path)."""


class SpotlerStandinServer(StandinServer):
    """The shared server with one admin endpoint more: `GET /_standin/contacts`, the contacts the sync wrote
    (`{"contacts": {externalId: Contact}, "writes": [{"action": "create" | "update", "externalId": ...}]}`)."""

    def __init__(self, api: SpotlerApi, port: int = 0) -> None:
        super().__init__(api, api.endpoint_name, port=port, on_stop=api.close)
        self.api = api

    def _admin(self, request: Request) -> Response:
        if request.path == ADMIN_PREFIX + "contacts" and request.method == "GET":
            return Response.json(self.api.contacts_state())
        return super()._admin(request)


def serve(
    world_dir: Path,
    *,
    port: int = 0,
    consumer_key: str = DEMO_CONSUMER_KEY,
    consumer_secret: str = DEMO_CONSUMER_SECRET,
    now: dt.datetime | None = None,
) -> tuple[StandinServer, SpotlerApi]:
    """Start the stand-in on 127.0.0.1; the API base URL is `server.url + "/integrationservice-1.1.0"`."""
    api = SpotlerApi(world_dir, consumer_key, consumer_secret, now)
    server = SpotlerStandinServer(api, port=port).start()
    return server, api
