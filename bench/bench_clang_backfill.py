"""Benchmark: the first `warehouse load clang` over the backlog Clang keeps (two months of daily files), against
OpenSSH's `sftp` fetching the same folder plus one DuckDB `create table ... as select * from read_csv(...)` of
each kind of file, in the same run, from the same loopback server (OpenSSH's sshd). Target: ratio <= 2.
Loader and anchor alternate for `--rounds` rounds (each load into a new warehouse, as a first run is); their
medians are compared, since one round on two shared cores varies by a third.

The world is the demo world's (`--days 60`, `--contacts 100000`: 120 files, about 155 MB); `--world DIR` reuses
one written before by `warehouse demo-data`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench_clang_load import clang_environment, timed_load
from results import report

from mail_warehouse.settings import connect
from mail_warehouse_demo.standins.sftp import AsyncsshSftpServer, OpenSshSftpServer, SshKeys, find_sshd
from mail_warehouse_demo.world import WorldSpec, simulate
from mail_warehouse_demo.writers import write_world

TARGET_RATIO = 2.0


def timed_anchor(server, keys: SshKeys, work: Path) -> float:
    """OpenSSH's sftp fetches the folder, then DuckDB reads each kind of file into a table in one statement."""
    local = work / "anchor"
    shutil.rmtree(local, ignore_errors=True)
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
        input=f"get -r clang {local}\n",
        text=True,
        check=True,
        capture_output=True,
    )
    database = work / "anchor.duckdb"
    database.unlink(missing_ok=True)
    con = connect(database)
    for table, pattern in (("activities", "activiteiten_*.csv"), ("broadcasts", "broadcasts_*.csv")):
        con.execute(f"create table {table} as select * from read_csv('{local / pattern}', delim=';', header=true)")
    con.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--world", type=Path, help="a world written before (warehouse demo-data --out DIR)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-clang-backfill-"))
    try:
        world = args.world
        if world is None:
            world = work / "world"
            write_world(simulate(WorldSpec(contacts=args.contacts, days=args.days)), world)
        files = sorted((world / "clang").iterdir())
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        keys = SshKeys.generate(work / "ssh")
        server = (OpenSshSftpServer if find_sshd() else AsyncsshSftpServer)(world, keys).start()
        try:
            loads, anchors = [], []
            for round_number in range(args.rounds):
                anchors.append(timed_anchor(server, keys, work))  # the first also fills the page cache
                env = clang_environment(server, keys, work / f"warehouse{round_number}.duckdb", "clang")
                seconds, loader = timed_load(env)
                loads.append(seconds)
        finally:
            server.stop()
        loader_seconds, anchor_seconds = statistics.median(loads), statistics.median(anchors)
        print(
            f"warehouse load clang: {len(files)} files ({size_mb:,.0f} MB) over {server.kind} SFTP, a new "
            f"warehouse each round: {', '.join(f'{s:.1f}' for s in loads)} s, median {loader_seconds:.1f} s"
        )
        print(
            f"anchor: OpenSSH sftp get -r + DuckDB read_csv of each kind into a table: "
            f"{', '.join(f'{s:.1f}' for s in anchors)} s, median {anchor_seconds:.1f} s"
        )
        print(loader.stdout.strip())
        ratio = loader_seconds / anchor_seconds
        print(f"ratio of the medians loader / anchor = {ratio:.2f} (target <= {TARGET_RATIO:g})")
        report("clang_backfill", ratio, TARGET_RATIO, loader_seconds=loader_seconds, anchor_seconds=anchor_seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
