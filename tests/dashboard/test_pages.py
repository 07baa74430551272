"""Every page in a real browser: it renders without an error (each page's screenshot kept in the test's tmp
folder), numbers are written for the reader, a newly published copy shows on refresh, and an empty
warehouse says so instead of showing a traceback."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from mail_warehouse import settings
from mail_warehouse.dashboard.data import number, percent
from tests.conftest import warehouse_cli
from tests.dashboard.conftest import (
    PAGES,
    errors_on,
    expected_mailing_headline,
    open_page,
    serve,
    settle,
    stop,
    visible_text,
    wait_for_metrics,
)


def test_numbers_are_written_for_dutch_and_estonian_readers():
    assert number(1234567) == "1.234.567"
    assert number(1234.5, 1, "et") == "1\u00a0234,5"
    assert number(1234.5, 1, "en") == "1,234.5"
    assert percent(0.23456) == "23,5\u00a0%"
    assert percent(None) == "–"


# what a reader must never see: a time said to be UTC, a raw null, a platform's key, a column name
RAW = re.compile(r"\bUTC\b|\bNone\b|\bnull\b|\bNaN\b|\bNaT\b|\bclang\b|\bspotler\b|\b[a-z]+_[a-z_]+\b")


@pytest.mark.slow
def test_every_page_renders_in_dutch_without_an_error_or_a_raw_label_and_is_photographed(dashboard, page, tmp_path):
    url, server = dashboard
    for name, path in PAGES.items():
        open_page(page, url + path)
        assert page.locator('[data-testid="stMetric"]').count() > 0, f"{name}: no headline numbers"
        assert errors_on(page) == [], f"{name}: {errors_on(page)}"
        assert "Page not found" not in page.content()
        shown = visible_text(page)
        assert RAW.findall(shown) == [], f"{name}: raw labels on the page"
        screenshot = tmp_path / f"{path or 'mailings'}.png"
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 20_000, f"{name}: the screenshot looks blank"
    assert "Bijgewerkt" in page.get_by_test_id("stSidebar").inner_text(), "when the copy was published, in Dutch"
    # no deprecation or other warning logged while serving every page (Streamlit prints them on its stderr)
    logged = server.log_path.read_text()
    assert "use_container_width" not in logged and "deprecat" not in logged.lower(), logged[-2000:]


@pytest.mark.slow
def test_english_is_the_other_choice_and_the_address_of_the_start_page_works(dashboard, page):
    url, _ = dashboard
    open_page(page, url + "mailings")
    assert "Page not found" not in page.content()
    assert page.url.rstrip("/") == url.rstrip("/"), "/mailings lands on the start page"
    page.get_by_test_id("stSelectbox").filter(has_text="Taal · Language").click()
    page.get_by_role("option", name="English").click()
    settle(page)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Published", timeout=30_000)


@pytest.mark.slow
def test_a_newly_published_copy_shows_on_refresh_and_the_file_is_never_held_open(published_world, page, tmp_path):
    shared_env, shared_warehouse, _ = published_world
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(shared_warehouse, warehouse)
    env = {**shared_env, "WAREHOUSE_PATH": str(warehouse)}
    assert warehouse_cli("publish", env=env).returncode == 0
    analytics = warehouse.with_name("analytics.duckdb")
    server, url, output = serve(warehouse, tmp_path / "streamlit.log")
    try:
        _refresh_shows_the_new_copy(server, url, env, warehouse, analytics, page)
    finally:
        stop(server, output)


def files_held_open(pid: int, name: str) -> list[str]:
    """The files named like `name` that process `pid` has open."""
    held = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):  # closed since the listing
            held.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return [target for target in held if name in target]


def _refresh_shows_the_new_copy(server, url, env, warehouse, analytics, page):
    streamlit = int(Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()[0])
    # a page's own address is the first this fresh server is asked for (a bookmark after a restart)
    open_page(page, url + "contacts")
    assert "Page not found" not in page.content() and errors_on(page) == []
    assert page.get_by_role("heading", name="Wie kunnen we mailen?").count() == 1, visible_text(page)[:500]
    open_page(page, url)
    before = expected_mailing_headline(analytics)
    wait_for_metrics(page, before)
    # between page views the server holds no handle on the copy, so publish can replace it at any time (the
    # handle a page's run holds while it draws is let go when the run ends)
    deadline = time.monotonic() + 30
    while held := files_held_open(streamlit, "analytics.duckdb"):
        assert time.monotonic() < deadline, held
        time.sleep(0.2)

    con = settings.connect(warehouse)
    con.execute("delete from marts.mailing_statistics where source_system = 'clang'")
    con.close()
    again = warehouse_cli("publish", env=env)
    assert again.returncode == 0, again.stderr
    after = expected_mailing_headline(analytics)
    assert after["Mailings"] != before["Mailings"]
    page.reload()
    settle(page)
    wait_for_metrics(page, after)


@pytest.mark.slow
def test_nothing_published_shows_a_clear_page_instead_of_a_traceback(browser, tmp_path):
    server, url, output = serve(tmp_path / "warehouse.duckdb", tmp_path / "streamlit.log")
    try:
        page = browser.new_page()
        open_page(page, url)
        assert page.get_by_text("Nog niets gepubliceerd").count() == 1
        assert "warehouse publish" in page.locator('[data-testid="stAlert"]').inner_text()
        assert errors_on(page) == []
        page.screenshot(path=str(tmp_path / "nothing-published.png"), full_page=True)
    finally:
        stop(server, output)
