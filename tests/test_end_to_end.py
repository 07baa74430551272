"""The whole way: demo world -> stand-ins -> the real loaders -> dbt build -> marts, checked against the truth
the demo generator knows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loaders import settings
from tests.conftest import warehouse_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(built_warehouse):
    env, database, _ = built_warehouse
    return env, database


def _query(database: Path, sql: str, world_dir: Path | None = None):
    con = settings.connect(database, read_only=True)
    try:
        if world_dir is not None:
            con.execute(f"attach '{world_dir / 'world.duckdb'}' as world (read_only)")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_every_mailing_has_the_counts_the_generator_knows(built, world_dir):
    _, database = built
    rows = _query(database, """
        select t.system, t.source_id, t.sent, s.sent_count, t.unique_opens, s.unique_open_count,
               t.hard_bounces, s.hard_bounce_count, t.soft_bounces, s.soft_bounce_count
        from world.truth_mailing_counts t
        left join marts.mailing_statistics s
            on s.mailing_key = case when t.system = 'clang' then 'clang:' else 'spotler:' end || t.source_id
    """, world_dir)
    assert len(rows) > 10
    for system, mailing, *pairs in rows:
        assert pairs[0::2] == pairs[1::2], (system, mailing, pairs)


def test_rates_are_shares_and_spotler_agrees_with_its_api(built):
    _, database = built
    (bad,) = _query(database, """select count(*) from marts.mailing_statistics
                                 where open_rate > 1 or click_rate > 1 or delivery_rate > 1""")[0]
    assert bad == 0
    differences = _query(database, """select max(abs(unique_open_count_difference)), max(abs(unique_click_count_difference))
                                      from marts.mailing_statistics where source_system = 'spotler'""")[0]
    assert differences == (0, 0)


def test_one_contact_per_address_with_every_source_id(built, world_dir):
    _, database = built
    (addresses,) = _query(database, "select count(distinct lower(trim(email))) from world.customers", world_dir)[0]
    contacts, shared, with_clang, with_spotler = _query(database, """
        select count(*), count(*) filter (where is_shared_email), count(clang_customer_id), count(spotler_external_id)
        from marts.contacts""")[0]
    assert contacts == addresses and shared > 0 and with_clang > 0 and with_spotler > 0


def test_consent_follows_the_latest_statement(built, world_dir):
    _, database = built
    # people who unsubscribed and later opted in again in Directo are opted in; unsubscribers who did not are not
    rows = _query(database, """
        select p.reoptin_at is not null and p.reoptin_at > p.unsubscribed_at as came_back, c.is_opted_in, c.consent_source
        from world.people p join marts.contacts c on c.email = p.email
        where p.unsubscribed_at is not null and not p.opted_out
    """, world_dir)
    assert rows
    for came_back, opted_in, source in rows:
        assert opted_in == came_back, (came_back, opted_in, source)


def test_reactivation_candidates_meet_every_rule(built):
    _, database = built
    rows = _query(database, """
        select r.days_inactive, c.is_opted_in, c.is_hard_bounced, c.has_complained, c.is_closed_in_directo
        from segments.reactivation r join marts.contacts c using (contact_key)""")
    assert rows
    assert all(days >= 90 and opted and not hard and not complained and not closed
               for days, opted, hard, complained, closed in rows)


def test_incremental_and_full_refresh_give_the_same_rows(built, tmp_path):
    env, database = built
    digest = "select count(*), sum(hash(event_id, event_type, event_at, email, mailing_key)) from marts.customer_activity"
    result = warehouse_cli("build", "--", "--select", "customer_activity", "--vars", "{as_of_date: '2026-11-23'}", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    incremental = _query(database, digest)
    result = warehouse_cli("build", "--", "--select", "customer_activity", "--full-refresh", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert _query(database, digest) == incremental


def test_dbt_docs_generate(built, tmp_path):
    env, _ = built
    dbt = Path(sys.executable).with_name("dbt")
    result = subprocess.run([str(dbt), "docs", "generate", "--profiles-dir", str(settings.PROJECT_DIR),
                             "--project-dir", str(settings.PROJECT_DIR), "--target-path", str(tmp_path / "docs")],
                            capture_output=True, text=True, env=env, cwd=settings.PROJECT_DIR, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "docs" / "catalog.json").exists()
