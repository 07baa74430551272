"""Benchmark: `warehouse export` of a 1M-contact segment against DuckDB `COPY ... TO` CSV plus OpenSSH `sftp`
put of that file, in the same run, to the same loopback SFTP server (sshd when installed), in alternating rounds
whose medians are compared (one round on 2 cores varies by 20 %). Target: ratio <= 1.9, the ratio before each
trigger was delivered exactly once (an intent committed before the upload, reconciliation, a look for the name on
the server, a fixed row order): those guarantees are not to cost more than the noise of the measurement.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import report

from mail_warehouse.settings import connect
from mail_warehouse_demo.standins.sftp import AsyncsshSftpServer, OpenSshSftpServer, SshKeys, find_sshd

TARGET_RATIO = 1.9


def build_warehouse(path: Path, contacts: int) -> None:
    """The two relations the export reads: a segment and marts.contacts (all consenting)."""
    con = connect(path)
    con.execute("create schema marts; create schema segments")
    con.execute(f"""create table marts.contacts as
        select md5(i::varchar) as contact_key, 'voornaam.achternaam' || i || '@example.nl' as email,
               true as is_opted_in, false as is_hard_bounced, false as has_complained, false as is_unsubscribed,
               false as is_closed_in_directo, true as is_mailable, null::varchar as not_mailable_reason
        from range({contacts}) t(i)""")
    con.execute(f"""create table segments.reactivation as
        select md5(i::varchar) as contact_key, 'voornaam.achternaam' || i || '@example.nl' as email,
               (10000 + i)::varchar as external_customer_id, 'Voornaam' as first_name,
               'Voornaam Achternaam ' || i as name,
               timestamptz '2026-06-01 10:00:00+00' + to_seconds(i) as last_engaged_at, 120 as days_inactive,
               5 as mailings_since_engagement
        from range({contacts}) t(i)""")
    con.close()


def timed_export(env: dict) -> tuple[float, subprocess.CompletedProcess]:
    """`warehouse export --force` (every round uploads: once a day would skip the second)."""
    started = time.perf_counter()
    export = subprocess.run(
        [sys.executable, "-m", "mail_warehouse", "export", "--force"], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if export.returncode != 0:
        raise SystemExit(f"warehouse export failed:\n{export.stdout}\n{export.stderr}")
    return seconds, export


def timed_anchor(warehouse: Path, csv_file: Path, server, keys: SshKeys) -> float:
    """DuckDB COPY of the segment to CSV, then OpenSSH's sftp puts it."""
    started = time.perf_counter()
    con = connect(warehouse, read_only=True)
    con.execute(f"copy (select * from segments.reactivation) to '{csv_file}' (header, delimiter ';')")
    con.close()
    subprocess.run(
        [
            "sftp",
            "-q",
            "-P",
            str(server.port),
            "-i",
            str(keys.user_key),
            "-o",
            f"UserKnownHostsFile={keys.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-b",
            "-",
            f"{server.username}@{server.host}",
        ],
        input=f"put {csv_file} Upload/anchor.csv\n",
        text=True,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5, help="export and anchor pairs; medians are compared")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        warehouse = work / "warehouse.duckdb"
        build_warehouse(warehouse, args.contacts)
        remote = work / "deployteq"
        for folder in ("Upload", "Active", "Done", "Failed"):  # the export checks all four: where a trigger can be
            (remote / folder).mkdir(parents=True)
        keys = SshKeys.generate(work / "ssh")
        server = (OpenSshSftpServer if find_sshd() else AsyncsshSftpServer)(remote, keys).start()
        try:
            env = {
                **os.environ,
                "WAREHOUSE_PATH": str(warehouse),
                "EXPORT__DEPLOYTEQ__HOST": server.host,
                "EXPORT__DEPLOYTEQ__PORT": str(server.port),
                "EXPORT__DEPLOYTEQ__USERNAME": server.username,
                "EXPORT__DEPLOYTEQ__KNOWN_HOSTS": str(keys.known_hosts),
                "EXPORT__DEPLOYTEQ__PRIVATE_KEY_PATH": str(keys.user_key),
                "EXPORT__DEPLOYTEQ__LOCAL_DIR": str(work / "exports"),
            }
            rounds = []
            for _ in range(args.rounds):  # each round: the export, then the anchor
                export_seconds, export = timed_export(env)
                rounds.append((export_seconds, timed_anchor(warehouse, work / "anchor.csv", server, keys)))
        finally:
            server.stop()
        size_mb = (work / "anchor.csv").stat().st_size / 1e6
        for i, (export_seconds, anchor_seconds) in enumerate(rounds, 1):
            print(
                f"round {i}: warehouse export {export_seconds:.2f} s, anchor {anchor_seconds:.2f} s, "
                f"ratio {export_seconds / anchor_seconds:.2f}"
            )
        export_seconds = statistics.median(e for e, _ in rounds)
        anchor_seconds = statistics.median(a for _, a in rounds)
        print(
            f"warehouse export: {args.contacts:,} contacts ({size_mb:,.0f} MB) over {server.kind} SFTP, "
            f"median {export_seconds:.2f} s"
        )
        print(f"anchor: DuckDB COPY to CSV + OpenSSH sftp put, median {anchor_seconds:.2f} s")
        print(
            f"ratio export / anchor = {export_seconds / anchor_seconds:.2f} (medians of {len(rounds)} rounds; "
            f"target <= {TARGET_RATIO})"
        )
        print(export.stdout.strip())
        report(
            "export",
            export_seconds / anchor_seconds,
            TARGET_RATIO,
            export_seconds=export_seconds,
            anchor_seconds=anchor_seconds,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
