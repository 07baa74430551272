"""Benchmark: Spotler sync cost on a two-year demo world with 500 mailings, in the same run:
a full re-sync of everything (the anchor), a second run with nothing new, and a run after one new mailing.
Prints calls and wall time of each, and the ratios. Target: an incremental run makes at most the settling
mailings' calls plus a constant. The last line's ratio: calls of the run with nothing new / calls of the full
re-sync.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

from results import report

from mail_warehouse.loads import load_spotler
from mail_warehouse.settings import connect
from mail_warehouse_demo.standins import spotler as standin
from mail_warehouse_demo.world import WorldSpec, simulate
from mail_warehouse_demo.writers import write_world


def timed_run(api, warehouse: Path):
    os.environ["WAREHOUSE_PATH"] = str(warehouse)
    started = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        summary = load_spotler(stream=quiet, now=api.now)
    return summary, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=2_000)
    parser.add_argument("--mailings", type=int, default=500)
    parser.add_argument("--days", type=int, default=730)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-spotler-"))
    try:
        write_world(
            simulate(
                WorldSpec(
                    contacts=args.contacts, mailings=args.mailings, days=args.days, seed=3, end=dt.date(2026, 11, 23)
                )
            ),
            work / "world",
        )
        con = connect(work / "world" / "world.duckdb", read_only=True)
        regular, last_sent = con.execute(
            "select count(*), max(sent_at) from mailings where system = 'spotler'"
        ).fetchone()
        con.close()
        server, api = standin.serve(work / "world")
        os.environ.update(
            {
                "SOURCES__SPOTLER__BASE_URL": f"{server.url}/integrationservice-1.1.0",
                "SOURCES__SPOTLER__CONSUMER_KEY": api.consumer_key,
                "SOURCES__SPOTLER__CONSUMER_SECRET": api.consumer_secret,
                "SOURCES__SPOTLER__START_DATE": (last_sent - dt.timedelta(days=args.days + 5)).date().isoformat(),
            }
        )
        try:
            api.now = last_sent - dt.timedelta(hours=1)  # the day before the last mailing goes out
            _first, _ = timed_run(api, work / "incremental.duckdb")
            quiet, quiet_seconds = timed_run(api, work / "incremental.duckdb")
            api.now = last_sent + dt.timedelta(hours=2)
            one_new, one_new_seconds = timed_run(api, work / "incremental.duckdb")
            full, full_seconds = timed_run(api, work / "full.duckdb")
        finally:
            server.stop()

        def calls(summary) -> int:
            return sum(summary.calls.values())

        print(
            f"world: {regular} Spotler mailings over {args.days} days (plus campaign mailings), "
            f"{args.contacts:,} contacts"
        )
        print(f"full re-sync (anchor): {calls(full):,} calls in {full_seconds:.1f} s")
        print(
            f"second run, nothing new: {calls(quiet):,} calls in {quiet_seconds:.1f} s; {quiet.settling} mailings "
            f"settling -> 2 x {quiet.settling} + {calls(quiet) - 2 * quiet.settling} constant"
        )
        print(
            f"run after one new mailing: {calls(one_new):,} calls in {one_new_seconds:.1f} s; "
            f"{one_new.settling} settling -> 2 x {one_new.settling} + {calls(one_new) - 2 * one_new.settling} "
            f"(1 list, 3 for the new mailing, feeds, "
            f"campaigns, forms)"
        )
        print(
            f"ratios against the full re-sync: calls {calls(quiet) / calls(full):.3f} "
            f"and {calls(one_new) / calls(full):.3f}, "
            f"wall time {quiet_seconds / full_seconds:.3f} and {one_new_seconds / full_seconds:.3f}"
        )
        report(
            "spotler_sync",
            calls(quiet) / calls(full),
            None,
            digits=3,
            full_calls=calls(full),
            quiet_calls=calls(quiet),
            one_new_calls=calls(one_new),
            full_seconds=full_seconds,
            quiet_seconds=quiet_seconds,
            one_new_seconds=one_new_seconds,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
