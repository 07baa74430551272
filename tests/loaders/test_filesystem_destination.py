"""Each loader is a plain dlt source: run unchanged into dlt's `filesystem` destination (parquet files in a
local folder), it writes the same tables and rows as into the warehouse."""

from __future__ import annotations

from pathlib import Path

import dlt
import pyarrow.parquet as pq
import pytest

from mail_warehouse.settings import connect
from mail_warehouse_demo.standins.stack import StandinStack
from mail_warehouse_sources.clang import clang_source
from mail_warehouse_sources.directo import SyncSummary, directo_source
from mail_warehouse_sources.spotler import SyncReport, spotler_source


@pytest.fixture
def standins(world_dir, tmp_path, monkeypatch):
    with StandinStack(world_dir, tmp_path / "standins") as stack:
        for name, value in stack.environment().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("SOURCES__SPOTLER__START_DATE", "2025-01-01")
        yield stack


def into_parquet(tmp_path: Path, name: str, source) -> dict[str, int]:
    """Run `source` into parquet files under tmp_path/lake; rows per table, read back from the files."""
    lake = tmp_path / "lake"
    pipeline = dlt.pipeline(
        pipeline_name=f"lake_{name}",
        destination=dlt.destinations.filesystem(bucket_url=lake.as_uri()),
        dataset_name=name,
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    pipeline.run(source, loader_file_format="parquet")
    counts = {}
    for table_dir in sorted(p for p in (lake / name).iterdir() if p.is_dir() and not p.name.startswith("_dlt")):
        counts[table_dir.name] = sum(pq.read_metadata(f).num_rows for f in table_dir.glob("*.parquet"))
    return counts


def truth(world_dir, system: str, event_types: str) -> int:
    con = connect(world_dir / "world.duckdb", read_only=True)
    try:
        return con.execute(f"""select count(*) from events e join mailings m using (mailing_index)
                               where m.system = '{system}' and e.event_type in ({event_types})""").fetchone()[0]
    finally:
        con.close()


def test_spotler_source_into_parquet(standins, world_dir, tmp_path):
    report = SyncReport()
    counts = into_parquet(tmp_path, "spotler", spotler_source(now=standins.spotler_api.now, report=report))
    assert {
        "mailings",
        "mailing_links",
        "mailing_statistics_snapshots",
        "recipients",
        "opens",
        "bounces",
        "clicks",
        "campaigns",
        "campaign_mailings",
        "campaign_recipients",
        "campaign_opens",
        "campaign_clicks",
        "campaign_bounces",
        "forms",
        "form_results",
    } <= set(counts)
    assert counts["opens"] == truth(world_dir, "spotler", "'open'") > 0
    assert counts["recipients"] == truth(world_dir, "spotler", "'sent'")
    assert counts["clicks"] == truth(world_dir, "spotler", "'click'")
    assert counts["campaign_opens"] == truth(world_dir, "spotler_campaign", "'open'")
    assert counts == dict(report.rows.items())


def test_directo_source_into_parquet(standins, world_dir, tmp_path):
    summary = SyncSummary()
    counts = into_parquet(tmp_path, "directo", directo_source(summary=summary))
    answer = (world_dir / "directo" / "customers.xml").read_text(encoding="utf-8")
    assert counts["customers"] == answer.count("<customer ") == summary.customers > 500
    assert counts["datafields"] == summary.datafields > 0
    assert "customer_answer" not in counts  # the parsed answer feeds the two tables; it is no table itself


def test_clang_source_into_parquet(standins, world_dir, tmp_path):
    counts = into_parquet(tmp_path, "clang", clang_source())
    lines = {
        kind: sum(
            len(f.read_text(encoding="utf-8").splitlines()) - 1 for f in (world_dir / "clang").glob(f"{kind}_*.csv")
        )
        for kind in ("activiteiten", "broadcasts")
    }
    assert counts["activities"] + counts.get("rejected_rows", 0) == lines["activiteiten"] > 0
    assert counts["broadcasts"] == lines["broadcasts"] > 0
    assert counts["loaded_files"] == len(list((world_dir / "clang").glob("*.csv")))
