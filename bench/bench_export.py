"""Benchmark: `warehouse export` of a 1M-contact segment against DuckDB `COPY ... TO` CSV plus OpenSSH `sftp`
put of that file, in the same run, to the same loopback SFTP server (sshd when installed). Target: ratio <= 1.5.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from loaders.settings import connect
from loaders.standins.sftp import AsyncsshSftpServer, OpenSshSftpServer, SshKeys, find_sshd


def build_warehouse(path: Path, contacts: int) -> None:
    """The two relations the export reads: a segment and marts.contacts (all consenting)."""
    con = connect(path)
    con.execute("create schema marts; create schema segments")
    con.execute(f"""create table marts.contacts as
        select md5(i::varchar) as contact_key, 'voornaam.achternaam' || i || '@example.nl' as email,
               true as is_opted_in, false as is_hard_bounced, false as has_complained, false as is_unsubscribed,
               false as is_closed_in_directo
        from range({contacts}) t(i)""")
    con.execute(f"""create table segments.reactivation as
        select md5(i::varchar) as contact_key, 'voornaam.achternaam' || i || '@example.nl' as email,
               (10000 + i)::varchar as external_customer_id, 'Voornaam' as first_name, 'Voornaam Achternaam ' || i as name,
               timestamptz '2026-06-01 10:00:00+00' + to_seconds(i) as last_engaged_at, 120 as days_inactive,
               5 as mailings_since_engagement
        from range({contacts}) t(i)""")
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        warehouse = work / "warehouse.duckdb"
        build_warehouse(warehouse, args.contacts)
        remote = work / "deployteq"
        (remote / "Upload").mkdir(parents=True)
        keys = SshKeys.generate(work / "ssh")
        server = (OpenSshSftpServer if find_sshd() else AsyncsshSftpServer)(remote, keys).start()
        try:
            env = {**os.environ, "WAREHOUSE_PATH": str(warehouse), "EXPORT__DEPLOYTEQ__HOST": server.host,
                   "EXPORT__DEPLOYTEQ__PORT": str(server.port), "EXPORT__DEPLOYTEQ__USERNAME": server.username,
                   "EXPORT__DEPLOYTEQ__KNOWN_HOSTS": str(keys.known_hosts),
                   "EXPORT__DEPLOYTEQ__PRIVATE_KEY_PATH": str(keys.user_key),
                   "EXPORT__DEPLOYTEQ__LOCAL_DIR": str(work / "exports")}
            started = time.perf_counter()
            export = subprocess.run([sys.executable, "-m", "loaders", "export"], env=env, capture_output=True, text=True)
            export_seconds = time.perf_counter() - started
            if export.returncode != 0:
                raise SystemExit(f"warehouse export failed:\n{export.stdout}\n{export.stderr}")
            started = time.perf_counter()
            con = connect(warehouse, read_only=True)
            con.execute(f"copy (select * from segments.reactivation) to '{work / 'anchor.csv'}' (header, delimiter ';')")
            con.close()
            subprocess.run(["sftp", "-q", "-P", str(server.port), "-i", str(keys.user_key),
                            "-o", f"UserKnownHostsFile={keys.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                            "-o", "BatchMode=yes", "-b", "-", f"{server.username}@{server.host}"],
                           input=f"put {work / 'anchor.csv'} Upload/anchor.csv\n", text=True, check=True,
                           capture_output=True)
            anchor_seconds = time.perf_counter() - started
        finally:
            server.stop()
        size_mb = (work / "anchor.csv").stat().st_size / 1e6
        print(f"warehouse export: {args.contacts:,} contacts ({size_mb:,.0f} MB) over {server.kind} SFTP in {export_seconds:.1f} s")
        print(f"anchor: DuckDB COPY to CSV + OpenSSH sftp put in {anchor_seconds:.1f} s")
        print(f"ratio export / anchor = {export_seconds / anchor_seconds:.2f} (target <= 1.5)")
        print(export.stdout.strip())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
