"""The crash matrix: each step (load clang, load spotler, load directo, build, publish, export, forget, the syncs) is
killed with SIGKILL at chosen moments, then run again; what it leaves must equal what one uninterrupted run leaves:
no row lost, no row doubled, no trigger delivered twice.

The moments are chosen by the stand-ins, real servers with an injected fault: the reply to the Nth request is
held back (the step is killed while it waits), or released and the step killed a moment later, in the local
work that follows. dbt's build is killed when it starts a chosen model, publish at fractions of its
uninterrupted duration. Every kill takes the step's whole process group, as a power cut or the OOM killer would.

Rows are compared in SQL, both directions with EXCEPT ALL, without the columns that say when something happened
(load, fetch and build times, dlt's load ids): what one run fetches again at another time is the same row.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path

import pytest

from mail_warehouse import settings
from mail_warehouse.settings import sql_literal
from mail_warehouse_demo.standins.http import Fault
from mail_warehouse_demo.standins.sftp import SftpFault
from mail_warehouse_demo.standins.stack import DEPLOYTEQ_FOLDERS
from tests.conftest import query_warehouse, warehouse_cli

pytestmark = pytest.mark.slow

# (window_start: the first day of the engagement window a build counted in; an incremental build stamps only the
# rows it counts again, so rows whose counts the moved window did not change keep an earlier build's day)
WHEN_SOMETHING_HAPPENED = re.compile(
    r"^_dlt_|loaded_at$|fetched_at$|built_at$|checked_at$|^hours_since_send$|^window_start$"
)
# One row per fetch by design (the response curve): a run killed after loading and run again adds a later
# observation of the same figures, so these compare as sets.
OBSERVATIONS = {"mailing_statistics_snapshots"}
BUILT_SCHEMAS = ("staging", "intermediate", "marts", "segments")
AS_OF = "{as_of_date: '2026-11-23'}"
STEP_TIMEOUT = 300


@dataclass
class Figures:
    """What the matrix did, printed at its end (the README quotes it)."""

    kill_points: int = 0
    killed: int = 0
    retried: int = 0  # kills timed by a delay that came after the step had finished, tried again sooner
    runs: int = 0
    rows_compared: int = 0
    rows_lost: int = 0
    rows_doubled: int = 0
    triggers_doubled: int = 0
    per_step: dict[str, int] = field(default_factory=dict)


FIGURES = Figures()


@pytest.fixture(scope="module", autouse=True)
def report_figures(request):
    yield
    if FIGURES.kill_points:
        steps = ", ".join(f"{step} {count}" for step, count in FIGURES.per_step.items())
        with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
            request.config.pluginmanager.get_plugin("terminalreporter").write_line(
                f"\ncrash matrix: {FIGURES.kill_points} kill points ({steps}), {FIGURES.killed} killed mid-step "
                f"({FIGURES.retried} tried again sooner), "
                f"{FIGURES.runs} runs; {FIGURES.rows_compared:,} rows compared, {FIGURES.rows_lost} lost, "
                f"{FIGURES.rows_doubled} doubled; {FIGURES.triggers_doubled} triggers delivered twice"
            )


# --- comparing what two runs left -------------------------------------------------------------------


def differences(reference: Path, trial: Path, schemas: list[str]) -> dict[str, tuple[int, int]]:
    """Per table of `schemas`: (rows of the reference missing from the trial, rows of the trial beyond the
    reference), compared without the columns that say when; tables missing on either side count whole."""
    con = settings.connect(":memory:")
    try:
        con.execute(f"attach {sql_literal(str(reference))} as reference (read_only)")
        con.execute(f"attach {sql_literal(str(trial))} as trial (read_only)")
        tables = {}
        for catalog in ("reference", "trial"):
            for schema, table, column in con.execute(
                f"""select table_schema, table_name, column_name from information_schema.columns
                        where table_catalog = '{catalog}' and table_name not like '\\_dlt%' escape '\\'
                        order by ordinal_position"""
            ).fetchall():
                if schema in schemas and not WHEN_SOMETHING_HAPPENED.search(column):
                    tables.setdefault((schema, table), {}).setdefault(catalog, []).append(column)
        found = {}
        for (schema, table), columns in sorted(tables.items()):
            name = f"{schema}.{table}"
            if set(columns) != {"reference", "trial"}:
                side = "reference" if "reference" in columns else "trial"
                (count,) = con.execute(f"select count(*) from {side}.{name}").fetchone()
                found[name] = (count, 0) if side == "reference" else (0, count)
                continue
            selected = ", ".join(f'"{c}"' for c in columns["reference"])
            operator = "except" if table in OBSERVATIONS else "except all"
            (lost,) = con.execute(
                f"select count(*) from (select {selected} from reference.{name} {operator} "
                f"select {selected} from trial.{name})"
            ).fetchone()
            (extra,) = con.execute(
                f"select count(*) from (select {selected} from trial.{name} {operator} "
                f"select {selected} from reference.{name})"
            ).fetchone()
            (compared,) = con.execute(f"select count(*) from reference.{name}").fetchone()
            FIGURES.rows_compared += compared
            found[name] = (lost, extra)
        return found
    finally:
        con.close()


def assert_same(reference: Path, trial: Path, schemas: list[str], what: str) -> None:
    found = differences(reference, trial, schemas)
    assert found, f"{what}: no tables to compare in {schemas}"
    FIGURES.rows_lost += sum(lost for lost, _ in found.values())
    FIGURES.rows_doubled += sum(extra for _, extra in found.values())
    wrong = {table: counts for table, counts in found.items() if counts != (0, 0)}
    assert not wrong, f"{what}: (rows lost, rows beyond an uninterrupted run) per table: {wrong}"


def schemas_of(database: Path, prefix: str) -> list[str]:
    con = settings.connect(database, read_only=True)
    try:
        return [
            s
            for (s,) in con.execute("select distinct table_schema from information_schema.tables").fetchall()
            if s == prefix or (s.startswith(prefix) and not s.endswith("_staging"))
        ]
    finally:
        con.close()


# --- killing a step at a chosen moment --------------------------------------------------------------


@dataclass
class KillPoint:
    """Where the step dies: while the reply to a request is held (`fault`, `delay` None), `delay` seconds after
    that reply was let go, when its output shows `output` (a regex), or `delay` seconds after it started."""

    name: str
    fault: Fault | SftpFault | None = None
    delay: float | None = None
    output: str | None = None
    rerun_says: str | None = None  # what the run after the kill must report (a regex)
    committed: str | None = None  # killed when DuckDB has committed this table's load job, before dlt records it

    def __str__(self) -> str:
        return self.name


def kill_mid_step(
    args: list[str],
    env: dict,
    point: KillPoint,
    log: Path,
    prepare: Callable[[KillPoint], None] = lambda _: None,
    tries: int = 4,
) -> None:
    """Run `warehouse <args>` from the state `prepare(point)` sets up (its fault injected, if any) and kill it
    at `point`, asserting that the kill landed while the step still ran: a kill after the step finished tests
    no recovery, so it never passes. A point timed by a delay the step outran is tried again from a fresh
    start, with a fresh copy of its fault (a fault acts once) and half the delay."""
    step = args[-1] if args[0] == "load" else args[0]
    FIGURES.kill_points += 1
    FIGURES.per_step[step] = FIGURES.per_step.get(step, 0) + 1
    attempt = point
    for _ in range(tries):
        attempt = replace(attempt, fault=_unreached(point.fault))
        prepare(attempt)
        if run_killed(args, env, attempt, log):
            FIGURES.killed += 1
            return
        if attempt.delay is None:
            break
        FIGURES.retried += 1
        attempt = replace(attempt, delay=attempt.delay / 2)
    pytest.fail(f"{point}: the step finished before it was killed ({tries} tries):\n{log.read_text()[-3000:]}")


def _unreached(fault):
    """A copy of `fault` as it was declared: not reached, nothing counted."""
    if fault is None:
        return None
    declared = {
        f.name: getattr(fault, f.name)
        for f in fields(fault)
        if f.default_factory is MISSING and f.name not in ("seen", "outcome")
    }
    return type(fault)(**declared)


def run_killed(args: list[str], env: dict, point: KillPoint, log: Path) -> bool:
    """Start `warehouse <args>`, kill its process group at `point`; True if it was killed before it finished.
    The step's output is kept in `log`."""
    FIGURES.runs += 1
    command = ["-c", KILL_IN_DLTS_GAP, point.committed, *args] if point.committed else ["-m", "mail_warehouse", *args]
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, *command],
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE if point.output else out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            if point.fault is not None:
                deadline = time.monotonic() + STEP_TIMEOUT
                while not point.fault.wait_reached(0.05):
                    assert process.poll() is None, (
                        f"{point}: the step ended ({process.returncode}) before the "
                        f"fault was reached:\n{log.read_text()[-3000:]}"
                    )
                    assert time.monotonic() < deadline, f"{point}: the fault was not reached in time"
                if point.delay is not None:
                    point.fault.release()
                    time.sleep(point.delay)
            elif point.output is not None:
                pattern = re.compile(point.output)
                for line in process.stdout:
                    out.write(line)
                    if pattern.search(line):
                        break
                else:
                    pytest.fail(f"{point}: the step ended without printing {point.output!r}")
            elif point.committed is not None:
                process.wait(timeout=STEP_TIMEOUT)
                assert process.returncode == -signal.SIGKILL, (
                    f"{point}: the step ended ({process.returncode}) without loading {point.committed}:\n"
                    f"{log.read_text()[-3000:]}"
                )
            else:
                time.sleep(point.delay)
            killed = process.poll() is None or process.returncode == -signal.SIGKILL
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=60)
            if isinstance(point.fault, SftpFault):
                point.fault.release_after_disconnect()
            elif point.fault is not None:
                point.fault.release()
    return killed


