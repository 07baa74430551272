"""`warehouse load spotler` against the Spotler Mail+ stand-in."""

from __future__ import annotations

import datetime as dt
import functools
import os
import time

import dlt
import pytest

from mail_warehouse import settings
from mail_warehouse.loads import load_spotler
from mail_warehouse_demo.standins import spotler as spotler_standin_module
from mail_warehouse_demo.standins.http import Fault
from mail_warehouse_demo.standins.spotler import DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET
from mail_warehouse_sources import spotler
from tests.conftest import query_warehouse, query_world, warehouse_cli


def configure(monkeypatch, server) -> None:
    """[sources.spotler] pointed at a stand-in."""
    monkeypatch.setenv("SOURCES__SPOTLER__BASE_URL", f"{server.url}/integrationservice-1.1.0")
    monkeypatch.setenv("SOURCES__SPOTLER__CONSUMER_KEY", DEMO_CONSUMER_KEY)
    monkeypatch.setenv("SOURCES__SPOTLER__CONSUMER_SECRET", DEMO_CONSUMER_SECRET)
    monkeypatch.setenv("SOURCES__SPOTLER__START_DATE", "2025-01-01")
    monkeypatch.setenv("SOURCES__SPOTLER__RETRY_DELAY_SECONDS", "0.01")


@pytest.fixture
def spotler_env(spotler_standin, tmp_path, monkeypatch):
    server, api = spotler_standin
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    configure(monkeypatch, server)
    return server, api


def sync(api, **kwargs):
    """One run with the loader's clock on the stand-in's."""
    return load_spotler(stream=open(os.devnull, "w"), now=api.now, **kwargs)


warehouse = functools.partial(query_warehouse, None)  # the warehouse WAREHOUSE_PATH names


def truth(world_dir, system, event_types):
    return query_world(
        world_dir,
        f"""select count(*) from events e join mailings m using (mailing_index)
                               where m.system = '{system}' and e.event_type in ({event_types})""",
    )[0][0]


def test_first_sync_loads_every_kind_of_data(spotler_env, world_dir):
    _server, api = spotler_env
    summary = sync(api)
    assert not summary.budget_reached
    regular = query_world(world_dir, "select count(*) from mailings where system = 'spotler'")[0][0]
    assert warehouse("select count(*) from raw_spotler.mailings")[0][0] == regular == summary.new_mailings
    assert warehouse("select count(*) from raw_spotler.recipients")[0][0] == truth(world_dir, "spotler", "'sent'")
    assert warehouse("select count(*) from raw_spotler.opens")[0][0] == truth(world_dir, "spotler", "'open'")
    assert warehouse("select count(*) from raw_spotler.bounces")[0][0] == truth(
        world_dir, "spotler", "'hard_bounce', 'soft_bounce'"
    )
    assert warehouse("select count(*) from raw_spotler.clicks")[0][0] == truth(world_dir, "spotler", "'click'")
    for table, kinds in (
        ("campaign_recipients", "'sent'"),
        ("campaign_opens", "'open'"),
        ("campaign_clicks", "'click'"),
        ("campaign_bounces", "'hard_bounce', 'soft_bounce'"),
    ):
        assert warehouse(f"select count(*) from raw_spotler.{table}")[0][0] == truth(
            world_dir, "spotler_campaign", kinds
        ), table
    assert warehouse("select count(*) from raw_spotler.mailing_statistics_snapshots")[0][0] == regular
    assert (
        warehouse("select count(*) from raw_spotler.form_results")[0][0]
        == query_world(world_dir, "select count(*) from form_results")[0][0]
    )
    assert warehouse("select count(*) from raw_spotler.mailing_links where mailing_kind = 'campaign_mailing'")[0][0] > 0
    sender, subject = warehouse("select sender, subject from raw_spotler.mailings where subject is not null limit 1")[0]
    assert sender and subject
    # conversion value stays in cents, ids stay strings, times are UTC timestamps
    types = dict(
        warehouse(
            "select column_name, data_type from information_schema.columns where table_schema = 'raw_spotler' "
            "and table_name = 'mailing_statistics_snapshots'"
        )
    )
    assert types["conversion_value"] == "BIGINT"
    assert (
        dict(
            warehouse(
                "select column_name, data_type from information_schema.columns where table_schema = 'raw_spotler' "
                "and table_name = 'opens'"
            )
        )["opened_at"]
        == "TIMESTAMP WITH TIME ZONE"
    )


