"""Benchmark: generating a demo world of about 10M e-mail events, against DuckDB writing as many CSV rows.

The anchor is the floor for any generator that writes this much text: DuckDB's multi-threaded CSV writer
producing the same number of rows of the same width, in the same run on the same machine.
Prints both wall times, the ratio and the peak memory of this process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import tempfile
import time
from pathlib import Path

from results import report

from mail_warehouse.settings import connect
from mail_warehouse_demo.world import WorldSpec, simulate
from mail_warehouse_demo.writers import write_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=150_000)
    parser.add_argument("--mailings", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    try:
        started = time.perf_counter()
        world = simulate(
            WorldSpec(contacts=args.contacts, mailings=args.mailings, days=args.days, seed=1, end=dt.date(2026, 11, 23))
        )
        write_world(world, work / "world")
        generator_seconds = time.perf_counter() - started
        events = world.events.num_rows
        clang_bytes = sum(p.stat().st_size for p in (work / "world" / "clang").iterdir())
        del world

        con = connect(work / "anchor.duckdb")
        started = time.perf_counter()
        con.execute(f"""
            copy (select 20000 + i % 997 as broadcastid, 500000 + i % 150000 as customerid,
                         10000 + i % 150000 as extern, 'first.last' || (i % 150000) || '@example.nl' as email,
                         'OPEN' as activiteit, timestamp '2026-01-01' + to_seconds(i % 31536000) as datum,
                         'https://www.example-shop.nl/collectie?utm_campaign=m' || (i % 100) as beschrijving
                  from range({events}) t(i))
            to '{work / "anchor.csv"}' (format csv, header true, delimiter ';')
        """)
        anchor_seconds = time.perf_counter() - started
        con.close()
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"demo world: {events:,} events ({clang_bytes / 1e6:.0f} MB of Clang CSV plus world.duckdb and "
            f"Directo XML) in {generator_seconds:.1f} s"
        )
        print(f"anchor: DuckDB COPY of {events:,} CSV rows in {anchor_seconds:.1f} s")
        print(f"ratio generator / anchor = {generator_seconds / anchor_seconds:.1f}; peak memory {peak_mb:,.0f} MB")
        report(
            "demo_data",
            generator_seconds / anchor_seconds,
            None,
            digits=1,
            events=events,
            generator_seconds=generator_seconds,
            anchor_seconds=anchor_seconds,
            peak_mb=peak_mb,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
