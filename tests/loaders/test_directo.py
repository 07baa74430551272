"""`warehouse load directo` against the Directo XMLCore stand-in."""

from __future__ import annotations

import functools
import io
import os

import dlt
import pytest

from mail_warehouse import settings
from mail_warehouse.lake import load_into_lake
from mail_warehouse.loads import load_directo
from mail_warehouse_demo.standins.directo import DEMO_KEY
from mail_warehouse_sources import directo
from tests.conftest import query_warehouse, warehouse_cli

HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


def customer(
    code,
    email="a@example.ee",
    *,
    closed=0,
    optin="yes",
    param="01.02.2026",
    ts="2026-11-20T10:00:00",
    extra_fields="",
    name="Tõnu Kask",
):
    optin_field = f'<data code="OPTIN" content="{optin}" param="{param}"/>' if optin is not None else ""
    return (
        f'<customer code="{code}" name="{name}" email="{email}" class="ERAKLIENT" closed="{closed}" '
        f'balance="12.50" vatregion="0" ts="{ts}"><datafields>{optin_field}'
        f'<data code="KEEL" content="et"/>{extra_fields}</datafields></customer>'
    )


def transport(*customers, container=True):
    body = "".join(customers)
    return HEAD + (
        f"<transport><customers>{body}</customers></transport>" if container else f"<transport>{body}</transport>"
    )


@pytest.fixture
def directo_env(directo_standin, tmp_path, monkeypatch):
    server, app = directo_standin
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("SOURCES__DIRECTO__URL", app.url(server))
    monkeypatch.setenv("SOURCES__DIRECTO__KEY", DEMO_KEY)
    monkeypatch.setenv("SOURCES__DIRECTO__RETRY_DELAY_SECONDS", "0.01")
    return app


query = functools.partial(query_warehouse, None)  # the warehouse WAREHOUSE_PATH names


def quiet(**kwargs):
    return load_directo(stream=io.StringIO(), **kwargs)


def test_full_then_incremental_with_the_ts_overlap(directo_env, world_dir):
    first = quiet()
    total = query("select count(*) from raw_directo.customers")[0][0]
    assert first.customers == total == first.new > 500 and first.since is None
    assert "ts" not in directo_env.requests[-1]
    assert query("select count(*) from raw_directo.datafields")[0][0] == first.datafields
    second = quiet()
    today = __import__("datetime").datetime.now(__import__("zoneinfo").ZoneInfo("Europe/Tallinn")).date()
    expected = (today - __import__("datetime").timedelta(days=2)).strftime("%d.%m.%Y")
    assert directo_env.requests[-1]["ts"] == expected == second.since
    assert second.new == 0 and second.changed == 0 and second.unchanged == second.customers
    assert query("select count(*) from raw_directo.customers")[0][0] == total


def test_types_time_zone_optin_and_estonian_text(directo_env):
    directo_env.serve_raw(
        transport(
            customer("1", ts="2026-03-29T03:30:00"),  # the spring-forward gap in Tallinn
            customer("2", optin="JAH", ts="2026-10-25T03:30:00"),  # the repeated hour: standard time
            customer("3", optin="ei", ts="2026-07-01T12:00:00"),
            customer("4", optin="maybe"),
            customer("5", optin="1", param="2026-05-04"),
        )
    )
    summary = quiet()
    assert summary.flagged_optin == 1
    rows = {
        r[0]: r[1:]
        for r in query("""select code, ts::varchar, optin, optin_raw, optin_flagged, optin_date::varchar,
                                                 balance::varchar, vatregion, name from raw_directo.customers""")
    }
    assert rows["1"][0] == "2026-03-29 01:30:00+00"
    assert rows["2"][0] == "2026-10-25 01:30:00+00"
    assert rows["3"][0] == "2026-07-01 09:00:00+00"
    assert rows["2"][1:4] == (True, "JAH", False) and rows["3"][1] is False
    assert rows["4"][1:4] == (None, "maybe", True)
    assert rows["5"][4] == "2026-05-04" and rows["1"][4] == "2026-02-01"
    assert rows["1"][5] == "12.5000" and rows["1"][6] == 0 and rows["1"][7] == "Tõnu Kask"