def test_a_second_run_with_nothing_new_makes_only_the_settling_calls(spotler_env, world_dir):
    server, api = spotler_env
    sync(api)
    server.reset()
    second = sync(api)
    campaigns = query_world(world_dir, "select count(*) from campaigns")[0][0]
    campaign_mailings = query_world(world_dir, "select count(*) from mailings where system = 'spotler_campaign'")[0][0]
    # mailing list, statistics + clicks per settling mailing, 3 feeds, contacts (one page: nothing changed),
    # campaigns, forms
    expected = 1 + 2 * second.settling + 3 + 1 + (1 + campaigns + 4 * campaign_mailings) + (1 + 4)
    assert server.total_calls() == sum(second.calls.values()) == expected
    assert second.new_mailings == 0 and server.calls["GET /mailing/{encryptedMailingId}"] == 0
    assert warehouse("select count(*) from raw_spotler.opens")[0][0] == truth(world_dir, "spotler", "'open'")


def subscribed_truth(world_dir, now):
    """{directo code: (email, subscribed as of now)} of the people who have joined by now."""
    return {
        code: (email, subscribed)
        for code, email, subscribed in query_world(
            world_dir,
            f"""
        select directo_code, email,
            not opted_out and not (unsubscribed_at <= t and not coalesce(reoptin_at <= t, false))
               is true
        from people, (select timestamptz '{now.isoformat()}' as t) where joined_at <= t""",
        )
    }


