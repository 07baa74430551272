"""mailing_rate_projections on the test world: projected on a mailing's first day against how it settled.

A build with an earlier as_of_date replays that day (responses after it are not seen yet), so each mailing
sent at least `settle_days` before the world's end is projected on the day it was sent and compared with
its settled rates in mailing_statistics (people's own: the projections count people).
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import query_warehouse as rows
from tests.conftest import warehouse_cli

pytestmark = pytest.mark.slow

WORLD_END = dt.date(2026, 11, 23)  # the as_of_date of built_warehouse
SETTLE_DAYS = 30
MIN_REFERENCES = 3
# Stated tolerances on the first day (about 10 to 20 hours after the send), in rate points: the demo
# world's mailings of 600 contacts differ by chance alone by about a point in what they still gain.
OPEN_RATE_TOLERANCE = 0.03
CLICK_RATE_TOLERANCE = 0.015


def test_a_first_day_projection_lands_near_the_settled_rate_and_beats_the_rate_so_far(warehouse_copy):
    env, database, _ = warehouse_copy
    send_days = [
        day
        for (day,) in rows(
            database,
            """
        select distinct cast(sent_at as date) as day from marts.mailings m
        where not is_campaign_mailing
          and cast(sent_at as date) <= $last_settled
          and (select count(*) from marts.mailings r where not r.is_campaign_mailing
               and r.sent_at < m.sent_at - to_days($settle)) >= $min_references
        order by day desc limit 3""",
            params={
                "last_settled": WORLD_END - dt.timedelta(days=SETTLE_DAYS),
                "settle": SETTLE_DAYS,
                "min_references": MIN_REFERENCES,
            },
        )
    ]
    assert len(send_days) == 3, "the test world has too few mailings for a replay"

    compared = []
    for day in send_days:
        built = warehouse_cli(
            "build", "--", "--select", "mailing_rate_projections", "--vars", f"{{as_of_date: '{day}'}}", env=env
        )
        assert built.returncode == 0, built.stdout[-3000:]
        compared += rows(
            database,
            """
            select p.mailing_key, p.hours_since_send, p.reference_mailing_count,
                   p.open_rate, p.projected_open_rate, s.human_open_rate,
                   p.click_rate, p.projected_click_rate, s.human_click_rate
            from marts.mailing_rate_projections p
            inner join marts.mailing_statistics s using (mailing_key)
            where cast(p.sent_at as date) = $day""",
            params={"day": day},
        )
    assert len(compared) >= 3

    for (
        key,
        hours,
        references,
        open_so_far,
        open_projected,
        open_settled,
        _click_so_far,
        click_projected,
        click_settled,
    ) in compared:
        assert hours < 24 and references >= MIN_REFERENCES, key
        assert open_so_far < open_settled, f"{key}: nothing left to project on its first day"
        assert abs(open_projected - open_settled) <= OPEN_RATE_TOLERANCE, (key, open_projected, open_settled)
        assert abs(click_projected - click_settled) <= CLICK_RATE_TOLERANCE, (key, click_projected, click_settled)
    # better than taking the first day's rate for the final one
    projection_error = sum(abs(row[4] - row[5]) for row in compared)
    so_far_error = sum(abs(row[3] - row[5]) for row in compared)
    assert projection_error < so_far_error / 2
