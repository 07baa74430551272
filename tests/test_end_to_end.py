"""The whole way: demo world -> stand-ins -> the real loaders -> dbt build -> marts, checked against the truth
the demo generator knows."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mail_warehouse import settings
from tests.conftest import query_warehouse, warehouse_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(built_warehouse):
    env, database, _ = built_warehouse
    return env, database


def test_every_mailing_has_the_counts_the_generator_knows(built, world_dir):
    _, database = built
    rows = query_warehouse(
        database,
        """
        select t.system, t.source_id, t.sent, s.sent_count, t.unique_opens, s.unique_open_count,
               t.hard_bounces, s.hard_bounce_count, t.soft_bounces, s.soft_bounce_count
        from world.truth_mailing_counts t
        left join marts.mailing_statistics s
            on s.mailing_key = case when t.system = 'clang' then 'clang:' else 'spotler:' end || t.source_id
    """,
        world_dir,
    )
    assert len(rows) > 10
    for system, mailing, *pairs in rows:
        assert pairs[0::2] == pairs[1::2], (system, mailing, pairs)


def test_rates_are_shares_and_spotler_agrees_with_its_api(built):
    _, database = built
    (bad,) = query_warehouse(
        database,
        """select count(*) from marts.mailing_statistics
                                 where open_rate > 1 or click_rate > 1 or delivery_rate > 1""",
    )[0]
    assert bad == 0
    differences = query_warehouse(
        database,
        """select max(abs(unique_open_count_difference)), max(abs(unique_click_count_difference))
                                      from marts.mailing_statistics where source_system = 'spotler'""",
    )[0]
    assert differences == (0, 0)


def test_one_contact_per_address_with_every_source_id(built, world_dir):
    _, database = built
    (addresses,) = query_warehouse(
        database, "select count(distinct lower(trim(email))) from world.customers", world_dir
    )[0]
    contacts, shared, with_clang, with_spotler = query_warehouse(
        database,
        """
        select count(*), count(*) filter (where is_shared_email), count(clang_customer_id), count(spotler_external_id)
        from marts.contacts""",
    )[0]
    assert contacts == addresses and shared > 0 and with_clang > 0 and with_spotler > 0


def test_consent_follows_the_latest_statement(built, world_dir):
    _, database = built
    # people who unsubscribed and later opted in again in Directo are opted in; unsubscribers who did not are not
    rows = query_warehouse(
        database,
        """
        select p.reoptin_at is not null and p.reoptin_at > p.unsubscribed_at as came_back,
            c.is_opted_in, c.consent_source
        from world.people p join marts.contacts c on c.email = p.email
        where p.unsubscribed_at is not null and not p.opted_out
    """,
        world_dir,
    )
    assert rows
    for came_back, opted_in, source in rows:
        assert opted_in == came_back, (came_back, opted_in, source)


def test_reactivation_candidates_meet_every_rule(built):
    _, database = built
    rows = query_warehouse(
        database,
        """
        select r.days_inactive, c.is_mailable, c.not_mailable_reason, c.is_opted_in, c.is_hard_bounced,
               c.has_complained, c.is_unsubscribed, c.is_closed_in_directo, c.is_deleted_in_directo
        from segments.reactivation r join marts.contacts c using (contact_key)""",
    )
    assert rows
    assert all(
        days >= 90 and mailable and reason is None and opted and not any(blocks)
        for days, mailable, reason, opted, *blocks in rows
    )


def test_mailable_means_every_rule_and_the_reason_names_the_first_that_fails(built):
    _, database = built
    rows = query_warehouse(
        database,
        """
        select not_mailable_reason, count(*),
               count(*) filter (where is_mailable <> (is_opted_in and not is_hard_bounced and not has_complained
                                                      and not is_unsubscribed and not is_closed_in_directo
                                                      and not is_deleted_in_directo))
        from marts.contacts group by all""",
    )
    reasons = {reason for reason, _, _ in rows}
    assert None in reasons and {"hard_bounced", "unsubscribed", "not_opted_in"} <= reasons, rows
    assert all(disagreeing == 0 for _, _, disagreeing in rows), rows


def test_an_unsubscribe_click_is_no_engagement(built):
    _, database = built
    clicks_on_unsubscribe_links, unsubscribes_with_link = query_warehouse(
        database,
        """
        select count(*) filter (where event_type = 'click' and link_type = 'unsubscribe'),
               count(*) filter (where event_type = 'unsubscribe' and link_type = 'unsubscribe')
        from marts.customer_activity""",
    )[0]
    assert clicks_on_unsubscribe_links == 0 and unsubscribes_with_link > 0
    (engaged_by_unsubscribing,) = query_warehouse(
        database,
        """
        select count(*) from marts.contacts c
        where c.last_clicked_at is not null and not exists (
            select 1 from marts.customer_activity a where a.email = c.email and a.event_type = 'click')""",
    )[0]
    assert engaged_by_unsubscribing == 0


# Where the last days of each source sit in the raw tables, to hold them back and bring them in later.
HELD_BACK_CLANG_FILES = 6
HELD_BACK_SPOTLER = {
    "recipients": "sent_at",
    "opens": "opened_at",
    "clicks": "clicked_at",
    "bounces": "bounced_at",
    "campaign_recipients": "sent_at",
    "campaign_opens": "opened_at",
    "campaign_clicks": "clicked_at",
    "campaign_bounces": "bounced_at",
}
SPOTLER_HELD_FROM = "2026-11-20"
INCREMENTAL_TABLES = [
    "marts.customer_activity",
    "marts.contact_mail_history",
    "marts.mailing_link_clicks",
    "marts.mailing_statistics",
    "marts.contacts",
    "segments.reactivation",
    "intermediate.int_contact_addresses_mapped",
    "intermediate.int_mailing_event_counts",
    "intermediate.int_contact_event_summary",
    "intermediate.int_mailing_person_events",
    "intermediate.int_contact_engagement_window",
]
# The times of a build, which differ between the two by nature: when a row was written, when its event was
# first written, and the window an engagement count was made for (a count not made again still holds).
BUILD_TIME_COLUMNS = ("built_at", "first_built_at", "window_start")


def hold_back_the_last_days(database: Path) -> None:
    """Move the newest Clang files' rows and Spotler's events from 20 November on into schema held_back."""
    con = settings.connect(database)
    try:
        con.execute("create schema held_back")
        # the newest days' files (one load may stamp every file with the same time: their names hold the day)
        con.execute(f"""create table held_back.clang_files as
                        select source_file from raw_clang.loaded_files where file_kind = 'activity'
                        order by loaded_at desc, source_file desc limit {HELD_BACK_CLANG_FILES}""")
        con.execute("""create table held_back.activities as select * from raw_clang.activities
                       where source_file in (select source_file from held_back.clang_files)""")
        con.execute(
            "delete from raw_clang.activities where source_file in (select source_file from held_back.clang_files)"
        )
        for table, column in HELD_BACK_SPOTLER.items():
            con.execute(f"""create table held_back.{table} as select * from raw_spotler.{table}
                            where {column} >= '{SPOTLER_HELD_FROM}'""")
            con.execute(f"delete from raw_spotler.{table} where {column} >= '{SPOTLER_HELD_FROM}'")
        held = con.execute("select count(*) from held_back.activities").fetchone()[0]
        assert held > 0
    finally:
        con.close()


def bring_in_the_held_back_days(database: Path) -> None:
    con = settings.connect(database)
    try:
        # as a later load would: the held-back files arrive now
        con.execute(
            "insert into raw_clang.activities select * replace (now() as file_loaded_at) from held_back.activities"
        )
        con.execute("""update raw_clang.loaded_files set loaded_at = now()
                       where source_file in (select source_file from held_back.clang_files)""")
        for table in HELD_BACK_SPOTLER:
            con.execute(f"insert into raw_spotler.{table} select * from held_back.{table}")
        con.execute("drop schema held_back cascade")
    finally:
        con.close()


def _differences(incremental: Path, full: Path, table: str) -> tuple[int, int, int]:
    """Rows only in one or the other build (the times of the builds aside), and the row count."""
    con = settings.connect(incremental, read_only=True)
    try:
        con.execute(f"attach '{full}' as full_build (read_only)")
        columns = [
            name
            for (name,) in con.execute(
                "select column_name from information_schema.columns where table_catalog = current_database() "
                f"and table_schema = ? and table_name = ? and column_name not in {BUILD_TIME_COLUMNS} "
                "order by ordinal_position",
                table.split("."),
            ).fetchall()
        ]
        listed = ", ".join(f'"{name}"' for name in columns)
        only_incremental = con.execute(
            f"select count(*) from (select {listed} from {table} except all select {listed} from full_build.{table})"
        ).fetchone()[0]
        only_full = con.execute(
            f"select count(*) from (select {listed} from full_build.{table} except all select {listed} from {table})"
        ).fetchone()[0]
        rows = con.execute(f"select count(*) from {table}").fetchone()[0]
        return only_incremental, only_full, rows
    finally:
        con.close()


def test_an_incremental_build_after_new_days_equals_a_full_refresh(warehouse_copy, tmp_path):
    """Build without the last days, bring them in, build incrementally (a later as_of), and compare every
    incremental table and everything built on them with a full refresh of the same data."""
    env, database, _ = warehouse_copy
    hold_back_the_last_days(database)
    result = warehouse_cli("build", "--", "--full-refresh", "--vars", "{as_of_date: '2026-11-20'}", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    before = query_warehouse(database, "select count(*) from marts.customer_activity")[0][0]
    bring_in_the_held_back_days(database)
    result = warehouse_cli("build", "--", "--vars", "{as_of_date: '2026-11-23'}", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    written = query_warehouse(
        database,
        """select count(*) from marts.customer_activity
                                  where built_at = (select max(built_at) from marts.customer_activity)""",
    )[0][0]
    after = query_warehouse(database, "select count(*) from marts.customer_activity")[0][0]
    assert after > before and written < after / 4, (before, written, after)

    full = tmp_path / "full.duckdb"
    shutil.copyfile(database, full)
    result = warehouse_cli(
        "build",
        "--",
        "--full-refresh",
        "--vars",
        "{as_of_date: '2026-11-23'}",
        env={**env, "WAREHOUSE_PATH": str(full)},
    )
    assert result.returncode == 0, result.stdout[-3000:]
    for table in INCREMENTAL_TABLES:
        only_incremental, only_full, rows = _differences(database, full, table)
        assert rows > 0 and (only_incremental, only_full) == (0, 0), (table, only_incremental, only_full, rows)


def deliver_a_file_again_with_other_content(database: Path) -> str:
    """As the Clang loader does for a file delivered again with other content: the file's rows replaced by the
    new version's (here: its opens turned into clicks), with a new load time."""
    con = settings.connect(database)
    try:
        (source_file,) = con.execute("""select source_file from raw_clang.activities
                                        where activiteit = 'OPEN'
                                        group by 1 order by count(*) desc limit 1""").fetchone()
        con.execute(
            """update raw_clang.activities
                       set activiteit = case activiteit when 'OPEN' then 'CLICK' else activiteit end,
                           file_loaded_at = now()
                       where source_file = $file""",
            {"file": source_file},
        )
        con.execute(
            "update raw_clang.loaded_files set loaded_at = now() where source_file = $file", {"file": source_file}
        )
        return source_file
    finally:
        con.close()


