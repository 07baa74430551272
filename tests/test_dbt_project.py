"""The dbt project's shape, read from dbt's own manifest: layers point one way, staging alone reads sources,
and every model names what it reads in an import CTE at its top."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("staging", "intermediate", "marts", "segments")
# `name as (select * from {{ ref('x') }}` (an incremental filter may follow inside the CTE), or a ref a
# macro is handed at the top (`{%- set events = ref('x') %}`), or dbt's `-- depends_on:` hint
IMPORT = re.compile(r"\w+ as \(\s*select \* from \{\{ (ref|source_or_empty)\([^)]*\) \}\}")
SET_REF = re.compile(r"\{%-? set \w+ = ref\([^)]*\) %\}")
DEPENDS_ON = re.compile(r"-- depends_on: \{\{ ref\([^)]*\) \}\}")
CALL = re.compile(r"\b(ref|source_or_empty)\(")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> dict:
    target = tmp_path_factory.mktemp("dbt_target")
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, "WAREHOUSE_PATH": str(target / "parse.duckdb"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    parsed = subprocess.run(
        [str(dbt), "parse", "--project-dir", str(ROOT), "--profiles-dir", str(ROOT), "--target-path", str(target)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert parsed.returncode == 0, parsed.stdout[-3000:]
    return json.loads((target / "manifest.json").read_text())


def _models(manifest: dict) -> dict[str, dict]:
    return {uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] == "model"}


def _layer(node: dict) -> str:
    layer = node["fqn"][1]
    assert layer in LAYERS, f"{node['original_file_path']} is in no layer (models/<{'|'.join(LAYERS)}>/)"
    return layer


def test_no_model_reads_a_layer_above_its_own(manifest):
    models = _models(manifest)
    backwards = [
        f"{node['name']} ({_layer(node)}) reads {models[parent]['name']} ({_layer(models[parent])})"
        for node in models.values()
        for parent in node["depends_on"]["nodes"]
        if parent in models and LAYERS.index(_layer(models[parent])) > LAYERS.index(_layer(node))
    ]
    assert backwards == []


def test_staging_alone_reads_sources_and_reads_nothing_else(manifest):
    models = _models(manifest)
    for node in models.values():
        reads = node["depends_on"]["nodes"]
        sources = [uid for uid in reads if uid.startswith("source.")]
        if _layer(node) == "staging":
            assert not [uid for uid in reads if uid in models], f"{node['name']} reads a model"
        else:
            assert not sources, f"{node['name']} ({_layer(node)}) reads a source: {sources}"


def test_every_ref_is_in_an_import_cte(manifest):
    """A reader sees at the top of each model what it reads; the logic below uses those CTEs by name."""
    loose = []
    for node in _models(manifest).values():
        code = node["raw_code"]
        imported = len(IMPORT.findall(code)) + len(SET_REF.findall(code)) + len(DEPENDS_ON.findall(code))
        calls = len(CALL.findall(code))
        if calls != imported:
            loose.append(f"{node['original_file_path']}: {calls - imported} of {calls} outside an import CTE")
    assert loose == []
