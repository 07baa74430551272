"""Rules that must hold on both sides of the Python/dbt boundary: where dbt cannot be handed the Python side's
value (a plain `dbt build` by an analyst), these tests tie the two, so changing one alone fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mail_warehouse import build, export, settings
from mail_warehouse.consent_guard import normalized_email
from mail_warehouse_sources import directo
from mail_warehouse_sources.spotler import rows as spotler_rows
from mail_warehouse_sources.spotler.config import SpotlerSourceConfiguration

ROOT = Path(__file__).resolve().parent.parent


def test_directo_time_zone_default_is_the_loaders_in_the_models():
    macro = (ROOT / "macros" / "mail_event_rules.sql").read_text()
    (default,) = re.findall(r"env_var\('SOURCES__DIRECTO__TIMEZONE', '([^']+)'\)", macro)
    assert default == directo.DEFAULT_TIMEZONE == directo.DirectoSourceConfiguration().timezone


def test_settle_days_default_is_the_spotler_loaders_and_a_setting_reaches_dbt(monkeypatch):
    project = yaml.safe_load((ROOT / "dbt_project.yml").read_text())
    assert project["vars"]["settle_days"] == SpotlerSourceConfiguration().settle_days
    monkeypatch.setenv("SOURCES__SPOTLER__SETTLE_DAYS", "12")
    arguments = build.with_configured_sources(["build", "--vars", "{as_of_date: '2026-11-23'}"])
    assert arguments[-2] == "--vars"
    passed = yaml.safe_load(arguments[-1])
    assert passed["settle_days"] == 12 and passed["as_of_date"] == "2026-11-23"
    # what the command line says wins
    arguments = build.with_configured_sources(["build", "--vars", "{settle_days: 5}"])
    assert yaml.safe_load(arguments[-1])["settle_days"] == 5


def test_delivered_csv_trigger_statuses_are_the_exports():
    model = (ROOT / "models" / "staging" / "exports" / "stg_exports__csv_trigger_sends.sql").read_text()
    (listed,) = re.findall(r"status in \(([^)]*)\)", model)
    assert tuple(re.findall(r"'([^']+)'", listed)) == export.DELIVERED


@pytest.mark.parametrize("address", [" René@Example.BE ", "a@b.nl", "", "   ", None, "MiXeD@Case.Com\t"])
def test_the_exports_address_spelling_is_the_models(address):
    macro = (ROOT / "macros" / "normalize_email.sql").read_text()
    (body,) = re.findall(r"\{%-? macro normalize_email\(column\) -?%\}\s*(.*?)\s*\{%-? endmacro", macro, re.S)
    models_sql = body.replace("{{ column }}", "$address")
    con = settings.connect(":memory:")
    try:
        (models,), (ours,) = (
            con.execute(f"select {sql}", {"address": address}).fetchall()
            for sql in (models_sql, normalized_email("$address"))
        )
    finally:
        con.close()
    assert models == ours


def test_spotler_sources_yml_declares_the_loaders_tables_and_columns():
    """The staging models read what `_spotler__sources.yml` declares; the loader writes `rows.COLUMNS`."""
    sources = yaml.safe_load((ROOT / "models" / "staging" / "spotler" / "_spotler__sources.yml").read_text())
    (spotler,) = [source for source in sources["sources"] if source["name"] == "spotler"]
    declared = {table["name"]: {column["name"] for column in table.get("columns", [])} for table in spotler["tables"]}
    loaded = {name: set(columns) for name, columns in spotler_rows.COLUMNS.items()}
    missing_tables = {name for name in declared if name not in loaded and name != "loads"}
    assert missing_tables == set(), "declared in the sources yml, never written by the loader"
    unknown = {name: sorted(columns - loaded[name]) for name, columns in declared.items() if name in loaded}
    assert {name: columns for name, columns in unknown.items() if columns} == {}
    keys = {
        name: set(key) if isinstance(key, list | tuple) else {key} for name, key in spotler_rows.PRIMARY_KEYS.items()
    }
    assert all(keys[name] <= loaded[name] for name in keys), "a primary key that is no column"