# dlt records a finished load job a moment after DuckDB committed it; a kill in between makes the next run load
# that job again. The step runs with dlt's recording replaced by a SIGKILL for the first job of the chosen table
# (dlt's code, not ours: the moment cannot be hit reliably from outside).
KILL_IN_DLTS_GAP = """
import os, signal, sys
from dlt.common.storages.load_package import PackageStorage
table = sys.argv[1]
record = PackageStorage.save_pending_transition
def kill_before_recording(self, load_id, file_name, state, failed_message=None):
    if file_name.startswith(table + "."):
        os.kill(os.getpid(), signal.SIGKILL)
    record(self, load_id, file_name, state, failed_message)
PackageStorage.save_pending_transition = kill_before_recording
from mail_warehouse.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_to_the_end(args: list[str], env: dict) -> subprocess.CompletedProcess:
    FIGURES.runs += 1
    result = warehouse_cli(*args, env=env, timeout=STEP_TIMEOUT)
    assert result.returncode == 0, (
        f"warehouse {' '.join(args)} after the kill:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def trial_environment(built_warehouse, folder: Path) -> dict:
    env, _, _ = built_warehouse
    folder.mkdir(parents=True, exist_ok=True)
    return {
        **env,
        "WAREHOUSE_PATH": str(folder / "warehouse.duckdb"),
        "DBT_TARGET_PATH": str(folder / "target"),
        "EXPORT__DEPLOYTEQ__LOCAL_DIR": str(folder / "exports"),
        "SOURCES__CLANG__RETRY_DELAY_SECONDS": "0.1",
        "EXPORT__DEPLOYTEQ__RETRY_DELAY_SECONDS": "0.1",
        "SOURCES__SPOTLER__RETRY_DELAY_SECONDS": "0.1",
        "SOURCES__DIRECTO__RETRY_DELAY_SECONDS": "0.1",
    }


# --- the loads ------------------------------------------------------------------------------------------


def _clang_files(world_dir: Path) -> int:
    return sum(1 for path in (world_dir / "clang").rglob("*.csv"))


LOAD_POINTS = {
    "clang": lambda files: [
        KillPoint("clang: while the listing waits", SftpFault("scandir|stat|lstat", r"clang")),
        KillPoint("clang: halfway through the downloads", SftpFault("open", r"\.csv$", nth=files // 2)),
        KillPoint("clang: 1 s after the last download began", SftpFault("open", r"\.csv$", nth=files), delay=1.0),
        KillPoint("clang: 3 s after the last download began", SftpFault("open", r"\.csv$", nth=files), delay=3.0),
        KillPoint(
            "clang: activities committed, dlt not yet told", committed="activities", rerun_says=LOADED_TWICE_REMOVED
        ),
    ],
    "spotler": lambda files: [
        KillPoint("spotler: first call held", Fault("hold", path="/integrationservice")),
        KillPoint("spotler: 30th call held", Fault("hold", path="/integrationservice", skip=29)),
        KillPoint("spotler: 0.5 s after the 50th call", Fault("hold", path="/integrationservice", skip=49), delay=0.5),
        KillPoint(
            "spotler: the 30th call dropped, then killed 1 s on",
            Fault("drop", path="/integrationservice", skip=29),
            delay=1.0,
        ),
        KillPoint(
            "spotler: snapshots committed, dlt not yet told",
            committed="mailing_statistics_snapshots",
            rerun_says=LOADED_TWICE_REMOVED,
        ),
    ],
    "directo": lambda files: [
        KillPoint("directo: the XML answer held", Fault("hold", path="xmlcore")),
        KillPoint("directo: 0.3 s into the answer", Fault("hold", path="xmlcore"), delay=0.3),
        KillPoint("directo: 0.8 s into the answer", Fault("hold", path="xmlcore"), delay=0.8),
        KillPoint(
            "directo: customers committed, dlt not yet told", committed="customers", rerun_says=LOADED_TWICE_REMOVED
        ),
        KillPoint(
            "directo: datafields committed, dlt not yet told", committed="datafields", rerun_says=LOADED_TWICE_REMOVED
        ),
    ],
}


LOADED_TWICE_REMOVED = r"^\w+: removed [\d,]+ rows the interrupted load had committed twice"


def _load_cases():
    for source, points in LOAD_POINTS.items():
        for index in range(len(points(240))):
            yield pytest.param(source, index, id=f"{source}-{index}")


@pytest.mark.parametrize("source,index", list(_load_cases()))
def test_a_killed_load_run_again_loads_what_one_run_loads(source, index, built_warehouse, world_dir, tmp_path):
    _env, reference, stack = built_warehouse
    point = LOAD_POINTS[source](_clang_files(world_dir))[index]
    server = {"clang": stack.sftp, "spotler": stack.spotler_server, "directo": stack.directo_server}[source]

    def clear_faults() -> None:
        server.clear_faults() if source == "clang" else server.reset()

    def prepare(attempt: KillPoint) -> None:
        clear_faults()
        shutil.rmtree(tmp_path / "trial", ignore_errors=True)
        trial_environment(built_warehouse, tmp_path / "trial")
        if attempt.fault is not None:
            server.inject(attempt.fault)

    trial_env = trial_environment(built_warehouse, tmp_path / "trial")
    try:
        kill_mid_step(["load", source], trial_env, point, tmp_path / "killed.log", prepare)
    finally:
        clear_faults()
    rerun = run_to_the_end(["load", source], trial_env)
    if point.rerun_says:
        assert re.search(point.rerun_says, rerun.stderr, re.MULTILINE), rerun.stderr
    assert_same(reference, tmp_path / "trial" / "warehouse.duckdb", schemas_of(reference, f"raw_{source}"), str(point))


# --- the build -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded_not_built(built_warehouse, tmp_path_factory) -> Path:
    """The session's warehouse as the loads left it: what dbt built is dropped."""
    _, reference, _ = built_warehouse
    copy = tmp_path_factory.mktemp("loaded") / "warehouse.duckdb"
    shutil.copyfile(reference, copy)
    con = settings.connect(copy)
    for schema in BUILT_SCHEMAS:
        con.execute(f"drop schema if exists {schema} cascade")
    con.close()
    return copy