def test_a_later_version_wins_and_takes_its_datafields_along(directo_env):
    directo_env.serve_raw(transport(customer("1", extra_fields='<data code="VIP" content="1"/>'), customer("2")))
    quiet()
    directo_env.serve_raw(transport(customer("1", email="new@example.ee", optin="no", param="10.11.2026")))
    summary = quiet()
    assert (summary.changed, summary.new) == (1, 0)
    assert query("select email, optin from raw_directo.customers where code = '1'") == [("new@example.ee", False)]
    assert {r[0] for r in query("select datafield_code from raw_directo.datafields where customer_code = '1'")} == {
        "OPTIN",
        "KEEL",
    }
    directo_env.serve_raw(transport('<customer code="1" email="new@example.ee"><datafields/></customer>'))
    quiet()
    assert query("select count(*) from raw_directo.datafields where customer_code = '1'") == [(0,)]


def test_a_change_in_the_datafields_alone_counts_as_changed(directo_env):
    def answer(extra):
        directo_env.serve_raw(transport(customer("1", extra_fields=extra), customer("2")))
        summary = quiet()
        return summary.new, summary.changed, summary.unchanged

    assert answer('<data code="VIP" content="1"/>') == (2, 0, 0)
    assert answer('<data code="VIP" content="1"/>') == (0, 0, 2)
    assert answer('<data code="VIP" content="2"/>') == (0, 1, 1)
    assert answer('<data code="VIP" content="2"/><data code="VIP" content="2"/>') == (0, 1, 1)


def test_a_bare_customer_empty_answers_duplicates_and_closed(directo_env):
    directo_env.serve_raw(transport(customer("7"), container=False))
    assert quiet().customers == 1
    directo_env.serve_raw(HEAD + "<transport></transport>")
    empty = quiet()
    assert empty.customers == 0
    directo_env.serve_raw(transport(customer("8", "same@example.ee"), customer("9", "SAME@example.ee ", closed=1)))
    quiet()
    assert query("select code, email, closed from raw_directo.customers where code in ('8', '9') order by 1") == [
        ("8", "same@example.ee", 0),
        ("9", "SAME@example.ee ", 1),
    ]


def test_full_marks_missing_customers_deleted_and_a_return_undeletes(directo_env):
    directo_env.serve_raw(transport(customer("1"), customer("2"), customer("3")))
    quiet(full=True)
    directo_env.serve_raw(transport(customer("1"), customer("3")))
    summary = quiet(full=True)
    assert summary.deleted == 1
    assert query("select code from raw_directo.customers where deleted_at is not null") == [("2",)]
    directo_env.serve_raw(transport(customer("1"), customer("2"), customer("3")))
    quiet(full=True)
    assert query("select count(*) from raw_directo.customers where deleted_at is not null") == [(0,)]


def test_full_into_the_lake_marks_missing_customers_deleted_as_the_spark_target_reads_them(directo_env, tmp_path):
    """The Spark engine's `load directo --full`: the lake appends, so a customer gone from Directo gets a newer
    version with deleted_at set; read as the Spark target reads the lake (each code's latest load), the same
    customers are deleted as in the warehouse, and one that returns is not."""
    lake, pipelines = tmp_path / "lake", tmp_path / "pipelines"

    def full_into_the_lake(*customers) -> list[tuple]:
        directo_env.serve_raw(transport(*customers))
        load_into_lake(
            ("directo",), bucket_url=str(lake), pipelines_dir=pipelines, directo_full=True, stream=io.StringIO()
        )
        con = settings.connect(read_only=False, path=tmp_path / "reader.duckdb")
        try:
            return con.execute(f"""
                select code, deleted_at is not null from read_parquet('{lake}/raw_directo/customers/*.parquet')
                qualify _dlt_load_id = max(_dlt_load_id) over (partition by code) order by code""").fetchall()
        finally:
            con.close()

    assert full_into_the_lake(customer("1"), customer("2"), customer("3")) == [("1", False), ("2", False), ("3", False)]
    assert full_into_the_lake(customer("1"), customer("3")) == [("1", False), ("2", True), ("3", False)]
    assert full_into_the_lake(customer("1"), customer("3")) == [("1", False), ("2", True), ("3", False)]
    assert full_into_the_lake(customer("1"), customer("2"), customer("3")) == [("1", False), ("2", False), ("3", False)]


