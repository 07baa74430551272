"""The mailing pages in a real browser: Mailings, One mailing, Automations and campaigns, Settling mailings.

Every number is checked against SQL on the published copy, in Dutch (the default) unless the test switches."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from mail_warehouse import settings
from mail_warehouse.dashboard.data import number, percent
from tests.dashboard.conftest import errors_on, open_page, read_metrics, settle, sql, wait_for_metrics

ONE_OFF = "mailing_key not in (select mailing_key from marts.mailings where is_campaign_mailing)"
FLOW_STEP = "mailing_key in (select mailing_key from marts.mailings where is_campaign_mailing)"


def euros(value, decimals: int = 0) -> str:
    return f"€\u00a0{number(value, decimals)}"


def one_off_headline(analytics, platform: str | None = None, english: bool = False) -> dict[str, str]:
    """The Mailings page's headline as it opens: every period, every type but SMS, no automation steps."""
    mailings, sent, delivered, opens, human_opens, clicks, human_clicks, complaints, revenue = sql(
        analytics,
        f"""
        select count(*), sum(sent_count), sum(delivered_count), sum(unique_open_count),
               sum(unique_human_open_count), sum(unique_click_count), sum(unique_human_click_count),
               sum(complaint_count), sum(revenue)
        from marts.mailing_statistics
        where ($platform is null or source_system = $platform) and mailing_type <> 'SMS' and {ONE_OFF}""",
        {"platform": platform},
    )
    values = [
        number(mailings),
        number(sent),
        percent(opens / delivered),
        percent(human_opens / delivered),
        percent(clicks / delivered),
        percent(human_clicks / delivered),
        percent(clicks / opens),
        percent(complaints / delivered, 3),
        "–" if revenue is None else euros(revenue),
    ]
    english_labels = ["Mailings", "Sent", "Open rate (raw)", "Open rate (people)", "Click rate (raw)"]
    english_labels += ["Click rate (people)", "Click-to-open", "Complaint rate", "Revenue"]
    dutch_labels = ["Mailings", "Verzonden", "Openratio (ruw)", "Openratio (mensen)", "Klikratio (ruw)"]
    dutch_labels += ["Klikratio (mensen)", "Click-to-open", "Klachtratio", "Omzet"]
    labels = english_labels if english else dutch_labels
    return dict(zip(labels, values, strict=True))


def no_utc_on(page) -> None:
    assert "UTC" not in page.locator("body").inner_text()


@pytest.mark.slow
def test_mailings_headline_equals_sql_in_dutch_with_revenue_and_people_apart_and_a_filter_changes_it(
    dashboard, published_world, page
):
    url, _ = dashboard
    _, _, analytics = published_world
    assert sql(analytics, f"select count(*) from marts.mailings where {FLOW_STEP}")[0] > 0, "the world has flows"
    open_page(page, url)
    everything = one_off_headline(analytics)
    assert everything["Openratio (ruw)"] != everything["Openratio (mensen)"], "machines open in the test world"
    assert everything["Omzet"].startswith("€"), "Spotler eCommerce revenue in the test world"
    wait_for_metrics(page, everything)
    assert page.get_by_role("heading", name="Hoe doen onze mailings het?").count() == 1
    assert page.get_by_text("Apples privacyproxy", exact=False).count() >= 1, "machine opens explained"
    assert page.get_by_text("Automations en campagnes", exact=False).count() >= 1, "points to the flows page"
    no_utc_on(page)
    assert errors_on(page) == []

    page.get_by_test_id("stRadio").get_by_text("Spotler Mail+").click()
    only_spotler = one_off_headline(analytics, "spotler")
    assert only_spotler["Mailings"] != everything["Mailings"]
    wait_for_metrics(page, only_spotler)


@pytest.mark.slow
def test_the_english_switch_changes_the_labels_not_the_numbers(dashboard, published_world, page):
    url, _ = dashboard
    _, _, analytics = published_world
    open_page(page, url)
    wait_for_metrics(page, one_off_headline(analytics))
    page.get_by_test_id("stSelectbox").filter(has_text="Taal · Language").click()
    page.get_by_role("option", name="English").click()
    settle(page)
    wait_for_metrics(page, one_off_headline(analytics, english=True))
    assert page.get_by_role("heading", name="How are our mailings doing?").count() == 1
    assert "Openratio (ruw)" not in read_metrics(page)


