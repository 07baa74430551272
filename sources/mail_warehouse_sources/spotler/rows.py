"""Spotler's JSON items as rows of the `raw_spotler` tables, and each table's Arrow schema and keys."""

from __future__ import annotations

import hashlib
import json
from zoneinfo import ZoneInfo

import pyarrow as pa

from mail_warehouse_sources.spotler.config import parse_time

TS = pa.timestamp("us", tz="UTC")
COLUMNS: dict[str, tuple[str, ...]] = {
    "mailings": (
        "encrypted_id",
        "mailing_name",
        "scheduled_start_date",
        "mailing_type",
        "archive_link",
        "sent_count",
        "sender",
        "target_group",
        "message_name",
        "message_author",
        "subject",
        "from_name",
        "from_email",
        "details_fetched_at",
    ),
    "mailing_links": (
        "link_key",
        "mailing_kind",
        "mailing_id",
        "link_id",
        "link_name",
        "url",
        "link_code",
        "link_type",
    ),
    "mailing_statistics_snapshots": (
        "mailing_id",
        "fetched_at",
        "sent_count",
        "accepted_count",
        "open_count",
        "open_rendered_count",
        "click_count",
        "hardbounce_count",
        "softbounce_count",
        "not_retained_after_bounce_count",
        "conversion_click_count",
        "unsubscribe_count",
        "to_webshop_count",
        "shoppingcart_created_count",
        "shoppingcart_converted_count",
        "conversion_value",
    ),
    "recipients": (
        "interaction_id",
        "mailing_id",
        "external_contact_id",
        "sent_at",
        "change_date",
        "mailing_name",
        "subject",
        "online_version_link",
        "trend_report_id",
    ),
    "opens": ("interaction_id", "mailing_id", "external_contact_id", "opened_at", "change_date", "trend_report_id"),
    "bounces": (
        "interaction_id",
        "mailing_id",
        "external_contact_id",
        "bounced_at",
        "change_date",
        "bounce_type",
        "trend_report_id",
    ),
    "clicks": ("click_key", "mailing_id", "external_contact_id", "encrypted_contact_id", "clicked_at", "link_id"),
    "campaigns": ("encrypted_id", "campaign_name", "active", "triggers"),
    "campaign_mailings": (
        "encrypted_id",
        "campaign_id",
        "mailing_name",
        "mailing_type",
        "message_name",
        "message_author",
        "subject",
        "from_name",
        "from_email",
    ),
    "campaign_recipients": (
        "event_key",
        "mailing_id",
        "campaign_subscription_id",
        "external_contact_id",
        "encrypted_contact_id",
        "sent_at",
    ),
    "campaign_opens": (
        "event_key",
        "mailing_id",
        "campaign_subscription_id",
        "external_contact_id",
        "encrypted_contact_id",
        "opened_at",
    ),
    "campaign_clicks": (
        "event_key",
        "mailing_id",
        "campaign_subscription_id",
        "external_contact_id",
        "encrypted_contact_id",
        "clicked_at",
        "link_id",
    ),
    "campaign_bounces": (
        "event_key",
        "mailing_id",
        "campaign_subscription_id",
        "external_contact_id",
        "encrypted_contact_id",
        "bounced_at",
        "bounce_type",
    ),
    "forms": ("form_id", "form_name", "form_sub_type", "form_state"),
    "form_results": ("form_id", "form_result_id", "submitted_at", "test_result", "completed", "answers"),
    "contacts": (
        "external_id",
        "encrypted_id",
        "email",
        "email_opt_in",
        "sms_opt_in",
        "created_at",
        "last_changed_at",
        "test_group",
        "temporary",
        "properties",
    ),
    "contact_mailing_history": (
        "history_key",
        "external_contact_id",
        "mailing_id",
        "mailing_name",
        "sent_at",
        "opened",
        "clicked",
        "bounce",
        "fetched_at",
    ),
    "contact_campaign_mailing_history": (
        "history_key",
        "external_contact_id",
        "mailing_id",
        "mailing_name",
        "mailing_type",
        "campaign_subscription_id",
        "sent_at",
        "opened",
        "clicked",
        "bounce",
        "fetched_at",
    ),
    "contact_form_history": (
        "history_key",
        "external_contact_id",
        "form_id",
        "form_name",
        "form_result_id",
        "submitted_at",
        "completed",
        "fetched_at",
    ),
}
TYPES: dict[str, dict[str, pa.DataType]] = {name: {} for name in COLUMNS}
for _name, _columns in COLUMNS.items():
    for _column in _columns:
        if _column.endswith(("_at", "_date")):
            TYPES[_name][_column] = TS
        elif _column.endswith("_count") or _column in (
            "link_id",
            "conversion_value",
            "form_id",
            "form_result_id",
            "campaign_subscription_id",
            "trend_report_id",
            "interaction_id",
        ):
            TYPES[_name][_column] = pa.int64()
        elif _column in (
            "active",
            "test_result",
            "completed",
            "opened",
            "clicked",
            "email_opt_in",
            "sms_opt_in",
            "test_group",
            "temporary",
        ):
            TYPES[_name][_column] = pa.bool_()
