"""The sources are a distribution of their own (sources/pyproject.toml): what they import, they declare; they
need nothing of the warehouse application, dbt or the dashboard; importing them changes nothing in the process."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions

from packaging.requirements import Requirement

from mail_warehouse.settings import PROJECT_DIR

SOURCES = PROJECT_DIR / "sources"
PACKAGE = "mail_warehouse_sources"


def imported_top_level_modules() -> set[str]:
    found = set()
    for path in (SOURCES / PACKAGE).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_every_third_party_import_is_a_declared_dependency():
    declared = {
        Requirement(r).name.lower().replace("_", "-")
        for r in tomllib.loads((SOURCES / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    }
    providers = packages_distributions()
    third_party = {m for m in imported_top_level_modules() if m not in sys.stdlib_module_names and m != PACKAGE}
    undeclared = {
        module: providers.get(module)
        for module in third_party
        if not {d.lower().replace("_", "-") for d in providers.get(module, [])} & declared
    }
    assert third_party and not undeclared


def test_the_sources_import_without_the_application_and_change_nothing():
    code = f"""
import sys, threading, logging
hook, handlers = threading.excepthook, list(logging.getLogger().handlers)
import {PACKAGE}.clang, {PACKAGE}.spotler, {PACKAGE}.directo
from {PACKAGE}.clang import clang_source
from {PACKAGE}.spotler import spotler_source
from {PACKAGE}.directo import directo_source
import dlt
app = ("dbt", "mail_warehouse", "mail_warehouse_demo", "streamlit")
foreign = sorted(m for m in sys.modules if m.split(".")[0] in app)
assert not foreign, foreign
assert threading.excepthook is hook and logging.getLogger().handlers == handlers
assert dlt.config.get("normalize.parquet_normalizer.add_dlt_load_id") is None
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=SOURCES, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
