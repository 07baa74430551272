"""Benchmark: `dbt build` after one more day of data (about 1 % of the events: the world's newest days are
quiet, so the newest few days) against a full build of the same warehouse, in the same run, on a world of
about 10M e-mail events loaded by the real loaders from the stand-ins. Target: the incremental build takes at
most 0.1 of the full build's wall time.

Newsletters go mostly through Clang here (the Spotler stand-in pages events with OFFSET and would dominate
the set-up time, not the measurement).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import report
from worlds import END, add_world_arguments, write_benchmark_world

from mail_warehouse.settings import connect
from mail_warehouse_demo.standins.stack import StandinStack


def cli(*args, env) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mail_warehouse", *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"warehouse {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def _rows(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b"")) - 1


def hold_back_newest_days(clang_dir: Path, held_back: Path, share: float) -> int:
    """Move the newest days' Clang files aside until they hold `share` of all activity rows (the world's
    last days are quiet, so "one more day" of about 1 % is the newest few). Returns the number of days."""
    files = sorted(clang_dir.glob("activiteiten_*.csv"))
    total = sum(_rows(path) for path in files)
    held, days = 0, 0
    for path in reversed(files):
        if held >= share * total:
            break
        day = path.stem.split("_")[-1]
        held += _rows(path)
        days += 1
        for dated in clang_dir.glob(f"*_{day}.csv"):
            dated.rename(held_back / dated.name)
    return days


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_world_arguments(parser)
    parser.add_argument("--share", type=float, default=0.01, help="share of the events the new data holds (0.01)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-dbt-"))
    try:
        end = END
        events = write_benchmark_world(args, work / "world")
        held_back = work / "last-days"
        held_back.mkdir()
        days_back = hold_back_newest_days(work / "world" / "clang", held_back, args.share)
        with StandinStack(work / "world", work / "state") as stack:
            stack.spotler_api.now = stack.spotler_api.world_now - dt.timedelta(days=days_back)
            env = {
                **os.environ,
                **stack.environment(),
                "WAREHOUSE_PATH": str(work / "warehouse.duckdb"),
                "DBT_TARGET_PATH": str(work / "target"),
                "SOURCES__SPOTLER__START_DATE": "2025-01-01",
                "SOURCES__SPOTLER__PAGE_SIZE": "10000",
            }
            vars_ = ["--vars", f"{{as_of_date: '{end}'}}"]
            for source in ("clang", "spotler", "directo"):
                cli("load", source, env=env)
            first_build = cli("build", "--", *vars_, env=env)
            for path in held_back.iterdir():
                path.rename(work / "world" / "clang" / path.name)
            stack.spotler_api.now = stack.spotler_api.world_now
            cli("load", "clang", env=env)
            cli("load", "spotler", env=env)
            con = connect(work / "warehouse.duckdb", read_only=True)
            before = con.execute("select count(*) from marts.customer_activity").fetchone()[0]
            con.close()
            incremental = cli("build", "--", *vars_, env=env)
            full = cli("build", "--", "--full-refresh", *vars_, env=env)
        con = connect(work / "warehouse.duckdb", read_only=True)
        after = con.execute("select count(*) from marts.customer_activity").fetchone()[0]
        con.close()
        print(
            f"world: {events:,} e-mail events; customer_activity {after:,} rows after the new day "
            f"(+{after - before:,} over {before:,}, {100 * (after - before) / max(before, 1):.1f} %)"
        )
        print(f"first build (all but the newest {days_back} days): {first_build:.1f} s")
        print(f"dbt build after those days came in (incremental): {incremental:.1f} s")
        print(f"full build (--full-refresh) of the same data: {full:.1f} s")
        print(f"ratio incremental / full = {incremental / full:.2f} (target <= 0.1)")
        report(
            "dbt_incremental",
            incremental / full,
            0.1,
            events=events,
            first_build_seconds=first_build,
            incremental_seconds=incremental,
            full_seconds=full,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
