"""`warehouse load clang` against real SFTP servers (asyncssh in-process, OpenSSH's sshd in CI)."""

from __future__ import annotations

import functools
import io
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from mail_warehouse import settings
from mail_warehouse.loads import load_clang
from mail_warehouse.pipelines import make_pipeline, pipelines_dir, unwrap
from mail_warehouse_demo.standins.sftp import DEMO_PASSWORD, AsyncsshSftpServer, OpenSshSftpServer, SshKeys
from mail_warehouse_sources import clang
from mail_warehouse_sources.clang import source as clang_source
from mail_warehouse_sources.sftp import SftpError
from tests.conftest import _require_sshd, query_warehouse, start_warehouse_cli, warehouse_cli

HEADER = "Broadcastid;Customerid;Extern klantnummer;E-mailadres;Activiteit;Activiteitdatum;Beschrijving activiteit"
BROADCAST_HEADER = "Broadcastid;Broadcast type;Beschrijving;Onderwerp;Verzonden op"


def activity_rows(n: int, start: int = 0, delimiter: str = ";") -> str:
    return "".join(
        delimiter.join(
            [
                str(20000 + i % 3),
                str(500000 + i),
                str(10000 + i),
                f"p{i}@example.nl",
                "OPEN",
                f"2026-11-{1 + i % 28:02d} 10:{i % 60:02d}:00",
                "",
            ]
        )
        + "\n"
        for i in range(start, start + n)
    )


@pytest.fixture(params=["asyncssh", pytest.param("openssh", marks=pytest.mark.sshd)])
def remote(request, tmp_path, monkeypatch):
    """An empty export folder on a real SFTP server, and settings pointing `warehouse load clang` at it."""
    folder = tmp_path / "remote"
    (folder / "export").mkdir(parents=True)
    keys = SshKeys.generate(tmp_path / "ssh")
    if request.param == "openssh":
        _require_sshd()
        server = OpenSshSftpServer(folder, keys).start()
    else:
        server = AsyncsshSftpServer(folder, keys).start()
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    for key, value in {
        "HOST": server.host,
        "PORT": str(server.port),
        "USERNAME": server.username,
        "REMOTE_DIR": "export",
        "KNOWN_HOSTS": str(keys.known_hosts),
        "PRIVATE_KEY_PATH": str(keys.user_key),
        "RETRY_DELAY_SECONDS": "0.05",
    }.items():
        monkeypatch.setenv(f"SOURCES__CLANG__{key}", value)
    server.folder = folder / "export"
    yield server
    server.stop()


@pytest.fixture
def asyncssh_remote(tmp_path, monkeypatch):
    """The in-process server, for faults only it can inject and for password logins."""
    folder = tmp_path / "remote"
    (folder / "export").mkdir(parents=True)
    keys = SshKeys.generate(tmp_path / "ssh")
    server = AsyncsshSftpServer(folder, keys).start()
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    for key, value in {
        "HOST": server.host,
        "PORT": str(server.port),
        "USERNAME": server.username,
        "REMOTE_DIR": "export",
        "KNOWN_HOSTS": str(keys.known_hosts),
        "PASSWORD": DEMO_PASSWORD,
        "RETRY_DELAY_SECONDS": "0.05",
    }.items():
        monkeypatch.setenv(f"SOURCES__CLANG__{key}", value)
    server.folder = folder / "export"
    server.ssh_keys = keys
    yield server
    server.stop()


def write(folder: Path, name: str, text: str, encoding: str = "utf-8", newline: str = "\n") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


query = functools.partial(query_warehouse, None)  # the warehouse WAREHOUSE_PATH names


def quiet_run() -> clang.RunSummary:
    """`warehouse load clang` in this process, without progress; what the source raised comes unwrapped."""
    try:
        return load_clang(stream=io.StringIO())
    except PipelineStepFailed as failure:
        raise unwrap(failure, SftpError) from None


