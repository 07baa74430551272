"""`warehouse build`: dbt build on the warehouse, run from the repo with the same WAREHOUSE_PATH, then
`dbt source freshness` on the sources that have been loaded, reported in one line per stale source.

Freshness measures loads (dlt's load log of each raw schema), not mail activity. A stale source is a
warning; with `fail_on_stale_sources = true` under `[build]` in `.dlt/config.toml` (environment:
BUILD__FAIL_ON_STALE_SOURCES=true) a source past its error_after fails the build, so nothing stale is
published or exported.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import yaml

from mail_warehouse.settings import PROJECT_DIR, WAREHOUSE_PATH_ENV, configured_sources, warehouse_path
from mail_warehouse_sources.directo import DirectoSourceConfiguration
from mail_warehouse_sources.spotler.config import SpotlerSourceConfiguration

if TYPE_CHECKING:
    from dbt.contracts.graph.manifest import Manifest

# The dbt source of each loader and the raw schema it loads into (models/staging/<source>/_<source>__sources.yml).
LOADED_SOURCES = {"clang": "raw_clang", "spotler": "raw_spotler", "directo": "raw_directo"}
FRESHNESS_TABLE = "loads"  # dlt's _dlt_loads, declared in each source's yml
DIRECTO_TIMEZONE_ENV = "SOURCES__DIRECTO__TIMEZONE"
# The loaders' settings the models read as dbt vars of the same meaning (dbt_project.yml's defaults equal the
# loaders', a test ties them): `warehouse build` passes the configured value.
MODEL_VARS_FROM_SETTINGS = {"settle_days": (SpotlerSourceConfiguration, "spotler", "settle_days")}
CLANG_MACHINE_FLAG_ENV = "SOURCES__CLANG__MACHINE_FLAG_COLUMN"  # read by macros/machine_rules.sql


def dbt_target_path() -> Path:
    configured = Path(os.environ.get("DBT_TARGET_PATH") or "target")
    return configured if configured.is_absolute() else PROJECT_DIR / configured


def project_manifest() -> dict:
    """dbt's manifest of the project (`manifest.json` in dbt's target path, as the last dbt command wrote it;
    parsed now when there is none yet): where publish finds the models' keys and the export its segments'
    targets, so both read the project as dbt does."""
    path = dbt_target_path() / "manifest.json"
    if not path.exists() and _dbt(["parse", "--quiet"]) != 0:
        raise RuntimeError(f"dbt could not parse the project into {path}: run `warehouse build` to see why")
    return json.loads(path.read_text())


def project_models(manifest: dict, layer: str | None = None) -> list[dict]:
    """The models of a manifest, by name; `layer`: only those under models/<layer>/."""
    return sorted(
        (
            node
            for node in manifest["nodes"].values()
            if node.get("resource_type") == "model" and (layer is None or node["fqn"][1:2] == [layer])
        ),
        key=lambda node: node["name"],
    )


def run_results_path() -> Path:
    """dbt's account of its last command (publish reads it: only a passing build is published)."""
    return dbt_target_path() / "run_results.json"


def dbt_environment() -> dict[str, str]:
    """dbt's environment: the warehouse file, Directo's time zone (its OPTIN dates are days in that zone) and
    the Clang field that flags machines, from the loaders' own settings, so the models read the data as the
    loaders do."""
    from mail_warehouse.lake import BUCKET_URL_VARIABLE, lake_url

    # the lake as an absolute path: a Spark Thrift server resolves a relative one from a folder of its own
    env = {**os.environ, WAREHOUSE_PATH_ENV: str(warehouse_path()), BUCKET_URL_VARIABLE: lake_url()}
    from mail_warehouse.config import loader_setting
    from mail_warehouse_sources.clang.settings import ClangConfiguration

    if not env.get(DIRECTO_TIMEZONE_ENV):
        env[DIRECTO_TIMEZONE_ENV] = str(loader_setting(DirectoSourceConfiguration, "directo", "timezone"))
    if not env.get(CLANG_MACHINE_FLAG_ENV):
        env[CLANG_MACHINE_FLAG_ENV] = str(loader_setting(ClangConfiguration, "clang", "machine_flag_column") or "")
    return env


# dbt's parse of the project for each (--vars, --target): what one `warehouse build` process has parsed.
_parsed_manifests: dict[tuple[str, ...], Manifest | None] = {}