PRIMARY_KEYS = {
    "mailings": "encrypted_id",
    "mailing_links": "link_key",
    "recipients": "interaction_id",
    "opens": "interaction_id",
    "bounces": "interaction_id",
    "clicks": "click_key",
    "campaigns": "encrypted_id",
    "campaign_mailings": "encrypted_id",
    "campaign_recipients": "event_key",
    "campaign_opens": "event_key",
    "campaign_clicks": "event_key",
    "campaign_bounces": "event_key",
    "forms": "form_id",
    "form_results": ("form_id", "form_result_id"),
    "contacts": "external_id",
    "contact_mailing_history": "history_key",
    "contact_campaign_mailing_history": "history_key",
    "contact_form_history": "history_key",
}


# The columns of each table that name a person, and the kind of identifier each holds (mail_warehouse_sources/
# suppression.py): a contact's external id is the customer number the systems share. The free text of
# `TEXT_NAMING_PEOPLE` is searched for any identifier (a form's answers, a contact's properties).
PERSON_COLUMNS: dict[str, dict[str, str]] = {
    name: {
        column: kind
        for column, kind in (("external_contact_id", "customer_number"), ("encrypted_contact_id", "spotler_contact"))
        if column in columns
    }
    for name, columns in COLUMNS.items()
}
PERSON_COLUMNS["contacts"] = {"external_id": "customer_number", "encrypted_id": "spotler_contact", "email": "email"}
TEXT_NAMING_PEOPLE: dict[str, tuple[str, ...]] = {"form_results": ("answers",), "contacts": ("properties",)}


def key(*parts) -> str:
    """A stable key for rows the API gives no id of their own."""
    return hashlib.sha1("|".join("" if p is None else str(p) for p in parts).encode()).hexdigest()


def arrow_table(rows: list[dict], name: str) -> pa.Table:
    keys = PRIMARY_KEYS.get(name, ())
    keys = (keys,) if isinstance(keys, str) else keys
    schema = pa.schema([pa.field(c, TYPES[name].get(c, pa.string()), nullable=c not in keys) for c in COLUMNS[name]])
    return pa.Table.from_pylist(rows, schema=schema)


def message(body: dict) -> dict:
    found = body.get("message") or {}
    return {
        "message_name": found.get("name"),
        "message_author": found.get("author"),
        "subject": found.get("subject"),
        "from_name": found.get("fromName"),
        "from_email": found.get("fromEmail"),
    }


