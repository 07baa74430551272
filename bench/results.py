"""How every benchmark ends: its figures as JSON, printed and written to `var/bench/<name>.json` (or the folder
BENCH_RESULTS_DIR names) for tools that track them over time, then the one `RESULT` line."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent.parent / "var" / "bench"


def report(name: str, ratio: float | None, target: float | None, digits: int = 2, **figures) -> None:
    """Print `FIGURES {json}` and write it beside the others, then `RESULT <name> ratio=<x> target=<y>`."""
    record = {
        "benchmark": name,
        "ratio": None if ratio is None else round(ratio, digits),
        "target": target,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "figures": figures,
    }
    folder = Path(os.environ.get("BENCH_RESULTS_DIR") or RESULTS_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    print("FIGURES " + json.dumps(record, default=str))
    shown = "none" if ratio is None else f"{ratio:.{digits}f}"
    print(f"RESULT {name} ratio={shown} target={'none' if target is None else f'{target:g}'}")
