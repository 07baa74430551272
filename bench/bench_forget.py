"""Benchmark: `warehouse forget --file` of 1,000 people in the ~10M-event warehouse of bench/worlds.py (loaded by
the real loaders from the stand-ins, `dbt build`, published, exported) against the part of an erasure done by hand
that cannot be avoided: rewriting the warehouse file with DuckDB (`ATTACH`; `COPY FROM DATABASE`), so no byte of
the deleted rows remains. Both run on a fresh copy of the same built warehouse, in the same run. Target: the
forget takes at most 3 times the rewrite.

The forget sweeps every place (dlt's pipeline folders, every table of the warehouse, the BI copy
analytics.duckdb, the exported CSVs) and rewrites both DuckDB files; the people are 1,000 addresses of
marts.contacts in a fixed order (by md5 of the address). Afterwards none of them may remain in any column whose
name holds "mail" in either file nor in the exported CSVs, and marts.contacts must have lost exactly their rows:
the benchmark fails otherwise.

The built warehouse (with dbt's target folder, dlt's pipeline folders and the exported CSVs) is kept in a cache
folder (--cache, default /tmp/mail_warehouse_bench_worlds/, one folder per world; --rebuild or deleting it
builds it again, e.g. after the loaders or models changed); each round works on a copy in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
from results import report
from worlds import END, add_world_arguments, write_benchmark_world

from mail_warehouse.forget import storage_version_of
from mail_warehouse.settings import connect, sql_literal
from mail_warehouse_demo.standins.stack import StandinStack

TARGET_RATIO = 3.0
DUCKDB_FILES = ("warehouse.duckdb", "analytics.duckdb")
SUMMARY = re.compile(
    r"^forget: (?P<people>\d+) (?:people|person), (?P<identifiers>\d+) identifiers on the suppression list; "
    r"(?P<removed>[\d,]+) rows and files removed from (?P<places>\d+) places",
    re.MULTILINE,
)


def cli(*args: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mail_warehouse", *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"warehouse {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def isolated(folder: Path) -> dict[str, str]:
    """Settings that keep every command on the warehouse in `folder`: its dbt target, exports, lake and Spark
    home there too (the forget sweeps the lake and Spark's tables, by default the repo's var/)."""
    return {
        "WAREHOUSE_PATH": str(folder / "warehouse.duckdb"),
        "DBT_TARGET_PATH": str(folder / "target"),
        "EXPORT__DEPLOYTEQ__LOCAL_DIR": str(folder / "exports"),
        "DESTINATION__FILESYSTEM__BUCKET_URL": str(folder / "lake"),
        "SPARK_HOME_DIR": str(folder / "spark"),
        "PRIVACY__SECRET": "bench-forget-secret",
    }


def built_warehouse(args: argparse.Namespace) -> tuple[Path, int]:
    """The folder holding the built warehouse of the world the arguments describe (built once into the cache),
    and its number of e-mail events."""
    folder = args.cache / f"forget-{args.contacts}-{args.mailings}-{args.days}-{END}"
    built, complete = folder / "built", folder / ".complete"
    if complete.exists() and not args.rebuild:
        return built, int(complete.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    events = write_benchmark_world(args, folder / "world")
    print(f"world: {events:,} e-mail events written in {time.perf_counter() - started:.0f} s", flush=True)
    steps: dict[str, float] = {}
    with StandinStack(folder / "world", folder / "state") as stack:
        env = {
            **os.environ,
            **stack.environment(),
            **isolated(built),
            "SOURCES__SPOTLER__START_DATE": "2025-01-01",
            "SOURCES__SPOTLER__PAGE_SIZE": "10000",
        }
        for source in ("clang", "spotler", "directo"):
            steps[f"load {source}"] = cli("load", source, env=env)
        steps["build"] = cli("build", "--", "--vars", f"{{as_of_date: '{END}'}}", env=env)
        steps["publish"] = cli("publish", env=env)
        steps["export"] = cli("export", env=env)  # to the Deployteq stand-in; the CSV copies stay in exports/
    shutil.rmtree(folder / "world", ignore_errors=True)
    shutil.rmtree(folder / "state", ignore_errors=True)
    complete.write_text(f"{events}\n")
    print(
        f"built into {built} in {time.perf_counter() - started:.0f} s ("
        + ", ".join(f"{step} {seconds:.0f} s" for step, seconds in steps.items())
        + ")",
        flush=True,
    )
    return built, events


def fresh_copy(built: Path, copy: Path) -> Path:
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(built, copy, symlinks=True)
    os.sync()  # the copy's writes are on disk before anything is timed
    return copy


def choose_people(warehouse: Path, people: int) -> list[str]:
    con = connect(warehouse, read_only=True)
    try:
        rows = con.execute(
            """select email from (select distinct lower(trim(email)) as email from marts.contacts
                                  where email like '%@%')
               order by md5(email), email limit ?""",
            [people],
        ).fetchall()
    finally:
        con.close()
    if len(rows) < people:
        raise SystemExit(f"marts.contacts has only {len(rows)} addresses; asked for {people}")
    return [email for (email,) in rows]


def rewrite(path: Path) -> float:
    """The anchor: `path` rewritten by DuckDB into a new file of its storage format, synced, renamed into place."""
    version = storage_version_of(path)
    scratch = path.with_name(f".{path.name}.rewritten")
    started = time.perf_counter()
    con = duckdb.connect()
    try:
        con.execute(f'attach {sql_literal(str(path))} as "{path.stem}" (read_only)')
        con.execute(f"attach {sql_literal(str(scratch))} as rewritten (storage_version {sql_literal(version)})")
        con.execute(f'copy from database "{path.stem}" to rewritten')
        con.execute("detach rewritten")
    finally:
        con.close()
    with scratch.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(scratch, path)
    return time.perf_counter() - started


def timed_forget(people_file: Path, env: dict[str, str]) -> dict:
    """`warehouse forget --file`: its wall time, peak memory, summary line, and the stderr lines with the seconds
    since the line before (the per-place progress: which place took the time)."""
    command = [sys.executable, "-m", "mail_warehouse", "forget", "--file", str(people_file)]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout: list[str] = []
    stderr: list[tuple[float, str]] = []

    def read_stdout() -> None:
        assert process.stdout is not None
        stdout.extend(process.stdout)

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            stderr.append((time.perf_counter() - started, line.rstrip("\n")))

    readers = [threading.Thread(target=read_stdout), threading.Thread(target=read_stderr)]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(process.pid, 0)  # the child's own rusage: its peak memory
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    output = "".join(stdout)
    if process.returncode != 0:
        lines = "\n".join(line for _, line in stderr)
        raise SystemExit(f"warehouse forget failed ({process.returncode}):\n{output[-3000:]}\n{lines[-3000:]}")
    summary = SUMMARY.search(output)
    if summary is None:
        raise SystemExit(f"no summary line in the forget's output:\n{output[-3000:]}")
    # (seconds since the line before, seconds since the start, line): a "removed" line ends its place's work, a
    # "compacting"/"sweeping" line starts the work the next line's gap shows
    steps, before = [], 0.0
    for at, line in stderr:
        steps.append((at - before, at, line.strip()))
        before = at
    steps.append((seconds - before, seconds, "(the end: the erasure marked finished, the summary printed)"))
    return {
        "seconds": seconds,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "summary": summary.group(0),
        "identifiers": int(summary["identifiers"]),
        "removed": int(summary["removed"].replace(",", "")),
        "places": int(summary["places"]),
        "steps": steps,
    }


def contacts_left(warehouse: Path, emails: list[str]) -> tuple[int, int]:
    """marts.contacts' rows, and those of them that name one of `emails`."""
    con = connect(warehouse, read_only=True)
    try:
        return con.execute(
            """select count(*), count(*) filter (where lower(trim(email)) in (select unnest($emails)))
               from marts.contacts""",
            {"emails": emails},
        ).fetchall()[0]
    finally:
        con.close()


