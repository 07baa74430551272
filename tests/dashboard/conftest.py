"""The dashboard in a real browser: Streamlit on loopback against a published test world (one server for
every test of this folder that only reads it), driven by Debian's chromium through Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from mail_warehouse import settings
from mail_warehouse.dashboard.data import number, percent
from tests.conftest import start_warehouse_cli, warehouse_cli

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PAGES = {  # name: url path
    "mailings": "",
    "one mailing": "mailing",
    "automations and campaigns": "flows",
    "contacts": "contacts",
    "customer card": "contact",
    "segments and exports": "segments",
    "settling mailings": "projections",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(warehouse: Path, log: Path, env: dict | None = None):
    """`warehouse dashboard` on a free loopback port (in `env`, the world's: dbt's target path of its build, where
    the segments page reads their rules); waits until it prints its URL and Streamlit answers."""
    port = free_port()
    output = log.open("w")
    server = start_warehouse_cli(
        "dashboard",
        "--port",
        str(port),
        # no login: a developer's own `.streamlit/secrets.toml` must not put a login before these pages
        env={
            **(env or os.environ),
            "WAREHOUSE_PATH": str(warehouse),
            "DASHBOARD__SECRETS_FILE": str(log.with_name("none.toml")),
        },
        stdout=output,
        stderr=output,
    )
    url = f"http://127.0.0.1:{port}/"
    wait_until_healthy(server, url, log)
    assert f"Dashboard on {url}" in log.read_text()
    return server, url, output


def wait_until_healthy(server, url: str, log: Path) -> None:
    """Until Streamlit at `url` answers its health check; fails with the server's log if it stops or takes a minute."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}_stcore/health", timeout=2) as answer:
                if answer.read() == b"ok":
                    return
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"the dashboard did not start: {log.read_text()[-2000:]}")
        time.sleep(0.3)


def stop(server, output) -> None:
    """Stop it as a service manager would (SIGTERM to `warehouse`): Streamlit must stop with it."""
    url = next(word for word in Path(output.name).read_text().split() if word.startswith("http://"))
    server.terminate()
    server.wait(timeout=20)
    output.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}_stcore/health", timeout=5)


@pytest.fixture(scope="package")
def published_world(built_warehouse, tmp_path_factory):
    """A copy of the built test world with one export recorded, published beside it."""
    env, database, _stack = built_warehouse
    folder = tmp_path_factory.mktemp("dashboard")
    copy = folder / "warehouse.duckdb"
    shutil.copyfile(database, copy)
    env = {**env, "WAREHOUSE_PATH": str(copy), "EXPORT__DEPLOYTEQ__LOCAL_DIR": str(folder / "exports")}
    exported = warehouse_cli("export", "--force", env=env)
    assert exported.returncode == 0, exported.stderr
    published = warehouse_cli("publish", env=env)
    assert published.returncode == 0, published.stderr
    return env, copy, copy.with_name("analytics.duckdb")


@pytest.fixture(scope="package")
def dashboard(published_world, tmp_path_factory):
    env, warehouse, _ = published_world
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    server, url, output = serve(warehouse, log, env)
    server.log_path = log  # what Streamlit printed while serving: warnings show there
    yield url, server
    stop(server, output)


@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but /usr/bin/chromium is missing: .ci/run must install chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); CI runs these")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    # Streamlit scrolls an inner container, so a full-page screenshot is the viewport: a tall one shows the
    # tables and charts below the headline numbers too
    context = browser.new_context(viewport={"width": 1400, "height": 2800})
    yield context.new_page()
    context.close()


# Streamlit's app element says whether the page's script is running: initial, running, notRunning
SCRIPT_STATE = '[data-testid="stApp"][data-test-script-state="{}"]'


def open_page(page, url: str) -> None:
    """Load a page and wait until Streamlit has drawn its numbers (the HTML itself is empty: it comes over a
    websocket) and finished running the script."""
    page.goto(url)
    page.wait_for_selector(
        '[data-testid="stMetric"], [data-testid="stAlert"], [data-testid="stException"]', timeout=60_000
    )
    script_finished(page)  # a new page's app says `initial`, then `running`: no old `notRunning` to mistake


def settle(page) -> None:
    """After a click: wait until Streamlit has rerun the page's script. The rerun may not have begun yet (the old
    run's `notRunning` still shows), so a run that begins within two seconds is waited for first. What a test
    then reads can still be drawn a moment later: assert it with Playwright's retrying `expect`."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):  # over before we looked, or no rerun
        page.wait_for_selector(SCRIPT_STATE.format("running"), state="attached", timeout=2_000)
    script_finished(page)


def script_finished(page) -> None:
    """Wait until Streamlit's app element says its script is `notRunning`."""
    page.wait_for_selector(SCRIPT_STATE.format("notRunning"), state="attached", timeout=60_000)


def read_metrics(page) -> dict[str, str]:
    found = {}
    for metric in page.locator('[data-testid="stMetric"]').all():
        label = metric.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        found[label] = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return found


def wait_for_metrics(page, expected: dict[str, str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        shown = read_metrics(page)
        if all(shown.get(label) == value for label, value in expected.items()):
            return
        if time.monotonic() > deadline:
            assert {label: shown.get(label) for label in expected} == expected
        page.wait_for_timeout(300)


def visible_text(page) -> str:
    """What a reader sees on the page, the collapsed query expanders (SQL, with column names) left out."""
    return page.evaluate(
        """() => {
            const copy = document.querySelector('[data-testid="stMain"]') || document.body;
            const clone = copy.cloneNode(true);
            clone.querySelectorAll('[data-testid="stExpander"]').forEach((e) => e.remove());
            document.body.appendChild(clone);
            const text = clone.innerText;
            clone.remove();
            return text;
        }"""
    )


def errors_on(page) -> list[str]:
    return (
        page.locator('[data-testid="stException"]').all_inner_texts()
        + page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
    )


def sql(analytics: Path, query: str, params: dict | None = None):
    con = settings.connect(analytics, read_only=True)
    try:
        return con.execute(query, params or {}).fetchone()
    finally:
        con.close()


def expected_mailing_headline(analytics: Path, platform: str | None = None) -> dict[str, str]:
    """The Mailings page's headline as it opens, in Dutch: every period, every one-off mailing (automation steps
    have a page of their own) and every type but SMS (no opens or clicks)."""
    mailings, sent, delivered, opens, clicks, human_opens, human_clicks = sql(
        analytics,
        """
        select count(*), sum(sent_count), sum(delivered_count), sum(unique_open_count), sum(unique_click_count),
               sum(unique_human_open_count), sum(unique_human_click_count)
        from marts.mailing_statistics
        where ($platform is null or source_system = $platform) and mailing_type <> 'SMS'
          and mailing_key not in (select mailing_key from marts.mailings where is_campaign_mailing)""",
        {"platform": platform},
    )
    assert human_opens < opens, "the test world has machines: people's own opens are fewer than all"
    return {
        "Mailings": number(mailings),
        "Verzonden": number(sent),
        "Openratio (ruw)": percent(opens / delivered),
        "Klikratio (ruw)": percent(clicks / delivered),
        "Openratio (mensen)": percent(human_opens / delivered),
        "Klikratio (mensen)": percent(human_clicks / delivered),
    }
