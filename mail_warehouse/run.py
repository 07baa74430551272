"""`warehouse run`, the scheduled job: load every configured source, build, export, publish, and the syncs
`[sync]` switches on.

One lock per warehouse keeps two overlapping runs (cron) from writing at once: the second waits up to
`--wait` seconds, then exits with a clear message. The steps run one after the other in this process, each the
step function the command line calls (`mail_warehouse.steps`: load a source, build, export, publish), each
closing the DuckDB file before the next opens it: one interpreter and one import of dlt, DuckDB and dbt for
the whole job, where a process per step paid them six times. A step's bug is its traceback and a failed step;
the other steps still run. A failed build exports and publishes nothing. The export comes before the publish:
the copy holds the export logs, so the dashboard shows today's deliveries right after the run. After a failed
export the copy is published all the same, with the log as that export left it (a delivery failed or
unfinished shows as such; the summary says so); the syncs come last: their ledgers are not in the copy. The
exit code is non-zero when any step failed, after a summary of every step.
"""

from __future__ import annotations

import functools
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from mail_warehouse import steps
from mail_warehouse.build import freshness_summary
from mail_warehouse.forget import unfinished_erasures
from mail_warehouse.lock import WarehouseLock
from mail_warehouse.settings import SOURCE_SETTINGS, configured_sources, warehouse_path


@dataclass
class StepResult:
    name: str
    status: str  # ok | failed | skipped (source freshness: ok | stale | unknown)
    seconds: float = 0.0
    note: str = ""


def _step(name: str, stream, step: Callable[[], int], step_name: str) -> StepResult:
    """Run one step function; what it raises becomes its exit code (`steps.exit_code`), a bug its traceback:
    either way the other steps still run. Ctrl-C stops the job, not only the step it landed in."""
    print(f"== {name}", file=stream, flush=True)
    started = time.monotonic()
    try:
        code = step()
    except KeyboardInterrupt:
        raise
    except Exception as error:
        try:
            code = steps.exit_code(error, step_name)
        except Exception:  # a bug in a step: its traceback
            traceback.print_exc()
            code = steps.FAILED
    for output in (sys.stdout, sys.stderr):
        output.flush()
    return StepResult(
        name, "ok" if code == 0 else "failed", time.monotonic() - started, "" if code == 0 else f"exit code {code}"
    )


def _syncs(stream, directo_loaded: bool) -> list[StepResult]:
    """The syncs `[sync]` switches on (contacts to the mail platforms, opt-outs to Directo); a wrong `[sync]`
    setting is one failed `sync` step naming it. No opt-out goes to Directo when this run could not load it: its
    OPTINs in the warehouse may be older than a yes a clerk entered since."""
    from mail_warehouse.config import SyncConfiguration, resolve

    try:
        config = resolve(SyncConfiguration, "sync")
    except Exception as error:
        return [_step("sync", stream, functools.partial(_raise, error), "sync")]
    results = []
    for name, step, enabled, setting in (
        ("sync contacts", steps.sync_contacts, config.contacts, "contacts"),
        ("sync consent", steps.sync_consent, config.consent_to_directo, "consent_to_directo"),
    ):
        if not enabled:
            results.append(StepResult(name, "skipped", note=f"[sync] {setting} is off"))
        elif name == "sync consent" and not directo_loaded:
            results.append(StepResult(name, "skipped", note="load directo failed: its OPTINs may be out of date"))
        else:
            results.append(_step(name, stream, step, name))
    return results


def _raise(error: Exception) -> int:
    raise error


def run_steps(wait_seconds: float, full_refresh: bool = False, stream=sys.stderr) -> tuple[int, list[StepResult]]:
    """The job: every configured source loaded, built, exported, published; the exit code and each step's
    result."""
    warehouse = warehouse_path()
    done: list[StepResult] = []
    with WarehouseLock(warehouse, wait_seconds):
        if unfinished_erasures(warehouse):  # a forget killed midway: finished before anything loads
            erasures = _step(
                "finish erasures", stream, functools.partial(steps.finish_erasures, wait_seconds), "forget"
            )
            done.append(erasures)
            if erasures.status == "failed":  # a person half erased is never built, exported nor published
                skipped = [
                    StepResult(name, "skipped", note="erasures unfinished") for name in ("build", "export", "publish")
                ]
                return 1, [*done, *skipped]
        sources = configured_sources()
        for source in SOURCE_SETTINGS:
            if source in sources:
                done.append(_step(f"load {source}", stream, functools.partial(steps.load, source), source))
            else:
                done.append(StepResult(f"load {source}", "skipped", note="not configured"))
        build_started = time.time()
        # dbt's unit tests check the models' logic on fixed inputs, not the day's data: `warehouse build` and
        # the test suite run them; the daily job leaves them out (about 40 % of the build's node time).
        build_args = ["--exclude-resource-type", "unit_test", *(["--full-refresh"] if full_refresh else [])]
        build = _step("build", stream, functools.partial(steps.build, build_args), "build")
        done.append(build)
        # the build step checked the loaded sources' freshness; a stale source warns here (see build.py)
        freshness, stale = freshness_summary(since=build_started)
        done.append(StepResult("source freshness", freshness, note=stale))
        if build.status == "ok":
            # exported first: the copy holds the export logs, so it shows what this run sent (or failed to)
            export = _step("export", stream, steps.export, "export")
            done.append(export)
            published = _step("publish", stream, steps.publish, "publish")
            if export.status == "failed" and published.status == "ok":
                published.note = "after a failed export: the copy shows the export log as that export left it"
            done.append(published)
            directo_loaded = not any(s.name == "load directo" and s.status == "failed" for s in done)
            done.extend(_syncs(stream, directo_loaded))
        else:
            done.append(StepResult("export", "skipped", note="the build failed"))
            done.append(StepResult("publish", "skipped", note="the build failed"))
    failed = [s for s in done if s.status == "failed"]
    return (1 if failed else 0), done