def remaining(copy: Path, emails: list[str]) -> list[str]:
    """Every place in the copy still naming one of `emails`: a column whose name holds "mail" in either DuckDB
    file (the privacy schema aside: it keeps only keyed hashes), or a line of an exported CSV."""
    found = []
    for name in DUCKDB_FILES:
        path = copy / name
        if not path.exists():
            continue
        con = duckdb.connect(str(path), read_only=True)
        try:
            columns = con.execute(
                """select c.table_schema, c.table_name, c.column_name
                   from information_schema.columns c
                   join information_schema.tables t using (table_catalog, table_schema, table_name)
                   where t.table_type = 'BASE TABLE' and c.column_name ilike '%mail%' and c.data_type = 'VARCHAR'
                     and c.table_schema <> 'privacy'"""
            ).fetchall()
            for schema, table, column in columns:
                (rows,) = con.execute(
                    f'select count(*) from "{schema}"."{table}" '
                    f'where lower(trim("{column}")) in (select unnest($emails))',
                    {"emails": emails},
                ).fetchall()[0]
                if rows:
                    found.append(f"{name} {schema}.{table}.{column}: {rows} rows")
        finally:
            con.close()
    wanted = set(emails)
    for path in sorted((copy / "exports").rglob("*.csv")):
        text = path.read_text(encoding="utf-8-sig", errors="replace").lower()
        hits = sum(1 for token in re.split(r"[\s;,\"]+", text) if token in wanted)
        if hits:
            found.append(f"exports {path.name}: {hits} addresses")
    return found


def size_mb(copy: Path) -> dict[str, float]:
    return {name: round((copy / name).stat().st_size / 1e6, 1) for name in DUCKDB_FILES if (copy / name).exists()}