@pytest.mark.parametrize(
    "answer,message",
    [
        (HEAD + '<result type="5" desc="Unauthorized"/>', "refused the key"),
        ("<err>token required</err>", "token required"),
        (HEAD + '<error desc="Database locked" code="42"/>', "error code 42: Database locked"),
    ],
)
def test_error_answers_become_clear_errors(directo_env, answer, message):
    directo_env.serve_raw(answer)
    with pytest.raises(directo.DirectoError, match=message):
        quiet()


def test_the_real_wrong_and_missing_key_answers(directo_env, monkeypatch):
    monkeypatch.setenv("SOURCES__DIRECTO__KEY", "wrong-key-123")
    with pytest.raises(directo.DirectoError, match="refused the key") as caught:
        quiet()
    assert "wrong-key-123" not in str(caught.value)
    monkeypatch.delenv("SOURCES__DIRECTO__KEY")
    with pytest.raises(directo.DirectoSettingsError, match="SOURCES__DIRECTO__KEY"):
        quiet()


@pytest.mark.parametrize(
    "payload",
    [
        HEAD + '<!DOCTYPE transport [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><transport><customers>'
        '<customer code="1" name="&xxe;"/></customers></transport>',
        HEAD + '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        '<transport><customers><customer code="1" name="&lol3;"/></customers></transport>',
        HEAD + "<!-- hello -->\n" + " " * 70_000 + '<!DOCTYPE t SYSTEM "http://127.0.0.1:9/evil.dtd"><transport/>',
    ],
)
def test_dtds_and_entities_are_refused_and_nothing_loads(directo_env, payload):
    directo_env.serve_raw(payload)
    with pytest.raises(directo.DirectoError, match="DTD"):
        quiet()
    assert not settings.warehouse_path().exists() or query(
        "select count(*) from information_schema.tables where table_schema = 'raw_directo' and table_name = 'customers'"
    ) == [(0,)]


def test_malformed_xml_fails_without_loading_a_partial_batch(directo_env, monkeypatch):
    monkeypatch.setattr(directo, "BATCH_CUSTOMERS", 2)
    directo_env.serve_raw(transport(customer("1"), customer("2"), customer("3"))[:-40] + "<broken")
    with pytest.raises(directo.DirectoError, match="not well-formed"):
        quiet()
    assert not settings.warehouse_path().exists() or query(
        "select count(*) from information_schema.tables where table_schema = 'raw_directo' and table_name = 'customers'"
    ) == [(0,)]
    directo_env.serve_raw(transport(customer("1")))
    assert quiet().customers == 1  # the failed run left the cursor alone: this is still a first, full run
    assert "ts" not in directo_env.requests[-1]


def test_the_key_never_appears_in_output(directo_env, monkeypatch):
    monkeypatch.setenv("SOURCES__DIRECTO__KEY", "s3cr3t-directo-key")
    result = warehouse_cli("load", "directo", timeout=300)
    assert result.returncode == 1 and "refused the key" in result.stderr
    assert "s3cr3t-directo-key" not in result.stdout + result.stderr
    monkeypatch.setenv("SOURCES__DIRECTO__KEY", DEMO_KEY)
    result = warehouse_cli("load", "directo", timeout=300)
    assert result.returncode == 0, result.stderr
    assert DEMO_KEY not in result.stdout + result.stderr and "customers" in result.stdout


def test_a_key_inside_the_url_setting_is_refused(directo_env, monkeypatch):
    monkeypatch.setenv("SOURCES__DIRECTO__URL", os.environ["SOURCES__DIRECTO__URL"] + "?key=abc")
    with pytest.raises(directo.DirectoSettingsError, match="must not hold the key"):
        quiet()


def test_an_unreachable_server_fails_after_retries(directo_env, monkeypatch):
    monkeypatch.setenv("SOURCES__DIRECTO__URL", "http://127.0.0.1:9/xmlcore/x/xmlcore.asp")
    with pytest.raises(directo.DirectoError, match="failed after 4 attempts"):
        quiet()


