"""`warehouse run` exports before it publishes: the BI copy (what the dashboard reads) holds the deliveries of the
run that wrote it, also when the export failed."""

from __future__ import annotations

import pytest

from tests.conftest import query_warehouse, warehouse_cli

pytestmark = pytest.mark.slow

CSV_LOG = "select export_id, file_name, status, rows from exports.csv_trigger_log order by all"
SPOTLER_LOG = "select export_id, target, export_day, status, triggered from exports.spotler_export_log order by all"


def uploaded(stack) -> list[str]:
    return sorted(p.name for p in (stack.deployteq_dir / "Upload").iterdir())


def summary_steps(stdout: str) -> list[str]:
    """The step names of the run's last line ("warehouse run: load clang ok; ...; export ok 1 s; ...")."""
    line = stdout.strip().splitlines()[-1]
    assert line.startswith("warehouse run: "), line
    return [
        step.split(" ok")[0].split(" failed")[0].split(" skipped")[0] for step in line.split(": ", 1)[1].split("; ")
    ]


def test_the_copy_a_run_publishes_holds_the_file_and_the_trigger_that_run_sent(warehouse_copy, tmp_path):
    env, database, stack = warehouse_copy
    env = {**env, "DBT_TARGET_PATH": str(tmp_path / "target")}
    analytics = database.with_name("analytics.duckdb")
    assert uploaded(stack) == [] and not analytics.exists()

    ran = warehouse_cli("run", "--wait", "0", env=env)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    steps = summary_steps(ran.stdout)
    assert steps.index("build") < steps.index("export") < steps.index("publish"), steps
    (file_name,) = uploaded(stack)
    assert file_name.startswith("reactivatie_")

    csv_log = query_warehouse(analytics, CSV_LOG)
    assert csv_log == query_warehouse(database, CSV_LOG)
    assert [(name, status) for _, name, status, _ in csv_log] == [(file_name, "uploaded")]
    spotler_log = query_warehouse(analytics, SPOTLER_LOG)
    assert spotler_log == query_warehouse(database, SPOTLER_LOG)
    (today,) = query_warehouse(database, "select export_day from exports.csv_trigger_log")[0]
    assert [(target, day, status) for _, target, day, status, _ in spotler_log] == [("reactivatie", today, "done")]
    assert spotler_log[0][4] > 0, "the run started the Spotler campaign for someone"


def test_after_a_failed_export_the_copy_shows_what_that_export_did(warehouse_copy, tmp_path):
    """Spotler refuses the account (its load and its trigger fail), Deployteq takes the file: the export fails,
    and the copy published after it still shows the file it delivered, the summary saying why."""
    env, database, stack = warehouse_copy
    env = {
        **env,
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "SOURCES__SPOTLER__CONSUMER_SECRET": "not-the-secret",
        "SOURCES__SPOTLER__MAX_ATTEMPTS": "1",
    }
    ran = warehouse_cli("run", "--wait", "0", env=env)
    output = ran.stdout + ran.stderr
    assert ran.returncode == 1, output[-3000:]
    summary = ran.stdout.strip().splitlines()[-1]
    assert "build ok" in summary and "export failed" in summary, summary
    assert "publish ok (after a failed export: the copy shows the export log as that export left it)" in summary
    (file_name,) = uploaded(stack)
    analytics = database.with_name("analytics.duckdb")
    csv_log = query_warehouse(analytics, CSV_LOG)
    assert [(name, status) for _, name, status, _ in csv_log] == [(file_name, "uploaded")]
    assert query_warehouse(analytics, SPOTLER_LOG) == query_warehouse(database, SPOTLER_LOG)
