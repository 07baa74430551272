"""Benchmark: the daily `warehouse run` (load clang, spotler, directo, build, publish, export) after one new day,
as the history grows: one company with a steady customer base (15,000 customers, sign-ups replacing those
lost, 100 mailings a year, 97 % sent with Clang; `WorldSpec(steady=True)`) after one, three and five years.
The daily cost must not grow with the history: target ratio (five years' daily run / one year's) <= 1.3.
Beside it, in the same run: the same day built as a full refresh on the five-year world (`warehouse run
--full-refresh`, every table rebuilt, as the dbt packages for e-mail data do every day), and the daily run on
the demo world of `make run`.

`--mode growth` measures the company growing instead (the demo world and worlds of about 1M, 10M and 30M
events of one year: 15,000 to 450,000 customers); its ratio (largest / smallest) guards against a daily cost
that follows the company's size more than it must.

Each world is served by the stand-ins with its newest two days held back (their Clang files moved aside, the
Spotler API's clock two days earlier); a first `warehouse run` loads and builds the history, a second runs the
day before last as every daily run after the first does (the publish before last left its standby copy, dbt
its parse), then the last day is released and the third `warehouse run` is timed. Before each run the disk
is synced: the run before wrote gigabytes a real daily run would find long written. Generated worlds are kept
in a cache folder (--cache, default /tmp/mail_warehouse_bench_worlds/, one folder per size; delete it to
regenerate), since a large world takes minutes to generate; the warehouse is made afresh each time.

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
# name: (contacts, mailings, days, share of mailings sent with Clang, steady company)
SIZES = {
    "demo": (2_000, 40, 180, None, False),
    "1M": (15_000, 100, 365, 0.97, False),
    "10M": (150_000, 100, 365, 0.97, False),
    "30M": (450_000, 100, 365, 0.97, False),
    "1y": (15_000, 100, 365, 0.97, True),
    "3y": (15_000, 300, 3 * 365, 0.97, True),
    "5y": (15_000, 500, 5 * 365, 0.97, True),
}
MODES = {  # mode: (its default sizes, the target of its ratio of the last size's daily run to the first's)
    "history": (["demo", "1y", "3y", "5y"], 1.3),
    "growth": (["demo", "1M", "10M", "30M"], None),
}
GROWTH_ACCEPTED = "2.2-2.9 for a 30x larger company"


def cached_world(cache: Path, size: str) -> Path:
    contacts, mailings, days, clang_share, steady = SIZES[size]
    share = {} if clang_share is None else {"clang_share": clang_share}
    kind = "-steady" if steady else ""
    world_dir = cache / f"{size}-{contacts}-{mailings}-{days}-{clang_share or 'default'}{kind}-{END}" / "world"
    if not (world_dir / ".complete").exists():
        shutil.rmtree(world_dir, ignore_errors=True)
        started = time.perf_counter()
        spec = WorldSpec(contacts=contacts, mailings=mailings, days=days, seed=7, end=END, steady=steady, **share)
        world = simulate(spec)
        write_world(world, world_dir)
        (world_dir / ".complete").write_text(f"{world.events.num_rows}\n")
        print(
            f"{size}: generated {world.events.num_rows:,} events in {time.perf_counter() - started:.0f} s "
            f"into {world_dir}",
            flush=True,
        )
    return world_dir


def warehouse_run(env: dict, project: Path | None = None, *options: str) -> tuple[float, str]:
    """`warehouse run` (of the project checked out at `project`, else this one): its wall time and summary."""
    if project is not None:
        env = {**env, "PYTHONPATH": str(project)}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "mail_warehouse", "run", *options], env=env, capture_output=True, text=True, cwd=project
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


def daily_run(
    world_dir: Path, work: Path, project: Path | None = None, full_refresh: bool = False
) -> tuple[tuple[float, str], tuple[float, str] | None, tuple[float, str]]:
    """The timed `warehouse run` after the world's newest day arrives, on a warehouse that ran daily before:
    a first run over all days but the last two (the history), a daily run for the day before last (its
    publish keeps the standby copy, dbt keeps its parse), then the last day's run is timed. With
    `full_refresh`, the same day is then built again as a full refresh (`warehouse run --full-refresh`: the
    loads find nothing new, dbt rebuilds every table), timed too. Returns the timed run, the full refresh's
    and the first run's (over the history: on the demo world, what `make run` does on a fresh clone)."""
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
            runs = []
            for released in range(HELD_BACK_DAYS + 1):  # the history, then one day at a time
                if released:
                    for path in held[days[released - 1]]:
                        (held_back / path.name).rename(path)
                stack.spotler_api.now = stack.spotler_api.world_now - dt.timedelta(days=HELD_BACK_DAYS - released)
                os.sync()  # a daily run starts a day after the one before, whose writes are long on disk by then
                runs.append(warehouse_run(env, project))
            refreshed = None
            if full_refresh:
                os.sync()
                refreshed = warehouse_run(env, project, "--full-refresh")
            return runs[-1], refreshed, runs[0]
    finally:
        for path in held_back.iterdir():  # the cached world stays whole
            path.rename(clang_dir / path.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=list(MODES), default="history", help="grow the history or the company")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), help="the worlds (default: the mode's)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mail_warehouse_bench_worlds")
    parser.add_argument("--before", metavar="REV", help="also run each size with the project at this git revision")
    parser.add_argument(
        "--no-full-refresh", action="store_true", help="leave out the full refresh of the largest world"
    )
    args = parser.parse_args()
    default_sizes, target = MODES[args.mode]
    sizes = args.sizes or default_sizes
    scaled = [size for size in sizes if size != "demo"]
    before = checkout(args.before, Path(tempfile.mkdtemp(prefix="bench-before-")) / "project") if args.before else None
    seconds: dict[str, float] = {}
    build: dict[str, float] = {}
    events: dict[str, int] = {}
    full_refresh: dict[str, float] = {}
    first_seconds: dict[str, float] = {}
    for size in sizes:
        world_dir = cached_world(args.cache, size)
        events[size] = int((world_dir / ".complete").read_text())
        refresh = args.mode == "history" and not args.no_full_refresh and scaled and size == scaled[-1]
        work = Path(tempfile.mkdtemp(prefix=f"bench-daily-{size}-"))
        try:
            (seconds[size], summary), refreshed, (first_seconds[size], first_summary) = daily_run(
                world_dir, work, full_refresh=refresh
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        build[size] = build_seconds(summary)
        print(f"{size} ({events[size]:,} events): daily warehouse run {seconds[size]:.1f} s; {summary}", flush=True)
        print(f"{size}: the first run, over the history: {first_seconds[size]:.1f} s; {first_summary}", flush=True)
        if refreshed is not None:
            full_refresh = {"run_seconds": refreshed[0], "build_seconds": build_seconds(refreshed[1])}
            print(f"{size}, the same day as a full refresh: warehouse run {refreshed[0]:.1f} s; {refreshed[1]}")
            print(
                f"{size}: daily (incremental) / full refresh: build {build[size]:.1f} / "
                f"{full_refresh['build_seconds']:.1f} s = {build[size] / full_refresh['build_seconds']:.2f}, "
                f"whole run {seconds[size]:.1f} / {refreshed[0]:.1f} s = {seconds[size] / refreshed[0]:.2f}",
                flush=True,
            )
        if before is not None:
            work = Path(tempfile.mkdtemp(prefix=f"bench-daily-{size}-before-"))
            try:
                (before_seconds, before_summary), _, _ = daily_run(world_dir, work, before)
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
        print(
            f"demo world: daily run {seconds['demo']:.1f} s (build {build['demo']:.1f} s); first run, as `make run` "
            f"on a fresh clone: {first_seconds['demo']:.1f} s"
        )
    figures = {
        "mode": args.mode,
        "seconds": seconds,
        "build_seconds": build,
        "events": events,
        "demo_daily_run_seconds": seconds.get("demo"),
        "first_run_seconds": first_seconds,
    }
    if full_refresh:
        full_refresh["daily_over_full_refresh_build"] = round(build[scaled[-1]] / full_refresh["build_seconds"], 3)
        full_refresh["daily_over_full_refresh_run"] = round(seconds[scaled[-1]] / full_refresh["run_seconds"], 3)
        figures["full_refresh"] = full_refresh
    ratio = None
    if len(scaled) >= 2:
        ratio = seconds[scaled[-1]] / seconds[scaled[0]]
        aim = f"target <= {target:g}" if target else f"accepted: {GROWTH_ACCEPTED}"
        print(f"ratio {scaled[-1]} / {scaled[0]} = {ratio:.2f} ({aim})")
    else:
        print("give --sizes two worlds besides demo for the ratio")
    report("daily_run" if args.mode == "history" else "daily_run_growth", ratio, target, **figures)


if __name__ == "__main__":
    main()
