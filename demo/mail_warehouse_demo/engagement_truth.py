"""How well a built warehouse tells machines from people, measured against a world's truth.

`measure(warehouse, world_dir, as_of)` matches every open and click of the world (with the machine that made
it, if any) to customer_activity, and compares per mailing and for the re-activation segment:
- per class of event: the share the warehouse flags as a machine's (scanner clicks, proxy opens, scanner
  opens, people's opens and clicks);
- per mailing: the people who opened or clicked themselves (as seen in the data: an Apple Mail user's own
  reading is seen by nobody) against unique_human_open_count, and those who clicked themselves against
  unique_human_click_count;
- the segment: its contacts against the truly inactive ones: mailable, at least reactivation_min_mailings
  delivered in the last reactivation_inactive_days, an open or click of their own before and none since, as
  the world's labelled events show them (`segment_*`). The same with a person's unseen reading (an Apple
  Mail user's own opens, which no data holds) counted as engagement (`segment_*_with_unseen_reading`): what
  no rule can see, so the price of the proxy.

`python -m mail_warehouse_demo.engagement_truth WAREHOUSE WORLD_DIR AS_OF` prints the figures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb

INACTIVE_DAYS = 90  # dbt var reactivation_inactive_days (its default)
MIN_MAILINGS = 3  # dbt var reactivation_min_mailings (its default)

_WORLD_EVENTS = """
    select
        lower(trim(p.email)) as email,
        case when m.system = 'clang' then 'clang:' else 'spotler:' end || m.source_id as mailing_key,
        e.event_type,
        e.event_at,
        coalesce(l.url, '') as url,
        e.machine
    from world.events e
    join world.people p using (person_id)
    join world.mailings m using (mailing_index)
    left join world.links l on l.mailing_index = e.mailing_index and l.link_id = e.link_id
    where e.event_type in ('open', 'click') and coalesce(l.link_type, '') <> 'unsubscribe'
"""

_MATCHED = f"""
    with world_events as (
        select *, row_number() over (partition by email, mailing_key, event_type, event_at, url order by machine)
            as n
        from ({_WORLD_EVENTS})
    ),
    ours as (
        select lower(email) as email, mailing_key, event_type, event_at, coalesce(url, '') as url, is_machine,
               row_number() over (partition by lower(email), mailing_key, event_type, event_at, coalesce(url, '')
                                  order by is_machine) as n
        from marts.customer_activity
        where event_type in ('open', 'click')
    )
    select w.event_type, coalesce(w.machine, 'person') as truth, o.is_machine
    from world_events w
    join ours o using (email, mailing_key, event_type, event_at, url, n)
"""

_PER_MAILING = f"""
    with truth as (
        select
            mailing_key,
            count(distinct email) filter (where machine is null) as human_openers,
            count(distinct email) filter (where machine is null and event_type = 'click') as human_clickers
        from ({_WORLD_EVENTS})
        group by mailing_key
    )
    select t.mailing_key, t.human_openers, s.unique_human_open_count, t.human_clickers, s.unique_human_click_count
    from truth t
    join marts.mailing_statistics s using (mailing_key)
"""


def _segment_sql(as_of: str, unseen_reading: bool) -> str:
    last_engaged = "p.last_engaged_at" if unseen_reading else "h.last_engaged_at"
    return f"""
        with window_start as (select cast('{as_of}' as date) - interval {INACTIVE_DAYS} day as since),
        delivered as (
            select p.person_id, count(*) as mailings
            from world.events e join world.people p using (person_id)
            cross join window_start w
            where e.event_type = 'sent' and e.event_at >= w.since
              and not exists (select 1 from world.events b
                              where b.person_id = e.person_id and b.mailing_index = e.mailing_index
                                and b.event_type in ('hard_bounce', 'soft_bounce'))
            group by p.person_id
        ),
        seen_engagement as (
            -- a person's own opens and clicks in the data (the unsubscribe link is no engagement)
            select e.person_id, max(e.event_at) as last_engaged_at
            from world.events e
            left join world.links l on l.mailing_index = e.mailing_index and l.link_id = e.link_id
            where e.event_type in ('open', 'click') and e.machine is null
              and coalesce(l.link_type, '') <> 'unsubscribe'
            group by e.person_id
        ),
        truly_inactive as (
            select distinct c.contact_key
            from world.people p
            join delivered d using (person_id)
            left join seen_engagement h using (person_id)
            join marts.contacts c on c.email = lower(trim(p.email))
            cross join window_start w
            where c.is_mailable and {last_engaged} is not null and {last_engaged} < w.since
              and d.mailings >= {MIN_MAILINGS}
        ),
        segment as (select distinct contact_key from segments.reactivation)
        select
            (select count(*) from segment) as segment_size,
            (select count(*) from truly_inactive) as truly_inactive,
            (select count(*) from segment where contact_key in (select contact_key from truly_inactive)) as hits
    """


def _segment_figures(segment_size: int, truly_inactive: int, hits: int, suffix: str) -> dict:
    return {
        f"segment_size{suffix}": segment_size,
        f"truly_inactive{suffix}": truly_inactive,
        f"segment_precision{suffix}": round(hits / segment_size, 4) if segment_size else None,
        f"segment_recall{suffix}": round(hits / truly_inactive, 4) if truly_inactive else None,
    }


def _within(ours: int, truth: int, tolerance: float) -> bool:
    return abs(ours - truth) <= tolerance * truth if truth else ours == 0


def measure(warehouse: Path, world_dir: Path, as_of: str) -> dict:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach '{world_dir / 'world.duckdb'}' as world (read_only)")
        flagged = {
            (event_type, truth): (share, count)
            for event_type, truth, share, count in con.execute(f"""
            select event_type, truth, avg(case when is_machine then 1.0 else 0.0 end), count(*)
            from ({_MATCHED}) group by all""").fetchall()
        }
        mailings = con.execute(_PER_MAILING).fetchall()
        segment = {unseen: con.execute(_segment_sql(as_of, unseen)).fetchone() for unseen in (False, True)}
    finally:
        con.close()
    opens = [(truth, ours) for _, truth, ours, _, _ in mailings if truth]
    clicks = [(truth, ours) for _, _, _, truth, ours in mailings if truth]
    return {
        "flagged_share": {
            f"{event_type} by {truth}": round(share, 4) for (event_type, truth), (share, _) in sorted(flagged.items())
        },
        "events": {f"{event_type} by {truth}": count for (event_type, truth), (_, count) in sorted(flagged.items())},
        "mailings_human_opens_within_20pct": round(sum(_within(o, t, 0.2) for t, o in opens) / max(len(opens), 1), 4),
        "mailings_human_clicks_within_10pct": round(
            sum(_within(o, t, 0.1) for t, o in clicks) / max(len(clicks), 1), 4
        ),
        **_segment_figures(*segment[False], ""),
        **_segment_figures(*segment[True], "_with_unseen_reading"),
    }


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m mail_warehouse_demo.engagement_truth WAREHOUSE WORLD_DIR AS_OF (yyyy-mm-dd)")
    print(json.dumps(measure(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]), indent=2))
