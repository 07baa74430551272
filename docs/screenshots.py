"""Photograph every page of the dashboard into docs/ (`make screenshots`, after `make run`).

Serves `warehouse dashboard` on a free loopback port over the published copy of this checkout, opens each page in
Debian's chromium (Playwright), waits until Streamlit has drawn it, and writes `docs/dashboard-<page>.png`. The
customer card is photographed for the demo world's contact with the most mailings.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
PAGES = {
    "mailings": "",
    "mailing": "mailing",
    "flows": "flows",
    "contacts": "contacts",
    "contact": "contact?email={email}",
    "segments": "segments",
    "projections": "projections",
}
DRAWN = '[data-testid="stMetric"], [data-testid="stAlert"], [data-testid="stException"]'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def busiest_contact(analytics: Path) -> str:
    con = duckdb.connect(str(analytics), read_only=True)
    try:
        row = con.execute(
            "select email from marts.contact_mail_history group by email "
            "order by count(*) filter (where was_opened) desc, count(*) desc, email limit 1"
        ).fetchone()
    finally:
        con.close()
    if row is None:
        sys.exit("the published copy has no mail history: run `make run` first")
    return row[0]


def main() -> int:
    from mail_warehouse.publish import analytics_path

    analytics = analytics_path()
    if not analytics.exists():
        sys.exit(f"{analytics} does not exist: run `make run` first")
    email = busiest_contact(analytics)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen(
        [sys.executable, "-m", "mail_warehouse", "dashboard", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DASHBOARD__SECRETS_FILE": str(DOCS / "no-login.toml")},  # photographed without a login
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}_stcore/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("the dashboard did not start")
                time.sleep(0.3)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_context(viewport={"width": 1400, "height": 2400}).new_page()
            for name, path in PAGES.items():
                page.goto(url + path.format(email=email))
                page.wait_for_selector(DRAWN, timeout=60_000)
                page.wait_for_function(
                    "!document.querySelector('[data-testid=\"stStatusWidget\"]')"
                    " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
                    timeout=60_000,
                )
                page.wait_for_timeout(1500)  # Vega draws its charts after Streamlit's run ends
                target = DOCS / f"dashboard-{name}.png"
                page.screenshot(path=str(target), full_page=True)
                print(f"{target.relative_to(DOCS.parent)}", flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
