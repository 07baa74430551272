"""Who may open the dashboard, in a real browser against a real OpenID Connect provider on loopback
(oidc-provider-mock): with a login configured, no page, no number and no address is served before a person has
logged in (and is on the allow-list); once logged in, every page shows what it shows without a login; logging out
closes them again. `warehouse dashboard` refuses an address other machines reach without a login, before
Streamlit starts, and the app refuses it too when started some other way."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from mail_warehouse.dashboard import DashboardError, streamlit_command
from mail_warehouse.dashboard.auth import Login, is_loopback, read_login
from tests.conftest import start_warehouse_cli, warehouse_cli
from tests.dashboard.conftest import (
    PAGES,
    free_port,
    open_page,
    read_metrics,
    settle,
    sql,
    wait_for_metrics,
    wait_until_healthy,
)

ALLOWED_DOMAIN = "example.nl"
ALLOWED_PARTNER = "analist@partner.example"
COOKIE_SECRET = "0123456789abcdef" * 4
# what a page shows before the gate lets it render: a login button, a refusal, or (wrongly) anything else
SCRIPT_DONE = (
    '[data-testid="stBaseButton-primary"], [data-testid="stMetric"], [data-testid="stAlert"], '
    '[data-testid="stException"]'
)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def write_secrets(path: Path, dashboard_port: int, provider: str, **auth) -> Path:
    lines = [
        "[auth]",
        f'redirect_uri = "http://127.0.0.1:{dashboard_port}/oauth2callback"',
        f'cookie_secret = "{COOKIE_SECRET}"',
        'client_id = "mail-warehouse-dashboard"',
        'client_secret = "not-a-real-client-secret-4711"',
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"',
        *(f"{key} = {json.dumps(value)}" for key, value in auth.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """oidc-provider-mock on a free loopback port, in a process of its own (its log and Authlib's deprecation
    warnings stay out of the test's): any client id and secret, a login form that takes any subject; `add_user`
    gives a subject its claims."""
    port = free_port()
    log = tmp_path_factory.mktemp("provider") / "provider.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)],
            stdout=output,
            stderr=output,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/.well-known/openid-configuration", timeout=2) as answer:
                assert json.load(answer)["issuer"] == url
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"oidc-provider-mock did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(timeout=10)


def add_user(provider: str, email: str, **claims) -> None:
    request = urllib.request.Request(
        f"{provider}/users/{quote(email)}",
        data=json.dumps({"email": email, **claims}).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 204


def serve_with_login(published_world, provider, folder: Path, browser, **auth):
    """`warehouse dashboard --host 127.0.0.1 --port P --secrets FILE` with a login at `provider`; waits until it
    answers and has run its script once (Streamlit's first run of a process is its slowest)."""
    env, warehouse, _ = published_world
    port = free_port()
    secrets = write_secrets(folder / "secrets.toml", port, provider, **auth)
    log = folder / "streamlit.log"
    output = log.open("w")
    server = start_warehouse_cli(
        "dashboard",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--secrets",
        str(secrets),
        env={**env, "WAREHOUSE_PATH": str(warehouse)},
        stdout=output,
        stderr=output,
    )
    url = f"http://127.0.0.1:{port}/"
    wait_until_healthy(server, url, log)
    assert f"Dashboard on {url}" in log.read_text() and f"login at {provider}" in log.read_text()
    warm_up = browser.new_page()
    open_gate(warm_up, url)
    warm_up.close()
    return server, url, output


def stop_server(server, output) -> None:
    server.terminate()
    server.wait(timeout=20)
    output.close()


@pytest.fixture(scope="module")
def login_dashboard(published_world, provider, browser, tmp_path_factory):
    """The dashboard with a login, an allow-list of one domain and one partner's address."""
    folder = tmp_path_factory.mktemp("login")
    server, url, output = serve_with_login(
        published_world,
        provider,
        folder,
        browser,
        allowed_domains=[ALLOWED_DOMAIN],
        allowed_emails=[ALLOWED_PARTNER],
    )
    yield url
    stop_server(server, output)
    logged = (folder / "streamlit.log").read_text()
    assert "Traceback" not in logged and "deprecat" not in logged.lower(), logged[-2000:]


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 2800})
    yield context
    context.close()


def open_gate(page, url: str) -> None:
    """Open a page and wait until its script has run: the login button, a refusal, or the page itself."""
    page.goto(url)
    page.wait_for_selector(SCRIPT_DONE, timeout=60_000)
    settle(page)


def log_in(page, dashboard: str, email: str) -> None:
    open_gate(page, dashboard)
    page.get_by_role("button", name="Inloggen", exact=True).click()
    page.wait_for_url("**/oauth2/authorize?**", timeout=30_000)
    page.get_by_placeholder("sub").fill(email)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(dashboard, timeout=30_000)
    page.wait_for_selector(SCRIPT_DONE, timeout=60_000)
    settle(page)


def a_contact(analytics: Path) -> str:
    (email,) = sql(
        analytics,
        """
        select email from marts.contact_mail_history
        where email is not null group by email order by count(*) desc, email limit 1""",
    )
    return email


