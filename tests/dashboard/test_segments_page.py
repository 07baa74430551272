"""The Segments and exports page in a real browser, against SQL on the published copy: its headline, each
delivery with its outcome, the segment's rules as dbt describes them, its members and their CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from mail_warehouse.dashboard.data import number
from tests.dashboard.conftest import (
    open_page,
    settle,
    sql,
    visible_text,
    wait_for_metrics,
)

pytestmark = pytest.mark.slow

# what the page calls each outcome of the export logs (csv_trigger_log.status, spotler_export_log.status)
CSV_OUTCOMES = {"uploaded": "geüpload", "done": "klaar (verwerkt)", "failed": "mislukt (geweigerd)"}
SPOTLER_OUTCOMES = {"done": "klaar", "intent": "onderbroken"}


@pytest.fixture
def segments_dashboard(dashboard):
    """The shared dashboard, which runs as `warehouse dashboard` beside the warehouse does: with the build's dbt
    target path, where the segments' rules are (dbt's manifest)."""
    url, _ = dashboard
    return url


def table_of(page, index: int) -> tuple[list[str], list[list[str]]]:
    """The column labels and the cells, row by row, of the page's `index`-th table, as the browser offers them to
    screen readers (the columns in view)."""
    grid = page.locator('[data-testid="stDataFrame"]').nth(index)
    grid.locator('[role="columnheader"]').first.wait_for(state="attached")  # hidden: it is for screen readers
    header = grid.locator('[role="columnheader"]').all_text_contents()
    rows = [
        row.locator('[role="gridcell"]').all_text_contents()
        for row in grid.locator('[role="row"]').all()
        if row.locator('[role="gridcell"]').count()
    ]
    return header, rows


def test_the_headline_equals_sql_on_the_export_logs_and_the_last_delivery_is_in_amsterdam_time(
    segments_dashboard, published_world, page
):
    _, _, analytics = published_world
    open_page(page, segments_dashboard + "segments")
    csv_files, csv_sent, csv_left_out, csv_unfinished, csv_last = sql(
        analytics,
        """
        select count(*), sum(rows) filter (where status in ('uploaded', 'done')), sum(excluded_by_consent),
               count(*) filter (where status in ('intent', 'failed', 'not-sent')),
               max(coalesce(uploaded_at, recorded_at))
        from exports.csv_trigger_log""",
    )
    spotler_runs, spotler_sent, spotler_refused, spotler_left_out, spotler_unfinished, spotler_last = sql(
        analytics,
        """
        select count(*), sum(coalesce(triggered, 0) + coalesce(added, 0)), sum(refused), sum(excluded_by_consent),
               count(*) filter (where status = 'intent'), max(coalesce(finished_at, recorded_at))
        from exports.spotler_export_log""",
    )
    (segments,) = sql(analytics, "select count(*) from information_schema.tables where table_schema = 'segments'")
    (in_segment,) = sql(analytics, "select count(*) from segments.reactivation")
    assert segments == 1, "the project's one segment: its members are all there are"
    assert csv_files >= 1 and spotler_runs >= 1, "the export went to both targets of the demo company"
    wait_for_metrics(
        page,
        {
            "Segmenten": number(segments),
            "Nu in segmenten": number(in_segment),
            "Leveringen": number(csv_files + spotler_runs),
            "Contacten verstuurd": number((csv_sent or 0) + spotler_sent),
            "Mislukt of onderbroken": number(csv_unfinished + spotler_unfinished),
            "Geweigerd door Spotler": number(spotler_refused),
            "Weggelaten (toestemming)": number(csv_left_out + spotler_left_out),
        },
    )
    last = max(csv_last, spotler_last).astimezone(ZoneInfo("Europe/Amsterdam"))
    shown = visible_text(page)
    assert f"Laatste levering: {last:%d-%m-%Y %H:%M} (Nederlandse tijd)" in shown
    assert "UTC" not in shown and "UTC" not in page.get_by_test_id("stSidebar").inner_text()


def test_each_delivery_shows_with_its_target_and_outcome(segments_dashboard, published_world, page):
    _, _, analytics = published_world
    open_page(page, segments_dashboard + "segments")
    csv_rows = sql(
        analytics,
        """
        select list({'target': file_name, 'status': status}) from exports.csv_trigger_log""",
    )[0]
    spotler = sql(analytics, "select list({'target': target, 'status': status}) from exports.spotler_export_log")[0]
    expected = sorted(
        [("Deployteq CSV-trigger", d["target"], CSV_OUTCOMES[d["status"]]) for d in csv_rows]
        + [("Spotler-campagnetrigger", d["target"], SPOTLER_OUTCOMES[d["status"]]) for d in spotler]
    )
    header, rows = table_of(page, 0)
    kind, target, outcome = (header.index(label) for label in ("Doel", "Bestand, trigger of doelgroep", "Uitkomst"))
    shown = sorted((row[kind], row[target], row[outcome]) for row in rows)
    assert shown == expected
    assert any(name.endswith(".csv") for _, name, _ in shown), "the CSV trigger file is named"


def test_the_rules_come_from_the_segment_yml_as_dbt_read_it(segments_dashboard, published_world, page):
    env, _, _ = published_world
    manifest = json.loads((Path(env["DBT_TARGET_PATH"]) / "manifest.json").read_text())
    (segment,) = [
        n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["name"] == "reactivation"
    ]
    rules = segment["config"]["meta"].get("description_nl") or segment["description"]
    open_page(page, segments_dashboard + "segments")
    rules_shown = "Wie erin komt: " + " ".join(rules.split()[:4])
    expect(page.get_by_test_id("stMain")).to_contain_text(rules_shown, timeout=30_000)
    shown = visible_text(page)
    assert "reactivatie" in shown, "where it goes: the Spotler trigger and the CSV file's name"
    assert "Geen beschrijving gevonden" not in shown


def test_the_member_preview_and_the_csv_download_hold_the_segment(segments_dashboard, published_world, page):
    _, _, analytics = published_world
    (members, first) = sql(analytics, "select count(*), list(email order by email)[1:20] from segments.reactivation")
    (everyone,) = sql(analytics, "select list(email order by email) from segments.reactivation")
    assert members > 20, "the test world's segment is larger than the preview"
    open_page(page, segments_dashboard + "segments")
    header, preview = table_of(page, 1)
    assert header[:3] == ["E-mailadres", "Voornaam", "Naam"] and "Dagen inactief" in header
    assert [row[0] for row in preview] == first
    assert f"De eerste 20 van {number(members)} leden" in visible_text(page)

    with page.expect_download() as download:
        page.get_by_role("button", name=f"Alle {number(members)} leden als CSV").click()
    saved = Path(download.value.path()).read_bytes().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(saved), delimiter=";"))
    assert [row["E-mailadres"] for row in rows] == everyone
    assert download.value.suggested_filename.startswith("reactivation_")


def test_english_is_the_other_choice(segments_dashboard, published_world, page):
    _, _, analytics = published_world
    (deliveries,) = sql(
        analytics,
        "select (select count(*) from exports.csv_trigger_log) + (select count(*) from exports.spotler_export_log)",
    )
    open_page(page, segments_dashboard + "segments")
    page.get_by_test_id("stSelectbox").filter(has_text="Taal · Language").click()
    page.get_by_role("option", name="English").click()
    settle(page)
    wait_for_metrics(page, {"Deliveries": number(deliveries)})
    assert "What goes to the mail platforms?" in visible_text(page)
    # the Dutch run's table may still be attached until the rerun redraws it
    headers = page.get_by_test_id("stDataFrame").first.locator('[role="columnheader"]')
    expect(headers.filter(has_text="Outcome")).to_have_count(1, timeout=30_000)
    header, rows = table_of(page, 0)
    outcomes = {row[header.index("Outcome")] for row in rows}
    assert outcomes <= {"uploaded", "done", "done (processed)", "failed (rejected)", "interrupted"} and outcomes