def test_a_file_delivered_again_with_other_content_is_counted_again(warehouse_copy, tmp_path):
    """The incremental models add new events to what they hold; the events of a Clang file delivered again
    replace an earlier version, so the keys they touch are counted again from all their events: the same
    answer as a full refresh."""
    env, database, _ = warehouse_copy
    result = warehouse_cli("build", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    source_file = deliver_a_file_again_with_other_content(database)
    result = warehouse_cli("build", env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    rewritten = query_warehouse(
        database,
        f"""select count(*) filter (where first_built_at < built_at), count(*)
                                              from marts.customer_activity
                                              where source_file = {settings.sql_literal(source_file)}""",
    )
    assert rewritten[0][0] == rewritten[0][1] > 0, rewritten

    full = tmp_path / "full.duckdb"
    shutil.copyfile(database, full)
    result = warehouse_cli("build", "--", "--full-refresh", env={**env, "WAREHOUSE_PATH": str(full)})
    assert result.returncode == 0, result.stdout[-3000:]
    for table in INCREMENTAL_TABLES:
        only_incremental, only_full, rows = _differences(database, full, table)
        assert rows > 0 and (only_incremental, only_full) == (0, 0), (table, only_incremental, only_full, rows)


def test_dbt_docs_generate(built, tmp_path):
    env, _ = built
    dbt = Path(sys.executable).with_name("dbt")
    result = subprocess.run(
        [
            str(dbt),
            "docs",
            "generate",
            "--profiles-dir",
            str(settings.PROJECT_DIR),
            "--project-dir",
            str(settings.PROJECT_DIR),
            "--target-path",
            str(tmp_path / "docs"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=settings.PROJECT_DIR,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "docs" / "catalog.json").exists()