BUILD_POINTS = [
    KillPoint("build: as the first staging model starts", output=r"START sql view model staging\."),
    KillPoint(
        "build: as the classified events start",
        output=r"START sql incremental model intermediate\.int_email_events_classified",
    ),
    KillPoint(
        "build: as contact_mail_history starts", output=r"START sql incremental model marts\.contact_mail_history"
    ),
    KillPoint("build: as contacts starts", output=r"START sql table model marts\.contacts\b"),
    KillPoint("build: as the segment starts", output=r"START sql table model segments\.reactivation"),
]


@pytest.mark.parametrize("point", BUILD_POINTS, ids=str)
def test_a_killed_build_built_again_equals_one_build(point, built_warehouse, loaded_not_built, tmp_path):
    _, reference, _ = built_warehouse
    trial_env = trial_environment(built_warehouse, tmp_path)
    shutil.copyfile(loaded_not_built, tmp_path / "warehouse.duckdb")
    kill_mid_step(["build", "--", "--vars", AS_OF], trial_env, point, tmp_path / "killed.log")
    run_to_the_end(["build", "--", "--vars", AS_OF], trial_env)
    assert_same(reference, tmp_path / "warehouse.duckdb", ["marts", "segments"], str(point))


# --- publish -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def published_reference(built_warehouse, tmp_path_factory) -> tuple[Path, float]:
    """One uninterrupted publish of the session's warehouse, and how long it took."""
    env, reference, _ = built_warehouse
    folder = tmp_path_factory.mktemp("published")
    shutil.copyfile(reference, folder / "warehouse.duckdb")
    started = time.monotonic()
    run_to_the_end(["publish"], {**env, "WAREHOUSE_PATH": str(folder / "warehouse.duckdb")})
    return folder / "analytics.duckdb", time.monotonic() - started


