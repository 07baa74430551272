"""The contact pages in a real browser: Contacts (headline, list growth, deliverability per mailbox provider,
bounce rates) and the customer card (one contact by address), each number against SQL on the published copy."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from mail_warehouse import settings
from mail_warehouse.dashboard.data import number
from tests.dashboard.conftest import errors_on, open_page, settle, sql, wait_for_metrics

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MONTHS = (
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
)
# what a marketer must never read: column names and raw values
RAW_WORDS = ("is_mailable", "closed in directo", "closed_in_directo", "not_opted_in", "never_engaged", "None", "UTC")


def main_text(page) -> str:
    return page.get_by_test_id("stMain").inner_text()


def grid(page, first_header: str) -> list[list[str]]:
    """The rows of the table whose first column is `first_header`, as st.dataframe's accessible table holds
    them (the values underneath: numbers unformatted, so they compare with SQL as they are)."""
    for table in page.get_by_test_id("stDataFrame").all():
        rows = [row.locator("th, td").all_inner_texts() for row in table.locator("table tr").all()]
        if rows and rows[0] and rows[0][0] == first_header:
            return rows
    raise AssertionError(f"no table headed {first_header!r} on the page")


def wait_for_grid(page, first_header: str, timeout: float = 30) -> list[list[str]]:
    deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
    while True:
        try:
            rows = grid(page, first_header)
            if len(rows) > 1:
                return rows
        except AssertionError:
            if dt.datetime.now() > deadline:
                raise
        page.wait_for_timeout(300)


@pytest.mark.slow
def test_contacts_headline_equals_sql_in_dutch_with_the_engagement_window_in_words(dashboard, published_world, page):
    url, _ = dashboard
    _, _, analytics = published_world
    open_page(page, url + "contacts")
    contacts, mailable, opted_in, active, hard_bounced, shared = sql(
        analytics,
        "select count(*), count(*) filter (where is_mailable), count(*) filter (where is_opted_in), "
        "count(*) filter (where engagement_status = 'active'), count(*) filter (where is_hard_bounced), "
        "count(*) filter (where is_shared_email) from marts.contacts",
    )
    wait_for_metrics(
        page,
        {
            "Contacten": number(contacts),
            "Mailbaar": number(mailable),
            "Opt-in": number(opted_in),
            "Actief (90 dagen)": number(active),
            "Hard gebounced": number(hard_bounced),
            "Gedeelde adressen": number(shared),
        },
    )
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text("Betrokkenheid (laatste 90 dagen)", timeout=30_000)
    expect(main).to_contain_text(re.compile("Geen opt-in|Gesloten in Directo"))
    text = main_text(page)
    assert "in de laatste 90 dagen" in text
    assert [word for word in RAW_WORDS if word in text] == []
    assert errors_on(page) == []

    # the English switch, once
    page.get_by_test_id("stSelectbox").filter(has_text="Taal · Language").click()
    page.get_by_role("option", name="English").click()
    settle(page)
    wait_for_metrics(page, {"Contacts": number(contacts), "Active (90 days)": number(active)})
    expect(page.get_by_test_id("stMain")).to_contain_text("List growth per month", timeout=30_000)


@pytest.mark.slow
def test_list_growth_of_a_month_equals_sql(dashboard, published_world, page):
    url, _ = dashboard
    _, _, analytics = published_world
    # the latest month (Amsterdam time) in which someone withdrew consent
    (month,) = sql(
        analytics,
        "select max(date_trunc('month', timezone('Europe/Amsterdam', event_at))) from marts.customer_activity "
        "where event_type in ('unsubscribe', 'complaint')",
    )
    opt_ins, opt_outs = sql(
        analytics,
        """
        select
            (select count(*) from marts.contacts where is_opted_in
                and date_trunc('month', timezone('Europe/Amsterdam', consent_changed_at)) = $month),
            (select count(distinct email) from marts.customer_activity
                where event_type in ('unsubscribe', 'complaint') and email is not null
                and date_trunc('month', timezone('Europe/Amsterdam', event_at)) = $month)""",
        {"month": month},
    )
    assert opt_outs > 0
    open_page(page, url + "contacts")
    rows = wait_for_grid(page, "Maand")
    assert rows[0] == ["Maand", "Aanmeldingen", "Afmeldingen", "Netto groei"]
    shown = {row[0]: row[1:] for row in rows[1:]}
    assert shown[f"{MONTHS[month.month - 1]} {month.year}"] == [str(opt_ins), str(opt_outs), str(opt_ins - opt_outs)]


@pytest.mark.slow
def test_bounces_per_month_are_rates_of_the_mails_sent(dashboard, page):
    url, _ = dashboard
    open_page(page, url + "contacts")
    expect(page.get_by_test_id("stMain")).to_contain_text("Bounces per maand", timeout=30_000)
    expect(page.get_by_test_id("stMain")).to_contain_text("Bounces als aandeel van de verzonden mails")


# the providers whose domains the test world's people use (the demo world's vocabulary), by the page's names
PROVIDER_DOMAINS = {
    "Gmail": ["gmail.com"],
    "Outlook / Hotmail": ["outlook.com", "hotmail.com"],
    "Ziggo": ["ziggo.nl"],
    "KPN": ["kpnmail.nl"],
    "Telenet": ["telenet.be"],
}


@pytest.mark.slow
def test_deliverability_per_mailbox_provider_equals_sql(dashboard, published_world, page):
    url, _ = dashboard
    _, _, analytics = published_world
    expected = {
        name: sql(
            analytics,
            """
            select count(*),
                   count(*) filter (where bounce = 'none') / count(*),
                   count(*) filter (where bounce <> 'none') / count(*),
                   count(*) filter (where has_complained) / count(*) filter (where bounce = 'none'),
                   count(*) filter (where was_opened and bounce = 'none') / count(*) filter (where bounce = 'none')
            from marts.contact_mail_history as h
            inner join marts.mailings as m using (mailing_key)
            where m.mailing_type <> 'SMS' and list_contains($domains, split_part(h.email, '@', 2))""",
            {"domains": domains},
        )
        for name, domains in PROVIDER_DOMAINS.items()
    }
    open_page(page, url + "contacts")
    rows = wait_for_grid(page, "Provider")
    assert rows[0] == ["Provider", "Verzonden", "Afgeleverd", "Bounces", "Spamklachten", "Geopend door mensen"]
    shown = {row[0]: row[1:] for row in rows[1:]}
    for name, (sent, delivery, bounce, complaint, human_open) in expected.items():
        assert sent > 0, f"the test world mails {name}"
        assert int(shown[name][0]) == sent, name
        assert [float(value) for value in shown[name][1:]] == pytest.approx(
            [delivery, bounce, complaint, human_open]
        ), name


def a_contact_opened_by_people_and_by_machines(analytics) -> str:
    (email,) = sql(
        analytics,
        """
        select email from marts.contact_mail_history
        group by email
        having count(*) filter (where was_opened) > 0
            and count(*) filter (where was_machine_opened and not was_opened) > 0
        order by count(*) desc, email
        limit 1""",
    )
    return email


def expected_mailings(analytics, email: str) -> list[str]:
    con = settings.connect(analytics, read_only=True)
    try:
        return [
            name
            for (name,) in con.execute(
                """
                select m.mailing_name
                from marts.contact_mail_history as h
                inner join marts.mailings as m using (mailing_key)
                where h.email = $email
                order by h.sent_at desc, m.mailing_name""",
                {"email": email},
            ).fetchall()
        ]
    finally:
        con.close()


CONSENT_SOURCES = {
    "directo_optin": "Directo (veld OPTIN)",
    "clang_unsubscribe": "Afgemeld via Clang / Deployteq",
    "spotler_unsubscribe": "Afgemeld via Spotler Mail+",
    "clang_complaint": "Spamklacht via Clang / Deployteq",
    "spotler_email_channel": "E-mailkanaal uitgezet in Spotler Mail+",
}


@pytest.mark.slow
def test_typing_an_address_shows_that_contacts_mailings_consent_and_who_opened(dashboard, published_world, page):
    url, _ = dashboard
    _, _, analytics = published_world
    email = a_contact_opened_by_people_and_by_machines(analytics)
    mailings = expected_mailings(analytics, email)
    source, changed_at = sql(
        analytics, "select consent_source, consent_changed_at from marts.contacts where email = $e", {"e": email}
    )

    open_page(page, url + "contact")
    assert "Typ een e-mailadres" in main_text(page)
    box = page.get_by_label("E-mailadres")
    box.fill(f"  {email.upper()} ")  # spelt as a person might: the card normalises it as the marts do
    box.press("Enter")
    settle(page)
    page.get_by_role("heading", name=f"Mailings ({number(len(mailings))})").wait_for(timeout=30_000)
    expect(page).to_have_url(re.compile(r"[?&]email="), timeout=30_000)

    rows = wait_for_grid(page, "Mailing")
    assert [row[0] for row in rows[1:]] == mailings
    opened_by = {row[rows[0].index("Geopend door")] for row in rows[1:]}
    assert {"de persoon", "alleen machine (Apple-privacyproxy)"} <= opened_by

    facts = {row[0]: row[1] for row in wait_for_grid(page, "Wat")[1:] if len(row) == 2}
    assert facts["Toestemming: bron"] == CONSENT_SOURCES[source]
    local = changed_at.astimezone(AMSTERDAM)
    day = f"{local:%d-%m-%Y}" if source == "directo_optin" else f"{local:%d-%m-%Y %H:%M}"
    assert facts["Toestemming: datum"] == day
    text = main_text(page)
    assert "90 dagen" in text
    assert [word for word in RAW_WORDS if word in text] == []
    assert errors_on(page) == []


@pytest.mark.slow
def test_the_card_opens_from_its_address_in_the_url_and_says_when_no_contact_has_it(dashboard, published_world, page):
    url, _ = dashboard
    _, _, analytics = published_world
    email = a_contact_opened_by_people_and_by_machines(analytics)
    mailings = expected_mailings(analytics, email)

    open_page(page, url + "contact?email=" + urllib.parse.quote(email.upper()))
    page.get_by_role("heading", name=f"Mailings ({number(len(mailings))})").wait_for(timeout=30_000)
    # the box is filled on the browser's side after the card renders: waited for, not read at one instant
    expect(page.get_by_label("E-mailadres")).to_have_value(email.upper(), timeout=30_000)

    open_page(page, url + "contact?email=" + urllib.parse.quote("nobody@nowhere.invalid"))
    page.get_by_text("Geen contact met dit adres").wait_for(timeout=30_000)
    assert errors_on(page) == []
    assert "Mailings (" not in main_text(page)


@pytest.mark.slow
def test_the_search_box_on_contacts_leads_to_the_card(dashboard, published_world, page):
    url, _ = dashboard
    _, _, analytics = published_world
    email = a_contact_opened_by_people_and_by_machines(analytics)
    open_page(page, url + "contacts")
    page.get_by_label("Zoek een contact").fill(email)
    page.get_by_role("button", name="Open klantkaart").click()
    settle(page)
    page.get_by_role("heading", name="Klantkaart").wait_for(timeout=30_000)
    page.get_by_role("heading", name=f"Mailings ({number(len(expected_mailings(analytics, email)))})").wait_for(
        timeout=30_000
    )
