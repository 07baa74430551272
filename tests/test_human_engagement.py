"""Machines' opens and clicks told apart from people's, measured against the generator's truth.

Three worlds with other shares of Apple Mail users and scanned addresses, other delays of the proxy and the
scanners, and other companies (Clang alone; Clang with Directo; both platforms with Directo), each loaded by
the real loaders from the stand-ins and built by `warehouse build`: the share of each class of event flagged,
the human counts per mailing, and the re-activation segment against the truly inactive. A fourth world's
Clang export carries a machine flag of its own, which the warehouse takes over its rules.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mail_warehouse_demo.engagement_truth import measure
from mail_warehouse_demo.standins.stack import StandinStack
from mail_warehouse_demo.world import WorldSpec, simulate
from mail_warehouse_demo.writers import CLANG_ACTIVITY_HEADER, write_world
from tests.conftest import company_environment, query_warehouse, warehouse_cli

pytestmark = pytest.mark.slow

END = dt.date(2026, 11, 23)
WORLDS = {
    # as the world: a Clang-only company, 42 % Apple Mail, 5 % scanned corporate addresses
    "clang_alone": (
        WorldSpec(
            contacts=1500,
            mailings=30,
            days=150,
            seed=101,
            end=END,
            clang_share=1.0,
            apple_mail_share=0.42,
            scanned_share=0.05,
        ),
        ("clang",),
    ),
    # slow machines: the proxy hours after delivery, the scanners minutes after the send
    "slow_machines": (
        WorldSpec(
            contacts=1500,
            mailings=24,
            days=150,
            seed=202,
            end=END,
            clang_share=1.0,
            apple_mail_share=0.25,
            scanned_share=0.10,
            proxy_delay_minutes=180,
            scanner_delay_seconds=120,
        ),
        ("clang", "directo"),
    ),
    # fast machines, most people on Apple Mail, both platforms
    "both_platforms": (
        WorldSpec(
            contacts=1500,
            mailings=36,
            days=150,
            seed=303,
            end=END,
            clang_share=0.5,
            apple_mail_share=0.55,
            scanned_share=0.03,
            proxy_delay_minutes=5,
            scanner_delay_seconds=5,
        ),
        ("clang", "spotler", "directo"),
    ),
}


def _build(world_dir: Path, sources: tuple[str, ...], folder: Path, extra_env: dict | None = None) -> Path:
    """Load `sources` with their settings only (as such a company would) and build as of END."""
    with StandinStack(world_dir, folder / "standins") as stack:
        env = company_environment(stack, sources)
        database = folder / "warehouse.duckdb"
        env.update(
            {
                "WAREHOUSE_PATH": str(database),
                "DBT_TARGET_PATH": str(folder / "target"),
                "SOURCES__SPOTLER__START_DATE": "2025-01-01",
                **(extra_env or {}),
            }
        )
        for source in sources:
            result = warehouse_cli("load", source, env=env)
            assert result.returncode == 0, result.stderr[-4000:]
        result = warehouse_cli("build", "--", "--vars", json.dumps({"as_of_date": END.isoformat()}), env=env)
        assert result.returncode == 0, result.stdout[-6000:]
    return database


@pytest.fixture(scope="module", params=sorted(WORLDS))
def measured(request, tmp_path_factory):
    spec, sources = WORLDS[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    write_world(simulate(spec), folder / "world")
    database = _build(folder / "world", sources, folder)
    figures = measure(database, folder / "world", END.isoformat())
    print(request.param, json.dumps(figures))
    return figures


def test_link_scanners_clicks_are_flagged_and_peoples_are_not(measured):
    flagged = measured["flagged_share"]
    assert flagged["click by link_scanner"] >= 0.90
    assert flagged["click by person"] <= 0.05
    assert flagged["open by link_scanner"] >= 0.90


def test_the_privacy_proxys_opens_are_flagged_and_peoples_mostly_not(measured):
    flagged = measured["flagged_share"]
    assert flagged["open by apple_privacy_proxy"] >= 0.90
    # a person who opens nearly every mail soon after it arrives looks like the proxy: few do
    assert flagged["open by person"] <= 0.05


def test_human_counts_per_mailing_match_the_truth(measured):
    assert measured["mailings_human_clicks_within_10pct"] >= 0.90
    assert measured["mailings_human_opens_within_20pct"] >= 0.80


def test_the_reactivation_segment_finds_the_inactive_people(measured):
    assert measured["truly_inactive"] >= 50, "the world has too few inactive people to measure"
    assert measured["segment_precision"] >= 0.90
    assert measured["segment_recall"] >= 0.85


def test_a_vendor_machine_flag_decides_over_the_rules(tmp_path):
    spec = WorldSpec(
        contacts=300, mailings=8, days=60, seed=404, end=END, clang_share=1.0, apple_mail_share=0.4, scanned_share=0.1
    )
    write_world(simulate(spec), tmp_path / "world", clang_machine_column="Machine generated")
    columns = [*CLANG_ACTIVITY_HEADER, "Machine generated"]
    database = _build(
        tmp_path / "world",
        ("clang",),
        tmp_path,
        {
            "SOURCES__CLANG__ACTIVITY_COLUMNS": json.dumps(columns),
            "SOURCES__CLANG__MACHINE_FLAG_COLUMN": "Machine generated",
        },
    )
    figures = measure(database, tmp_path / "world", END.isoformat())
    flagged = figures["flagged_share"]
    assert flagged["click by link_scanner"] == flagged["open by apple_privacy_proxy"] == 1.0
    assert flagged["click by person"] == flagged["open by person"] == 0.0
    reasons = query_warehouse(
        database,
        """
        select machine_reason, count(*) from marts.customer_activity
        where event_type in ('open', 'click') and is_machine group by all""",
    )
    assert [reason for reason, _ in reasons] == ["vendor_flag"]
