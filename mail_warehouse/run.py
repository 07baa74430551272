"""`warehouse run`, the scheduled job: load every configured source, build, publish, export.

One lock per warehouse keeps two overlapping runs (cron) from writing at once: the second waits up to
`--wait` seconds, then exits with a clear message. The steps run one after the other in this process, each as
the command line runs it (`warehouse load <source>`, `build`, `publish`, `export`), each closing the DuckDB
file before the next opens it: one interpreter and one import of dlt, DuckDB and dbt for the whole job, where a
process per step paid them six times. A step's bug is its traceback and a failed step; the other steps still
run. A failed build publishes and exports nothing. The exit code is non-zero when any step failed, after a
summary of every step.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from mail_warehouse.build import freshness_summary
from mail_warehouse.lock import LockBusy, WarehouseLock  # noqa: F401  (LockBusy: the CLI catches it)
from mail_warehouse.settings import SOURCE_SETTINGS, configured_sources, warehouse_path

INTERRUPTED = 130  # the exit code of a command stopped by Ctrl-C


@dataclass
class StepResult:
    name: str
    status: str  # ok | failed | skipped (source freshness: ok | stale | unknown)
    seconds: float = 0.0
    note: str = ""


def _step(name: str, args: list[str], stream, command: Callable[[list[str]], int]) -> StepResult:
    print(f"== {name}", file=stream, flush=True)
    started = time.monotonic()
    try:
        code = command(args)
    except Exception:  # a bug in a step run in this process: its traceback, and the other steps still run
        traceback.print_exc()
        code = 1
    if code == INTERRUPTED:  # Ctrl-C stops the job, not only the step it landed in
        raise KeyboardInterrupt
    for output in (sys.stdout, sys.stderr):
        output.flush()
    return StepResult(
        name, "ok" if code == 0 else "failed", time.monotonic() - started, "" if code == 0 else f"exit code {code}"
    )


def run_steps(
    command: Callable[[list[str]], int], wait_seconds: float, full_refresh: bool = False, stream=sys.stderr
) -> tuple[int, list[StepResult]]:
    """The job; `command` runs a `warehouse` command and returns its exit code (the command line's own `main`)."""
    warehouse = warehouse_path()
    steps: list[StepResult] = []
    with WarehouseLock(warehouse, wait_seconds):
        sources = configured_sources()
        for source in SOURCE_SETTINGS:
            if source in sources:
                steps.append(_step(f"load {source}", ["load", source], stream, command))
            else:
                steps.append(StepResult(f"load {source}", "skipped", note="not configured"))
        build_started = time.time()
        # dbt's unit tests check the models' logic on fixed inputs, not the day's data: `warehouse build` and
        # the test suite run them; the daily job leaves them out (about 40 % of the build's node time).
        build_args = ["--exclude-resource-type", "unit_test", *(["--full-refresh"] if full_refresh else [])]
        build = _step("build", ["build", "--", *build_args], stream, command)
        steps.append(build)
        # the build step checked the loaded sources' freshness; a stale source warns here (see build.py)
        freshness, stale = freshness_summary(since=build_started)
        steps.append(StepResult("source freshness", freshness, note=stale))
        if build.status == "ok":
            steps.append(_step("publish", ["publish"], stream, command))
            steps.append(_step("export", ["export"], stream, command))
        else:
            steps.append(StepResult("publish", "skipped", note="the build failed"))
            steps.append(StepResult("export", "skipped", note="the build failed"))
    failed = [s for s in steps if s.status == "failed"]
    return (1 if failed else 0), steps
