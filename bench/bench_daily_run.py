"""Benchmark: the daily `warehouse run` (load clang, spotler, directo, build, publish, export) after one new day,
on worlds of about 1M, 10M and 30M e-mail events, and on the demo world of `make run`. The daily cost must not
grow with the history: target ratio (largest world's daily run / smallest's) <= 1.5; the demo-size daily run
under 10 s.

Each world is served by the stand-ins with its newest two days held back (their Clang files moved aside, the
Spotler API's clock two days earlier); a first `warehouse run` loads and builds the history, a second runs the
day before last as every daily run after the first does (the publish before last left its standby copy, dbt
its parse), then the last day is released and the third `warehouse run` is timed. Before each run the disk
is synced: the run before wrote gigabytes a real daily run would find long written. Generated worlds are kept
in a cache folder (--cache, default /tmp/mail_warehouse_bench_worlds/, one folder per size; delete it to
regenerate), since a 30M-event world takes many minutes to generate; the warehouse is made afresh each time.

`--before REV` runs each size a second time with the project as it was at git revision REV (a worktree of it
first on PYTHONPATH, so its package, loaders and dbt models run), on the same world, and prints the daily
build's time beside this version's: what a change costs the daily run (the machine rules: at most 15 %).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import report

from mail_warehouse_demo.standins.stack import StandinStack
from mail_warehouse_demo.world import WorldSpec, simulate
from mail_warehouse_demo.writers import write_world

END = dt.date(2026, 11, 23)
HELD_BACK_DAYS = 2  # the last is timed; the one before makes the warehouse one that ran daily
# name: (contacts, mailings, days, share of mailings sent with Clang); the event counts scale with contacts x
# mailings. The demo world is make run's; the large ones send mostly with Clang, as bench/worlds.py does: the
# Spotler stand-in pages events with OFFSET, and the untimed first run of a 30M world would take hours.
SIZES = {
    "demo": (2_000, 40, 180, None),
    "1M": (15_000, 100, 365, 0.97),
    "10M": (150_000, 100, 365, 0.97),
    "30M": (450_000, 100, 365, 0.97),
}


def cached_world(cache: Path, size: str) -> Path:
    contacts, mailings, days, clang_share = SIZES[size]
    share = {} if clang_share is None else {"clang_share": clang_share}
    world_dir = cache / f"{size}-{contacts}-{mailings}-{days}-{clang_share or 'default'}-{END}" / "world"
    if not (world_dir / ".complete").exists():
        shutil.rmtree(world_dir, ignore_errors=True)
        started = time.perf_counter()
        world = simulate(WorldSpec(contacts=contacts, mailings=mailings, days=days, seed=7, end=END, **share))
        write_world(world, world_dir)
        (world_dir / ".complete").write_text(f"{world.events.num_rows}\n")
        print(
            f"{size}: generated {world.events.num_rows:,} events in {time.perf_counter() - started:.0f} s "
            f"into {world_dir}",
            flush=True,
        )
    return world_dir


def warehouse_run(env: dict, project: Path | None = None) -> tuple[float, str]:
    """`warehouse run` (of the project checked out at `project`, else this one): its wall time and summary."""
    if project is not None:
        env = {**env, "PYTHONPATH": str(project)}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "mail_warehouse", "run"], env=env, capture_output=True, text=True, cwd=project
    )
    seconds = time.perf_counter() - started
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"warehouse run failed:\n{output[-4000:]}")
    summary = re.findall(r"^warehouse run: .*$", output, re.MULTILINE)
    return seconds, summary[-1] if summary else ""


def build_seconds(summary: str) -> float:
    """The build step's seconds in a `warehouse run` summary line."""
    found = re.search(r"build ok (\d+(?:\.\d+)?) s", summary)
    return float(found.group(1)) if found else float("nan")


def checkout(revision: str, folder: Path) -> Path:
    """A worktree of the project at `revision` (removed with `git worktree prune` once its folder is gone)."""
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(folder), revision],
        check=True,
        capture_output=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return folder


