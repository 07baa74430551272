"""Benchmark: `warehouse load directo` of 1M customers with 3 datafields each, against a bare lxml
`iterparse` pass over the same XML, in the same run. Prints both wall times, the ratio (target <= 2)
and the loader's peak memory (target <= 400 MB); then loads the same answer again with `--full`, which
compares every customer with what is loaded, and prints its time and peak memory too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lxml import etree
from results import report

from mail_warehouse_demo.directo_xml import render_transport
from mail_warehouse_demo.standins import directo
from mail_warehouse_demo.world import WorldSpec, simulate
from mail_warehouse_demo.writers import write_world


def synthetic_customers(count: int):
    classes = ("ERAKLIENT", "ÄRIKLIENT", "VIP")
    for i in range(count):
        changed = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i * 29)
        yield (
            {
                "code": str(100_000 + i),
                "name": f"Tõnu Kask {i}",
                "address1": f"Pikk {i % 200}",
                "address2": "Tallinn",
                "country": "EE",
                "county": "Harjumaa",
                "contact": "Tõnu",
                "phone": f"+372 5{i:07d}",
                "email": f"tonu.kask{i}@example.ee",
                "class": classes[i % 3],
                "payterm": "14P",
                "vatregion": 0,
                "priceformula": "JAE",
                "balance": f"{i % 997}.50",
                "creditlimit": "0.00",
                "creditbalance": "0.00",
                "deliveryinvoice": 1,
                "salesman": "MARI",
                "currency": "EUR",
                "discount": "5.0",
                "closed": int(i % 25 == 0),
                "ts": changed,
            },
            [
                ("OPTIN", "yes" if i % 10 else "no", "01.02.2026"),
                ("KEEL", "et", None),
                ("SYNNIPAEV", "05.06.1969", None),
            ],
        )


def bare_iterparse(path: Path) -> int:
    count = 0
    for _, element in etree.iterparse(
        str(path), events=("end",), tag="customer", resolve_entities=False, no_network=True, load_dtd=False
    ):
        count += 1
        element.clear()
        while element.getprevious() is not None:
            del element.getparent()[0]
    return count


def run_loader(args: list[str], env: dict, log: Path) -> tuple[float, float, str]:
    """`warehouse <args>` in a child process: (wall seconds, that child's peak RSS in MB, its stdout)."""
    started = time.perf_counter()
    with log.open("w+") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "mail_warehouse", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        text = out.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"warehouse {' '.join(args)} failed:\n{text}")
    return (
        seconds,
        usage.ru_maxrss / 1024,
        "\n".join(line for line in text.splitlines() if line.startswith("directo: ") and "asking" not in line),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-directo-"))
    try:
        answer = work / "customers.xml"
        with answer.open("wb") as out:
            for chunk in render_transport(synthetic_customers(args.customers)):
                out.write(chunk)
        size_mb = answer.stat().st_size / 1e6
        world = work / "world"  # the stand-in needs a world to start; the answer itself is the file above
        write_world(simulate(WorldSpec(contacts=20, mailings=1, days=7, end=dt.date(2026, 11, 23))), world)
        server, app = directo.serve(world)
        try:
            app.serve_raw(answer, answer)
            env = {
                **os.environ,
                "WAREHOUSE_PATH": str(work / "warehouse.duckdb"),
                "SOURCES__DIRECTO__URL": app.url(server),
                "SOURCES__DIRECTO__KEY": app.key,
            }
            first = run_loader(["load", "directo"], env, work / "first.log")
            again = run_loader(["load", "directo", "--full"], env, work / "again.log")
        finally:
            server.stop()
        loader_seconds, peak_mb, output = first
        started = time.perf_counter()
        parsed = bare_iterparse(answer)
        anchor_seconds = time.perf_counter() - started
        print(
            f"warehouse load directo: {args.customers:,} customers ({size_mb:,.0f} MB of XML) "
            f"in {loader_seconds:.1f} s, "
            f"peak memory {peak_mb:,.0f} MB (target <= 400)"
        )
        print(f"anchor: bare lxml iterparse of the same file ({parsed:,} customers) in {anchor_seconds:.1f} s")
        print(f"ratio loader / anchor = {loader_seconds / anchor_seconds:.2f} (target <= 2)")
        print(output)
        print(
            f"the same answer again with --full (every customer compared with what is loaded): {again[0]:.1f} s, "
            f"peak memory {again[1]:,.0f} MB"
        )
        print(again[2])
        report(
            "directo_load",
            loader_seconds / anchor_seconds,
            None,
            customers=args.customers,
            loader_seconds=loader_seconds,
            anchor_seconds=anchor_seconds,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
