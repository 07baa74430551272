"""The Segments and exports page in a real browser."""

from __future__ import annotations

import pytest

from mail_warehouse.dashboard.data import number
from tests.dashboard.conftest import open_page, sql, wait_for_metrics


@pytest.mark.slow
def test_segments_headline_equals_sql_on_the_export_logs(dashboard, published_world, page):
    url, _ = dashboard
    _, _, analytics = published_world
    open_page(page, url + "segments")
    csv_files, csv_sent, csv_left_out = sql(
        analytics, "select count(*), sum(rows), sum(excluded_by_consent) from exports.csv_trigger_log"
    )
    spotler_runs, spotler_sent, spotler_left_out = sql(
        analytics,
        """
        select count(*), coalesce(sum(triggered), 0), coalesce(sum(excluded_by_consent), 0)
        from exports.spotler_export_log where target_kind = 'campaign_trigger'""",
    )
    in_segment = sql(analytics, "select count(*) from segments.reactivation")[0]
    assert csv_files >= 1 and spotler_runs >= 1, "the export went to both targets of the demo company"
    wait_for_metrics(
        page,
        {
            "Exports": number(csv_files + spotler_runs),
            "In segments now": number(in_segment),
            "Contacts sent": number(csv_sent + spotler_sent),
            "Left out (consent)": number(csv_left_out + spotler_left_out),
        },
    )