@pytest.mark.parametrize("fraction", [0.5, 0.7, 0.85, 0.95])
def test_a_killed_publish_published_again_equals_one_publish(fraction, built_warehouse, published_reference, tmp_path):
    env, reference, _ = built_warehouse
    analytics, seconds = published_reference
    trial_env = {**env, "WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb")}
    point = KillPoint(f"publish: at {fraction:.0%} of an uninterrupted publish", delay=fraction * seconds)

    def prepare(_: KillPoint) -> None:
        for leftover in tmp_path.glob("*analytics.duckdb*"):
            leftover.unlink()
        shutil.copyfile(reference, tmp_path / "warehouse.duckdb")

    kill_mid_step(["publish"], trial_env, point, tmp_path / "killed.log", prepare)
    run_to_the_end(["publish"], trial_env)
    con = settings.connect(analytics, read_only=True)
    schemas = sorted(
        {s for (s,) in con.execute("select distinct table_schema from information_schema.tables").fetchall()}
    )
    con.close()
    assert_same(analytics, tmp_path / "analytics.duckdb", schemas, str(point))


# --- the export ----------------------------------------------------------------------------------------


def _fresh_deployteq(stack) -> None:
    for folder in DEPLOYTEQ_FOLDERS:
        shutil.rmtree(stack.deployteq_dir / folder, ignore_errors=True)
        (stack.deployteq_dir / folder).mkdir(parents=True)