def test_loads_activities_and_broadcasts_with_file_and_line(remote):
    write(remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(5))
    write(
        remote.folder,
        "broadcasts_20261101.csv",
        BROADCAST_HEADER + "\n20000;SINGLE;Nieuwsbrief;Hallo;2026-11-01 09:00:00\n",
    )
    summary = quiet_run()
    assert (summary.loaded, summary.activity_rows, summary.broadcast_rows, summary.rejected_rows) == (2, 5, 1, 0)
    rows = query(
        "select a.source_file, a.source_line, a.customerid, a.activiteit, a.activiteitdatum, f.source_timezone "
        "from raw_clang.activities a join raw_clang.loaded_files f using (source_file) order by source_line"
    )
    assert [r[1] for r in rows] == [2, 3, 4, 5, 6]
    assert rows[0][0] == "activiteiten_20261101.csv" and rows[0][2] == "500000" and rows[0][3] == "OPEN"
    assert str(rows[0][4]) == "2026-11-01 10:00:00" and rows[0][5] == "Europe/Amsterdam"
    assert query("select broadcast_type, verzonden_op::varchar from raw_clang.broadcasts") == [
        ("SINGLE", "2026-11-01 09:00:00")
    ]


@pytest.mark.parametrize(
    "delimiter,setting,extension", [(";", ";", "csv"), (",", ",", "csv"), ("\t", "\\t", "txt"), ("|", "|", "txt")]
)
def test_delimiters_and_extensions(asyncssh_remote, monkeypatch, delimiter, setting, extension):
    monkeypatch.setenv("SOURCES__CLANG__DELIMITER", setting)
    monkeypatch.setenv("SOURCES__CLANG__ACTIVITY_GLOB", f"activiteiten_*.{extension}")
    header = HEADER.replace(";", delimiter)
    write(
        asyncssh_remote.folder,
        f"activiteiten_20261101.{extension}",
        header + "\n" + activity_rows(4, delimiter=delimiter),
    )
    write(asyncssh_remote.folder, "activiteiten_20261102.other", header + "\n" + activity_rows(4, delimiter=delimiter))
    summary = quiet_run()
    assert summary.activity_rows == 4 and summary.rejected_rows == 0 and summary.seen == 1


def test_without_header_the_columns_come_from_the_settings_with_extra_fields(asyncssh_remote, monkeypatch):
    monkeypatch.setenv("SOURCES__CLANG__HAS_HEADER", "false")
    columns = [*clang.ACTIVITY_COLUMNS, "Merk", "Kanaal"]
    monkeypatch.setenv("SOURCES__CLANG__ACTIVITY_COLUMNS", __import__("json").dumps(columns))
    write(
        asyncssh_remote.folder,
        "activiteiten_20261101.csv",
        "".join(line.rstrip("\n") + ";Merk A;email\n" for line in activity_rows(3).splitlines(True)),
    )
    summary = quiet_run()
    assert summary.activity_rows == 3
    assert query("select source_line, merk, kanaal from raw_clang.activities order by 1") == [
        (1, "Merk A", "email"),
        (2, "Merk A", "email"),
        (3, "Merk A", "email"),
    ]


def test_nested_folders_are_crossed_by_double_star(remote, monkeypatch):
    monkeypatch.setenv("SOURCES__CLANG__ACTIVITY_GLOB", "**/activiteiten_*.csv")
    write(remote.folder, "2026/11/activiteiten_20261101.csv", HEADER + "\n" + activity_rows(2))
    write(remote.folder, "2026/10/activiteiten_20261031.csv", HEADER + "\n" + activity_rows(3))
    write(remote.folder, "activiteiten_20261001.csv", HEADER + "\n" + activity_rows(1))
    summary = quiet_run()
    assert summary.activity_rows == 6
    assert {r[0] for r in query("select source_file from raw_clang.activities")} == {
        "2026/11/activiteiten_20261101.csv",
        "2026/10/activiteiten_20261031.csv",
        "activiteiten_20261001.csv",
    }