@pytest.mark.slow
def test_mailings_in_the_address_bar_lands_on_the_mailings_page(dashboard, published_world, page):
    url, _ = dashboard
    _, _, analytics = published_world
    open_page(page, url + "mailings")
    assert "Page not found" not in page.content()
    wait_for_metrics(page, one_off_headline(analytics))
    assert page.get_by_role("heading", name="Hoe doen onze mailings het?").count() == 1


@pytest.mark.slow
def test_one_mailing_shows_its_money_and_people_apart_and_a_wrong_key_is_named(dashboard, published_world, page):
    url, _ = dashboard
    _, _, analytics = published_world
    key, revenue, open_rate, human_open_rate, click_to_open, complaint_rate = sql(
        analytics,
        f"""
        select mailing_key, revenue, open_rate, human_open_rate, click_to_open_rate, complaint_rate
        from marts.mailing_statistics
        where revenue > 0 and {ONE_OFF}
        order by sent_at desc, mailing_key
        limit 1""",
    )
    open_page(page, f"{url}mailing?mailing={key}")
    wait_for_metrics(
        page,
        {
            "Omzet": euros(revenue, 2),
            "Openratio (ruw)": percent(open_rate),
            "Openratio (mensen)": percent(human_open_rate),
            "Click-to-open": percent(click_to_open),
            "Klachtratio": percent(complaint_rate, 2),
        },
    )
    assert percent(open_rate) != percent(human_open_rate)
    assert page.locator('[data-testid="stAlert"]').count() == 0
    assert re.search(r"\d+ (uur|dagen) geleden", page.locator("body").inner_text()), "the mailing's age"
    no_utc_on(page)

    open_page(page, f"{url}mailing?mailing=no-such-mailing")
    warning = page.locator('[data-testid="stAlert"]')
    assert warning.count() == 1
    assert "no-such-mailing" in warning.inner_text()
    assert errors_on(page) == []
    page.wait_for_timeout(1000)  # the warning stays: the page does not quietly rewrite the address
    assert "no-such-mailing" in page.locator('[data-testid="stAlert"]').inner_text()


@pytest.mark.slow
def test_flows_page_lists_every_automation_step_with_its_sends(dashboard, published_world, page):
    url, _ = dashboard
    _, _, analytics = published_world
    flows, sends = sql(
        analytics,
        f"""
        select count(distinct (select coalesce(campaign_name, mailing_name) from marts.mailings as m
                               where m.mailing_key = a.mailing_key)),
               count(*)
        from marts.customer_activity as a
        where event_type = 'sent' and {FLOW_STEP}""",
    )
    steps = [
        (name, number(count))
        for name, count in _rows(
            analytics,
            """
            select m.mailing_name, count(*)
            from marts.customer_activity as a
            join marts.mailings as m using (mailing_key)
            where a.event_type = 'sent' and m.is_campaign_mailing
            group by all""",
        )
    ]
    assert len(steps) >= 2, "the test world has automation steps"
    human_opens, delivered = sql(
        analytics,
        """
        select count(*) filter (where h.was_opened), count(*)
        from marts.contact_mail_history as h
        join marts.mailings as m using (mailing_key)
        where m.is_campaign_mailing and m.mailing_type <> 'SMS' and h.bounce = 'none'""",
    )
    open_page(page, url + "flows")
    wait_for_metrics(
        page,
        {
            "Automations": number(flows),
            "Verzonden in de periode": number(sends),
            "Openratio (mensen)": percent(human_opens / delivered),
        },
    )
    for name, count in steps:  # each flow's steps are drawn after the numbers
        expect(page.locator("body")).to_contain_text(f"{name}: {count}", timeout=30_000)
    assert errors_on(page) == []
    no_utc_on(page)


@pytest.mark.slow
def test_settling_page_numbers_equal_sql(dashboard, published_world, page):
    url, _ = dashboard
    _, _, analytics = published_world
    so_far, projected, click_so_far, click_projected = sql(
        analytics,
        """
        select open_rate, projected_open_rate, click_rate, projected_click_rate
        from marts.mailing_rate_projections
        order by sent_at desc, mailing_key
        limit 1""",
    )
    open_page(page, url + "projections")
    wait_for_metrics(
        page,
        {
            "Openratio tot nu": percent(so_far),
            "Verwachte openratio": percent(projected),
            "Klikratio tot nu": percent(click_so_far),
            "Verwachte klikratio": percent(click_projected),
        },
    )
    assert errors_on(page) == []
    no_utc_on(page)


def _rows(analytics, query: str) -> list[tuple]:
    con = settings.connect(analytics, read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()
