"""The way back for a company that mails with Spotler: its segments start Spotler's external campaign triggers
and mirror audiences, through the stand-in's write API on loopback (signed calls, faults injected), each contact
once, with no Deployteq setting anywhere."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
from collections import Counter

import pytest

from mail_warehouse import settings
from mail_warehouse.export_spotler import AudienceTarget, SpotlerTargets, SpotlerWayBack, ensure_log
from mail_warehouse_demo.standins.http import Fault
from mail_warehouse_demo.standins.stack import StandinStack
from tests.conftest import company_environment, query_warehouse, rebuild_the_segment, warehouse_cli

AS_OF = "{as_of_date: '2026-11-23'}"
TRIGGER_PATH = r"/campaign/trigger/"


@pytest.fixture(scope="module")
def spotler_company(world_dir, tmp_path_factory):
    """A company with Spotler only: loaded from the stand-in and built; no Deployteq setting in its environment."""
    state = tmp_path_factory.mktemp("spotler-company")
    with StandinStack(world_dir, state / "standins") as stack:
        env = {
            key: value
            for key, value in company_environment(stack, ("spotler",)).items()
            if not key.startswith("EXPORT__DEPLOYTEQ__")
        }
        env.update(
            {
                "WAREHOUSE_PATH": str(state / "warehouse.duckdb"),
                "SOURCES__SPOTLER__START_DATE": "2025-01-01",
                "DBT_TARGET_PATH": str(state / "target"),
                "SOURCES__SPOTLER__RETRY_DELAY_SECONDS": "0.2",
            }
        )
        assert warehouse_cli("load", "spotler", env=env).returncode == 0
        built = warehouse_cli("build", "--", "--vars", AS_OF, env=env)
        assert built.returncode == 0, built.stdout[-3000:]
        yield env, state / "warehouse.duckdb", stack


@pytest.fixture
def company(spotler_company, tmp_path):
    env, database, stack = spotler_company
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(database, copy)
    stack.spotler_api.reset_writes()
    stack.spotler_server.reset()
    return {**env, "WAREHOUSE_PATH": str(copy)}, copy, stack


def segment_spotler_ids(database) -> set[str]:
    return {
        row[0]
        for row in query_warehouse(
            database,
            """
        select c.spotler_external_id from segments.reactivation s join marts.contacts c using (contact_key)""",
        )
    }


def trigger_calls(stack) -> int:
    return sum(count for name, count in stack.spotler_server.calls.items() if "/campaign/trigger/" in name)


def test_a_spotler_only_company_starts_its_segment_once_through_a_429_a_503_and_a_lost_answer(company):
    env, database, stack = company
    wanted = segment_spotler_ids(database)
    assert len(wanted) >= 10, "the test world's segment is too small to say anything"
    assert not any(key.startswith("EXPORT__DEPLOYTEQ__") for key in env)
    stack.spotler_server.inject(
        Fault("status", TRIGGER_PATH, status=429, retry_after=1, skip=2),
        Fault("status", TRIGGER_PATH, status=503, skip=5),
        Fault("drop", TRIGGER_PATH, skip=8, act_first=True),
    )
    result = warehouse_cli("export", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    started = Counter(contact for campaign, contact in stack.spotler_api.triggered if campaign == "Reactivatie")
    assert set(started) == wanted and set(started.values()) == {1}, "every segment contact started exactly once"
    assert f"export reactivation to Spotler trigger 'reactivatie': sent, {len(wanted):,} triggered" in result.stdout
    assert "export reactivation to Deployteq: skipped; not configured: set export.deployteq.host" in result.stdout
    # the lost answer's retry was told "Contact already in campaign": recorded as the trigger it was
    statuses = dict(
        query_warehouse(database, "select status, count(*) from exports.spotler_export_contacts group by 1")
    )
    assert statuses == {"triggered": len(wanted)}
    assert query_warehouse(
        database,
        """select count(*) from exports.spotler_export_contacts
                                        where message like 'an earlier call went unanswered%'""",
    ) == [(1,)]

    calls_before = stack.spotler_server.total_calls()
    again = warehouse_cli("export", env=env)
    assert again.returncode == 0 and "already sent today" in again.stdout
    assert stack.spotler_server.total_calls() == calls_before, "a second export the same day makes no call at all"

    # the cooldown reads Spotler's triggers as it reads CSV deliveries: the rebuilt segment holds none of them
    rebuilt = rebuild_the_segment(env, dt.date.today().isoformat())
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]
    assert not segment_spotler_ids(database) & wanted


def test_refusals_are_recorded_per_contact_and_the_rest_go_on(company):
    env, database, stack = company
    wanted = sorted(segment_spotler_ids(database))
    marketer_started, refused = wanted[0], wanted[1]
    stack.spotler_api.in_campaign["Reactivatie"] = {marketer_started}
    stack.spotler_api.refusals[refused] = "Contact not in selection"
    result = warehouse_cli("export", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"{len(wanted) - 2:,} triggered, 1 already in campaign, 1 refused" in result.stdout
        and "refused: Contact not in selection 1" in result.stdout
    ), result.stdout
    outcomes = dict(
        query_warehouse(database, "select external_contact_id, status from exports.spotler_export_contacts")
    )
    assert outcomes[marketer_started] == "already-in-campaign" and outcomes[refused] == "refused"
    status = warehouse_cli("export", "--status", env=env)
    assert status.returncode == 0
    assert re.search(
        r"reactivation: Spotler trigger 'reactivatie' \d{4}-\d\d-\d\d done: [\d,]+ triggered, "
        r"1 already in campaign, 1 refused",
        status.stdout,
    ), status.stdout
    assert "Deployteq: not configured" in status.stdout


@pytest.mark.parametrize(
    "change, says",
    [
        (
            {"trigger_name": "winback"},
            r"Spotler has no external campaign trigger named 'reactivatie' \(its triggers: .*winback",
        ),
        ({"active": False}, r"the Spotler campaign 'Reactivatie' of trigger 'reactivatie' is inactive"),
    ],
)
def test_an_unknown_trigger_or_an_inactive_campaign_fails_that_target_naming_segment_and_trigger(company, change, says):
    env, _database, stack = company
    stack.spotler_api.campaign_changes["Reactivatie"] = change
    result = warehouse_cli("export", env=env)
    assert result.returncode == 1
    assert re.search(
        r"export reactivation to Spotler trigger 'reactivatie': failed; segment reactivation: " + says, result.stdout
    ), result.stdout
    assert trigger_calls(stack) == 0 and not stack.spotler_api.triggered


def test_a_dry_run_says_per_target_what_would_be_sent_and_sends_nothing(company):
    env, database, stack = company
    result = warehouse_cli("export", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert (
        f"export reactivation to Spotler trigger 'reactivatie': dry-run, "
        f"{len(segment_spotler_ids(database)):,} would trigger"
    ) in result.stdout
    assert trigger_calls(stack) == 0
    assert query_warehouse(database, "select count(*) from exports.spotler_export_log") == [(0,)]


def test_the_consent_guard_overrules_the_segment_for_spotler_too(company):
    env, database, stack = company
    con = settings.connect(database)
    try:
        (first,) = con.execute("select contact_key from segments.reactivation order by 1 limit 1").fetchone()
        con.execute(
            "update marts.contacts set is_mailable = false, not_mailable_reason = 'unsubscribed' "
            "where contact_key = $k",
            {"k": first},
        )
        (left_out,) = con.execute(
            "select spotler_external_id from marts.contacts where contact_key = $k", {"k": first}
        ).fetchone()
    finally:
        con.close()
    result = warehouse_cli("export", env=env)
    assert result.returncode == 0 and "(1 left out: 1 unsubscribed)" in result.stdout, result.stdout
    assert left_out not in {contact for _, contact in stack.spotler_api.triggered}


def _way_back(database, stack, today, **options):
    from dlt.common.configuration.resolve import resolve_configuration

    from mail_warehouse_sources.spotler.config import SpotlerSourceConfiguration

    config = resolve_configuration(
        SpotlerSourceConfiguration(
            base_url=stack.spotler_base_url,
            consumer_key=stack.spotler_api.consumer_key,
            consumer_secret=stack.spotler_api.consumer_secret,
            retry_delay_seconds=0.1,
        )
    )
    con = settings.connect(database)
    ensure_log(con)
    return con, SpotlerWayBack(con, config, today=today, stream=io.StringIO(), **options)


def test_an_audience_is_created_then_mirrored_in_batches(company):
    _env, database, stack = company
    audience = AudienceTarget("reactivatie-wb", "Reactivatie (warehouse)")
    targets = SpotlerTargets("reactivation", audience=audience)
    wanted = segment_spotler_ids(database)
    con, way_back = _way_back(database, stack, dt.date(2026, 11, 23), audience_batch=7)
    try:
        [first] = way_back.export(targets)
        assert first.status == "sent" and first.counts["added"] == len(wanted), first.line()
        assert stack.spotler_api.audiences["reactivatie-wb"]["members"] == wanted
        assert stack.spotler_server.calls["POST /audience/{externalId}/contact"] == -(-len(wanted) // 7)
        assert stack.spotler_server.calls["POST /audience"] == 1

        # the next day three contacts left the segment (one more joined): they are taken out, nobody re-added
        leaving = sorted(wanted)[:3]
        con.execute(
            """delete from segments.reactivation where contact_key in (
                           select contact_key from marts.contacts
                           where spotler_external_id in (select unnest($ids)))""",
            {"ids": leaving},
        )
        (joining,) = con.execute("""select spotler_external_id from marts.contacts where is_mailable and
                                    spotler_external_id is not null and contact_key not in
                                    (select contact_key from segments.reactivation) order by 1 limit 1""").fetchone()
        con.execute(
            """insert into segments.reactivation (contact_key, email)
                       select contact_key, email from marts.contacts where spotler_external_id = $id""",
            {"id": joining},
        )
        stack.spotler_server.reset()
        [second] = SpotlerWayBack(con, way_back.config, today=dt.date(2026, 11, 24), stream=io.StringIO()).export(
            targets
        )
        assert second.counts["added"] == 1 and second.counts["removed"] == 3, second.line()
        assert stack.spotler_api.audiences["reactivatie-wb"]["members"] == (wanted - set(leaving)) | {joining}
        assert stack.spotler_server.calls["POST /audience"] == 0
    finally:
        con.close()


def test_an_account_without_automation_is_told_audiences_need_it(company):
    _env, database, stack = company
    stack.spotler_api.automation = False
    con, way_back = _way_back(database, stack, dt.date(2026, 11, 23))
    try:
        [result] = way_back.export(SpotlerTargets("reactivation", audience=AudienceTarget("x", "X")))
    finally:
        con.close()
    assert result.status == "failed" and "may not use audiences (HTTP 403" in result.message