def test_bad_rows_are_rejected_with_file_line_reason_and_raw_text_and_the_rest_loads(asyncssh_remote):
    body = (
        HEADER
        + "\n"
        + activity_rows(2)
        + "20001;1;2;a@example.nl;OPEN\n"  # line 4: too few fields
        + "20001;1;2;b@example.nl;OPEN;gisteren;\n"  # line 5: unparseable date
        + ";1;2;c@example.nl;OPEN;2026-11-02 10:00:00;\n"  # line 6: empty Broadcastid
        + "20001;1;2;d@example.nl;OPEN;2026-11-02 10:00:00;;extra\n"  # line 7: too many fields
        + activity_rows(1, start=9)
    )  # line 8: fine
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", body)
    summary = quiet_run()
    assert summary.activity_rows == 3 and summary.rejected_rows == 4
    assert [r[0] for r in query("select source_line from raw_clang.activities order by 1")] == [2, 3, 8]
    rejects = query("select source_line, reason, raw_text from raw_clang.rejected_rows order by 1")
    assert [r[0] for r in rejects] == [4, 5, 6, 7]
    assert "too few" in rejects[0][1] and rejects[0][2] == "20001;1;2;a@example.nl;OPEN"
    assert "unparseable date gisteren" in rejects[1][1]
    assert rejects[2][1] == "empty Broadcastid" and "c@example.nl" in rejects[2][2]
    assert "too many" in rejects[3][1]


def test_a_file_delivered_again_without_its_bad_rows_leaves_no_rejects_behind(asyncssh_remote):
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(2) + "20001;1;2\n")
    assert quiet_run().rejected_rows == 1
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(3))  # corrected
    assert quiet_run().rejected_rows == 0
    assert query("select count(*) from raw_clang.rejected_rows") == [(0,)]
    assert query("select count(*) from raw_clang.activities") == [(3,)]


def plain_pipeline(tmp_path: Path, name: str):
    """A dlt user's own pipeline into a DuckDB file of its own."""
    import dlt

    return dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(str(tmp_path / f"{name}.duckdb")),
        dataset_name="clang_data",
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def tables_of(pipeline) -> dict[str, list[tuple]]:
    """Every table the source loaded, its rows sorted, without dlt's columns and the load times (a table loaded
    in an earlier run has an earlier time); that each row's `file_loaded_at` is its file's `loaded_at` in
    `loaded_files` is checked instead."""
    # the flag of a version without rows is a column once such a version was loaded (never set in a kept row)
    stamps = ("_dlt_load_id", "_dlt_id", "file_loaded_at", "loaded_at", clang.VERSION_WITHOUT_ROWS)
    with pipeline.sql_client() as client:
        tables = {}
        for table in ("activities", "broadcasts", "rejected_rows", "loaded_files"):
            name = client.make_qualified_table_name(table)
            columns = client.execute_sql(
                "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
                pipeline.dataset_name,
                table,
            )
            kept = ", ".join(f'"{c}"' for (c,) in columns or [] if c not in stamps)
            tables[table] = sorted(client.execute_sql(f"select {kept} from {name}"), key=repr)
            if table != "loaded_files":
                files = client.make_qualified_table_name("loaded_files")
                stale = client.execute_sql(
                    f"select count(*) from {name} t join {files} f using (source_file) "
                    "where t.file_loaded_at <> f.loaded_at"
                )
                assert stale == [(0,)], f"{table}: rows whose version is not their file's"
    return tables