def daily_run(world_dir: Path, work: Path, project: Path | None = None) -> tuple[float, str]:
    """The timed `warehouse run` after the world's newest day arrives, on a warehouse that ran daily before:
    a first run over all days but the last two (the history), a daily run for the day before last (its
    publish keeps the standby copy, dbt keeps its parse), then the last day's run is timed."""
    clang_dir = world_dir / "clang"
    days = sorted({path.stem.split("_")[-1] for path in clang_dir.glob("activiteiten_*.csv")})[-HELD_BACK_DAYS:]
    held_back = work / "held-back"
    held_back.mkdir()
    held = {day: list(clang_dir.glob(f"*_{day}.csv")) for day in days}
    for files in held.values():
        for path in files:
            path.rename(held_back / path.name)
    try:
        with StandinStack(world_dir, work / "state") as stack:
            env = {
                **os.environ,
                **stack.environment(),
                "WAREHOUSE_PATH": str(work / "warehouse.duckdb"),
                "DBT_TARGET_PATH": str(work / "target"),
                "EXPORT__DEPLOYTEQ__LOCAL_DIR": str(work / "exports"),
                "SOURCES__SPOTLER__START_DATE": "2025-01-01",
                "SOURCES__SPOTLER__PAGE_SIZE": "10000",
            }
            timed = None
            for released in range(HELD_BACK_DAYS + 1):  # the history, then one day at a time
                if released:
                    for path in held[days[released - 1]]:
                        (held_back / path.name).rename(path)
                stack.spotler_api.now = stack.spotler_api.world_now - dt.timedelta(days=HELD_BACK_DAYS - released)
                os.sync()  # a daily run starts a day after the one before, whose writes are long on disk by then
                timed = warehouse_run(env, project)
            return timed
    finally:
        for path in held_back.iterdir():  # the cached world stays whole
            path.rename(clang_dir / path.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", default=["demo", "1M", "10M", "30M"], choices=list(SIZES))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mail_warehouse_bench_worlds")
    parser.add_argument("--before", metavar="REV", help="also run each size with the project at this git revision")
    args = parser.parse_args()
    before = checkout(args.before, Path(tempfile.mkdtemp(prefix="bench-before-")) / "project") if args.before else None
    seconds: dict[str, float] = {}
    for size in args.sizes:
        world_dir = cached_world(args.cache, size)
        events = int((world_dir / ".complete").read_text())
        work = Path(tempfile.mkdtemp(prefix=f"bench-daily-{size}-"))
        try:
            seconds[size], summary = daily_run(world_dir, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"{size} ({events:,} events): daily warehouse run {seconds[size]:.1f} s; {summary}", flush=True)
        if before is not None:
            work = Path(tempfile.mkdtemp(prefix=f"bench-daily-{size}-before-"))
            try:
                before_seconds, before_summary = daily_run(world_dir, work, before)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            print(f"{size} at {args.before}: daily warehouse run {before_seconds:.1f} s; {before_summary}")
            print(
                f"{size}: daily build {build_seconds(summary):.0f} s, at {args.before} "
                f"{build_seconds(before_summary):.0f} s: x{build_seconds(summary) / build_seconds(before_summary):.2f}"
                f"; whole run x{seconds[size] / before_seconds:.2f}",
                flush=True,
            )
    if before is not None:
        shutil.rmtree(before.parent, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=Path(__file__).resolve().parent.parent)
    if "demo" in seconds:
        print(f"demo-size daily run: {seconds['demo']:.1f} s (target < 10 s)")
    scaled = [size for size in args.sizes if size != "demo"]
    if len(scaled) >= 2:
        ratio = seconds[scaled[-1]] / seconds[scaled[0]]
        print(f"ratio {scaled[-1]} / {scaled[0]} = {ratio:.2f} (target <= 1.5)")
        report("daily_run", ratio, 1.5, seconds=seconds)
    else:
        print("give --sizes two of 1M, 10M, 30M for the ratio")
        report("daily_run", None, 1.5, seconds=seconds)


if __name__ == "__main__":
    main()
