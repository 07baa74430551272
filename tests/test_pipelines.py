"""The warehouse's dlt pipelines: what a killed run leaves behind does not stop the next one."""

from __future__ import annotations

from mail_warehouse.pipelines import make_pipeline, pipelines_dir


def test_a_schema_save_cut_short_by_a_kill_does_not_stop_the_next_run(tmp_path, monkeypatch):
    """dlt saves a schema through a temporary file renamed into place; a run killed in between leaves that
    file, and dlt takes it for a schema with an invalid name when the next run syncs with the destination."""
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    make_pipeline("killed", "raw_killed").run([{"id": 1}], table_name="rows")
    schemas = pipelines_dir() / "killed" / "schemas"
    assert list(schemas.glob("*.schema.json"))
    (schemas / "45906d29635ecaae").write_text("{}")  # what a kill mid-save leaves (dlt's uniq_id)

    make_pipeline("killed", "raw_killed").run([{"id": 2}], table_name="rows")

    assert sorted(path.name for path in schemas.iterdir()) == ["killed.schema.json"]
