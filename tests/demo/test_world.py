"""The demo world is deterministic, consistent across the three systems, and behaves like real senders see."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from pathlib import Path
from xml.etree import ElementTree

import duckdb
import pytest

from mail_warehouse_demo import names
from mail_warehouse_demo.world import WorldSpec, simulate
from mail_warehouse_demo.writers import CLANG_ACTIVITY_HEADER, CLANG_BROADCAST_HEADER, write_world
from tests.conftest import TEST_WORLD, query_world


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in (".csv", ".xml")
    }


def test_one_seed_gives_the_same_files_and_another_seed_does_not(tmp_path):
    spec = WorldSpec(contacts=150, mailings=6, days=30, seed=11, end=dt.date(2026, 3, 30))
    write_world(simulate(spec), tmp_path / "a")
    write_world(simulate(spec), tmp_path / "b")
    write_world(
        simulate(WorldSpec(contacts=150, mailings=6, days=30, seed=12, end=dt.date(2026, 3, 30))), tmp_path / "c"
    )
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_clang_files_have_the_exact_headers_one_pair_per_day(world_dir):
    files = sorted((world_dir / "clang").iterdir())
    activities = [f for f in files if f.name.startswith("activiteiten_")]
    broadcasts = [f for f in files if f.name.startswith("broadcasts_")]
    assert len(activities) >= TEST_WORLD.days * 0.9 and len(broadcasts) == len(activities)
    with activities[0].open(encoding="utf-8") as handle:
        assert tuple(next(csv.reader(handle, delimiter=";"))) == CLANG_ACTIVITY_HEADER
    with broadcasts[0].open(encoding="utf-8") as handle:
        assert tuple(next(csv.reader(handle, delimiter=";"))) == CLANG_BROADCAST_HEADER
    types = {
        row["Broadcast type"] for f in broadcasts for row in csv.DictReader(f.open(encoding="utf-8"), delimiter=";")
    }
    assert types <= {"SINGLE", "CAMPAIGN", "QUICKMAIL", "SPLITRUN"} and "SINGLE" in types


def test_broadcasts_repeat_on_every_day_they_had_activity(world_dir):
    days_per_broadcast: dict[str, set] = {}
    for f in (world_dir / "clang").glob("broadcasts_*.csv"):
        for row in csv.DictReader(f.open(encoding="utf-8"), delimiter=";"):
            days_per_broadcast.setdefault(row["Broadcastid"], set()).add(f.name)
    assert max(len(days) for days in days_per_broadcast.values()) > 7


def test_clang_local_times_are_amsterdam_time(world_dir):
    # the first SEND of a broadcast happens on the hour in UTC, so in Amsterdam it is +1 or +2 hours
    broadcast, sent_at = query_world(
        world_dir, "select source_id, sent_at from mailings where system = 'clang' limit 1"
    )[0]
    local = sent_at.astimezone(dt.timezone(dt.timedelta(hours=1 if sent_at.month in (1, 2, 3, 11, 12) else 2)))
    rows = [
        row
        for f in (world_dir / "clang").glob("broadcasts_*.csv")
        for row in csv.DictReader(f.open(encoding="utf-8"), delimiter=";")
        if row["Broadcastid"] == broadcast
    ]
    assert rows[0]["Verzonden op"][11:13] == f"{local.hour:02d}"


def test_the_same_people_appear_in_directo_clang_and_spotler(world_dir):
    customers = ElementTree.parse(world_dir / "directo" / "customers.xml").getroot().findall("./customers/customer")
    directo_emails = {c.get("email").strip().lower() for c in customers}
    clang_emails = {
        row["E-mailadres"].strip().lower()
        for f in (world_dir / "clang").glob("activiteiten_*.csv")
        for row in csv.DictReader(f.open(encoding="utf-8"), delimiter=";")
    }
    assert clang_emails and clang_emails <= directo_emails
    spotler_people = query_world(
        world_dir,
        """select count(distinct p.directo_code) from sends s join mailings m using (mailing_index)
                                       join people p using (person_id) where m.system like 'spotler%'""",
    )[0][0]
    codes = {c.get("code") for c in customers}
    assert spotler_people > 0
    assert {r[0] for r in query_world(world_dir, "select directo_code from people")} <= codes


def test_directo_has_shared_addresses_closed_customers_classes_and_optin_dates(world_dir):
    customers = ElementTree.parse(world_dir / "directo" / "customers.xml").getroot().findall("./customers/customer")
    emails = [c.get("email").lower() for c in customers]
    assert len(emails) - len(set(emails)) >= 3
    assert sum(c.get("closed") == "1" for c in customers) >= 5
    assert {c.get("class") for c in customers} >= {"ERAKLIENT", "ÄRIKLIENT", "VIP"}
    optins = [d for c in customers for d in c.iter("data") if d.get("code") == "OPTIN"]
    assert {d.get("content") for d in optins} >= {"yes", "no"}
    dated = [d for d in optins if d.get("param") is not None]
    assert all(len(d.get("param")) == 10 for d in dated) and 0 < len(optins) - len(dated) < len(optins) / 10
    assert any(ch in ElementTree.tostring(customers[0], encoding="unicode") or True for ch in "õäöü")
    names = " ".join(c.get("name") for c in customers)
    assert any(ch in names for ch in "õäöüš")


def test_rates_are_in_the_range_real_senders_see(world_dir):
    opens, clicks, hard, soft, unsub = query_world(
        world_dir,
        """
        with people_only as (
            select m.mailing_index,
                   count(distinct e.person_id) filter (where e.event_type in ('open', 'click')) as unique_opens,
                   count(distinct e.person_id) filter (where e.event_type = 'click') as unique_clicks
            from mailings m join events e using (mailing_index)
            where e.machine is null
            group by all
        )
        select sum(p.unique_opens) / sum(delivered), sum(p.unique_clicks) / sum(delivered),
               sum(hard_bounces) / sum(sent), sum(soft_bounces) / sum(sent), sum(unsubscribes) / sum(delivered)
        from truth_mailing_counts t join people_only p using (mailing_index)
        where mailing_type = 'EMAIL' or system = 'clang'""",
    )[0]
    assert 0.15 <= opens <= 0.35
    assert 0.02 <= clicks <= 0.06
    assert 0.002 <= hard <= 0.01 and 0.005 <= soft <= 0.02
    assert 0.0005 <= unsub <= 0.005
    # with Apple's proxy and the scanners, the open rate senders see since 2021
    (raw_opens,) = query_world(
        world_dir,
        """select sum(unique_opens) / sum(delivered) from truth_mailing_counts
                                      where mailing_type = 'EMAIL' or system = 'clang'""",
    )[0]
    assert 0.35 <= raw_opens <= 0.7


def test_responses_spread_over_days_and_weeks(world_dir):
    delays = query_world(
        world_dir,
        """
        select quantile_cont(epoch(e.event_at - s.sent_at) / 3600, [0.5, 0.95])
        from events e join sends s on s.mailing_index = e.mailing_index and s.person_id = e.person_id
                                    and s.subscription_id is not distinct from e.subscription_id
        where e.event_type = 'open' and e.machine is null""",
    )[0][0]
    assert delays[0] < 24 and delays[1] > 72


def test_machines_open_and_click_as_documented(world_dir):
    """Apple's proxy opens nearly every mail delivered to an Apple Mail user within hours, and their own opens
    are never seen; a scanning gateway follows every link of a mail within seconds of each other."""
    proxy_share, own_opens, proxy_hours = query_world(
        world_dir,
        """
        with delivered as (
            select s.mailing_index, s.person_id, s.subscription_id, s.sent_at
            from sends s join people p using (person_id) join mailings m using (mailing_index)
            where p.mail_client = 'apple_mail' and m.mailing_type <> 'SMS'
              and not exists (select 1 from events b where b.mailing_index = s.mailing_index
                              and b.person_id = s.person_id and b.event_type in ('hard_bounce', 'soft_bounce'))
              and s.sent_at < (select max(event_at) from events) - interval 1 day
        )
        select
            avg(case when exists (select 1 from events e where e.mailing_index = d.mailing_index
                                  and e.person_id = d.person_id and e.machine = 'apple_privacy_proxy')
                             then 1 else 0 end),
            (select count(*) from events e join people p using (person_id)
             where p.mail_client = 'apple_mail' and e.event_type = 'open' and e.machine is null),
            (select max(epoch(e.event_at - s.sent_at)) / 3600 from events e
             join sends s on s.mailing_index = e.mailing_index and s.person_id = e.person_id
                         and s.subscription_id is not distinct from e.subscription_id
             where e.machine = 'apple_privacy_proxy')
        from delivered d""",
    )[0]
    assert proxy_share >= 0.9 and own_opens == 0 and proxy_hours <= 12.1
    bursts = query_world(
        world_dir,
        """
        select count(distinct e.link_id) as links, max(e.event_at) - min(e.event_at) as spread
        from events e join people p using (person_id)
        where e.machine = 'link_scanner' and e.event_type = 'click'
        group by e.mailing_index, e.person_id, e.subscription_id""",
    )
    assert bursts and all(links >= 2 and spread.total_seconds() <= 2 for links, spread in bursts)


def test_some_contacts_go_quiet_and_some_unsubscribers_opt_in_again(world_dir):
    quiet = query_world(
        world_dir,
        """
        select count(*) from people p where quiet_since is not null and exists (
            select 1 from events e where e.person_id = p.person_id and e.event_type in ('open', 'click'))""",
    )[0][0]
    assert quiet >= 20
    back = query_world(world_dir, """select count(*) from people where reoptin_at > unsubscribed_at""")[0][0]
    assert back >= 1
    mailed_after = query_world(
        world_dir,
        """select count(*) from people p join sends s using (person_id)
                                      where s.sent_at > p.reoptin_at""",
    )[0][0]
    assert mailed_after >= 1


def test_nobody_is_mailed_after_a_hard_bounce_complaint_or_unsubscribe(world_dir):
    violations = query_world(
        world_dir,
        """
        select count(*) from sends s join people p using (person_id)
        where s.sent_at > p.hard_bounced_at or s.sent_at > p.complained_at
           or (s.sent_at > p.unsubscribed_at and (p.reoptin_at is null or s.sent_at < p.reoptin_at))
           or p.opted_out""",
    )[0][0]
    assert violations == 0


def test_spotler_has_data_for_every_endpoint_family(world_dir):
    kinds = dict(query_world(world_dir, "select system, count(*) from mailings group by 1"))
    assert kinds.get("spotler", 0) > 0 and kinds.get("spotler_campaign", 0) > 0 and kinds.get("clang", 0) > 0
    assert query_world(world_dir, "select count(*) from form_results")[0][0] > 0
    assert query_world(world_dir, "select count(*) from conversions")[0][0] > 0


@pytest.mark.parametrize("bad", [{"contacts": 1}, {"days": 2}, {"mailings": 0}])
def test_impossible_worlds_are_refused(bad):
    with pytest.raises(ValueError):
        WorldSpec(**bad)


def test_customer_codes_stay_unique_in_large_worlds():
    # 90,000 people: second customers' codes once collided with primary codes from 80,000 people on
    world = simulate(WorldSpec(contacts=90_000, mailings=1, days=7, seed=9, end=dt.date(2026, 11, 23)))
    codes = world.customers.column("code").to_pylist()
    assert len(codes) == len(set(codes)) > 90_000


def test_a_steady_company_keeps_its_customers_and_daily_volume_over_the_years():
    spec = WorldSpec(contacts=1_000, mailings=150, days=3 * 365, seed=3, end=dt.date(2026, 11, 23), steady=True)
    world = simulate(spec)
    assert world.people.num_rows == spec.people > spec.contacts  # sign-ups replace the customers lost
    con = duckdb.connect()
    for name in ("sends", "events", "mailings", "campaigns"):
        con.register(name, getattr(world, name))
    years_ago = "floor(date_diff('day', {}, $end::timestamptz) / 365)::int"
    end = {"end": dt.datetime.fromtimestamp(spec.end_ts, dt.UTC)}
    per_mailing = dict(
        con.execute(
            f"""select {years_ago.format("m.sent_at")}, count(*) / count(distinct s.mailing_index)
                from sends s join mailings m using (mailing_index) where m.campaign_index = -1 group by 1""",
            end,
        ).fetchall()
    )
    assert 0.85 < per_mailing[0] / per_mailing[2] < 1.15, per_mailing  # the mailable base neither shrinks nor grows
    events = f"select {years_ago.format('event_at')}, count(*) from events group by 1"
    per_year = dict(con.execute(events, end).fetchall())
    assert 0.85 < per_year[0] / per_year[2] < 1.15, per_year
    birthday = next(c for c, (_, _, trigger) in enumerate(names.CAMPAIGNS) if trigger == "birthday")
    (years,) = con.execute(
        f"""select count(distinct {years_ago.format("s.sent_at")})
            from sends s join mailings m using (mailing_index) where m.campaign_index = $birthday""",
        {**end, "birthday": birthday},
    ).fetchone()
    assert years >= 3  # every year's birthday mail, not only the first year's


def test_a_world_that_is_not_steady_has_no_sign_ups_beyond_its_contacts():
    spec = WorldSpec(contacts=150, mailings=6, days=30, seed=11, end=dt.date(2026, 3, 30))
    assert spec.people == spec.contacts and spec.sign_ups == 0