@pytest.mark.parametrize(
    "first", [("activities",), ("broadcasts",), ("rejected_rows",), ("loaded_files",), ("activities", "loaded_files")]
)
def test_some_tables_first_then_the_whole_source_loads_what_one_whole_run_loads(asyncssh_remote, tmp_path, first):
    """Each table keeps its own record of the file versions it loaded: loading some first costs the others
    nothing, also across a file delivered again in between."""
    folder = asyncssh_remote.folder
    write(folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(4) + "20001;1;2\n")  # one reject
    write(folder, "activiteiten_20261102.csv", HEADER + "\n" + activity_rows(3, start=10))
    write(
        folder, "broadcasts_20261101.csv", BROADCAST_HEADER + "\n20000;SINGLE;Nieuwsbrief;Hallo;2026-11-01 09:00:00\n"
    )
    stepwise = plain_pipeline(tmp_path, "stepwise")
    stepwise.run(clang.clang_source().with_resources(*first))
    write(folder, "activiteiten_20261102.csv", HEADER + "\n" + activity_rows(4, start=10))  # one more row
    stepwise.run(clang.clang_source())

    whole = plain_pipeline(tmp_path, "whole")
    whole.run(clang.clang_source())
    expected = tables_of(whole)
    assert [len(expected[t]) for t in ("activities", "broadcasts", "rejected_rows", "loaded_files")] == [8, 1, 1, 3]
    assert tables_of(stepwise) == expected


def test_a_pipeline_state_of_the_earlier_source_wide_record_is_taken_over(asyncssh_remote, tmp_path):
    """A pipeline loaded by a release that kept one source-wide `loaded_files` record fetches nothing again."""
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(3))
    pipeline = plain_pipeline(tmp_path, "upgraded")
    pipeline.run(clang.clang_source())
    with pipeline.managed_state(extract_state=True) as state:  # as the earlier release left it
        source = state["sources"]["clang"]
        source["loaded_files"] = source.pop("resources")["activities"]["files"]
    pipeline.normalize()  # the changed state, as a package of its own
    pipeline.load()
    report = clang.RunReport()
    pipeline.run(clang.clang_source(report=report))
    assert (report.summary.unchanged, report.summary.loaded, report.summary.bytes_downloaded) == (1, 0, 0)
    assert pipeline.state["sources"]["clang"]["resources"]["loaded_files"]["files"].keys() == {
        "activiteiten_20261101.csv"
    }


def test_a_file_whose_header_differs_fails_alone_and_the_command_exits_non_zero(asyncssh_remote):
    write(
        asyncssh_remote.folder,
        "activiteiten_20261101.csv",
        HEADER.replace("E-mailadres", "Email") + "\n" + activity_rows(2),
    )
    write(asyncssh_remote.folder, "activiteiten_20261102.csv", HEADER + "\n" + activity_rows(3))
    result = warehouse_cli("load", "clang", timeout=300)
    assert result.returncode == 1
    assert (
        "activiteiten_20261101.csv" in result.stderr and "'E-mailadres'" in result.stderr and "'Email'" in result.stderr
    )
    assert query("select count(*), min(source_file) from raw_clang.activities") == [(3, "activiteiten_20261102.csv")]


def test_bom_crlf_quotes_newlines_non_ascii_and_empty_files(asyncssh_remote):
    body = (
        HEADER
        + "\n"
        + '20000;1;2;tõnu.kask@example.ee;CLICK;2026-11-01 10:00:00;"https://x.nl/?a=1;b=2"\n'
        + '20000;3;4;jüri@example.ee;BOUNCE;2026-11-01 11:00:00;"550 line one\nline two"\n'
        + '20000;5;6;ülle.šmidt@example.ee;OPEN;2026-11-01 12:00:00;"Šmidt; Ülle ""VIP"""\n'
    )
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", "\ufeff" + body, newline="\r\n")
    write(asyncssh_remote.folder, "activiteiten_20261102.csv", "")
    write(asyncssh_remote.folder, "activiteiten_20261103.csv", HEADER + "\n")
    summary = quiet_run()
    assert summary.rejected_rows == 0 and summary.activity_rows == 3 and summary.loaded == 3
    rows = query("select source_line, e_mailadres, beschrijving_activiteit from raw_clang.activities order by 1")
    assert rows[0] == (2, "tõnu.kask@example.ee", "https://x.nl/?a=1;b=2")
    assert rows[1][2].replace("\r\n", "\n") == "550 line one\nline two"
    assert rows[2] == (4, "ülle.šmidt@example.ee", 'Šmidt; Ülle "VIP"')
    assert query("select count(*) from raw_clang.loaded_files") == [(3,)]


