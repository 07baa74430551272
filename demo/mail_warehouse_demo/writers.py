"""Write a simulated world to disk the way each source system delivers it.

<out>/world.duckdb         every table of the world, read by the Spotler and Directo stand-ins and by
                           tests that check the marts against what the generator knows
<out>/clang/               what Clang/Deployteq puts on its SFTP server: per day an activities file
                           and a broadcasts file (`activiteiten_YYYYMMDD.csv`, `broadcasts_YYYYMMDD.csv`)
<out>/directo/customers.xml  a full Directo customers answer
<out>/world.json           the spec and row counts
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import duckdb

from mail_warehouse.settings import connect
from mail_warehouse_demo.directo_xml import render_transport
from mail_warehouse_demo.world import World, WorldSpec

CLANG_ACTIVITY_HEADER = (
    "Broadcastid",
    "Customerid",
    "Extern klantnummer",
    "E-mailadres",
    "Activiteit",
    "Activiteitdatum",
    "Beschrijving activiteit",
)
CLANG_BROADCAST_HEADER = ("Broadcastid", "Broadcast type", "Beschrijving", "Onderwerp", "Verzonden op")
# Clang's activity codes are not published in full: these are the demo's, mapped in seeds/clang_activity_types.csv.
CLANG_ACTIVITY_CODES = {
    "sent": "SEND",
    "hard_bounce": "HARDBOUNCE",
    "soft_bounce": "SOFTBOUNCE",
    "open": "OPEN",
    "click": "CLICK",
    "unsubscribe": "UNSUBSCRIBE",
    "complaint": "COMPLAINT",
}
CLANG_TIME_ZONE = "Europe/Amsterdam"
WORLD_TABLES = (
    "people",
    "customers",
    "datafields",
    "mailings",
    "links",
    "sends",
    "events",
    "conversions",
    "campaigns",
    "form_results",
)


def write_world(
    world: World, out: Path, *, clang_delimiter: str = ";", clang_machine_column: str | None = None
) -> dict:
    """The world's tables (world.duckdb, with truth views) and its exports. `clang_machine_column`: the
    activities files carry that additional field, 1 for an event a machine made, else 0 (as Deployteq's
    `machine_generated`)."""
    out.mkdir(parents=True, exist_ok=True)
    database = out / "world.duckdb"
    database.unlink(missing_ok=True)
    con = connect(database)
    try:
        for name in WORLD_TABLES:
            con.register(f"arrow_{name}", getattr(world, name))
            con.execute(f"create table {name} as select * from arrow_{name}")
            con.unregister(f"arrow_{name}")
        _create_truth_views(con)
        files = write_clang_exports(
            con, out / "clang", world.spec, delimiter=clang_delimiter, machine_column=clang_machine_column
        )
    finally:
        con.close()
    write_directo_export(database, out / "directo" / "customers.xml")
    manifest = {
        "spec": {**asdict(world.spec), "end": world.spec.end.isoformat()},
        "now": world.spec.end_ts,
        "counts": world.counts(),
        "clang_files": files,
    }
    (out / "world.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _create_truth_views(con: duckdb.DuckDBPyConnection) -> None:
    """What each mailing really got: the figures the marts must reproduce (a click counts as an open)."""
    con.execute("""
        create view truth_mailing_counts as
        select
            m.mailing_index, m.system, m.source_id, m.mailing_type,
            count(*) filter (where e.event_type = 'sent') as sent,
            count(*) filter (where e.event_type = 'sent')
                - count(*) filter (where e.event_type in ('hard_bounce', 'soft_bounce')) as delivered,
            count(*) filter (where e.event_type = 'hard_bounce') as hard_bounces,
            count(*) filter (where e.event_type = 'soft_bounce') as soft_bounces,
            count(distinct e.person_id) filter (where e.event_type in ('open', 'click')) as unique_opens,
            count(*) filter (where e.event_type = 'open') as total_open_events,
            count(distinct e.person_id) filter (where e.event_type = 'click') as unique_clicks,
            count(*) filter (where e.event_type = 'click') as total_clicks,
            count(*) filter (where e.event_type = 'unsubscribe') as unsubscribes,
            count(*) filter (where e.event_type = 'complaint') as complaints
        from mailings m
        left join events e using (mailing_index)
        group by all
    """)


def write_clang_exports(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    spec: WorldSpec,
    *,
    delimiter: str = ";",
    machine_column: str | None = None,
) -> int:
    """Per local day an activities file and a broadcasts file, as Clang's nightly export writes them.

    The broadcasts file repeats a broadcast on every day it had activity, as the real export does; a day
    without activity still gets both files, holding only the header.
    """
    if folder.exists():
        shutil.rmtree(folder)
    staging = folder / ".partitions"
    staging.mkdir(parents=True)
    codes = " ".join(f"when '{k}' then '{v}'" for k, v in CLANG_ACTIVITY_CODES.items())
    con.execute(f"""
        create or replace temp view clang_activity_rows as
        select
            m.source_id as "Broadcastid",
            p.clang_customer_id as "Customerid",
            p.directo_code as "Extern klantnummer",
            -- a few addresses as typed by the customer: capitals, a stray space
            case when hash(p.person_id) % 23 = 0 then upper(left(p.email, 1)) || substr(p.email, 2) || ' '
                 else p.email end as "E-mailadres",
            case e.event_type {codes} end as "Activiteit",
            strftime(timezone('{CLANG_TIME_ZONE}', e.event_at), '%Y-%m-%d %H:%M:%S') as "Activiteitdatum",
            case when e.event_type = 'click' then l.url else e.reason end as "Beschrijving activiteit",
            {f'case when e.machine is not null then 1 else 0 end as "{machine_column}",' if machine_column else ""}
            strftime(timezone('{CLANG_TIME_ZONE}', e.event_at), '%Y%m%d') as file_day,
            e.event_seq
        from events e
        join mailings m using (mailing_index)
        join people p using (person_id)
        left join links l on l.mailing_index = e.mailing_index and l.link_id = e.link_id
        where m.system = 'clang'
    """)
    options = f"format csv, header true, delimiter '{delimiter}', partition_by (file_day), overwrite_or_ignore true"
    con.execute(f"""
        copy (select * exclude (event_seq) from clang_activity_rows order by file_day, event_seq)
        to '{staging / "activities"}' ({options})
    """)
    con.execute(f"""
        copy (
            with active_days as (
                select distinct "Broadcastid", file_day from clang_activity_rows
                union
                select source_id, strftime(timezone('{CLANG_TIME_ZONE}', sent_at), '%Y%m%d')
                from mailings where system = 'clang'
            )
            select
                m.source_id as "Broadcastid", m.mailing_type as "Broadcast type", m.mailing_name as "Beschrijving",
                m.subject as "Onderwerp",
                strftime(timezone('{CLANG_TIME_ZONE}', m.sent_at), '%Y-%m-%d %H:%M:%S') as "Verzonden op",
                d.file_day
            from active_days d join mailings m on m.source_id = d."Broadcastid" and m.system = 'clang'
            order by d.file_day, m.sent_at
        ) to '{staging / "broadcasts"}' ({options})
    """)
    export_days = [spec.end - dt.timedelta(days=n) for n in range(spec.days, 0, -1)]
    written = 0
    activity_header = CLANG_ACTIVITY_HEADER + ((machine_column,) if machine_column else ())
    for kind, prefix, header in (
        ("activities", "activiteiten", activity_header),
        ("broadcasts", "broadcasts", CLANG_BROADCAST_HEADER),
    ):
        for day in export_days:
            target = folder / f"{prefix}_{day:%Y%m%d}.csv"
            parts = sorted((staging / kind / f"file_day={day:%Y%m%d}").glob("*.csv"))
            if parts:
                _concatenate_csv(parts, target)
            else:
                target.write_text(delimiter.join(header) + "\n", encoding="utf-8")
            written += 1
    shutil.rmtree(staging)
    return written


def _concatenate_csv(parts: list[Path], target: Path) -> None:
    """DuckDB may write a partition as several files; Clang writes one, with one header."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        for i, part in enumerate(parts):
            with part.open("rb") as handle:
                header = handle.readline()
                if i == 0:
                    out.write(header)
                shutil.copyfileobj(handle, out)


def iter_directo_customers(con: duckdb.DuckDBPyConnection, *, changed_since=None, batch_size: int = 10_000):
    """Customers with their datafields from world.duckdb, optionally only those changed since a UTC time."""
    where = "where c.ts >= $since" if changed_since is not None else ""
    params = {"since": changed_since} if changed_since is not None else {}
    cursor = con.cursor()
    cursor.execute(
        f"""
        select c.*, coalesce(list(struct_pack(d.datafield_code, d.content, d.param)
                                  order by d.datafield_code) filter (where d.datafield_code is not null), [])
               as datafield_list
        from customers c left join datafields d on d.customer_code = c.code
        {where}
        group by all
        order by c.code
    """,
        params,
    )
    columns = [d[0] for d in cursor.description]
    while rows := cursor.fetchmany(batch_size):
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            fields = [(f["datafield_code"], f["content"], f["param"]) for f in record.pop("datafield_list")]
            yield record, fields


def write_directo_export(database: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    con = connect(database, read_only=True)
    try:
        with target.open("wb") as out:
            for chunk in render_transport(iter_directo_customers(con)):
                out.write(chunk)
    finally:
        con.close()
