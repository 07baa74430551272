"""The way back and daily operation: CSV triggers to Deployteq, the read-only copy for BI, `warehouse run`."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mail_warehouse import export, settings
from mail_warehouse.lock import WarehouseLock
from mail_warehouse_demo.standins.sftp import SftpFault
from tests.conftest import query_warehouse as query
from tests.conftest import rebuild_the_segment, start_warehouse_cli, warehouse_cli

pytestmark = pytest.mark.slow


def uploaded(stack):
    return sorted(p.name for p in (stack.deployteq_dir / "Upload").iterdir())


def test_export_uploads_the_segment_and_records_it(warehouse_copy):
    env, database, stack = warehouse_copy
    result = warehouse_cli("export", env=env)
    assert result.returncode == 0, result.stderr
    (name,) = uploaded(stack)
    assert name.startswith("reactivatie_") and name.endswith(".csv")
    rows = list(csv.DictReader((stack.deployteq_dir / "Upload" / name).open(encoding="utf-8"), delimiter=";"))
    segment = query(database, "select count(*) from segments.reactivation")[0][0]
    assert len(rows) == segment > 0 and set(rows[0]) >= {"emailadres", "klantnummer", "voornaam", "naam"}
    (log,) = query(database, "select segment, file_name, rows, status from exports.csv_trigger_log")
    assert log == ("reactivation", name, segment, "uploaded")
    assert query(database, "select count(*) from exports.csv_trigger_contacts")[0][0] == segment
    assert f"uploaded {name}" in result.stdout


def test_once_a_day_unless_forced_and_the_cooldown_empties_the_segment(warehouse_copy):
    env, database, _stack = warehouse_copy
    assert warehouse_cli("export", env=env).returncode == 0
    again = warehouse_cli("export", env=env)
    assert again.returncode == 0 and "already uploaded today" in again.stdout
    assert query(database, "select count(*) from exports.csv_trigger_log")[0][0] == 1
    forced = warehouse_cli("export", "--force", env=env)
    assert forced.returncode == 0 and "uploaded" in forced.stdout
    assert query(database, "select count(*) from exports.csv_trigger_log")[0][0] == 2
    # the exports' staging view was built before the first export, when the log did not exist: built again too
    rebuilt = rebuild_the_segment(env, "2026-11-23")
    assert rebuilt.returncode == 0, rebuilt.stdout[-2000:]
    assert query(database, "select count(*) from segments.reactivation")[0][0] == 0  # all exported: cooling down


def test_dry_run_writes_locally_and_uploads_nothing(warehouse_copy, tmp_path):
    env, database, stack = warehouse_copy
    result = warehouse_cli("export", "--dry-run", env=env)
    assert result.returncode == 0 and "dry-run" in result.stdout and "would go to Upload/" in result.stdout
    assert uploaded(stack) == []
    assert list((tmp_path / "exports").glob("reactivatie_*.csv"))
    assert query(database, "select count(*) from exports.csv_trigger_log")[0][0] == 0


def test_the_consent_guard_overrules_a_broken_segment(warehouse_copy):
    env, database, stack = warehouse_copy
    con = settings.connect(database)
    con.execute("""create or replace table segments.reactivation as
                   select contact_key, email, external_customer_id, first_name, full_name as name, last_engaged_at,
                          0 as days_inactive, 0 as mailings_since_engagement
                   from marts.contacts""")  # everyone, whatever their consent
    forbidden = {r[0] for r in con.execute("select email from marts.contacts where not is_mailable").fetchall()}
    reasons = dict(
        con.execute("""select replace(not_mailable_reason, '_', ' '), count(*) from marts.contacts
                                  where not is_mailable group by 1""").fetchall()
    )
    total = con.execute("select count(*) from marts.contacts").fetchone()[0]
    con.close()
    assert forbidden
    result = warehouse_cli("export", env=env)
    assert result.returncode == 0, result.stderr
    (name,) = uploaded(stack)
    exported = {
        r["emailadres"]
        for r in csv.DictReader((stack.deployteq_dir / "Upload" / name).open(encoding="utf-8"), delimiter=";")
    }
    assert exported and not exported & forbidden
    assert len(exported) == total - len(forbidden)
    assert f"{len(forbidden):,} left out by the consent guard: " in result.stdout
    assert all(f"{count:,} {reason}" in result.stdout for reason, count in reasons.items()), (reasons, result.stdout)


def test_the_csv_is_written_in_the_triggers_encoding_with_normalised_addresses_matched(tmp_path):
    con = settings.connect(tmp_path / "w.duckdb")
    con.execute("""create schema marts; create schema segments;
        create table marts.contacts as select * from (values
            ('k1', 'rené@example.be', true, null),
            ('k2', 'zoe@example.nl', false, 'not_opted_in')) t(contact_key, email, is_mailable, not_mailable_reason);
        create table segments.winback as select * from (values
            (' René@Example.be ', 'René'), ('zoe@example.nl', 'Zoë'), ('nobody@example.nl', 'X'))
            t(email, first_name)""")
    trigger = export.Trigger(
        "winback", "winback.csv", {"email": "emailadres", "first_name": "voornaam"}, delimiter=",", encoding="latin-1"
    )
    target = tmp_path / "winback.csv"
    assert export._write_csv(con, trigger, target) == (1, 2)  # Zoë has not opted in; nobody is no contact
    assert export.ConsentGuard.of(con).left_out_by_reason(con, trigger) == {"not a known contact": 1, "not opted in": 1}
    con.close()
    assert target.read_bytes().decode("latin-1").splitlines() == ["emailadres,voornaam", " René@Example.be ,René"]
    assert not list(tmp_path.glob("*.utf8"))


def test_deployteq_done_and_failed_are_reported(warehouse_copy):
    env, database, stack = warehouse_copy
    assert warehouse_cli("export", env=env).returncode == 0
    (name,) = uploaded(stack)
    (stack.deployteq_dir / "Upload" / name).rename(stack.deployteq_dir / "Failed" / name)
    status = warehouse_cli("export", "--status", env=env)
    assert status.returncode == 0 and "rejected by Deployteq" in status.stdout and name in status.stdout
    assert query(database, "select status from exports.csv_trigger_log") == [("failed",)]
    (stack.deployteq_dir / "Failed" / name).rename(stack.deployteq_dir / "Done" / name)
    assert "done" in warehouse_cli("export", "--status", env=env).stdout


def test_a_killed_upload_never_shows_the_watcher_a_partial_file(warehouse_copy):
    env, database, stack = warehouse_copy
    con = settings.connect(database)  # a bigger segment, so the upload takes a while
    con.execute("""create or replace table segments.reactivation as
                   select c.contact_key, c.email, c.external_customer_id, c.first_name, c.full_name as name,
                          c.last_engaged_at, i as days_inactive, 0 as mailings_since_engagement
                   from marts.contacts c, range(40) r(i) where c.is_mailable""")
    con.close()
    # the upload is killed in the middle: its third write is held until the client is gone (a moment picked by
    # time, not by the server, let a fast machine finish the upload first)
    mid_upload = SftpFault("write", r"\.part$", nth=3)
    stack.deployteq.inject(mid_upload)
    try:
        process = start_warehouse_cli(
            "export",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert mid_upload.wait_reached(timeout=60), process.communicate(timeout=30)[0]
        assert any(n.endswith(".part") for n in uploaded(stack))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        mid_upload.release_after_disconnect()  # the held write is dropped, not carried out for a client now gone
        stack.deployteq.clear_faults()
    names = uploaded(stack)
    assert all(n.startswith(".") and n.endswith(".part") for n in names), names  # the watcher ignores these
    # the intent was committed before the upload began; its outcome is not known yet
    assert query(database, "select status from exports.csv_trigger_log") == [("intent",)]
    result = warehouse_cli("export", env=env)
    assert result.returncode == 0, result.stderr
    assert "before it reached the server; recorded as not sent; its leftover scratch file was removed" in result.stdout
    assert uploaded(stack) == [n for n in uploaded(stack) if not n.startswith(".")]  # no scratch file left
    final = uploaded(stack)
    assert len(final) == 1
    local = next(Path(env["EXPORT__DEPLOYTEQ__LOCAL_DIR"]).glob("*.csv"))
    assert (stack.deployteq_dir / "Upload" / final[0]).read_bytes() == local.read_bytes()
    assert sorted(query(database, "select status from exports.csv_trigger_log")) == [("not-sent",), ("uploaded",)]
    (rows,) = query(database, "select rows from exports.csv_trigger_log where status = 'uploaded'")[0]
    assert query(database, "select count(*) from exports.csv_trigger_contacts")[0][0] == rows


def test_a_trigger_already_on_the_server_is_not_sent_again_even_without_a_record(warehouse_copy):
    """The operator's scenario: today's trigger went out (Deployteq has it in Done/), the log was emptied, and
    `warehouse export` runs again."""
    env, database, stack = warehouse_copy
    assert warehouse_cli("export", env=env).returncode == 0
    (name,) = uploaded(stack)
    (stack.deployteq_dir / "Upload" / name).rename(stack.deployteq_dir / "Done" / name)
    con = settings.connect(database)
    con.execute("delete from exports.csv_trigger_log; delete from exports.csv_trigger_contacts")
    con.close()
    again = warehouse_cli("export", env=env)
    assert again.returncode == 0, again.stderr
    assert uploaded(stack) == [] and [p.name for p in (stack.deployteq_dir / "Done").iterdir()] == [name]
    assert (
        f"export reactivation: skipped {name}" in again.stdout
        and f"{name} is already in Done/" in again.stdout
        and "not sent twice" in again.stdout
    ), again.stdout
    assert query(database, "select count(*) from exports.csv_trigger_log")[0][0] == 0


def test_a_forced_trigger_taken_by_deployteq_before_the_retry_is_not_sent_again(warehouse_copy):
    """--force sends a name already in Done/ (a deliberate second campaign). The connection drops right after the
    server renamed the file into place, and Deployteq takes it on to Done/ during the retry's backoff: the
    retry sees a file in Done/ that changed since this delivery began, so the second campaign starts once."""
    env, database, stack = warehouse_copy
    with stack.deployteq_watcher() as watcher:
        assert warehouse_cli("export", env=env).returncode == 0
        time.sleep(1.1)  # SFTP times are whole seconds: the second delivery is a second later
        stack.deployteq.inject(SftpFault("posix_rename", r"\.part$", action="drop", after=True))
        try:
            forced = warehouse_cli("export", "--force", env={**env, "EXPORT__DEPLOYTEQ__RETRY_DELAY_SECONDS": "2"})
        finally:
            stack.deployteq.clear_faults()
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert len(watcher.started) == 2, watcher.started
    statuses = query(database, "select status, note from exports.csv_trigger_log order by recorded_at")
    assert [status for status, _ in statuses] == ["uploaded", "done"], statuses
    assert "found in Done/ after a dropped connection" in statuses[1][1]


def test_two_exports_at_once_deliver_one_trigger(warehouse_copy):
    env, database, stack = warehouse_copy
    stack.deployteq.write_delay = 0.01  # long enough for the two to overlap
    try:
        both = [
            start_warehouse_cli(
                "export",
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [process.communicate(timeout=120) for process in both]
    finally:
        stack.deployteq.write_delay = 0.0
    assert [process.returncode for process in both] == [0, 0], outputs
    assert len(uploaded(stack)) == 1
    said = " ".join(out for out, _ in outputs)
    assert said.count("uploaded reactivatie_") == 1 and "already uploaded today" in said
    assert query(database, "select count(*) from exports.csv_trigger_log")[0][0] == 1


def test_an_export_waits_for_another_then_gives_up_clearly(warehouse_copy):
    env, database, stack = warehouse_copy
    with WarehouseLock(database, 0, command="export"):
        result = warehouse_cli("export", "--wait", "1", env=env)
    assert result.returncode == 75 and "another `warehouse export`" in result.stderr
    assert uploaded(stack) == []


def test_a_missing_upload_folder_fails_at_once_naming_it_and_its_setting(warehouse_copy):
    env, database, _stack = warehouse_copy
    env = {
        **env,
        "EXPORT__DEPLOYTEQ__UPLOAD_DIR": "csv upload/brand/Upload",
        "EXPORT__DEPLOYTEQ__MAX_ATTEMPTS": "4",
        "EXPORT__DEPLOYTEQ__RETRY_DELAY_SECONDS": "30",
    }
    started = time.monotonic()
    result = warehouse_cli("export", env=env)
    assert result.returncode == 1
    assert time.monotonic() - started < 30  # one retry alone would wait 30 s
    assert "no such file or folder csv upload/brand/Upload" in result.stderr + result.stdout
    assert "EXPORT__DEPLOYTEQ__UPLOAD_DIR" in result.stderr + result.stdout
    assert query(database, "select count(*) from exports.csv_trigger_log")[0][0] == 0  # nothing was intended


def test_absolute_folders_are_used_as_written(warehouse_copy):
    env, _database, stack = warehouse_copy  # the stand-in's root is the server's /
    env = {
        **env,
        **{
            f"EXPORT__DEPLOYTEQ__{folder.upper()}_DIR": f"/{folder}"
            for folder in ("Upload", "Active", "Done", "Failed")
        },
    }
    result = warehouse_cli("export", env=env)
    assert result.returncode == 0, result.stderr
    assert len(uploaded(stack)) == 1 and "to /Upload on deployteq@127.0.0.1" in result.stderr


def test_publish_only_after_a_passing_build_and_never_disturbs_a_reader(warehouse_copy, tmp_path):
    env, database, _stack = warehouse_copy
    env = {**env, "DBT_TARGET_PATH": str(tmp_path / "target")}
    ok = warehouse_cli("build", "--", "--select", "mailings", env=env)
    assert ok.returncode == 0
    first = warehouse_cli("publish", env=env)
    assert first.returncode == 0, first.stderr
    analytics = database.with_name("analytics.duckdb")
    reader = settings.connect(analytics, read_only=True)
    before = reader.execute("select count(*) from marts.mailings").fetchone()[0]
    con = settings.connect(database)
    con.execute("delete from marts.mailings where source_system = 'clang'")
    con.close()
    again = warehouse_cli("publish", env=env)
    assert again.returncode == 0, again.stderr
    assert reader.execute("select count(*) from marts.mailings").fetchone()[0] == before  # the open copy is intact
    reader.close()
    fresh = settings.connect(analytics, read_only=True)
    assert fresh.execute("select count(*) from marts.mailings").fetchone()[0] < before
    fresh.close()
    broken = warehouse_cli(
        "build", "--", "--select", "reactivation", "--vars", "{reactivation_min_mailings: 'many'}", env=env
    )
    assert broken.returncode != 0
    refused = warehouse_cli("publish", env=env)
    assert refused.returncode == 1 and "not publishing" in refused.stderr
    assert json.loads((tmp_path / "target" / "run_results.json").read_text())["args"]["which"] == "build"
    assert warehouse_cli("build", "--", "--select", "mailings", env=env).returncode == 0
    # a project that does not compile: dbt writes no results, and the passing build's before must not count
    uncompiled = warehouse_cli("build", "--", "--vars", "{engagement_window_days: 'a month'}", env=env)
    assert uncompiled.returncode != 0
    refused = warehouse_cli("publish", env=env)
    assert refused.returncode == 1 and "no dbt results" in refused.stderr


def test_an_overlapping_run_waits_then_gives_up_clearly(warehouse_copy):
    env, database, _ = warehouse_copy
    with WarehouseLock(database, 0):
        started = time.monotonic()
        result = warehouse_cli("run", "--wait", "1", env=env)
    assert result.returncode == 75 and "another `warehouse run`" in result.stderr
    assert 1 <= time.monotonic() - started < 30


def test_a_failed_step_fails_the_run_and_a_failed_build_publishes_and_exports_nothing(warehouse_copy, tmp_path):
    env, _database, stack = warehouse_copy
    env = {
        **env,
        "SOURCES__CLANG__HOST": "127.0.0.1",
        "SOURCES__CLANG__PORT": "9",
        "SOURCES__CLANG__MAX_ATTEMPTS": "1",
        "DBT_TARGET_PATH": str(tmp_path / "target"),
    }
    (tmp_path / "not-a-project").mkdir()
    result = warehouse_cli("run", env={**env, "WAREHOUSE_PATH": str(tmp_path / "not-a-project")})
    assert result.returncode == 1
    summary = result.stdout.strip().splitlines()[-1]
    assert "load clang failed" in summary and "build failed" in summary
    assert "publish skipped (the build failed)" in summary and "export skipped (the build failed)" in summary
    assert uploaded(stack) == []


def test_the_weekly_run_rebuilds_every_incremental_model(warehouse_copy, tmp_path):
    env, database, _ = warehouse_copy
    env = {**env, "DBT_TARGET_PATH": str(tmp_path / "target")}
    (before,) = query(database, "select max(built_at) from marts.customer_activity")[0]
    result = warehouse_cli("run", "--full-refresh", env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "build ok" in result.stdout.strip().splitlines()[-1]
    # an incremental build would have left the earlier rows with the earlier build's stamp
    for table in ("marts.customer_activity", "marts.contact_mail_history", "intermediate.int_contact_event_summary"):
        stamps = query(database, f"select count(distinct built_at), min(built_at) from {table}")[0]
        assert stamps[0] == 1 and stamps[1] > before, (table, stamps, before)


def test_remote_folders_are_kept_as_written():
    from mail_warehouse.export_config import remote_folder

    assert [remote_folder(v) for v in ("Upload", "Upload/", "/Upload", "/csv upload/brand/Upload/", "", ".", "/")] == [
        "Upload",
        "Upload",
        "/Upload",
        "/csv upload/brand/Upload",
        ".",
        ".",
        "/",
    ]


def test_a_trigger_file_name_must_carry_the_date():
    """The export reads the segments' targets from dbt's manifest, as dbt parsed the yml."""
    segment = {
        "resource_type": "model",
        "name": "winback",
        "fqn": ["mail_warehouse", "segments", "winback"],
        "patch_path": "mail_warehouse://models/segments/winback.yml",
        "config": {"meta": {"csv_trigger": {"file_name": "winback.csv", "columns": {"email": "emailadres"}}}},
    }
    with pytest.raises(export.ExportError, match=r"winback\.yml.*winback.*must carry the date"):
        export.declared_triggers({"nodes": {"model.mail_warehouse.winback": segment}})