def links(body: dict, kind: str, mailing_id: str) -> list[dict]:
    return [
        {
            "link_key": key(kind, mailing_id, link.get("id")),
            "mailing_kind": kind,
            "mailing_id": mailing_id,
            "link_id": link.get("id"),
            "link_name": link.get("name"),
            "url": link.get("url"),
            "link_code": link.get("code"),
            "link_type": link.get("type"),
        }
        for link in body.get("links") or []
    ]


def contact(item: dict) -> tuple[str | None, str | None]:
    identifier = item.get("contactIdentifier") or {}
    return identifier.get("externalId"), identifier.get("encryptedId")


def mailing(item: dict, zone: ZoneInfo) -> dict:
    return {
        "encrypted_id": item["encryptedId"],
        "mailing_name": item.get("name"),
        "scheduled_start_date": parse_time(item.get("scheduledStartDate"), zone),
        "mailing_type": item.get("type"),
        "archive_link": item.get("archiveLink"),
        "sent_count": item.get("sentCount"),
    }


STATISTICS = {
    "sentCount": "sent_count",
    "acceptedCount": "accepted_count",
    "openCount": "open_count",
    "openRenderedCount": "open_rendered_count",
    "clickCount": "click_count",
    "hardbounceCount": "hardbounce_count",
    "softbounceCount": "softbounce_count",
    "notRetainedAfterBounceCount": "not_retained_after_bounce_count",
    "conversionClickCount": "conversion_click_count",
    "unsubscribeCount": "unsubscribe_count",
    "toWebshopCount": "to_webshop_count",
    "shoppingcartCreatedCount": "shoppingcart_created_count",
    "shoppingcartConvertedCount": "shoppingcart_converted_count",
    "conversionValue": "conversion_value",
}


def statistics(body: dict) -> dict:
    return {column: body.get(name) for name, column in STATISTICS.items()}


def click(mailing_id: str, item: dict, zone: ZoneInfo) -> dict:
    external, encrypted = contact(item)
    return {
        "click_key": key(mailing_id, external, encrypted, item.get("clickDate"), item.get("linkId")),
        "mailing_id": mailing_id,
        "external_contact_id": external,
        "encrypted_contact_id": encrypted,
        "clicked_at": parse_time(item.get("clickDate"), zone),
        "link_id": item.get("linkId"),
    }


def interaction(item: dict, feed: str, zone: ZoneInfo) -> dict:
    date_column = {"sent": "sent_at", "opened": "opened_at", "bounced": "bounced_at"}[feed]
    row = {
        "interaction_id": item.get("id"),
        "mailing_id": item.get("encryptedMailingId"),
        "external_contact_id": item.get("externalContactId"),
        date_column: parse_time(item.get("date"), zone),
        "change_date": parse_time(item.get("changeDate"), zone),
        "trend_report_id": item.get("trendReportId"),
    }
    if feed == "sent":
        row.update(
            {
                "mailing_name": item.get("name"),
                "subject": item.get("subject"),
                "online_version_link": item.get("onlineVersionLink"),
            }
        )
    if feed == "bounced":
        row["bounce_type"] = item.get("bounceType")
    return row


CAMPAIGN_EVENT_DATES = {
    "recipients": ("sendDate", "sent_at"),
    "opens": ("openDate", "opened_at"),
    "clicks": ("clickDate", "clicked_at"),
    "bounces": ("bounceDate", "bounced_at"),
}


def campaign_event(mailing_id: str, kind: str, item: dict, zone: ZoneInfo) -> dict:
    date_field, column = CAMPAIGN_EVENT_DATES[kind]
    external, encrypted = contact(item)
    row = {
        "mailing_id": mailing_id,
        "campaign_subscription_id": item.get("campaignSubscriptionId"),
        "external_contact_id": external,
        "encrypted_contact_id": encrypted,
        column: parse_time(item.get(date_field), zone),
    }
    if kind == "clicks":
        row["link_id"] = item.get("linkId")
    if kind == "bounces":
        row["bounce_type"] = item.get("type")
    row["event_key"] = key(
        kind, mailing_id, row["campaign_subscription_id"], external, item.get(date_field), row.get("link_id")
    )
    return row