def _close_dbt_duckdb_connection() -> None:
    """dbt-duckdb keeps its connection to the warehouse for the life of the process (a dbt process ends with
    its command); closed here, so that this process can open the file again (read-only) after dbt, and any
    other process can as soon as dbt is done."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another engine's adapter
        return
    environment = DuckDBConnectionManager._ENV
    DuckDBConnectionManager.close_all_connections()
    if environment is not None:
        environment.close()


def _dbt(command: list[str]) -> int:
    """dbt in this process (dbtRunner), its output straight to the terminal, exit code as dbt's CLI gives it
    (0 ok, 1 failures, 2 an error). The build and the freshness check after it share one interpreter, one
    import of dbt and one parse of the project, instead of a dbt process each (about 3 s of CPU apiece)."""
    from dbt.cli.main import dbtRunner
    from dbt.contracts.graph.manifest import Manifest

    project = _enter_project()
    parse_key = tuple(_options(command, ("--vars", "--target")))
    if parse_key not in _parsed_manifests:
        parsed = dbtRunner().invoke(["parse", "--quiet", *parse_key, *project])
        # a project that does not parse: the command itself reports it, as dbt's CLI would
        _parsed_manifests[parse_key] = parsed.result if parsed.success and isinstance(parsed.result, Manifest) else None
    result = dbtRunner(manifest=_parsed_manifests[parse_key]).invoke([*command, *project])
    _close_dbt_duckdb_connection()
    if result.exception is not None:
        return 2
    return 0 if result.success else 1


def _enter_project() -> list[str]:
    """Ready this process for dbt in it (its environment, the repo as the working folder: profiles.yml's relative
    warehouse path is relative to the repo, as for dbt's CLI); the arguments naming the project, and the repo's
    profiles.yml unless DBT_PROFILES_DIR names another (dbt reads that itself)."""
    os.environ.update(dbt_environment())
    os.chdir(PROJECT_DIR)
    profiles = [] if os.environ.get("DBT_PROFILES_DIR") else ["--profiles-dir", str(PROJECT_DIR)]
    return [*profiles, "--project-dir", str(PROJECT_DIR)]


def dbt_operation(macro: str, arguments: dict, target_arguments: list[str]) -> list[str]:
    """`dbt run-operation <macro>` in this process on the given target; the lines the macro logged. Its results go
    to a folder of their own under dbt's target path (`operations/`), so the build's run_results.json, which
    publish reads, stays the last build's. Raises when dbt fails (its own output says why)."""
    import json as json_module

    from dbt.cli.main import dbtRunner

    project = _enter_project()
    logged: list[str] = []

    def keep(event) -> None:
        if event.info.name in ("JinjaLogInfo", "JinjaLogDebug"):
            logged.append(event.data.msg)

    command = ["run-operation", macro, "--args", json_module.dumps(arguments), *target_arguments]
    result = dbtRunner(callbacks=[keep]).invoke(
        [*command, "--target-path", str(dbt_target_path() / "operations"), *project]
    )
    if not result.success:
        raise RuntimeError(f"dbt run-operation {macro} failed: {result.exception or 'see its output above'}")
    return logged


@dataclass
class SourceFreshness:
    source: str
    status: str  # pass | warn | error | runtime error | not loaded
    hours_since_load: float | None = None
    warn_after: str = ""
    error_after: str = ""

    @property
    def is_stale(self) -> bool:
        return self.status in ("warn", "error")

    def line(self) -> str:
        if self.status == "not loaded":
            return f"{self.source}: never loaded"
        if self.hours_since_load is None:
            return f"{self.source}: freshness could not be checked ({self.status}; see dbt's output above)"
        age = (
            f"{self.hours_since_load:.0f} h" if self.hours_since_load < 48 else f"{self.hours_since_load / 24:.1f} days"
        )
        if self.status == "pass":
            return f"{self.source}: last loaded {age} ago"
        limit = self.error_after if self.status == "error" else self.warn_after
        return f"{self.source}: STALE, last loaded {age} ago (more than {limit}); check its loader and schedule"


def loaded_sources(warehouse: Path | None = None) -> list[str]:
    """The sources whose raw schema holds a load log: they have been loaded at least once (with the spark
    engine: into the lake)."""
    from mail_warehouse.engine import current_engine

    return current_engine().loaded_sources(LOADED_SOURCES, warehouse)


def _period(criterion: dict | None) -> str:
    if not criterion or criterion.get("count") is None:
        return ""
    return f"{criterion['count']} {criterion['period']}{'s' if criterion['count'] != 1 else ''}"


def read_freshness(report: Path) -> list[SourceFreshness]:
    """dbt's sources.json, one entry per source (its `loads` table)."""
    results = json.loads(report.read_text())["results"]
    found = []
    for result in results:
        source = result["unique_id"].split(".")[2]
        criteria = result.get("criteria") or {}
        seconds = result.get("max_loaded_at_time_ago_in_s")
        found.append(
            SourceFreshness(
                source,
                result["status"],
                seconds / 3600 if seconds is not None else None,
                _period(criteria.get("warn_after")),
                _period(criteria.get("error_after")),
            )
        )
    return found


def freshness_report_path() -> Path:
    """Where `dbt source freshness` writes its answer: sources.json in dbt's target path."""
    return dbt_target_path() / "sources.json"


def _options(dbt_args: list[str], names: tuple[str, ...]) -> list[str]:
    """The options `names` of a dbt command line, with their values, in their order."""
    found = []
    for index, argument in enumerate(dbt_args):
        if argument in names and index + 1 < len(dbt_args):
            found += [argument, dbt_args[index + 1]]
        elif argument.startswith(tuple(f"{name}=" for name in names)):
            found.append(argument)
    return found


def _without_options(dbt_args: list[str], names: tuple[str, ...]) -> list[str]:
    """A dbt command line less the options `names` and their values."""
    kept, skip = [], False
    for argument in dbt_args:
        if skip:
            skip = False
        elif argument in names:
            skip = True
        elif not argument.startswith(tuple(f"{name}=" for name in names)):
            kept.append(argument)
    return kept


def with_configured_sources(dbt_args: list[str]) -> list[str]:
    """The dbt command line with `<source>_enabled: true` for every configured source, unless the command line
    says otherwise: a configured source must have been loaded (see macros/sources_present.sql), so a first load
    that failed stops the build instead of letting the models treat the source as absent (without Directo,
    consent is implied by mailing). The loaders' settings the models share (MODEL_VARS_FROM_SETTINGS) go
    along, as the loaders read them."""
    from mail_warehouse.config import loader_setting

    configured = configured_sources()
    from_settings = {name: loader_setting(*setting) for name, setting in MODEL_VARS_FROM_SETTINGS.items()}
    given = _options(dbt_args, ("--vars",))
    text = (given[1] if given[0] == "--vars" else given[0].split("=", 1)[1]) if given else ""
    user_vars = (yaml.safe_load(text) or {}) if text else {}
    if not isinstance(user_vars, dict):
        return dbt_args  # not a mapping: dbt itself says what is wrong with it
    merged = {f"{source}_enabled": True for source in configured} | from_settings | user_vars
    return [*_without_options(dbt_args, ("--vars",)), "--vars", json.dumps(merged, default=str)]


def _vars_arguments(dbt_args: list[str]) -> list[str]:
    """The `--vars` of a dbt command line: given to the freshness check too, dbt re-uses the build's parse."""
    return _options(dbt_args, ("--vars",))


def check_freshness(stream=sys.stderr, dbt_vars: list[str] | None = None) -> list[SourceFreshness]:
    """`dbt source freshness` on every loaded source; one line per source on `stream`."""
    report = freshness_report_path()
    report.unlink(missing_ok=True)  # never read an earlier run's answer
    try:
        loaded = loaded_sources()
    except duckdb.Error as error:
        print(f"source freshness: not checked, {warehouse_path()} could not be read ({error})", file=stream, flush=True)
        return []
    checked: list[SourceFreshness] = []
    if loaded:
        from mail_warehouse.engine import current_engine

        _dbt(
            [
                "source",
                "freshness",
                *current_engine().dbt_target_arguments(),
                *(dbt_vars or []),
                "--select",
                *(f"source:{source}.{FRESHNESS_TABLE}" for source in loaded),
            ]
        )
        if report.exists():
            checked = read_freshness(report)
        else:
            checked = [SourceFreshness(source, "runtime error") for source in loaded]
    checked += [SourceFreshness(source, "not loaded") for source in LOADED_SOURCES if source not in loaded]
    print("source freshness: " + "; ".join(entry.line() for entry in checked), file=stream, flush=True)
    return checked


def fail_on_stale_sources() -> bool:
    from mail_warehouse.config import BuildConfiguration, resolve

    return resolve(BuildConfiguration, "build").fail_on_stale_sources


def dbt_build(extra: list[str] | None = None) -> int:
    """Run `dbt build` (its own output goes straight to the terminal), then check the sources' freshness.
    Returns dbt's exit code; 1 when a source is past its error_after and fail_on_stale_sources is set."""
    from mail_warehouse.engine import current_engine

    engine = current_engine()
    engine.before_build()
    extra = with_configured_sources(extra or [])
    # dbt writes no results when the project fails to compile: an earlier build's must not speak for this one
    run_results_path().unlink(missing_ok=True)
    code = _dbt(["build", *engine.dbt_target_arguments(), *extra])
    if code == 0:
        engine.after_build()
    freshness = check_freshness(dbt_vars=_vars_arguments(extra))
    if code == 0 and fail_on_stale_sources() and any(entry.status == "error" for entry in freshness):
        print(
            "error: a source is past its error_after and build.fail_on_stale_sources is set: load it, then build again",
            file=sys.stderr,
        )
        return 1
    return code


def freshness_summary(since: float) -> tuple[str, str]:
    """For `warehouse run`'s summary, from the report its build step wrote after `since` (a time.time()):
    ("ok" | "stale" | "unknown", the stale sources or why there is no answer)."""
    report = freshness_report_path()
    if not report.exists() or report.stat().st_mtime < since:
        try:
            loaded = loaded_sources()
        except duckdb.Error as error:
            return "unknown", f"the warehouse could not be read ({error})"
        return ("ok", "no source loaded yet") if not loaded else ("unknown", "the build wrote no freshness report")
    stale = [entry for entry in read_freshness(report) if entry.is_stale or entry.hours_since_load is None]
    if not stale:
        return "ok", ""
    return "stale", "; ".join(entry.line() for entry in stale)
