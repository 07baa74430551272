"""Each source reads its settings only under its own section: the bare HOST, PORT, URL... a container sets for
itself, and `sources.<key>`, are no settings of ours (mail_warehouse_sources.settings_scope)."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from dlt.common.configuration.container import Container
from dlt.common.configuration.providers import DictionaryProvider
from dlt.common.configuration.resolve import inject_section, resolve_configuration
from dlt.common.configuration.specs.config_section_context import ConfigSectionContext
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

from mail_warehouse.export_config import ExportError, load_settings
from mail_warehouse.loads import load_clang, load_directo
from mail_warehouse_demo.standins.directo import DEMO_KEY
from mail_warehouse_demo.standins.sftp import AsyncsshSftpServer, SshKeys
from mail_warehouse_sources import directo
from mail_warehouse_sources.clang import ClangConfiguration, ClangSettingsError
from mail_warehouse_sources.spotler import SpotlerSettingsError
from mail_warehouse_sources.spotler.config import SpotlerSourceConfiguration
from tests.conftest import query_warehouse, warehouse_cli

# What containers, shells and other tools set for themselves, and the shorter paths dlt would also read.
STRAYS = {
    "HOST": "stray.invalid",
    "PORT": "8080",
    "USERNAME": "stray-user",
    "PASSWORD": "stray-password",
    "URL": "http://stray.invalid/xmlcore.asp",
    "KEY": "stray-key",
    "TIMEZONE": "Mars/Olympus",
    "BASE_URL": "http://stray.invalid/api",
    "CONSUMER_KEY": "stray-consumer",
    "CONSUMER_SECRET": "stray-secret",
    "REMOTE_DIR": "/stray",
    "SOURCES__PORT": "8081",
    "SOURCES__TIMEZONE": "Asia/Tokyo",
    "EXPORT__HOST": "stray-export.invalid",
}


@pytest.fixture
def strays(monkeypatch):
    for name, value in STRAYS.items():
        monkeypatch.setenv(name, value)


def as_source_resolves(spec, section: str, pipeline_name: str | None = None):
    """`spec` resolved as dlt resolves a source's spec: in the source's section context."""
    context = ConfigSectionContext(pipeline_name=pipeline_name, sections=("sources", section, section))
    with inject_section(context):
        return resolve_configuration(spec)


def test_each_source_resolves_its_own_settings_and_defaults(strays, monkeypatch):
    monkeypatch.setenv("SOURCES__CLANG__HOST", "127.0.0.1")
    monkeypatch.setenv("SOURCES__CLANG__USERNAME", "demo")
    clang = as_source_resolves(ClangConfiguration(), "clang")
    assert (clang.host, clang.port, clang.username, clang.password) == ("127.0.0.1", 22, "demo", None)
    assert (clang.remote_dir, clang.timezone) == (".", "Europe/Amsterdam")

    monkeypatch.setenv("SOURCES__DIRECTO__URL", "http://127.0.0.1:1/xmlcore/demo_ee/xmlcore.asp")
    monkeypatch.setenv("SOURCES__DIRECTO__KEY", "own-key")
    erp = as_source_resolves(directo.DirectoSourceConfiguration(), "directo")
    assert (erp.url, erp.key, erp.timezone) == (
        "http://127.0.0.1:1/xmlcore/demo_ee/xmlcore.asp",
        "own-key",
        "Europe/Tallinn",
    )

    monkeypatch.setenv("SOURCES__SPOTLER__CONSUMER_KEY", "own-consumer")
    monkeypatch.setenv("SOURCES__SPOTLER__CONSUMER_SECRET", "own-secret")
    spotler = as_source_resolves(SpotlerSourceConfiguration(), "spotler")
    assert (spotler.consumer_key, spotler.consumer_secret) == ("own-consumer", "own-secret")
    assert spotler.base_url == SpotlerSourceConfiguration().base_url and spotler.timezone == "Europe/Amsterdam"


def test_a_setting_in_the_section_wins_in_every_form_dlt_reads(strays, monkeypatch):
    monkeypatch.setenv("SOURCES__CLANG__HOST", "127.0.0.1")
    monkeypatch.setenv("SOURCES__CLANG__USERNAME", "demo")
    monkeypatch.setenv("SOURCES__CLANG__PORT", "2222")
    monkeypatch.setenv("SOURCES__CLANG__CLANG__TIMEZONE", "Europe/Brussels")  # sources.<section>.<name>.<key>
    clang = as_source_resolves(ClangConfiguration(), "clang")
    assert (clang.port, clang.timezone) == (2222, "Europe/Brussels")
    monkeypatch.setenv("NIGHTLY__SOURCES__CLANG__PORT", "2200")  # under the pipeline's name
    monkeypatch.setenv("NIGHTLY__PORT", "9999")  # the pipeline's name alone is no section
    assert as_source_resolves(ClangConfiguration(), "clang", pipeline_name="nightly").port == 2200
    monkeypatch.delenv("NIGHTLY__SOURCES__CLANG__PORT")
    assert as_source_resolves(ClangConfiguration(), "clang", pipeline_name="nightly").port == 2222


def test_config_toml_in_the_section_beats_a_bare_variable_in_the_environment(strays, monkeypatch):
    """dlt asks the environment for every path before it reads config.toml: PORT would win over `port = 2222`."""
    providers = Container()[PluggableRunContext].providers
    config_toml = DictionaryProvider()  # the document providers' behaviour, as config.toml's
    monkeypatch.setattr(providers, "providers", [*providers.providers, config_toml])
    monkeypatch.setenv("SOURCES__CLANG__USERNAME", "demo")
    with config_toml.values({"sources": {"clang": {"host": "sftp.example.com", "port": 2222}}}):
        clang = as_source_resolves(ClangConfiguration(), "clang")
    assert (clang.host, clang.port) == ("sftp.example.com", 2222)


def test_values_passed_explicitly_are_kept(strays):
    given = ClangConfiguration(host="sftp.example.com", port=2222, username="export", timezone="Europe/Berlin")
    clang = as_source_resolves(given, "clang")
    assert (clang.host, clang.port, clang.username, clang.timezone) == (
        "sftp.example.com",
        2222,
        "export",
        "Europe/Berlin",
    )
    spotler = resolve_configuration(SpotlerSourceConfiguration(consumer_key="a", consumer_secret="b"))  # no section
    assert (spotler.consumer_key, spotler.consumer_secret, spotler.base_url) == (
        "a",
        "b",
        SpotlerSourceConfiguration().base_url,
    )
    erp = resolve_configuration(
        directo.DirectoSourceConfiguration(), explicit_value={"url": "http://erp.example/xmlcore.asp", "key": "k"}
    )
    assert (erp.url, erp.key) == ("http://erp.example/xmlcore.asp", "k")


def test_a_missing_setting_is_named_by_its_variable_though_a_bare_one_is_set(strays, tmp_path, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("SOURCES__CLANG__USERNAME", "demo")
    with pytest.raises(ClangSettingsError, match=r"missing setting sources\.clang\.host \(env SOURCES__CLANG__HOST\)"):
        as_source_resolves(ClangConfiguration(), "clang")
    with pytest.raises(
        directo.DirectoSettingsError, match=r"missing setting sources\.directo\.url \(env SOURCES__DIRECTO__URL\)"
    ):
        as_source_resolves(directo.DirectoSourceConfiguration(), "directo")
    with pytest.raises(SpotlerSettingsError, match=r"SOURCES__SPOTLER__CONSUMER_KEY"):
        as_source_resolves(SpotlerSourceConfiguration(), "spotler")
    with pytest.raises(ExportError, match="EXPORT__DEPLOYTEQ__HOST"):
        load_settings()
    result = warehouse_cli("load", "clang", timeout=300)
    assert result.returncode == 2, result.stderr
    assert "missing setting sources.clang.host (env SOURCES__CLANG__HOST)" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_export_reads_only_its_own_section(strays, monkeypatch):
    monkeypatch.setenv("EXPORT__DEPLOYTEQ__HOST", "sftp.deployteq.example")
    monkeypatch.setenv("EXPORT__DEPLOYTEQ__USERNAME", "trigger")
    sftp = load_settings().sftp
    assert sftp is not None and (sftp.host, sftp.port, sftp.username) == ("sftp.deployteq.example", 22, "trigger")


def test_directo_loads_from_its_own_url_and_key_with_strays_set(directo_standin, strays, tmp_path, monkeypatch):
    server, app = directo_standin
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("SOURCES__DIRECTO__URL", app.url(server))
    monkeypatch.setenv("SOURCES__DIRECTO__KEY", DEMO_KEY)
    summary = load_directo(stream=io.StringIO())
    assert summary.customers > 500
    # Directo's local times are read in its default zone, not in SOURCES__TIMEZONE's
    ts, ts_local = query_warehouse(None, "select ts, ts_local from raw_directo.customers where ts is not null")[0]
    local = dt.datetime.fromisoformat(ts_local.replace(" ", "T")[:19]).replace(
        tzinfo=ZoneInfo(directo.DEFAULT_TIMEZONE)
    )
    assert ts == local


def test_clang_loads_from_its_own_server_with_strays_set(strays, tmp_path, monkeypatch):
    """Its host, port and user from its own section; the login folder (the default remote_dir), not REMOTE_DIR."""
    (tmp_path / "remote").mkdir()
    (tmp_path / "remote" / "broadcasts_20261101.csv").write_text(
        "Broadcastid;Broadcast type;Beschrijving;Onderwerp;Verzonden op\n"
        "20000;SINGLE;Nieuwsbrief;Hallo;2026-11-01 09:00:00\n"
    )
    keys = SshKeys.generate(tmp_path / "ssh")
    server = AsyncsshSftpServer(tmp_path / "remote", keys).start()
    try:
        monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
        for key, value in {
            "HOST": server.host,
            "PORT": str(server.port),
            "USERNAME": server.username,
            "KNOWN_HOSTS": str(keys.known_hosts),
            "PRIVATE_KEY_PATH": str(keys.user_key),
        }.items():
            monkeypatch.setenv(f"SOURCES__CLANG__{key}", value)
        assert load_clang(stream=io.StringIO()).broadcast_rows == 1
    finally:
        server.stop()
