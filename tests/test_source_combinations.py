"""A company has one mail platform or two, with or without Directo: every combination runs the scheduled
job end to end (`warehouse run`: the real loaders against the stand-ins, dbt build with every data test,
source freshness, publish, export), and the marts hold each present source's events and the counts the
demo generator knows. Only the present sources' settings are given, as a company would. An analyst's plain
`dbt build` (every unit test too) works with one platform alone, and a configured source that was never
loaded stops the build rather than count as absent.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mail_warehouse import settings
from mail_warehouse_demo.standins.stack import StandinStack
from mail_warehouse_demo.world import WorldSpec, simulate
from mail_warehouse_demo.writers import write_world
from tests.conftest import SETTING_PREFIXES, company_environment, query_warehouse, warehouse_cli

pytestmark = pytest.mark.slow

# Small, so five scheduled runs stay quick; ends yesterday because `warehouse run` builds as of today.
COMBINATION_WORLD = {"contacts": 200, "mailings": 8, "days": 40, "seed": 11}
MAILING_PREFIX = {"clang": "clang:", "spotler": "spotler:", "spotler_campaign": "spotler:"}


@pytest.fixture(scope="module")
def combination_stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("combinations")
    world = root / "world"
    spec = WorldSpec(**COMBINATION_WORLD, end=dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
    write_world(simulate(spec), world)
    with StandinStack(world, root / "standins") as stack:
        yield world, stack


@pytest.fixture(scope="module")
def combination_run(combination_stack, tmp_path_factory):
    """`warehouse run` of a combination of sources, once per module: (environment, warehouse file)."""
    done: dict[tuple[str, ...], tuple[dict, Path]] = {}

    def run(sources: tuple[str, ...]) -> tuple[dict, Path]:
        if sources not in done:
            done[sources] = _run_with(sources, combination_stack[1], tmp_path_factory.mktemp("+".join(sources)))
        return done[sources]

    return run


def _private_copy(run: tuple[dict, Path], folder: Path) -> tuple[dict, Path]:
    env, database = run
    copy = folder / "warehouse.duckdb"
    shutil.copyfile(database, copy)
    return {
        **env,
        "WAREHOUSE_PATH": str(copy),
        "DBT_TARGET_PATH": str(folder / "target"),
        "EXPORT__DEPLOYTEQ__LOCAL_DIR": str(folder / "exports"),
    }, copy


def _run_with(sources: tuple[str, ...], stack: StandinStack, folder: Path) -> tuple[dict, Path]:
    """`warehouse run` with the settings of `sources` only (and none the test process may carry)."""
    env = company_environment(stack, sources)
    database = folder / "warehouse.duckdb"
    env.update(
        {
            "WAREHOUSE_PATH": str(database),
            "DBT_TARGET_PATH": str(folder / "target"),
            "EXPORT__DEPLOYTEQ__LOCAL_DIR": str(folder / "exports"),
        }
    )
    if "spotler" in sources:
        env["SOURCES__SPOTLER__START_DATE"] = "2025-01-01"
    if "directo" not in sources:  # switched on, the syncs have nothing to send without the ERP and say so
        env.update({"SYNC__CONTACTS": "true", "SYNC__CONSENT_TO_DIRECTO": "true"})
    result = warehouse_cli("run", env=env)
    summary = result.stdout + result.stderr
    assert result.returncode == 0, summary[-6000:]
    if "directo" not in sources:
        assert "sync contacts ok" in summary and "sync consent ok" in summary, summary[-3000:]
        assert "sync consent: skipped; Directo is not configured" in summary, summary[-3000:]
    for source in SETTING_PREFIXES:
        expected = "ok" if source in sources else "skipped (not configured)"
        assert f"load {source} {expected}" in summary, summary[-3000:]
    for step in ("build ok", "source freshness ok", "publish ok", "export ok"):
        assert step in summary, summary[-3000:]
    return env, database


@pytest.mark.parametrize(
    "sources",
    [
        ("clang", "directo"),
        ("spotler",),
        ("clang",),
        ("spotler", "directo"),
        ("clang", "spotler", "directo"),
    ],
    ids="+".join,
)
def test_every_combination_of_sources_runs_end_to_end(sources, combination_stack, combination_run, tmp_path):
    world, _ = combination_stack
    env, database = combination_run(sources)

    platforms = {source for source in sources if source != "directo"}
    systems = {
        system for (system,) in query_warehouse(database, "select distinct source_system from marts.customer_activity")
    }
    assert systems == platforms

    # every mailing of a present platform, with the counts the generator knows
    rows = query_warehouse(
        database,
        """
        select t.system, t.source_id, t.sent, s.sent_count, t.delivered, s.delivered_count, t.unique_opens,
               s.unique_open_count, t.hard_bounces, s.hard_bounce_count, t.soft_bounces, s.soft_bounce_count
        from world.truth_mailing_counts t
        left join marts.mailing_statistics s
            on s.mailing_key = case when t.system = 'clang' then 'clang:' else 'spotler:' end || t.source_id
        where t.sent > 0
    """,
        world,
    )
    present = [row for row in rows if row[0].split("_")[0] in platforms]
    assert present and all(row[3] is None for row in rows if row[0].split("_")[0] not in platforms)
    for system, mailing, *pairs in present:
        assert pairs[0::2] == pairs[1::2], (system, mailing, pairs)

    # the segment uses the one definition of "may be mailed"
    (unmailable_in_segment,) = query_warehouse(
        database,
        """select count(*) from segments.reactivation r
                                                   join marts.contacts c using (contact_key) where not c.is_mailable""",
    )[0]
    assert unmailable_in_segment == 0
    assert (Path(env["WAREHOUSE_PATH"]).with_name("analytics.duckdb")).exists()

    consent_sources = {
        source for (source,) in query_warehouse(database, "select distinct consent_source from marts.contacts")
    }
    if "directo" in sources:
        assert "directo_optin" in consent_sources and "implied_by_mailing" not in consent_sources
        (contacts,) = query_warehouse(
            database, "select count(distinct lower(trim(email))) from world.customers", world
        )[0]
        assert query_warehouse(database, "select count(*) from marts.contacts")[0][0] == contacts
    elif "clang" in sources:
        # no ERP: a contact the platform mailed is opted in until an unsubscribe, complaint or hard bounce
        assert "implied_by_mailing" in consent_sources and "directo_optin" not in consent_sources
        wrong = query_warehouse(
            database,
            """
            select c.email, c.is_mailable, c.not_mailable_reason
            from marts.contacts c
            join (select email, bool_or(event_type = 'sent') as mailed,
                         bool_or(event_type in ('unsubscribe', 'complaint', 'hard_bounce')) as said_no
                  from marts.customer_activity where email is not null group by email) e using (email)
            where c.is_mailable <> (e.mailed and not e.said_no)""",
        )
        assert not wrong, wrong[:5]
    else:
        _assert_spotler_alone_gives_contacts_consent_and_segments(world, (env, database), consent_sources, tmp_path)


def _assert_spotler_alone_gives_contacts_consent_and_segments(
    world: Path, run: tuple[dict, Path], consent_sources: set, folder: Path
) -> None:
    """Spotler's contacts give every person's address; a person is mailable when mailed (implied consent),
    Spotler's EMAIL channel is on, and no unsubscribe, complaint or hard bounce is on record."""
    database = run[1]
    assert "implied_by_mailing" in consent_sources and "spotler_email_channel" in consent_sources
    now = dt.datetime.fromtimestamp(json.loads((world / "world.json").read_text())["now"], dt.UTC)
    people = f"""(select directo_code, lower(trim(email)) as email,
                         not opted_out and not (unsubscribed_at <= t and not coalesce(reoptin_at <= t, false)) is true
                             as channel_on
                  from world.people, (select timestamptz '{now.isoformat()}' as t) where joined_at <= t)"""
    missing = query_warehouse(
        database,
        f"""select p.directo_code, p.email from {people} p
        left join marts.contacts c on c.spotler_external_id = p.directo_code and c.email = p.email
        where c.email is null""",
        world,
    )
    assert not missing, missing[:5]
    (people_count,) = query_warehouse(database, f"select count(*) from {people}", world)[0]
    assert query_warehouse(database, "select count(*) from marts.contacts")[0][0] == people_count
    wrong = query_warehouse(
        database,
        f"""
        select c.email, c.is_mailable, c.not_mailable_reason
        from marts.contacts c
        join {people} p using (email)
        left join (select email, bool_or(event_type = 'sent') as mailed,
                          bool_or(event_type in ('unsubscribe', 'complaint', 'hard_bounce')) as said_no
                   from marts.customer_activity where email is not null group by email) e using (email)
        where c.is_mailable <> (coalesce(e.mailed, false) and not coalesce(e.said_no, false) and p.channel_on)""",
        world,
    )
    assert not wrong, wrong[:5]
    assert query_warehouse(database, "select count(*) from marts.contacts where is_mailable")[0][0] > 0
    assert query_warehouse(database, "select count(*) from marts.customer_activity where email is null")[0][0] == 0
    assert query_warehouse(database, "select count(*) from marts.contact_mail_history")[0][0] > 0
    # the world is 40 days long, shorter than the default 90 inactive days: the segment rebuilt on a copy with
    # a window that fits it (its unit tests expect the default window, and ran in the scheduled build)
    env, copy = _private_copy(run, folder)
    result = warehouse_cli(
        "build",
        "--",
        "--select",
        "reactivation",
        "--exclude-resource-type",
        "unit_test",
        "--vars",
        "{reactivation_inactive_days: 7, reactivation_min_mailings: 1}",
        env=env,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    (segment_size,) = query_warehouse(copy, "select count(*) from segments.reactivation")[0]
    assert segment_size > 0


def test_stale_sources_warn_unless_configured_to_fail(combination_run, tmp_path):
    """Freshness measures loads: a Directo load 3 days ago warns, 8 days ago fails only when configured."""
    env, database = _private_copy(combination_run(("clang", "directo")), tmp_path)

    def age_directo_loads(days: int) -> None:
        con = settings.connect(database)
        try:
            con.execute(f"update raw_directo._dlt_loads set inserted_at = now() - interval {days} day")
        finally:
            con.close()

    only_the_seed = ["--", "--select", "clang_activity_types"]  # quick: freshness is checked after any build
    age_directo_loads(3)
    result = warehouse_cli("build", *only_the_seed, env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "directo: STALE, last loaded 3.0 days ago (more than 2 days)" in result.stderr
    assert "clang: last loaded" in result.stderr and "spotler: never loaded" in result.stderr

    age_directo_loads(8)
    result = warehouse_cli("build", *only_the_seed, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    result = warehouse_cli("build", *only_the_seed, env={**env, "BUILD__FAIL_ON_STALE_SOURCES": "true"})
    assert result.returncode == 1
    assert "directo: STALE, last loaded 8.0 days ago (more than 7 days)" in result.stderr
    assert "fail_on_stale_sources" in result.stderr


@pytest.mark.parametrize("sources", [("clang",), ("spotler",)], ids="+".join)
def test_a_plain_dbt_build_works_on_any_subset(sources, combination_run, tmp_path):
    """An analyst's own `dbt build`, without the CLI, every unit and data test, on a warehouse that has only
    one platform's tables: the absent sources' models and unit tests build and pass."""
    env, _ = _private_copy(combination_run(sources), tmp_path)
    dbt = Path(sys.executable).with_name("dbt")
    result = subprocess.run(
        [str(dbt), "build", "--profiles-dir", str(settings.PROJECT_DIR), "--project-dir", str(settings.PROJECT_DIR)],
        capture_output=True,
        text=True,
        env=env,
        cwd=settings.PROJECT_DIR,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "ERROR=0" in result.stdout and "SKIP=0" in result.stdout


def test_a_configured_source_whose_load_failed_stops_the_build(combination_stack, tmp_path):
    """Directo is configured but its first load fails (a wrong key): the models must not take Directo for
    absent (that would imply the consent of every mailed contact), so the build stops naming the loader to
    run, and nothing is published or exported."""
    _, stack = combination_stack
    ours = tuple(SETTING_PREFIXES.values())
    env = {key: value for key, value in os.environ.items() if not key.startswith(ours)}
    env.update(stack.environment())
    for key in [key for key in env if key.startswith(SETTING_PREFIXES["spotler"])]:
        del env[key]
    database = tmp_path / "warehouse.duckdb"
    env.update(
        {
            "WAREHOUSE_PATH": str(database),
            "DBT_TARGET_PATH": str(tmp_path / "target"),
            "EXPORT__DEPLOYTEQ__LOCAL_DIR": str(tmp_path / "exports"),
            "SOURCES__DIRECTO__KEY": "not-the-key",
        }
    )
    result = warehouse_cli("run", env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "load clang ok" in output and "load directo failed" in output, output[-3000:]
    assert "source directo is configured (directo_enabled: true) but none of its tables is in the warehouse" in output
    assert "build failed" in output and "publish skipped" in output and "export skipped" in output
    assert not (tmp_path / "analytics.duckdb").exists()
    assert not (tmp_path / "exports").exists() or not list((tmp_path / "exports").iterdir())