@pytest.mark.parametrize("name,value", [("OVERLAP_DAYS", "-1"), ("OVERLAP_DAYS", "two"), ("TIMEZONE", "Mars/Olympus")])
def test_a_wrong_setting_exits_2_naming_it_without_a_traceback(directo_env, monkeypatch, name, value):
    monkeypatch.setenv(f"SOURCES__DIRECTO__{name}", value)
    result = warehouse_cli("load", "directo", timeout=300)
    assert result.returncode == 2, result.stderr
    assert name.lower() in result.stderr.lower() and "Traceback" not in result.stderr
    assert directo_env.requests == []


# --- the source in any dlt pipeline: each table keeps its own last sync day -----------------------------


def plain_pipeline(tmp_path, name: str) -> dlt.Pipeline:
    """A pipeline as any dlt user makes one (not mail_warehouse's), into a DuckDB file of its own."""
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / f"{name}.duckdb")),
        dataset_name=directo.DATASET,
    )


def loaded_tables(pipeline: dlt.Pipeline) -> dict[str, list[tuple]]:
    """Each table's rows, sorted, without dlt's own columns and the sync's time stamps: those differ between
    any two runs whatever they loaded, and every other column is what Directo answered."""
    stamps = {"loaded_at", "customer_loaded_at"}
    with pipeline.sql_client() as client:
        tables = {}
        for table in directo.TABLES:
            if table not in pipeline.default_schema.tables:  # never loaded: no rows
                tables[table] = []
                continue
            columns = [
                c
                for c in pipeline.default_schema.get_table_columns(table)
                if not c.startswith("_dlt_") and c not in stamps
            ]
            quoted = ", ".join(f'"{c}"' for c in columns)
            tables[table] = sorted(
                client.execute_sql(f"select {quoted} from {client.make_qualified_table_name(table)}"), key=repr
            )
    return tables


def table_days(pipeline: dlt.Pipeline) -> dict[str, str | None]:
    resources = pipeline.state["sources"]["directo"]["resources"]
    return {name: resources.get(name, {}).get("last_sync_day") for name in ("customer_answer", *directo.TABLES)}


@pytest.mark.parametrize("first", ["customers", "datafields"])
def test_one_table_first_then_the_whole_source_loads_what_one_whole_run_loads(directo_env, tmp_path, first):
    """A table loaded alone moves only its own day: the other one's first whole run still asks for everyone."""
    one_table_first = plain_pipeline(tmp_path, "one_table_first")
    one_table_first.run(directo.directo_source().with_resources(first))
    assert "ts" not in directo_env.requests[-1]
    other = next(t for t in directo.TABLES if t != first)
    assert table_days(one_table_first)[other] is None and table_days(one_table_first)[first]
    one_table_first.run(directo.directo_source())
    assert "ts" not in directo_env.requests[-1]  # the other table had no day yet: every customer

    whole = plain_pipeline(tmp_path, "whole")
    whole.run(directo.directo_source())
    expected = loaded_tables(whole)
    assert len(expected["customers"]) > 500 and len(expected["datafields"]) > 500
    assert loaded_tables(one_table_first) == expected

    one_table_first.run(directo.directo_source())  # now both have a day: asked since it, less the overlap
    assert "ts" in directo_env.requests[-1]


def test_a_pipeline_with_the_old_shared_day_starts_each_table_from_it(directo_env, tmp_path):
    """Before each table kept its own day, the hidden parent `customer_answer` kept one for both."""
    pipeline = plain_pipeline(tmp_path, "upgraded")
    with pipeline.managed_state() as state:  # as the old source left it
        state.setdefault("sources", {})["directo"] = {"resources": {"customer_answer": {"last_sync_day": "2026-11-20"}}}
    pipeline.run(directo.directo_source().with_resources("customers"))
    assert directo_env.requests[-1]["ts"] == "18.11.2026"
    days = table_days(pipeline)
    assert days["customer_answer"] == "2026-11-20" and days["datafields"] is None  # datafields still need it
    pipeline.run(directo.directo_source())
    assert directo_env.requests[-1]["ts"] == "18.11.2026"  # the earliest day: datafields' inherited one
    days = table_days(pipeline)
    assert days["customer_answer"] is None and days["customers"] == days["datafields"] != "2026-11-20"