def every_path(email: str) -> list[str]:
    return [path for path in PAGES.values() if path != "contact"] + [f"contact?email={quote(email)}"]


def shows_nothing(page, path: str, headline: list[str], email: str) -> None:
    """The login button (or a refusal) only: no headline number, no number of the open page, no address. The
    numbers are looked for as numbers in what the page shows: the page's HTML also holds script names and
    styles, where three digits turn up by chance."""
    assert page.locator('[data-testid="stMetric"]').count() == 0, f"/{path}: a headline number before login"
    assert email not in page.content(), f"/{path}: a contact's address before login"
    shown = page.inner_text("body")
    found = [value for value in headline if re.search(rf"(?<![\d.,]){re.escape(value)}(?!\d|[.,]\d)", shown)]
    assert found == [], f"/{path}: the open page's numbers"
    assert "Bijgewerkt" not in page.get_by_test_id("stSidebar").inner_text(), f"/{path}: the copy's age"


def numbers_of(metrics: dict[str, str]) -> list[str]:
    """The headline values that could not turn up on a page by chance (not "0", "3" or "–")."""
    return [value for value in metrics.values() if sum(character.isdigit() for character in value) >= 3]


@pytest.mark.slow
def test_with_a_login_no_page_no_number_and_no_address_is_served_until_logged_in_and_all_after(
    login_dashboard, dashboard, provider, published_world, context
):
    _, _, analytics = published_world
    email = a_contact(analytics)
    open_url, _ = dashboard
    person = f"anna@{ALLOWED_DOMAIN}"
    add_user(provider, person, email_verified=True, name="Anna")
    # what each page shows without a login, on the loopback dashboard of the same copy
    reference = context.new_page()
    expected = {}
    for path in every_path(email):
        open_page(reference, open_url + path)
        expected[path] = read_metrics(reference)
        assert expected[path], f"/{path} shows no headline numbers on the open dashboard"
    assert email in reference.content(), "the customer card shows the address it was asked for"
    reference.close()

    page = context.new_page()
    for path in every_path(email):
        open_gate(page, login_dashboard + path)
        assert page.get_by_role("button", name="Inloggen", exact=True).count() == 1, f"/{path}: no login button"
        shows_nothing(page, path, numbers_of(expected[path]), email)
    # the other language too
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first.click()  # Taal · Language
    page.get_by_role("option", name="English").click()
    settle(page)
    expect(page.get_by_role("button", name="Log in", exact=True)).to_have_count(1, timeout=30_000)
    expect(page.locator("body")).to_contain_text("customers' data")
    assert page.locator('[data-testid="stMetric"]').count() == 0

    log_in(page, login_dashboard, person)
    # Streamlit's login cookie over plain http on loopback: httponly, SameSite=Lax, not Secure (no https here)
    cookies = {cookie["name"]: cookie for cookie in context.cookies(login_dashboard)}
    assert cookies["_streamlit_user"]["httpOnly"] and cookies["_streamlit_user"]["sameSite"] == "Lax"
    assert person in page.get_by_test_id("stSidebar").inner_text()
    for path in every_path(email):
        open_page(page, login_dashboard + path)
        wait_for_metrics(page, expected[path])
    assert email in page.content(), "the customer card, once logged in"

    page.get_by_test_id("stSidebar").get_by_role("button", name="Uitloggen").click()
    # the provider ends its session and sends the browser back to the dashboard, which asks for a login again
    page.wait_for_url("**/oauth2/end_session?**", timeout=30_000)
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(login_dashboard, timeout=30_000)
    assert "_streamlit_user" not in {cookie["name"] for cookie in context.cookies(login_dashboard)}
    for path in ("", f"contact?email={quote(email)}"):
        open_gate(page, login_dashboard + path)
        assert page.get_by_role("button", name="Inloggen", exact=True).count() == 1
        shows_nothing(page, path, numbers_of(expected[path]), email)


@pytest.mark.slow
def test_a_person_not_on_the_allow_list_sees_nothing_but_may_log_out(
    login_dashboard, provider, published_world, context
):
    _, _, analytics = published_world
    email = a_contact(analytics)
    add_user(provider, "mallory@elders.example", email_verified=True)
    add_user(provider, f"bob@{ALLOWED_DOMAIN}", email_verified=False)  # the provider vouches for no such address
    for person in ("mallory@elders.example", f"bob@{ALLOWED_DOMAIN}"):
        page = context.new_page()
        log_in(page, login_dashboard, person)
        for path in ("", "contacts", f"contact?email={quote(email)}"):
            open_gate(page, login_dashboard + path)
            assert page.get_by_text("Geen toegang").count() == 1, f"{person} on /{path}"
            assert f"{person} staat niet op de lijst" in page.inner_text("body")
            shows_nothing(page, path, [], email)
        assert page.get_by_test_id("stSidebar").get_by_role("button", name="Uitloggen").count() == 1
        context.clear_cookies()
        page.close()