def campaign(item: dict) -> dict:
    return {
        "encrypted_id": item["encryptedId"],
        "campaign_name": item.get("name"),
        "active": item.get("active"),
        "triggers": json.dumps(item.get("triggers") or [], ensure_ascii=False),
    }


def form(item: dict) -> dict:
    return {
        "form_id": item["id"],
        "form_name": item.get("name"),
        "form_sub_type": item.get("formSubType"),
        "form_state": item.get("formState"),
    }


def form_result(form_id, item: dict, zone: ZoneInfo) -> dict:
    return {
        "form_id": form_id,
        "form_result_id": item["formResultId"],
        "submitted_at": parse_time(item.get("submittedAt"), zone),
        "test_result": item.get("testResult"),
        "completed": item.get("completed"),
        "answers": json.dumps(item.get("answers") or [], ensure_ascii=False),
    }


EMAIL_PROPERTY = "email"  # the contact property holding the e-mail address (GET /contact/properties/list)


def contact_record(item: dict, zone: ZoneInfo) -> dict:
    """A Contact: its address and each channel's opt-in (EMAIL's value is Spotler's own consent); every
    property kept as JSON."""
    channels = {c.get("name"): c.get("value") for c in item.get("channels") or []}
    properties = item.get("properties") or {}
    return {
        "external_id": item["externalId"],
        "encrypted_id": item.get("encryptedId"),
        "email": properties.get(EMAIL_PROPERTY),
        "email_opt_in": channels.get("EMAIL"),
        "sms_opt_in": channels.get("SMS"),
        "created_at": parse_time(item.get("created"), zone),
        "last_changed_at": parse_time(item.get("lastChanged"), zone),
        "test_group": item.get("testGroup"),
        "temporary": item.get("temporary"),
        "properties": json.dumps(properties, ensure_ascii=False, default=str),
    }


# --- the per-contact histories ------------------------------------------------------------------------


def mailing_history(external_id: str, item: dict, zone: ZoneInfo, fetched_at) -> dict:
    found = item.get("mailing") or {}
    return {
        "history_key": key(external_id, found.get("encryptedId"), item.get("sentDate")),
        "external_contact_id": external_id,
        "mailing_id": found.get("encryptedId"),
        "mailing_name": found.get("name"),
        "sent_at": parse_time(item.get("sentDate"), zone),
        "opened": item.get("opened"),
        "clicked": item.get("clicked"),
        "bounce": item.get("bounce"),
        "fetched_at": fetched_at,
    }


def campaign_mailing_history(external_id: str, item: dict, zone: ZoneInfo, fetched_at) -> dict:
    found = item.get("campaignMailing") or {}
    return {
        "history_key": key(
            external_id, found.get("encryptedId"), item.get("campaignSubscriptionId"), item.get("sentDate")
        ),
        "external_contact_id": external_id,
        "mailing_id": found.get("encryptedId"),
        "mailing_name": found.get("name"),
        "mailing_type": found.get("type"),
        "campaign_subscription_id": item.get("campaignSubscriptionId"),
        "sent_at": parse_time(item.get("sentDate"), zone),
        "opened": item.get("opened"),
        "clicked": item.get("clicked"),
        "bounce": item.get("bounce"),
        "fetched_at": fetched_at,
    }


def form_history(external_id: str, item: dict, zone: ZoneInfo, fetched_at) -> dict:
    found = item.get("form") or {}
    return {
        "history_key": key(external_id, item.get("formResultId")),
        "external_contact_id": external_id,
        "form_id": found.get("id"),
        "form_name": found.get("name"),
        "form_result_id": item.get("formResultId"),
        "submitted_at": parse_time(item.get("submitDate"), zone),
        "completed": item.get("completed"),
        "fetched_at": fetched_at,
    }