def test_latin1_files(asyncssh_remote, monkeypatch):
    monkeypatch.setenv("SOURCES__CLANG__ENCODING", "latin-1")
    write(
        asyncssh_remote.folder,
        "activiteiten_20261101.csv",
        HEADER + "\n20000;1;2;françois@example.be;OPEN;2026-11-01 10:00:00;Ça va\n",
        encoding="latin-1",
    )
    quiet_run()
    assert query("select e_mailadres, beschrijving_activiteit from raw_clang.activities") == [
        ("françois@example.be", "Ça va")
    ]


def test_rerun_redelivery_and_vanished_files(remote):
    first = write(remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(5))
    write(remote.folder, "activiteiten_20261102.csv", HEADER + "\n" + activity_rows(3, start=100))
    assert quiet_run().activity_rows == 8

    again = quiet_run()  # nothing new: nothing downloaded, nothing added
    assert (again.unchanged, again.loaded, again.bytes_downloaded) == (2, 0, 0)
    assert query("select count(*) from raw_clang.activities") == [(8,)]

    os.utime(first, (time.time() + 60, time.time() + 60))  # same content delivered again
    same = quiet_run()
    assert (same.same_content, same.loaded) == (1, 0)
    assert query("select count(*) from raw_clang.activities") == [(8,)]

    write(remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(2, start=50))  # other content
    other = quiet_run()
    assert other.loaded == 1
    assert query("select count(*) from raw_clang.activities where source_file = 'activiteiten_20261101.csv'") == [(2,)]
    assert query(
        "select min(customerid) from raw_clang.activities where source_file = 'activiteiten_20261101.csv'"
    ) == [("500050",)]

    write(remote.folder, "activiteiten_20261101.csv", HEADER + "\n")  # now without any row: the old rows go too
    quiet_run()
    assert query("select count(*) from raw_clang.activities where source_file = 'activiteiten_20261101.csv'") == [(0,)]

    (remote.folder / "activiteiten_20261102.csv").unlink()  # vanished from the server: its rows stay
    quiet_run()
    assert query("select count(*) from raw_clang.activities") == [(3,)]


def test_host_key_mismatch_and_unknown_host_stop_the_load(asyncssh_remote, tmp_path, monkeypatch):
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(1))
    other = SshKeys.generate(tmp_path / "other")
    other.write_known_hosts(asyncssh_remote.host, asyncssh_remote.port)
    monkeypatch.setenv("SOURCES__CLANG__KNOWN_HOSTS", str(other.known_hosts))
    with pytest.raises(SftpError, match="changed"):
        quiet_run()
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    monkeypatch.setenv("SOURCES__CLANG__KNOWN_HOSTS", str(empty))
    with pytest.raises(SftpError, match="not in"):
        quiet_run()
    monkeypatch.setenv("SOURCES__CLANG__HOST_KEY_FINGERPRINT", other.host_key_fingerprint())
    with pytest.raises(SftpError, match="pinned"):
        quiet_run()
    monkeypatch.setenv("SOURCES__CLANG__HOST_KEY_FINGERPRINT", asyncssh_remote.ssh_keys.host_key_fingerprint())
    assert quiet_run().activity_rows == 1


def test_first_contact_is_accepted_only_when_the_setting_says_so(asyncssh_remote, tmp_path, monkeypatch):
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(1))
    fresh = tmp_path / "fresh_known_hosts"
    monkeypatch.setenv("SOURCES__CLANG__KNOWN_HOSTS", str(fresh))
    monkeypatch.setenv("SOURCES__CLANG__ACCEPT_NEW_HOST_KEY", "true")
    assert quiet_run().activity_rows == 1
    assert "ssh-ed25519" in fresh.read_text()