def test_contacts_carry_address_and_email_opt_in_and_follow_their_cursor(spotler_env, world_dir, monkeypatch):
    server, api = spotler_env
    final = api.now
    api.now = final - dt.timedelta(days=20)
    monkeypatch.setenv("SOURCES__SPOTLER__PAGE_SIZE", "500")
    first = sync(api)
    expected = subscribed_truth(world_dir, api.now)
    loaded = {
        code: (email, opt_in)
        for code, email, opt_in in warehouse("select external_id, email, email_opt_in from raw_spotler.contacts")
    }
    assert loaded == expected and any(not opt_in for _, opt_in in loaded.values())
    # the call cost: one call per page of contacts
    assert (
        first.calls["GET /contact/updates/list"]
        == server.calls["GET /contact/updates/list"]
        == -(-len(expected) // 500)
    )
    assert warehouse("select count(*) from raw_spotler.contacts where properties::json->>'email' = email")[0][0] == len(
        expected
    )

    # twenty days later only who changed since the cursor (the latest lastChanged loaded) is asked for
    cursor = warehouse("select max(last_changed_at) from raw_spotler.contacts")[0][0]
    api.now = final
    server.reset()
    sync(api)
    changed = query_world(
        world_dir,
        f"""select count(*) from people, (select timestamptz '{cursor.isoformat()}' as c,
                                                                        timestamptz '{final.isoformat()}' as t)
        where greatest(case when joined_at <= t then joined_at end,
                       case when unsubscribed_at <= t then unsubscribed_at end,
                       case when reoptin_at <= t then reoptin_at end) >= c""",
    )[0][0]
    assert 0 < changed < len(expected)
    assert server.calls["GET /contact/updates/list"] == -(-changed // 500)
    assert {
        code: (email, opt_in)
        for code, email, opt_in in warehouse("select external_id, email, email_opt_in from raw_spotler.contacts")
    } == subscribed_truth(world_dir, final)


def test_settling_mailings_get_a_snapshot_every_run_and_older_ones_do_not(spotler_env, world_dir):
    _server, api = spotler_env
    last = query_world(
        world_dir,
        "select source_id, sent_at from mailings where system = 'spotler' and mailing_type = 'EMAIL' "
        "order by sent_at desc limit 1",
    )[0]
    api.now = last[1] + dt.timedelta(hours=3)
    sync(api)
    api.now = last[1] + dt.timedelta(days=3)
    sync(api)
    curve = warehouse(
        f"select fetched_at, open_count from raw_spotler.mailing_statistics_snapshots "
        f"where mailing_id = '{last[0]}' order by fetched_at"
    )
    assert len(curve) == 2 and curve[0][1] < curve[1][1]
    old = query_world(
        world_dir,
        f"select source_id from mailings where system = 'spotler' and sent_at < "
        f"timestamptz '{(api.now - dt.timedelta(days=40)).isoformat()}' limit 1",
    )[0][0]
    assert warehouse(f"select count(*) from raw_spotler.mailing_statistics_snapshots where mailing_id = '{old}'") == [
        (1,)
    ]


def test_new_events_arrive_on_the_next_run(spotler_env, world_dir):
    server, api = spotler_env
    final = api.now
    api.now = final - dt.timedelta(days=10)
    sync(api)
    before = warehouse("select count(*) from raw_spotler.opens")[0][0]
    api.now = final
    server.reset()
    sync(api)
    assert warehouse("select count(*) from raw_spotler.opens")[0][0] == truth(world_dir, "spotler", "'open'") > before
    assert (
        warehouse("select count(*), count(distinct interaction_id) from raw_spotler.recipients")[0]
        == (truth(world_dir, "spotler", "'sent'"),) * 2
    )


@pytest.mark.parametrize("page_size", ["7", "10000"])
def test_paging_is_complete_at_any_page_size(spotler_env, world_dir, monkeypatch, page_size):
    server, api = spotler_env
    monkeypatch.setenv("SOURCES__SPOTLER__PAGE_SIZE", page_size)
    sync(api)
    assert warehouse("select count(distinct interaction_id) from raw_spotler.opens")[0][0] == truth(
        world_dir, "spotler", "'open'"
    )
    pages = server.calls["GET /mailing-interaction/opened"]
    opens = truth(world_dir, "spotler", "'open'")
    assert pages == max(1, -(-opens // int(page_size)))


def test_a_relative_next_link_is_followed_without_doubling_the_base_path(spotler_env, world_dir, monkeypatch):
    server, api = spotler_env
    api.relative_next = True
    monkeypatch.setenv("SOURCES__SPOTLER__PAGE_SIZE", "50")
    sync(api)
    opens = truth(world_dir, "spotler", "'open'")
    assert server.calls["GET /mailing-interaction/opened"] == -(-opens // 50) > 1
    assert warehouse("select count(*) from raw_spotler.opens")[0][0] == opens


def test_a_page_ending_exactly_at_the_last_record_stops_there(spotler_env, world_dir, monkeypatch):
    server, api = spotler_env
    bounces = truth(world_dir, "spotler", "'hard_bounce', 'soft_bounce'")
    monkeypatch.setenv("SOURCES__SPOTLER__PAGE_SIZE", str(bounces))
    sync(api)
    assert server.calls["GET /mailing-interaction/bounced"] == 1
    assert warehouse("select count(*) from raw_spotler.bounces")[0][0] == bounces


def test_429_honours_retry_after_and_5xx_timeouts_and_cut_bodies_are_retried(spotler_env, world_dir, monkeypatch):
    server, api = spotler_env
    monkeypatch.setenv("SOURCES__SPOTLER__TIMEOUT_SECONDS", "1")
    server.inject(
        Fault("status", path="/campaign/list", status=429, retry_after=1),
        Fault("status", path="/form/list", status=503, times=2),
        Fault("slow", path="/mailing-interaction/bounced", delay=2.5),
        Fault("cutoff", path="/mailing-interaction/opened"),
    )
    started = time.monotonic()
    sync(api)
    assert time.monotonic() - started >= 1.0
    assert server.calls["GET /campaign/list"] == 2 and server.calls["GET /form/list"] == 3
    assert warehouse("select count(*) from raw_spotler.opens")[0][0] == truth(world_dir, "spotler", "'open'")
    assert warehouse("select count(*) from raw_spotler.bounces")[0][0] == truth(
        world_dir, "spotler", "'hard_bounce', 'soft_bounce'"
    )


def test_a_persistent_failure_names_the_endpoint_and_leaves_state_intact(spotler_env, world_dir, monkeypatch):
    server, api = spotler_env
    monkeypatch.setenv("SOURCES__SPOTLER__MAX_ATTEMPTS", "3")
    server.inject(Fault("status", path="/form/list", status=500, times=-1))
    with pytest.raises(spotler.SpotlerError, match=r"GET /form/list: failed after 3 attempts"):
        sync(api)
    assert not settings.warehouse_path().exists() or warehouse(
        "select count(*) from information_schema.tables where table_schema = 'raw_spotler' and table_name = 'opens'"
    ) == [(0,)]
    server.reset()
    first = sync(api)
    assert first.new_mailings == query_world(world_dir, "select count(*) from mailings where system = 'spotler'")[0][0]


def test_bad_credentials_fail_at_once_naming_the_setting_not_the_secret(spotler_env, monkeypatch):
    server, _api = spotler_env
    monkeypatch.setenv("SOURCES__SPOTLER__CONSUMER_SECRET", "totally-wrong-secret")
    result = warehouse_cli("load", "spotler", timeout=300)
    assert result.returncode == 1
    assert "SOURCES__SPOTLER__CONSUMER_SECRET" in result.stderr and "HTTP 401" in result.stderr
    assert "totally-wrong-secret" not in result.stdout + result.stderr
    assert server.total_calls() == 1


def test_the_call_budget_stops_cleanly_and_the_next_run_carries_on(spotler_env, world_dir, monkeypatch):
    _server, api = spotler_env
    monkeypatch.setenv("SOURCES__SPOTLER__MAX_CALLS_PER_RUN", "25")
    monkeypatch.setenv("SOURCES__SPOTLER__PAGE_SIZE", "500")
    runs = 0
    while True:
        summary = sync(api)
        runs += 1
        assert sum(summary.calls.values()) <= 25
        if not summary.budget_reached:
            break
        assert runs < 40
    assert runs > 1
    for table, system, kinds in (
        ("opens", "spotler", "'open'"),
        ("recipients", "spotler", "'sent'"),
        ("clicks", "spotler", "'click'"),
        ("campaign_opens", "spotler_campaign", "'open'"),
    ):
        assert warehouse(f"select count(*) from raw_spotler.{table}")[0][0] == truth(world_dir, system, kinds), table
    assert (
        warehouse("select count(*) from raw_spotler.mailings")[0][0]
        == query_world(world_dir, "select count(*) from mailings where system = 'spotler'")[0][0]
    )


def test_contact_histories_on_demand(spotler_env, world_dir, tmp_path):
    server, api = spotler_env
    ids = [
        r[0]
        for r in query_world(
            world_dir,
            """select p.directo_code from sends s join people p using (person_id)
                                             join mailings m using (mailing_index) where m.system = 'spotler'
                                             group by 1 order by 1 limit 3""",
        )
    ]
    listing = tmp_path / "contacts.txt"
    listing.write_text("\n".join(ids) + "\n")
    sync(api, contacts_file=listing)
    assert server.total_calls() == 3 * len(ids)
    loaded = warehouse(
        "select external_contact_id, count(*) from raw_spotler.contact_mailing_history group by 1 order by 1"
    )
    expected = query_world(
        world_dir,
        f"""select p.directo_code, count(*) from sends s join people p using (person_id)
                                    join mailings m using (mailing_index) where m.system = 'spotler'
                                    and p.directo_code in ({", ".join(repr(i) for i in ids)}) group by 1 order by 1""",
    )
    assert loaded == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2026-11-20T09:00:00+01:00", "2026-11-20T08:00:00+00:00"),
        ("2026-11-20T08:00:00.123Z", "2026-11-20T08:00:00.123000+00:00"),
        ("2026-07-20T10:00:00", "2026-07-20T08:00:00+00:00"),
        (1795000000000, "2026-11-18T11:06:40+00:00"),
        ("1795000000000", "2026-11-18T11:06:40+00:00"),
    ],
)
def test_times_in_every_form_land_as_utc(text, expected):
    assert spotler.parse_time(text).isoformat() == expected


def test_a_wrong_setting_exits_2_naming_it_without_a_traceback(spotler_env, monkeypatch):
    server, _api = spotler_env
    monkeypatch.setenv("SOURCES__SPOTLER__PAGE_SIZE", "0")
    result = warehouse_cli("load", "spotler", timeout=300)
    assert result.returncode == 2 and "SOURCES__SPOTLER__PAGE_SIZE" in result.stderr
    assert "Traceback" not in result.stderr and server.total_calls() == 0


@pytest.mark.parametrize("budget", ["1", "2", "3"])
def test_a_budget_smaller_than_the_calls_every_run_makes_stops_cleanly(spotler_env, monkeypatch, budget):
    server, api = spotler_env
    monkeypatch.setenv("SOURCES__SPOTLER__MAX_CALLS_PER_RUN", budget)
    summary = sync(api)
    assert summary.budget_reached and server.total_calls() == sum(summary.calls.values()) == int(budget)


# --- state per resource: any selection first, then the whole source, loads what one whole run loads -------

SETTLE_DAYS = 30
# They stamp which load wrote a row: they differ between any two pipelines. Every other column is compared:
# the fetch stamps (fetched_at, details_fetched_at) are the sync's clock, and every run here has the same one.
DLT_COLUMNS = ("_dlt_load_id", "_dlt_id")


def spotler_tables(now) -> list[str]:
    return list(spotler.spotler_source(now=now).resources)


def run_source(directory, now, *selections: tuple[str, ...]):
    """One plain dlt pipeline into DuckDB in `directory`, running `spotler_source(now=now)` once per selection
    of resources (empty: the whole source); the pipeline."""
    pipeline = dlt.pipeline(
        pipeline_name="spotler",
        pipelines_dir=str(directory / "pipelines"),
        destination=dlt.destinations.duckdb(str(directory / "spotler.duckdb")),
        dataset_name=spotler.DATASET,
    )
    for selection in selections:
        source = spotler.spotler_source(now=now)
        pipeline.run(source.with_resources(*selection) if selection else source)
    return pipeline


def loaded_rows(directory, tables) -> dict[str, list[dict]]:
    """Each table's rows (dlt's own columns left out), sorted; [] for a table never created."""
    loaded = {}
    for table in tables:
        columns = [
            name
            for (name,) in query_warehouse(
                directory / "spotler.duckdb",
                "select column_name from information_schema.columns where table_schema = $schema "
                "and table_name = $table order by ordinal_position",
                params={"schema": spotler.DATASET, "table": table},
            )
            if name not in DLT_COLUMNS
        ]
        found = (
            query_warehouse(directory / "spotler.duckdb", f"select {', '.join(columns)} from {spotler.DATASET}.{table}")
            if columns
            else []
        )
        loaded[table] = sorted((dict(zip(columns, row, strict=True)) for row in found), key=repr)
    return loaded


@pytest.fixture(scope="module")
def one_whole_run(world_dir, tmp_path_factory):
    """(now, every table's rows) after one run of the whole source at the stand-in's clock."""
    server, api = spotler_standin_module.serve(world_dir)
    directory = tmp_path_factory.mktemp("one-whole-run")
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            configure(monkeypatch, server)
            monkeypatch.setenv("SOURCES__SPOTLER__SETTLE_DAYS", str(SETTLE_DAYS))
            run_source(directory, api.now, ())
            tables = spotler_tables(api.now)
    finally:
        server.stop()
    return api.now, loaded_rows(directory, tables)


def still_settling_snapshots(tables: dict[str, list[dict]], now) -> list[dict]:
    """The snapshots of mailings sent within SETTLE_DAYS of `now`: those a second run takes again."""
    window = now - dt.timedelta(days=SETTLE_DAYS)
    settling = {m["encrypted_id"] for m in tables["mailings"] if m["scheduled_start_date"] >= window}
    return [s for s in tables["mailing_statistics_snapshots"] if s["mailing_id"] in settling]


@pytest.mark.parametrize(
    "selection",
    [
        ("clicks",),
        ("mailing_statistics_snapshots",),
        ("campaign_mailings",),
        ("contacts", "opens"),
        ("mailing_links", "campaign_recipients", "form_results"),
    ],
)
def test_any_selection_first_then_the_whole_source_loads_what_one_whole_run_loads(
    spotler_env, one_whole_run, tmp_path, monkeypatch, selection
):
    now, expected = one_whole_run
    monkeypatch.setenv("SOURCES__SPOTLER__SETTLE_DAYS", str(SETTLE_DAYS))
    run_source(tmp_path, now, selection, ())
    loaded = loaded_rows(tmp_path, expected)
    if "mailing_statistics_snapshots" in selection:
        # an append table: each run takes a snapshot of every mailing still settling, so a second run adds
        # these again (the same rows: the same clock, the same statistics, fetched_at is `now`)
        expected = {
            **expected,
            "mailing_statistics_snapshots": sorted(
                expected["mailing_statistics_snapshots"] + still_settling_snapshots(expected, now), key=repr
            ),
        }
    assert all(expected.values()), "every table has rows to compare"
    for table, rows in expected.items():
        assert len(loaded[table]) == len(rows), table
        assert loaded[table] == rows, table


def test_a_pipeline_whose_source_state_the_old_code_wrote_goes_on_without_fetching_again_or_losing(
    spotler_env, one_whole_run, tmp_path, monkeypatch
):
    server, _api = spotler_env
    now, expected = one_whole_run
    monkeypatch.setenv("SOURCES__SPOTLER__SETTLE_DAYS", str(SETTLE_DAYS))
    pipeline = run_source(tmp_path, now, ())
    # the state as the code before per-resource state left it after that run: the known mailings, the
    # mailing-list cursor, the known campaign mailings and the budget cycle in the source's state
    with pipeline.managed_state() as state:
        source_state = state["sources"]["spotler"]
        resources = source_state["resources"]
        source_state.update(
            mailings=resources["mailings"]["mailings"],
            mailings_since=resources["mailings"]["mailings_since"],
            campaign_mailings=resources["campaign_mailings"]["campaign_mailings"],
            cycle_done=[],
            budget_reached=False,
        )
        for name in ("mailings", "mailing_links", "mailing_statistics_snapshots", "clicks", "campaign_mailings"):
            del resources[name]
        for kept in resources.values():
            kept.pop("cycle_done", None)
            kept.pop("budget_reached", None)
    server.reset()
    report = spotler.SyncReport()
    pipeline.run(spotler.spotler_source(now=now, report=report))
    assert (
        server.calls["GET /mailing/{encryptedMailingId}"]
        == server.calls["GET /campaign-mailing/{encryptedMailingId}"]
        == 0
    )
    assert server.calls["GET /mailing/{encryptedMailingId}/statistics"] == report.settling < len(expected["mailings"])
    loaded = loaded_rows(tmp_path, expected)
    expected = {  # the second run took its snapshots of the mailings still settling
        **expected,
        "mailing_statistics_snapshots": sorted(
            expected["mailing_statistics_snapshots"] + still_settling_snapshots(expected, now), key=repr
        ),
    }
    for table, rows in expected.items():
        assert loaded[table] == rows, table


def test_a_mailing_listed_again_in_the_day_of_overlap_keeps_its_details(spotler_env, tmp_path):
    """The mailing list is asked again from a day before the last sync; a mailing loaded with its details
    stays whole (its row is not replaced by the bare listing)."""
    run_source(tmp_path / "probe", spotler_env[1].now, ())
    mailings = loaded_rows(tmp_path / "probe", ["mailings"])["mailings"]
    latest = max(mailings, key=lambda m: m["scheduled_start_date"])
    sent = latest["scheduled_start_date"]
    # a run an hour after the mailing was scheduled, then one an hour later: the second lists it again
    pipeline = run_source(tmp_path, sent + dt.timedelta(hours=1), ())
    before = {m["encrypted_id"]: m for m in loaded_rows(tmp_path, ["mailings"])["mailings"]}
    assert before[latest["encrypted_id"]]["subject"] == latest["subject"] is not None
    pipeline.run(spotler.spotler_source(now=sent + dt.timedelta(hours=2)))
    after = {m["encrypted_id"]: m for m in loaded_rows(tmp_path, ["mailings"])["mailings"]}
    assert after == before
