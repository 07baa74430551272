"""The ~10M-event world the dbt benchmarks build (bench_dbt_incremental.py, bench_spark_build.py): one spec, so
their figures are of the same data.

Newsletters go mostly through Clang here (the Spotler stand-in pages events with OFFSET and would dominate the
set-up time, not the measurement).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from mail_warehouse_demo.world import WorldSpec, simulate
from mail_warehouse_demo.writers import write_world

END = dt.date(2026, 11, 23)  # a fixed calendar: the builds run with as_of_date = END


def add_world_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contacts", type=int, default=150_000)
    parser.add_argument("--mailings", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)


def write_benchmark_world(args: argparse.Namespace, out: Path) -> int:
    """Simulate the world the arguments describe, write it to `out`, and return its number of e-mail events."""
    world = simulate(
        WorldSpec(contacts=args.contacts, mailings=args.mailings, days=args.days, seed=4, end=END, clang_share=0.97)
    )
    events = world.events.num_rows
    write_world(world, out)
    return events