@pytest.mark.slow
def test_a_partner_on_the_list_of_addresses_gets_in(login_dashboard, provider, context):
    add_user(provider, ALLOWED_PARTNER, email_verified=True)
    page = context.new_page()
    log_in(page, login_dashboard, ALLOWED_PARTNER)
    assert page.locator('[data-testid="stMetric"]').count() > 0
    assert page.get_by_text("Geen toegang").count() == 0


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "dashboard.example.nl"])
def test_an_address_other_machines_reach_is_refused_without_a_login_before_streamlit_starts(host, tmp_path):
    port = free_port()
    started = time.monotonic()
    refused = warehouse_cli(
        "dashboard", "--host", host, "--port", str(port), "--secrets", str(tmp_path / "secrets.toml"), timeout=60
    )
    assert refused.returncode == 2, refused.stderr
    assert f"refusing to serve the dashboard on {host} without a login" in refused.stderr
    assert "[auth]" in refused.stderr and "redirect_uri, cookie_secret, client_id" in refused.stderr
    assert "127.0.0.1" in refused.stderr, "it says how to do without a login too"
    assert "Dashboard on" not in refused.stdout
    assert not _listening(port), "nothing listens"
    assert time.monotonic() - started < 30


def test_a_login_that_cannot_work_is_refused_naming_the_key_never_its_value(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        '[auth]\nredirect_uri = "http://127.0.0.1:8501/oauth2callback"\nclient_secret = "hunter2-very-secret"\n'
    )
    for host in ("127.0.0.1", "0.0.0.0"):
        refused = warehouse_cli("dashboard", "--host", host, "--secrets", str(secrets), timeout=60)
        assert refused.returncode == 2
        assert "[auth] lacks cookie_secret, client_id, server_metadata_url" in refused.stderr
        assert "hunter2" not in refused.stderr + refused.stdout


def test_loopback_is_this_machine_only():
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(
        is_loopback(host)
        for host in ("0.0.0.0", "::", "", "192.168.1.20", "10.0.0.1", "dashboard.example.nl", "localhost.example.nl")
    )


def test_the_login_settings_are_checked_and_the_allow_list_admits_only_its_addresses(tmp_path):
    provider = "http://127.0.0.1:9400"
    secrets = write_secrets(tmp_path / "secrets.toml", 8501, provider)
    assert read_login([tmp_path / "absent.toml"]) is None
    assert read_login([secrets]) == Login(provider)
    assert Login(provider).admits("anyone@anywhere.example"), "no allow-list: whom the provider lets in"

    listed = read_login(
        [write_secrets(secrets, 8501, provider, allowed_domains=["@Example.NL"], allowed_emails=[ALLOWED_PARTNER])]
    )
    assert listed is not None
    assert listed.admits("Anna@example.nl", True) and listed.admits(ALLOWED_PARTNER)
    assert not listed.admits("anna@example.nl", False) and not listed.admits("anna@example.nl", "false")
    assert not listed.admits("mallory@elders.example", True) and not listed.admits("x@sub.example.nl", True)
    assert not listed.admits(None)

    with pytest.raises(DashboardError, match="allowed_domains must be a list of strings"):
        read_login([write_secrets(secrets, 8501, provider, allowed_domains="example.nl")])
    secrets.write_text(secrets.read_text().replace("/oauth2callback", "/"))
    with pytest.raises(DashboardError, match="ending in /oauth2callback"):
        read_login([secrets])
    write_secrets(secrets, 8501, provider)
    secrets.write_text(secrets.read_text().replace("http://127.0.0.1:8501", "http://dashboard.example.nl"))
    with pytest.raises(DashboardError, match="redirect_uri must start with https://"):
        read_login([secrets])
    secrets.write_text(secrets.read_text().replace("http://dashboard", "https://dashboard"))
    assert read_login([secrets]) == Login(provider)
    write_secrets(secrets, 8501, provider)
    secrets.write_text(secrets.read_text().replace(COOKIE_SECRET, "short"))
    with pytest.raises(DashboardError, match="cookie_secret is shorter than 32") as refused:
        read_login([secrets])
    assert "short" not in str(refused.value).replace("shorter", "")
    secrets.write_text("[auth\n")
    with pytest.raises(DashboardError, match="cannot read the dashboard's secrets file"):
        read_login([secrets])


@pytest.mark.slow
def test_streamlit_started_by_hand_on_an_open_address_without_a_login_serves_nothing(
    published_world, browser, tmp_path
):
    """The app checks again: whoever starts Streamlit some other way on an open address gets no page either."""
    env, warehouse, analytics = published_world
    port = free_port()
    log = tmp_path / "streamlit.log"
    output = log.open("w")
    command = streamlit_command("0.0.0.0", port, tmp_path / "no-secrets.toml")
    server = subprocess.Popen(
        command, env={**os.environ, **env, "WAREHOUSE_PATH": str(warehouse)}, stdout=output, stderr=output
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until_healthy(server, url, log)
        page = browser.new_page()
        email = a_contact(analytics)
        for path in ("", f"contact?email={quote(email)}"):
            open_gate(page, url + path)
            assert "open without a login" in page.inner_text("body") or "zonder login" in page.inner_text("body")
            shows_nothing(page, path, [], email)
        page.close()
    finally:
        stop_server(server, output)
