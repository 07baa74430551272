"""The contact pages in a real browser: Contacts and the customer card."""

from __future__ import annotations

import pytest

from mail_warehouse.dashboard.data import number
from tests.dashboard.conftest import open_page, sql, wait_for_metrics


@pytest.mark.slow
def test_contacts_headline_equals_sql_on_the_marts(dashboard, published_world, page):
    url, _ = dashboard
    _, _, analytics = published_world
    open_page(page, url + "contacts")
    contacts, mailable, shared = sql(
        analytics,
        "select count(*), count(*) filter (where is_mailable), "
        "count(*) filter (where is_shared_email) from marts.contacts",
    )
    wait_for_metrics(
        page, {"Contacts": number(contacts), "Mailable": number(mailable), "Shared addresses": number(shared)}
    )