def _exported(database: Path) -> tuple[list[tuple], int]:
    con = settings.connect(database, read_only=True)
    try:
        delivered = con.execute("""select segment, file_name, rows, sha256 from exports.csv_trigger_log
                                   where status in ('uploaded', 'done') order by all""").fetchall()
        (contacts,) = con.execute("""select count(*) from exports.csv_trigger_contacts x
                                     join exports.csv_trigger_log l using (export_id)
                                     where l.status in ('uploaded', 'done')""").fetchone()
        return delivered, contacts
    finally:
        con.close()


@pytest.fixture(scope="module")
def exported_reference(built_warehouse, tmp_path_factory):
    """One uninterrupted export, Deployteq taking the trigger: the campaigns it started and the log."""
    _, reference, stack = built_warehouse
    folder = tmp_path_factory.mktemp("exported")
    shutil.copyfile(reference, folder / "warehouse.duckdb")
    _fresh_deployteq(stack)
    with stack.deployteq_watcher() as watcher:
        run_to_the_end(["export"], trial_environment(built_warehouse, folder))
    assert len(watcher.started) == 1
    return watcher.started, _exported(folder / "warehouse.duckdb")


NOT_SENT = r"reconciled reactivatie_\d+\.csv; an earlier run was interrupted before it reached the server"
FOUND = (
    r"reconciled reactivatie_\d+\.csv; an earlier run was interrupted after sending it; found in (Upload|Active|Done)/"
)
EXPORT_POINTS = [
    KillPoint(
        "export: while checking the folders (before the intent)",
        SftpFault("stat", r"Upload$"),
        rerun_says=r"^export reactivation: uploaded reactivatie_",
    ),
    KillPoint(
        "export: the scratch file's open held (intent committed)", SftpFault("open", r"\.part$"), rerun_says=NOT_SENT
    ),
    KillPoint("export: the first write held", SftpFault("write", r"\.part$"), rerun_says=NOT_SENT),
    KillPoint(
        "export: the read-back held (the whole file sent)", SftpFault("open", r"\.part$", nth=2), rerun_says=NOT_SENT
    ),
    KillPoint("export: the rename held before it is done", SftpFault("posix_rename", r"\.part$"), rerun_says=NOT_SENT),
    KillPoint(
        "export: the rename done, its reply held", SftpFault("posix_rename", r"\.part$", after=True), rerun_says=FOUND
    ),
    KillPoint("export: 0.05 s after the rename's reply", SftpFault("posix_rename", r"\.part$", after=True), delay=0.05),
    KillPoint("export: 0.3 s after the rename's reply", SftpFault("posix_rename", r"\.part$", after=True), delay=0.3),
]


@pytest.mark.parametrize("point", EXPORT_POINTS, ids=str)
def test_a_killed_export_run_again_starts_the_campaign_once(point, built_warehouse, exported_reference, tmp_path):
    _, reference, stack = built_warehouse
    started, logged = exported_reference
    trial_env = trial_environment(built_warehouse, tmp_path)
    with stack.deployteq_watcher() as watcher:

        def prepare(attempt: KillPoint) -> None:
            stack.deployteq.clear_faults()
            shutil.copyfile(reference, tmp_path / "warehouse.duckdb")
            _fresh_deployteq(stack)
            watcher.started.clear()
            stack.deployteq.inject(attempt.fault)

        try:
            kill_mid_step(["export"], trial_env, point, tmp_path / "killed.log", prepare)
        finally:
            stack.deployteq.clear_faults()
        rerun = run_to_the_end(["export"], trial_env)
    FIGURES.triggers_doubled += max(0, len(watcher.started) - len(started))
    assert watcher.started == started, f"{point}: campaigns started {watcher.started}, once: {started}"
    if point.rerun_says:
        assert re.search(point.rerun_says, rerun.stdout, re.MULTILINE), rerun.stdout
    assert _exported(tmp_path / "warehouse.duckdb") == logged
    assert not [p.name for p in (stack.deployteq_dir / "Upload").iterdir()], "a scratch file was left behind"