def test_wrong_password_fails_clearly_and_no_secret_is_printed(asyncssh_remote, monkeypatch):
    secret = "hunter2-not-the-password"
    monkeypatch.setenv("SOURCES__CLANG__PASSWORD", secret)
    result = warehouse_cli("load", "clang", timeout=300)
    assert result.returncode == 1
    assert "refused the login" in result.stderr and "SOURCES__CLANG__USERNAME" in result.stderr
    assert secret not in result.stdout + result.stderr


def test_a_successful_run_prints_no_secret(asyncssh_remote):
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(2))
    result = warehouse_cli("load", "clang", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "2 activity rows" in result.stdout
    assert DEMO_PASSWORD not in result.stdout + result.stderr


# pytest reports the dying prefetch thread of paramiko that the loader itself keeps quiet
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dropped_connection_is_retried_then_fails_clearly(asyncssh_remote):
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(20_000))
    asyncssh_remote.drop_connections(after_bytes=32_768, times=2)
    assert quiet_run().activity_rows == 20_000
    write(asyncssh_remote.folder, "activiteiten_20261102.csv", HEADER + "\n" + activity_rows(20_000))
    asyncssh_remote.drop_connections(after_bytes=32_768, times=99)
    with pytest.raises(SftpError, match=r"activiteiten_20261102\.csv.*failed after 4 attempts"):
        quiet_run()
    assert query("select count(*) from raw_clang.activities") == [(20_000,)]


def test_settings_errors_name_the_setting(asyncssh_remote, monkeypatch):
    monkeypatch.setenv("SOURCES__CLANG__DELIMITER", ";;")
    with pytest.raises(clang.ClangSettingsError, match="SOURCES__CLANG__DELIMITER"):
        quiet_run()
    monkeypatch.setenv("SOURCES__CLANG__DELIMITER", ";")
    monkeypatch.setenv("SOURCES__CLANG__MACHINE_FLAG_COLUMN", "Machine generated")
    with pytest.raises(clang.ClangSettingsError, match="MACHINE_FLAG_COLUMN 'Machine generated' is not one of"):
        quiet_run()
    monkeypatch.delenv("SOURCES__CLANG__MACHINE_FLAG_COLUMN")
    monkeypatch.setenv("SOURCES__CLANG__TIMEZONE", "Mars/Olympus")
    with pytest.raises(clang.ClangSettingsError, match="SOURCES__CLANG__TIMEZONE"):
        quiet_run()
    monkeypatch.delenv("SOURCES__CLANG__HOST")
    monkeypatch.setenv("SOURCES__CLANG__TIMEZONE", "Europe/Amsterdam")
    result = warehouse_cli("load", "clang", timeout=300)
    assert result.returncode == 2 and "SOURCES__CLANG__HOST" in result.stderr


@pytest.mark.parametrize("moment", ["download", "load"])
def test_a_killed_run_is_completed_by_the_next_with_nothing_lost_or_doubled(asyncssh_remote, moment):
    for day in range(1, 5):
        write(
            asyncssh_remote.folder,
            f"activiteiten_202611{day:02d}.csv",
            HEADER + "\n" + activity_rows(30_000, start=day * 100_000),
        )
    if moment == "download":
        asyncssh_remote.read_delay = 0.01  # slow enough to be mid-download when killed
        marker = "new or changed"
    else:
        marker = "clang: loading"
    process = start_warehouse_cli(
        "load",
        "clang",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in process.stdout:
        if marker in line:
            time.sleep(0.3 if moment == "download" else 0.05)
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    asyncssh_remote.read_delay = 0.0
    quiet_run()
    assert query("select count(*), count(distinct (source_file, source_line)) from raw_clang.activities") == [
        (120_000, 120_000)
    ]
    assert query("select count(*) from raw_clang.loaded_files") == [(4,)]
    again = quiet_run()
    assert again.loaded == 0 and query("select count(*) from raw_clang.activities") == [(120_000,)]


def test_which_file_versions_were_loaded_is_kept_in_dlt_state(asyncssh_remote):
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(3))
    quiet_run()
    resources = make_pipeline(clang.PIPELINE_NAME, clang.DATASET).state["sources"]["clang"]["resources"]
    for table in ("activities", "rejected_rows", "loaded_files"):  # each table its own record
        files = resources[table]["files"]
        assert set(files) == {"activiteiten_20261101.csv"} and files["activiteiten_20261101.csv"]["data_rows"] == 3
    assert resources["broadcasts"]["files"] == {}
    con = settings.connect()
    con.execute("drop table raw_clang.loaded_files")  # the destination's record is not what decides
    con.close()
    again = quiet_run()
    assert (again.unchanged, again.loaded, again.bytes_downloaded) == (1, 0, 0)