def one_round(built: Path, work: Path, emails: list[str], people_file: Path) -> dict:
    """The anchor on a fresh copy, then the forget on another fresh copy, checked afterwards."""
    copy = fresh_copy(built, work / "copy")
    anchor = rewrite(copy / "warehouse.duckdb")
    anchor_analytics = rewrite(copy / "analytics.duckdb") if (copy / "analytics.duckdb").exists() else None
    copy = fresh_copy(built, work / "copy")
    size_before = size_mb(copy)
    contacts_before, named_before = contacts_left(copy / "warehouse.duckdb", emails)
    env = {**os.environ, **isolated(copy)}
    forget = timed_forget(people_file, env)
    size_after = size_mb(copy)
    contacts_after, named_after = contacts_left(copy / "warehouse.duckdb", emails)
    left = remaining(copy, emails)
    if named_after or left:
        raise SystemExit("forgotten people remain after `warehouse forget`:\n  " + "\n  ".join(left))
    if contacts_before - contacts_after > 2 * named_before:  # more may go: rows tied to them by a shared id
        raise SystemExit(
            f"marts.contacts went from {contacts_before:,} to {contacts_after:,} rows; "
            f"only about the {named_before:,} rows of the forgotten people should have gone"
        )
    shutil.rmtree(copy)
    return {
        **forget,
        "anchor_seconds": anchor,
        "anchor_analytics_seconds": anchor_analytics,
        "size_before_mb": size_before,
        "size_after_mb": size_after,
        "contacts_before": contacts_before,
        "contacts_named": named_before,
        "contacts_removed": contacts_before - contacts_after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_world_arguments(parser)
    parser.add_argument("--people", type=int, default=1000, help="addresses to forget (1000)")
    parser.add_argument("--rounds", type=int, default=1, help="anchor and forget pairs; medians are compared (1)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "mail_warehouse_bench_worlds")
    parser.add_argument("--rebuild", action="store_true", help="build the cached warehouse again")
    args = parser.parse_args()
    built, events = built_warehouse(args)
    work = Path(tempfile.mkdtemp(prefix="bench-forget-"))
    try:
        emails = choose_people(built / "warehouse.duckdb", args.people)
        people_file = work / "people.txt"
        people_file.write_text("".join(f"{email}\n" for email in emails))
        rounds = []
        for i in range(1, args.rounds + 1):
            result = one_round(built, work, emails, people_file)
            rounds.append(result)
            print(
                f"round {i}: warehouse forget {result['seconds']:.1f} s (peak {result['peak_rss_mb']:.0f} MB), "
                f"anchor {result['anchor_seconds']:.1f} s, ratio {result['seconds'] / result['anchor_seconds']:.2f}",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    last = rounds[-1]
    forget_seconds = statistics.median(r["seconds"] for r in rounds)
    anchor_seconds = statistics.median(r["anchor_seconds"] for r in rounds)
    print(f"world: {events:,} e-mail events; marts.contacts {last['contacts_before']:,} rows")
    print("forget's stderr (last round): seconds since the line before, since the start; the line")
    for gap, at, line in last["steps"]:
        print(f"  +{gap:6.1f} s {at:7.1f} s  {line}")
    print(last["summary"])
    print(
        "files before / after (MB): "
        + ", ".join(
            f"{name} {last['size_before_mb'][name]:,} / {last['size_after_mb'][name]:,}"
            for name in last["size_before_mb"]
        )
    )
    print(f"warehouse forget of {args.people:,} people: {forget_seconds:.1f} s, peak {last['peak_rss_mb']:.0f} MB")
    print(f"anchor: DuckDB COPY FROM DATABASE of warehouse.duckdb: {anchor_seconds:.1f} s")
    print(f"ratio forget / anchor = {forget_seconds / anchor_seconds:.2f} (target <= {TARGET_RATIO:g})")
    slowest = sorted(last["steps"], reverse=True)[:5]
    report(
        "forget",
        forget_seconds / anchor_seconds,
        TARGET_RATIO,
        events=events,
        people=args.people,
        rounds=len(rounds),
        forget_seconds=round(forget_seconds, 2),
        anchor_seconds=round(anchor_seconds, 2),
        anchor_analytics_seconds=None
        if last["anchor_analytics_seconds"] is None
        else round(last["anchor_analytics_seconds"], 2),
        forget_peak_rss_mb=round(last["peak_rss_mb"]),
        identifiers=last["identifiers"],
        rows_removed=last["removed"],
        places=last["places"],
        contacts_before=last["contacts_before"],
        contacts_named=last["contacts_named"],
        contacts_removed=last["contacts_removed"],
        size_before_mb=last["size_before_mb"],
        size_after_mb=last["size_after_mb"],
        slowest_gaps=[[round(gap, 1), f"until: {line}"] for gap, _, line in slowest],
    )


if __name__ == "__main__":
    main()