def test_a_connection_dropped_after_the_rename_is_not_followed_by_a_second_upload(
    built_warehouse, exported_reference, tmp_path
):
    """No kill: the server carries out the rename and the connection drops before its reply; the export retries,
    finds the file (in Upload/ or already in Active/), and records it as delivered without sending it again."""
    _, reference, stack = built_warehouse
    started, logged = exported_reference
    shutil.copyfile(reference, tmp_path / "warehouse.duckdb")
    _fresh_deployteq(stack)
    with stack.deployteq_watcher() as watcher:
        stack.deployteq.inject(SftpFault("posix_rename", r"\.part$", action="drop", after=True))
        try:
            result = run_to_the_end(["export"], trial_environment(built_warehouse, tmp_path))
        finally:
            stack.deployteq.clear_faults()
    FIGURES.triggers_doubled += max(0, len(watcher.started) - len(started))
    assert "uploaded reactivatie_" in result.stdout
    assert watcher.started == started
    assert _exported(tmp_path / "warehouse.duckdb") == logged


def test_a_rename_the_server_carries_out_late_is_not_a_second_delivery(built_warehouse, exported_reference, tmp_path):
    """No kill: the connection drops with the rename still queued on the server, which carries it out later,
    while the export's retry is uploading again on a new connection. The retry removed the earlier scratch
    file before looking and uploads under a scratch name of its own, so the late rename finds nothing to move:
    one campaign."""
    _, reference, stack = built_warehouse
    started, logged = exported_reference
    shutil.copyfile(reference, tmp_path / "warehouse.duckdb")
    _fresh_deployteq(stack)
    late_rename = SftpFault("posix_rename", r"\.part$", action="late")
    # the scratch file's opens: the first attempt's upload and read-back, then the retry's upload
    retry_upload = SftpFault("open", r"\.part$", nth=3)

    def carry_out_the_rename_during_the_retry() -> None:
        if retry_upload.wait_reached(120):
            late_rename.release()
            late_rename.carried_out.wait(30)
        retry_upload.release()

    with stack.deployteq_watcher() as watcher:
        stack.deployteq.inject(late_rename)
        stack.deployteq.inject(retry_upload)
        choreography = threading.Thread(target=carry_out_the_rename_during_the_retry, daemon=True)
        choreography.start()
        try:
            result = run_to_the_end(["export"], trial_environment(built_warehouse, tmp_path))
        finally:
            retry_upload.release()
            late_rename.release()
            choreography.join(30)
            stack.deployteq.clear_faults()
    FIGURES.triggers_doubled += max(0, len(watcher.started) - len(started))
    assert late_rename.outcome.startswith("failed"), late_rename.outcome
    assert "uploaded reactivatie_" in result.stdout
    assert watcher.started == started
    assert _exported(tmp_path / "warehouse.duckdb") == logged
    assert not [p.name for p in (stack.deployteq_dir / "Upload").iterdir()], "a scratch file was left behind"


# --- the export to Spotler's campaign trigger ---------------------------------------------------------------

TRIGGER = r"/campaign/trigger/"


def _spotler_outcomes(database: Path) -> list[tuple]:
    con = settings.connect(database, read_only=True)
    try:
        return con.execute("""select l.segment, l.target, c.external_contact_id, c.status
                              from exports.spotler_export_contacts c join exports.spotler_export_log l using (export_id)
                              order by all""").fetchall()
    finally:
        con.close()


def _started(stack) -> Counter:
    return Counter(contact for campaign, contact in stack.spotler_api.triggered)


@pytest.fixture(scope="module")
def spotler_reference(built_warehouse, tmp_path_factory):
    """One uninterrupted export: the contacts Spotler started and the outcomes recorded."""
    _, reference, stack = built_warehouse
    folder = tmp_path_factory.mktemp("exported-spotler")
    shutil.copyfile(reference, folder / "warehouse.duckdb")
    _fresh_deployteq(stack)
    stack.spotler_api.reset_writes()
    run_to_the_end(["export"], trial_environment(built_warehouse, folder))
    started = _started(stack)
    assert started and set(started.values()) == {1}
    return started, _spotler_outcomes(folder / "warehouse.duckdb")


SPOTLER_EXPORT_POINTS = [
    KillPoint("spotler export: the campaign list held (before the first call)", Fault("hold", path=r"/campaign/list")),
    KillPoint("spotler export: the first trigger held before Spotler acts", Fault("hold", path=TRIGGER)),
    KillPoint(
        "spotler export: between calls, the 7th trigger held before Spotler acts", Fault("hold", path=TRIGGER, skip=6)
    ),
    KillPoint(
        "spotler export: the 6th trigger carried out, its answer held (not recorded)",
        Fault("hold", path=TRIGGER, skip=5, act_first=True),
    ),
    KillPoint(
        "spotler export: 0.05 s after the 3rd trigger's answer",
        Fault("hold", path=TRIGGER, skip=2, act_first=True),
        delay=0.05,
    ),
]


