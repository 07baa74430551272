"""Benchmark: `warehouse load clang` of one 5M-row activities file (~400 MB) over loopback SFTP, against
OpenSSH's `sftp` fetching the same file plus DuckDB `create table ... as select * from read_csv(...)` of it.

Both run in this process's children against the same server: OpenSSH's sshd when installed, else the
asyncssh stand-in. Prints both wall times, the ratio and the loader's peak memory. No target: dlt's Parquet
hop is the price of its schema and state (it was 3.05-4.53, median 3.81); it must not grow.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import report

from mail_warehouse.settings import connect
from mail_warehouse_demo.standins.sftp import AsyncsshSftpServer, OpenSshSftpServer, SshKeys, find_sshd


def write_activities(path: Path, rows: int) -> None:
    con = connect(path.with_suffix(".gen.duckdb"))
    con.execute(f"""
        copy (select 20000 + i % 997 as "Broadcastid", 500000 + i % 250000 as "Customerid",
                     10000 + i % 250000 as "Extern klantnummer",
                     'voornaam.achternaam' || (i % 250000) || '@example.nl' as "E-mailadres",
                     ['SEND', 'OPEN', 'CLICK', 'OPEN', 'SEND'][1 + i % 5] as "Activiteit",
                     strftime(timestamp '2026-01-01' + to_seconds(i % 31536000), '%Y-%m-%d %H:%M:%S')
                         as "Activiteitdatum",
                     case when i % 5 = 2 then 'https://www.example-shop.nl/collectie?utm_campaign=m' || (i % 100) end
                         as "Beschrijving activiteit"
              from range({rows}) t(i))
        to '{path}' (format csv, header true, delimiter ';')
    """)
    con.close()
    path.with_suffix(".gen.duckdb").unlink()


def clang_environment(server, keys: SshKeys, warehouse: Path, remote_dir: str) -> dict:
    """`warehouse load clang`'s settings for `server`, into `warehouse`."""
    return {
        **os.environ,
        "WAREHOUSE_PATH": str(warehouse),
        "SOURCES__CLANG__HOST": server.host,
        "SOURCES__CLANG__PORT": str(server.port),
        "SOURCES__CLANG__USERNAME": server.username,
        "SOURCES__CLANG__REMOTE_DIR": remote_dir,
        "SOURCES__CLANG__KNOWN_HOSTS": str(keys.known_hosts),
        "SOURCES__CLANG__PRIVATE_KEY_PATH": str(keys.user_key),
    }


def timed_load(env: dict) -> tuple[float, subprocess.CompletedProcess]:
    """`warehouse load clang` in a process of its own: its wall time and what it printed."""
    started = time.perf_counter()
    loader = subprocess.run(
        [sys.executable, "-m", "mail_warehouse", "load", "clang"], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if loader.returncode != 0:
        raise SystemExit(f"warehouse load clang failed:\n{loader.stdout}\n{loader.stderr}")
    return seconds, loader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-clang-"))
    try:
        export = work / "remote" / "export"
        export.mkdir(parents=True)
        source = export / "activiteiten_20261122.csv"
        write_activities(source, args.rows)
        size_mb = source.stat().st_size / 1e6
        keys = SshKeys.generate(work / "ssh")
        server = (OpenSshSftpServer if find_sshd() else AsyncsshSftpServer)(work / "remote", keys).start()
        try:
            env = clang_environment(server, keys, work / "warehouse.duckdb", "export")
            loader_seconds, loader = timed_load(env)
            loader_peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

            started = time.perf_counter()
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
                input=f"get export/{source.name} {work / 'anchor.csv'}\n",
                text=True,
                check=True,
                capture_output=True,
            )
            con = connect(work / "anchor.duckdb")
            con.execute(
                f"create table activities as select * from read_csv('{work / 'anchor.csv'}', delim=';', header=true)"
            )
            con.close()
            anchor_seconds = time.perf_counter() - started
        finally:
            server.stop()
        print(
            f"warehouse load clang: {args.rows:,} rows ({size_mb:,.0f} MB) over {server.kind} SFTP in "
            f"{loader_seconds:.1f} s, peak memory {loader_peak_mb:,.0f} MB"
        )
        print(f"anchor: OpenSSH sftp get + DuckDB read_csv into a table in {anchor_seconds:.1f} s")
        print(loader.stdout.strip())
        print(f"ratio loader / anchor = {loader_seconds / anchor_seconds:.2f}")
        report(
            "clang_load",
            loader_seconds / anchor_seconds,
            None,
            rows=args.rows,
            loader_seconds=loader_seconds,
            anchor_seconds=anchor_seconds,
            loader_peak_mb=loader_peak_mb,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
