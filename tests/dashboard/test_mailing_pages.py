"""The mailing pages in a real browser: Mailings, One mailing, Automations and campaigns, Settling mailings."""

from __future__ import annotations

import pytest

from mail_warehouse.dashboard.data import percent
from tests.dashboard.conftest import expected_mailing_headline, open_page, sql, wait_for_metrics


@pytest.mark.slow
def test_mailing_headline_equals_sql_on_the_marts_and_a_filter_changes_it(dashboard, published_world, page):
    url, _ = dashboard
    _, _, analytics = published_world
    open_page(page, url)
    everything = expected_mailing_headline(analytics)
    wait_for_metrics(page, everything)

    page.get_by_test_id("stRadio").get_by_text("Spotler Mail+").click()
    only_spotler = expected_mailing_headline(analytics, "spotler")
    assert only_spotler["Mailings"] != everything["Mailings"]
    wait_for_metrics(page, only_spotler)

    open_page(page, url + "projections")
    so_far, projected = sql(
        analytics,
        "select open_rate, projected_open_rate from marts.mailing_rate_projections order by sent_at desc limit 1",
    )
    wait_for_metrics(page, {"Open rate so far": percent(so_far), "Projected open rate": percent(projected)})