@pytest.mark.parametrize("point", SPOTLER_EXPORT_POINTS, ids=str)
def test_a_killed_spotler_export_run_again_starts_every_contact_once(
    point, built_warehouse, spotler_reference, tmp_path
):
    _, reference, stack = built_warehouse
    started, outcomes = spotler_reference
    trial_env = trial_environment(built_warehouse, tmp_path)

    def prepare(attempt: KillPoint) -> None:
        stack.spotler_server.reset()
        shutil.copyfile(reference, tmp_path / "warehouse.duckdb")
        _fresh_deployteq(stack)
        stack.spotler_api.reset_writes()
        stack.spotler_server.inject(attempt.fault)

    try:
        kill_mid_step(["export"], trial_env, point, tmp_path / "killed.log", prepare)
    finally:
        stack.spotler_server.reset()
    run_to_the_end(["export"], trial_env)
    trial = _started(stack)
    FIGURES.triggers_doubled += sum(count - 1 for count in trial.values() if count > 1)
    assert trial == started, f"{point}: started twice or left out: {(trial - started) or (started - trial)}"
    assert _spotler_outcomes(tmp_path / "warehouse.duckdb") == outcomes


# --- forget ----------------------------------------------------------------------------------------------


def someone_in_every_source(database: Path) -> str:
    (row,) = query_warehouse(
        database,
        """select lower(trim(c.email)) from raw_spotler.contacts c
           where lower(trim(c.email)) in (select lower(trim(e_mailadres)) from raw_clang.activities)
             and lower(trim(c.email)) in (select lower(trim(email)) from raw_directo.customers)
           order by 1 limit 1""",
    )
    return row[0]


@pytest.fixture(scope="module")
def forgotten(built_warehouse, tmp_path_factory) -> tuple[Path, str]:
    """The session's warehouse after one uninterrupted `warehouse forget` of someone every source knows."""
    _, reference, _ = built_warehouse
    folder = tmp_path_factory.mktemp("forgotten")
    shutil.copyfile(reference, folder / "warehouse.duckdb")
    person = someone_in_every_source(reference)
    run_to_the_end(["forget", person], trial_environment(built_warehouse, folder))
    return folder / "warehouse.duckdb", person


FORGET_POINTS = [
    KillPoint("forget: as the intent is recorded", output=r"identifiers on the suppression list; sweeping"),
    KillPoint("forget: midway through the warehouse's tables", output=r"warehouse\.duckdb raw_clang\.\w+: removed"),
    KillPoint("forget: as the warehouse file is rewritten", output=r"compacting warehouse\.duckdb"),
]


@pytest.mark.parametrize("point", FORGET_POINTS, ids=str)
def test_a_killed_forget_forgotten_again_equals_one_forget(point, built_warehouse, forgotten, tmp_path):
    _, built, _ = built_warehouse
    reference, person = forgotten
    trial_env = trial_environment(built_warehouse, tmp_path)
    shutil.copyfile(built, tmp_path / "warehouse.duckdb")
    kill_mid_step(["forget", person], trial_env, point, tmp_path / "killed.log")
    run_to_the_end(["forget", person], trial_env)
    trial = tmp_path / "warehouse.duckdb"
    schemas = [*schemas_of(reference, "raw_"), *schemas_of(reference, "exports"), *BUILT_SCHEMAS]
    assert_same(reference, trial, schemas, str(point))
    assert query_warehouse(trial, "select count(*) from privacy.erasure_runs where finished_at is null") == [(0,)]
    assert sorted(query_warehouse(trial, "select identifier_hash from privacy.suppression")) == sorted(
        query_warehouse(reference, "select identifier_hash from privacy.suppression")
    )
    assert not list(tmp_path.glob(".*.compact*")), "a rewrite's scratch file was left"


# --- the syncs: contacts to Deployteq's import folder, opt-outs to Directo -----------------------------------


def _without_spotler(env: dict) -> dict:
    """A Clang + Directo company: the contacts go to Deployteq only (the shared Spotler stand-in stays untouched)."""
    return {key: value for key, value in env.items() if not key.startswith("SOURCES__SPOTLER__")}


def _synced_contacts(database: Path, stack) -> tuple[list[tuple], list[tuple]]:
    """What Deployteq's import folder holds (every file's rows) and what the warehouse records it holds."""
    received = sorted(
        tuple(line.split(";")[:2])
        for path in (stack.deployteq_dir / "Import").iterdir()
        for line in path.read_text(encoding="utf-8").splitlines()[1:]
    )
    return received, query_warehouse(database, "select platform, email, row_hash from sync.contact_state order by all")


@pytest.fixture(scope="module")
def contacts_synced_reference(built_warehouse, tmp_path_factory):
    _, reference, stack = built_warehouse
    folder = tmp_path_factory.mktemp("synced")
    shutil.copyfile(reference, folder / "warehouse.duckdb")
    _fresh_deployteq(stack)
    run_to_the_end(["sync", "contacts"], _without_spotler(trial_environment(built_warehouse, folder)))
    return _synced_contacts(folder / "warehouse.duckdb", stack)