def test_a_warehouse_without_its_pipeline_folder_takes_the_state_dlt_kept_in_it(asyncssh_remote, capfd):
    """A copied or restored warehouse file: dlt's state comes back from the warehouse, no file loads twice."""
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(3))
    quiet_run()
    shutil.rmtree(pipelines_dir(settings.warehouse_path()))
    write(asyncssh_remote.folder, "activiteiten_20261102.csv", HEADER + "\n" + activity_rows(2, start=10))
    again = quiet_run()
    assert (again.unchanged, again.loaded) == (1, 1)
    assert query("select source_file, count(*) from raw_clang.activities group by all order by 1") == [
        ("activiteiten_20261101.csv", 3),
        ("activiteiten_20261102.csv", 2),
    ]
    assert "will be ignored" not in capfd.readouterr().err  # an appending run declares no hint dlt must ignore


@pytest.mark.parametrize("pass_bytes", [None, 1], ids=["one pass", "a pass per file"])
def test_rejects_of_several_files_read_in_one_pass_keep_their_own_lines(asyncssh_remote, monkeypatch, pass_bytes):
    if pass_bytes:  # a backlog is read in passes of about PARSE_PASS_BYTES, each while the next files download
        monkeypatch.setattr(clang_source, "PARSE_PASS_BYTES", pass_bytes)
    write(
        asyncssh_remote.folder,
        "activiteiten_20261101.csv",
        HEADER + "\n" + activity_rows(2) + "20001;1;2;a@example.nl;OPEN\n" + activity_rows(2, start=10),
    )  # line 4: too few fields
    write(asyncssh_remote.folder, "activiteiten_20261102.csv", HEADER + "\n" + activity_rows(3, start=20))
    write(
        asyncssh_remote.folder,
        "activiteiten_20261103.csv",
        HEADER
        + "\n"
        + activity_rows(1, start=30)
        + "20001;1;2;b@example.nl;OPEN;gisteren;\n"  # line 3: unparseable date
        + "20001;1;2;d@example.nl;OPEN;2026-11-02 10:00:00;;extra\n"  # line 4: too many fields
        + activity_rows(2, start=40),
    )
    summary = quiet_run()
    assert (summary.activity_rows, summary.rejected_rows) == (10, 3)
    lines = query(
        "select source_file, list(source_line order by source_line) from raw_clang.activities group by 1 order by 1"
    )
    assert lines == [
        ("activiteiten_20261101.csv", [2, 3, 5, 6]),
        ("activiteiten_20261102.csv", [2, 3, 4]),
        ("activiteiten_20261103.csv", [2, 5, 6]),
    ]
    assert query(
        "select customerid from raw_clang.activities where source_file = 'activiteiten_20261103.csv' "
        "and source_line = 5"
    ) == [("500040",)]
    assert query("select source_file, source_line from raw_clang.rejected_rows order by 1, 2") == [
        ("activiteiten_20261101.csv", 4),
        ("activiteiten_20261103.csv", 3),
        ("activiteiten_20261103.csv", 4),
    ]
    assert query("select source_file, data_rows, rejected_rows from raw_clang.loaded_files order by 1") == [
        ("activiteiten_20261101.csv", 4, 1),
        ("activiteiten_20261102.csv", 3, 0),
        ("activiteiten_20261103.csv", 3, 2),
    ]
    write(asyncssh_remote.folder, "activiteiten_20261102.csv", HEADER + "\n" + activity_rows(1, start=90))
    assert quiet_run().loaded == 1  # delivered again with other content: its rows replaced, the others kept
    assert query("select source_file, count(*) from raw_clang.activities group by 1 order by 1") == [
        ("activiteiten_20261101.csv", 4),
        ("activiteiten_20261102.csv", 1),
        ("activiteiten_20261103.csv", 3),
    ]


