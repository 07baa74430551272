"""The steps of the job (load a source, build, publish, export), each a function that the command line and
`warehouse run` both call. A step prints its summary and returns its exit code; what it raises is turned
into one exit code and one message by `exit_code()`, the one table of exceptions and codes."""

from __future__ import annotations

import sys
from pathlib import Path

# Exit codes: 0 done, 1 the step failed (a server refused, a file was rejected, a build failed), 2 a setting or
# a command line is wrong, 75 (EX_TEMPFAIL) the warehouse is busy: try again later, 130 interrupted (Ctrl-C).
FAILED, WRONG_SETTING, BUSY, INTERRUPTED = 1, 2, 75, 130


def exit_code(error: BaseException, step: str, stream=sys.stderr) -> int:
    """Print what went wrong in `step` and return its exit code; a bug (an exception in no row of the table)
    is raised again, so that its traceback shows."""
    for kinds, code in _exit_code_table():
        if isinstance(error, kinds):
            cause = _unwrapped(error)
            print(f"error: {step}: {cause}" if step else f"error: {cause}", file=stream)
            return code
    raise error


def _exit_code_table() -> list[tuple[tuple[type[BaseException], ...], int]]:
    from dlt.common.configuration.exceptions import ConfigurationException
    from dlt.pipeline.exceptions import PipelineStepFailed

    from mail_warehouse.consent_guard import ConsentGuardError
    from mail_warehouse.dashboard import DashboardError
    from mail_warehouse.export_config import ExportError
    from mail_warehouse.forget import ForgetError
    from mail_warehouse.lake import SparkTablesError
    from mail_warehouse.lock import LockBusy
    from mail_warehouse.privacy import PrivacySecretMissing
    from mail_warehouse.publish import PublishError
    from mail_warehouse.sync import SyncError
    from mail_warehouse_sources.directo import DirectoError
    from mail_warehouse_sources.sftp import SftpError
    from mail_warehouse_sources.spotler import SpotlerError

    return [
        ((KeyboardInterrupt,), INTERRUPTED),
        ((LockBusy,), BUSY),
        ((ConfigurationException, DashboardError, DemoNotInstalled, PrivacySecretMissing, ForgetError), WRONG_SETTING),
        ((SftpError, DirectoError, SpotlerError, ExportError, ConsentGuardError, PublishError, SyncError), FAILED),
        ((SparkTablesError,), FAILED),
        ((PipelineStepFailed,), FAILED),  # only when it wraps one of the failures above (see _unwrapped)
    ]


def _unwrapped(error: BaseException) -> BaseException:
    """dlt wraps a source's failure in PipelineStepFailed: the source's own error speaks for it. A wrapped bug
    is raised as it is."""
    from dlt.pipeline.exceptions import PipelineStepFailed

    from mail_warehouse.pipelines import unwrap
    from mail_warehouse_sources.sftp import SftpError

    if isinstance(error, PipelineStepFailed):
        cause = unwrap(error, SftpError)
        if cause is error:
            raise error
        return cause
    return error


class DemoNotInstalled(Exception):
    """`warehouse demo` and `demo-data` need the demo package, which the runtime install does not carry."""


# --- the steps -------------------------------------------------------------------------------------------


def load(source: str, *, full: bool = False, contacts: Path | None = None, stream=sys.stderr) -> int:
    """`warehouse load <source>`: into the warehouse, or with the spark engine into the lake."""
    from mail_warehouse.engine import current_engine

    return current_engine().load(source, full=full, contacts=contacts, stream=stream)


def build(dbt_args: list[str]) -> int:
    """`warehouse build`: dbt build, then the sources' freshness."""
    from mail_warehouse.build import dbt_build

    return dbt_build(dbt_args)


def publish() -> int:
    """`warehouse publish`: analytics.duckdb."""
    from mail_warehouse.publish import publish as publish_copy

    print(publish_copy().line())
    return 0


def export(
    segments: list[str] | None = None, *, force: bool = False, dry_run: bool = False, wait_seconds: float = 0
) -> int:
    """`warehouse export`: the segments to their targets."""
    from mail_warehouse.export import export_segments

    results = export_segments(segments or [], force=force, dry_run=dry_run, wait_seconds=wait_seconds)
    for result in results:
        print(result.line())
    return FAILED if any(r.status == "failed" for r in results) else 0


def sync_contacts(*, dry_run: bool = False, wait_seconds: float = 0) -> int:
    """`warehouse sync contacts`: the Directo customers to each configured mail platform."""
    from mail_warehouse.sync.contacts import sync_contacts as send

    result = send(dry_run=dry_run, wait_seconds=wait_seconds)
    for line in result.lines():
        print(line)
    return FAILED if result.failed else 0


def sync_consent(*, dry_run: bool = False, wait_seconds: float = 0) -> int:
    """`warehouse sync consent`: the opt-outs Directo does not know, written to its OPTIN."""
    from mail_warehouse.sync.directo_consent import sync_consent as send

    result = send(dry_run=dry_run, wait_seconds=wait_seconds)
    print(result.line())
    return FAILED if result.status == "failed" else 0


def forget(
    addresses: list[str],
    *,
    file: Path | None = None,
    dry_run: bool = False,
    propagate: bool = False,
    wait_seconds: float = 0,
) -> int:
    """`warehouse forget`: erase people everywhere, under both of the warehouse's locks (no run, no export)."""
    from mail_warehouse.forget import forget as erase
    from mail_warehouse.forget import read_addresses
    from mail_warehouse.lock import WarehouseLock
    from mail_warehouse.settings import warehouse_path

    people = read_addresses(addresses, file)
    warehouse = warehouse_path()
    with WarehouseLock(warehouse, wait_seconds), WarehouseLock(warehouse, wait_seconds, command="export"):
        erasure = erase(people, dry_run=dry_run, propagate=propagate)
    print(erasure.line(dry_run))
    return 0 if erasure.propagated else FAILED


def finish_erasures(wait_seconds: float = 0) -> int:
    """Finish the erasures a killed `warehouse forget` left (the caller holds the run lock)."""
    from mail_warehouse.forget import finish_erasures as sweep
    from mail_warehouse.lock import WarehouseLock
    from mail_warehouse.settings import warehouse_path

    with WarehouseLock(warehouse_path(), wait_seconds, command="export"):
        done = sweep()
    print(f"forget: unfinished erasures finished; {done.total:,} rows and files removed")
    return 0


def export_status(wait_seconds: float = 0) -> int:
    """`warehouse export --status`: what became of the deliveries."""
    from mail_warehouse.export import check_status

    for line in check_status(wait_seconds=wait_seconds):
        print(line)
    return 0