SYNC_CONTACTS_POINTS = [
    KillPoint(
        "sync contacts: the rename held before it is done",
        SftpFault("posix_rename", r"\.part$"),
        rerun_says=r"had not delivered it; its rows go in this run's file",
    ),
    KillPoint(
        "sync contacts: the rename done, its reply held",
        SftpFault("posix_rename", r"\.part$", after=True),
        rerun_says=r"had delivered it; recorded as delivered, not sent again",
    ),
]


@pytest.mark.parametrize("point", SYNC_CONTACTS_POINTS, ids=str)
def test_a_killed_contacts_sync_run_again_delivers_each_row_once(
    point, built_warehouse, contacts_synced_reference, tmp_path
):
    _, reference, stack = built_warehouse
    trial_env = _without_spotler(trial_environment(built_warehouse, tmp_path))

    def prepare(attempt: KillPoint) -> None:
        stack.deployteq.clear_faults()
        shutil.copyfile(reference, tmp_path / "warehouse.duckdb")
        _fresh_deployteq(stack)
        stack.deployteq.inject(attempt.fault)

    try:
        kill_mid_step(["sync", "contacts"], trial_env, point, tmp_path / "killed.log", prepare)
    finally:
        stack.deployteq.clear_faults()
    rerun = run_to_the_end(["sync", "contacts"], trial_env)
    assert re.search(point.rerun_says or "", rerun.stdout + rerun.stderr), rerun.stdout + rerun.stderr
    assert _synced_contacts(tmp_path / "warehouse.duckdb", stack) == contacts_synced_reference
    assert len(list((stack.deployteq_dir / "Import").iterdir())) == 1, "one file, no scratch file left"


@pytest.fixture(scope="module")
def consent_synced_reference(built_warehouse, world_dir, tmp_path_factory):
    """The Directo customers one uninterrupted `warehouse sync consent` writes, and its ledger."""
    from mail_warehouse_demo.standins import directo

    _, reference, _ = built_warehouse
    folder = tmp_path_factory.mktemp("consent-synced")
    shutil.copyfile(reference, folder / "warehouse.duckdb")
    server, app = directo.serve(world_dir)
    try:
        env = {**trial_environment(built_warehouse, folder), "SOURCES__DIRECTO__URL": app.url(server)}
        run_to_the_end(["sync", "consent"], env)
        written = Counter((w["customer_code"], w["param"]) for w in app.writes)
    finally:
        server.stop()
    assert written and set(written.values()) == {1}
    ledger = "select customer_code, opted_out_on, status from sync.directo_consent_writes order by all"
    return written, query_warehouse(folder / "warehouse.duckdb", ledger)


SYNC_CONSENT_POINTS = [
    KillPoint("sync consent: the first write held before Directo acts", Fault("hold", path="xmlcore")),
    KillPoint(
        "sync consent: the 3rd write carried out, its answer held (not recorded)",
        Fault("hold", path="xmlcore", skip=2, act_first=True),
    ),
]


@pytest.mark.parametrize("point", SYNC_CONSENT_POINTS, ids=str)
def test_a_killed_consent_sync_run_again_writes_each_opt_out(
    point, built_warehouse, world_dir, consent_synced_reference, tmp_path
):
    """Each customer's OPTIN=no reaches Directo; the only write a rerun repeats is the one the kill cut off, whose
    outcome the ledger could not know (writing the same no and day again leaves Directo as it was)."""
    from mail_warehouse_demo.standins import directo

    _, reference, _ = built_warehouse
    written, ledger = consent_synced_reference
    trial_env = trial_environment(built_warehouse, tmp_path)
    standin: list = []

    def prepare(attempt: KillPoint) -> None:
        while standin:
            standin.pop()[0].stop()
        server, app = directo.serve(world_dir)
        standin.append((server, app))
        trial_env["SOURCES__DIRECTO__URL"] = app.url(server)
        shutil.copyfile(reference, tmp_path / "warehouse.duckdb")
        server.inject(attempt.fault)

    try:
        kill_mid_step(["sync", "consent"], trial_env, point, tmp_path / "killed.log", prepare)
        run_to_the_end(["sync", "consent"], trial_env)
        trial = Counter((w["customer_code"], w["param"]) for w in standin[0][1].writes)
    finally:
        for server, _ in standin:
            server.stop()
    repeated = trial - written
    assert set(trial) == set(written), f"{point}: written {set(trial) ^ set(written)} otherwise than once"
    # the held call is carried out once the stand-in lets it go, as a server finishes a request whose client died
    assert sum(repeated.values()) <= 1, f"{point}: repeated {repeated}"
    ledger_now = "select customer_code, opted_out_on, status from sync.directo_consent_writes order by all"
    assert query_warehouse(tmp_path / "warehouse.duckdb", ledger_now) == ledger