def test_a_file_duckdb_cannot_read_fails_alone(asyncssh_remote, monkeypatch):
    monkeypatch.setenv("SOURCES__CLANG__ENCODING", "utf-16")
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(2), encoding="utf-16")
    broken = write(
        asyncssh_remote.folder, "activiteiten_20261102.csv", HEADER + "\n" + activity_rows(2), encoding="utf-16"
    )
    broken.write_bytes(broken.read_bytes() + b"\x00")  # half a UTF-16 character at the end
    summary = quiet_run()
    assert summary.activity_rows == 2 and len(summary.failed) == 1
    assert summary.failed[0].startswith("activiteiten_20261102.csv: DuckDB cannot read it")
    assert query("select distinct source_file from raw_clang.activities") == [("activiteiten_20261101.csv",)]
    assert query("select source_file from raw_clang.loaded_files") == [("activiteiten_20261101.csv",)]


def test_into_an_append_only_destination_each_row_names_its_file_version(asyncssh_remote, tmp_path):
    """dlt's filesystem destination appends: a reader keeps each file's rows of its latest `loaded_at`."""
    import dlt

    lake = tmp_path / "lake"
    pipeline = dlt.pipeline(
        pipeline_name="clang_lake",
        destination=dlt.destinations.filesystem(bucket_url=lake.as_uri()),
        dataset_name="clang",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(5))
    pipeline.run(clang.clang_source(), loader_file_format="parquet")
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(2, start=50))
    pipeline.run(clang.clang_source(), loader_file_format="parquet")
    con = settings.connect(tmp_path / "read.duckdb")
    activities, files = (
        f"read_parquet('{lake / 'clang' / table}/*.parquet')" for table in ("activities", "loaded_files")
    )
    assert con.execute(f"select count(*) from {activities}").fetchone() == (7,)  # both versions are there
    latest = con.execute(f"""
        with latest as (select source_file, max(loaded_at) as loaded_at from {files} group by 1)
        select count(*), min(customerid) from {activities} a join latest l
            on a.source_file = l.source_file and a.file_loaded_at = l.loaded_at""").fetchone()
    con.close()
    assert latest == (2, "500050")


def test_line_numbers_hold_whether_the_records_were_counted_or_scanned(asyncssh_remote):
    """Files without quotes have their records counted as they arrive and are read once; a count DuckDB does not
    confirm (here: line ends of a lone CR, which a count of LF misses) sends the files through DuckDB's scan."""
    write(asyncssh_remote.folder, "activiteiten_20261101.csv", HEADER + "\n" + activity_rows(3))
    write(asyncssh_remote.folder, "activiteiten_20261102.csv", HEADER + "\n" + activity_rows(2, start=10), newline="\r")
    write(asyncssh_remote.folder, "activiteiten_20261103.csv", HEADER + "\n" + activity_rows(2, start=20).rstrip("\n"))
    assert quiet_run().activity_rows == 7
    assert query(
        "select source_file, list(customerid order by source_line), list(source_line order by source_line) "
        "from raw_clang.activities group by 1 order by 1"
    ) == [
        ("activiteiten_20261101.csv", ["500000", "500001", "500002"], [2, 3, 4]),
        ("activiteiten_20261102.csv", ["500010", "500011"], [2, 3]),
        ("activiteiten_20261103.csv", ["500020", "500021"], [2, 3]),
    ]
