"""A person who asked to be forgotten stays forgotten: every loader leaves out the rows naming them before it
writes anything, everybody else's rows are loaded as without the list, and state moves as if nothing was left
out. The loaders run against the stand-ins on loopback: Clang as a plain dlt pipeline given `suppression=`,
Spotler and Directo through `warehouse load`'s drivers, which read the warehouse's own list."""

from __future__ import annotations

import datetime as dt
import io
import shutil
from pathlib import Path

import dlt
import duckdb
import pyarrow as pa
import pytest

from mail_warehouse import settings
from mail_warehouse.loads import load_directo, load_spotler
from mail_warehouse.pipelines import pipelines_dir
from mail_warehouse.privacy import PrivacySecretMissing, create_privacy_tables
from mail_warehouse_demo.standins.directo import DEMO_KEY
from mail_warehouse_demo.standins.sftp import AsyncsshSftpServer, SshKeys
from mail_warehouse_demo.standins.spotler import DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET
from mail_warehouse_sources import clang
from mail_warehouse_sources.directo import DirectoSourceConfiguration, SyncSummary, read_customers
from mail_warehouse_sources.suppression import Suppression
from tests.conftest import query_warehouse

SECRET = "a-secret-only-these-tests-know"
HEADER = "Broadcastid;Customerid;Extern klantnummer;E-mailadres;Activiteit;Activiteitdatum;Beschrijving activiteit"


def forgetting(kind: str, value: str) -> Suppression:
    suppression = Suppression(SECRET)
    return suppression.with_hashes([suppression.key(kind, value)])


def forget_in_warehouse(warehouse: Path, kind: str, value: str) -> None:
    """The person on the warehouse's own suppression list, as `warehouse forget` leaves it."""
    con = settings.connect(warehouse)
    try:
        create_privacy_tables(con)
        con.execute(
            "insert into privacy.suppression values (?, 'test-erasure', now())",
            [forgetting(kind, value).key(kind, value)],
        )
    finally:
        con.close()


def assert_only_theirs_left_out(
    full: Path, suppressed: Path, dataset: str, naming, ignored: tuple[str, ...] = ()
) -> dict[str, int]:
    """Every table of `dataset` loaded with the list holds exactly the rows loaded without it that `naming`
    (columns -> SQL condition) does not match; `ignored` columns (load times) are not compared. Returns the
    rows left out per table."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{full}' as full_db (read_only); attach '{suppressed}' as kept_db (read_only)")
        tables = [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_catalog = 'full_db' "
                "and table_schema = ? and not starts_with(table_name, '_dlt')",
                [dataset],
            ).fetchall()
        ]
        left_out = {}
        for table in tables:
            names = [
                name
                for (name,) in con.execute(
                    "select column_name from information_schema.columns where table_catalog = 'full_db' "
                    "and table_schema = ? and table_name = ?",
                    [dataset, table],
                ).fetchall()
                if not name.startswith("_dlt") and name not in ignored
            ]
            columns = ", ".join(f'"{name}"' for name in names)
            condition = f"coalesce({naming(names)}, false)"
            expected = f"select {columns} from full_db.{dataset}.{table} where not {condition}"
            kept = f"select {columns} from kept_db.{dataset}.{table}"
            exists = con.execute(
                "select count(*) from information_schema.tables where table_catalog = 'kept_db' "
                "and table_schema = ? and table_name = ?",
                [dataset, table],
            ).fetchone()[0]
            if not exists:
                kept = f"({expected}) limit 0"
            missing = con.execute(f"select count(*) from (({expected}) except all ({kept}))").fetchone()[0]
            extra = con.execute(f"select count(*) from (({kept}) except all ({expected}))").fetchone()[0]
            assert (missing, extra) == (0, 0), f"{table}: {missing} rows missing, {extra} rows not expected"
            left_out[table] = con.execute(
                f"select count(*) from full_db.{dataset}.{table} where {condition}"
            ).fetchone()[0]
        return left_out
    finally:
        con.close()


def test_the_list_holds_keyed_hashes_of_normalised_identifiers_and_finds_them_in_text():
    suppression = Suppression(SECRET)
    address = "fleur.devries0@kpnmail.nl"
    hashed = suppression.key("email", address)
    assert len(hashed) == 64 and address not in hashed and "fleur" not in hashed
    assert hashed != Suppression("another secret").key("email", address)  # keyed: no list of addresses tests it
    assert suppression.key("email", "  Fleur.DeVries0@KPNMAIL.nl \t") == hashed
    assert suppression.key("customer_number", " 10000 ") == suppression.key("customer_number", "10000")
    assert suppression.key("customer_number", "10000") != suppression.key("clang_customer_id", "10000")
    with pytest.raises(ValueError):
        Suppression(None, [hashed])

    forgotten = forgetting("email", address).with_hashes([suppression.key("customer_number", "10001")])
    assert forgotten and len(forgotten) == 2 and not Suppression()
    assert forgotten.matching("email", ["x@example.nl", "FLEUR.devries0@kpnmail.nl ", None]) == {
        "FLEUR.devries0@kpnmail.nl "
    }
    assert forgotten.names_anyone_in('[{"answer": ["Fleur.DeVries0@kpnmail.nl"]}]')
    assert forgotten.names_anyone_in("info@firma.ee; <fleur.devries0@kpnmail.nl>")
    # a short number in text is as likely someone else's (a broadcast id, a house number): only when asked for
    assert not forgotten.names_anyone_in("20018;500001;10001;someone@example.com;OPEN")
    assert forgotten.names_anyone_in("20018;500001;10001;someone@example.com;OPEN", ("customer_number",))
    assert not forgotten.names_anyone_in("xfleur.devries0@kpnmail.nl.example")
    assert not forgotten.names_anyone_in("customer 100010, 10000")
    table = pa.table(
        {
            "code": ["10000", "10001", "10002", None],
            "email": [None, "a@example.nl", "b@example.nl; fleur.devries0@kpnmail.nl", "c@example.nl"],
        }
    )
    kept, dropped = forgotten.drop_rows(table, {"code": "customer_number", "email": "email"}, ["email"])
    assert dropped == 2 and kept.column("code").to_pylist() == ["10000", None]
    assert Suppression().drop_rows(table, {"code": "customer_number"}) == (table, 0)
    records = list(forgotten.drop_records(table.to_pylist(), {"code": "customer_number"}, ["email"]))
    assert [r["code"] for r in records] == ["10000", None]


def test_directo_leaves_out_a_customer_named_among_several_addresses_with_their_datafields():
    answer = (
        '<?xml version="1.0" encoding="UTF-8"?><transport><customers>'
        '<customer code="1" email="info@firma.ee; Mari.Maasikas@example.ee"><datafields>'
        '<data code="OPTIN" content="yes"/><data code="KEEL" content="et"/></datafields></customer>'
        '<customer code="2" email="jaan@example.ee"><datafields><data code="KEEL" content="et"/></datafields>'
        "</customer>"
        "</customers></transport>"
    )
    summary = SyncSummary()
    batches = list(
        read_customers(
            io.BytesIO(answer.encode()),
            DirectoSourceConfiguration(),
            summary,
            dt.datetime.now(dt.UTC),
            forgetting("email", "mari.maasikas@example.ee"),
        )
    )
    customers = pa.concat_tables(c for c, _ in batches)
    datafields = pa.concat_tables(f for _, f in batches)
    assert customers.column("code").to_pylist() == ["2"]
    assert datafields.column("customer_code").to_pylist() == ["2"]
    assert (summary.customers, summary.datafields, summary.suppressed_customers) == (1, 1, 1)


# --- Clang: a plain dlt pipeline given `suppression=`, the person named by address -----------------------------


@pytest.fixture
def clang_remote(world_dir, tmp_path, monkeypatch):
    """The test world's Clang files, and one more with a valid and a rejected line of the person to forget (their
    address spelt otherwise) and a rejected line of someone else, on an SFTP server on loopback."""
    folder = tmp_path / "remote"
    shutil.copytree(world_dir / "clang", folder / "export")
    (folder / "export" / "activiteiten_20261123.csv").write_text(
        HEADER
        + "\n20018;500000;10000; FLEUR.devries0@KPNmail.nl;OPEN;2026-11-23 08:00:00;\n"
        + "20018;500000;10000;fleur.devries0@kpnmail.nl;OPEN;2026-11-31 08:00:00;\n"
        + "20018;500001;10001;matthias.dubois1@example.com;OPEN;2026-11-31 08:00:00;\n",
        encoding="utf-8",
    )
    keys = SshKeys.generate(tmp_path / "ssh")
    server = AsyncsshSftpServer(folder, keys).start()
    for key, value in {
        "HOST": server.host,
        "PORT": str(server.port),
        "USERNAME": server.username,
        "REMOTE_DIR": "export",
        "KNOWN_HOSTS": str(keys.known_hosts),
        "PRIVATE_KEY_PATH": str(keys.user_key),
        "RETRY_DELAY_SECONDS": "0.05",
        "SUPPRESSION": "not read from the settings",
    }.items():
        monkeypatch.setenv(f"SOURCES__CLANG__{key}", value)
    yield server
    server.stop()


def test_clang_leaves_out_the_persons_activities_and_rejected_lines(clang_remote, tmp_path):
    def pipeline(name: str):
        return dlt.pipeline(
            pipeline_name=name,
            destination=dlt.destinations.duckdb(str(tmp_path / f"{name}.duckdb")),
            dataset_name="raw_clang",
            pipelines_dir=str(tmp_path / "pipelines"),
        )

    full = clang.RunReport()
    pipeline("full").run(clang.clang_source(report=full))
    kept = clang.RunReport()
    forgotten = pipeline("kept")
    forgotten.run(clang.clang_source(report=kept, suppression=forgetting("email", "Fleur.DeVries0@kpnmail.nl")))

    person = "lower(trim(e_mailadres)) = 'fleur.devries0@kpnmail.nl'"
    left_out = assert_only_theirs_left_out(
        tmp_path / "full.duckdb",
        tmp_path / "kept.duckdb",
        "raw_clang",
        lambda columns: (
            person
            if "e_mailadres" in columns
            else "raw_text ilike '%fleur.devries0@kpnmail.nl%'"
            if "raw_text" in columns
            else "false"
        ),
        ignored=("file_loaded_at", "loaded_at", "data_rows", "rejected_rows"),
    )
    assert left_out["activities"] > 1 and left_out["rejected_rows"] == 1 and left_out["broadcasts"] == 0
    fewer = (full.summary.activity_rows - kept.summary.activity_rows) + (
        full.summary.rejected_rows - kept.summary.rejected_rows
    )
    assert kept.summary.suppressed_rows == left_out["activities"] + 1 == fewer
    assert kept.summary.loaded == full.summary.loaded and "rows of forgotten people left out" in kept.summary.line()
    assert "fleur" not in kept.summary.line().lower()
    # each file's recorded counts are of the rows its tables hold
    miscounted = query_warehouse(
        tmp_path / "kept.duckdb",
        """select f.source_file from raw_clang.loaded_files f
           left join (select source_file, count(*) as n from raw_clang.activities group by 1) a using (source_file)
           left join (select source_file, count(*) as n from raw_clang.rejected_rows group by 1) r using (source_file)
           where f.file_kind = 'activity'
             and (f.data_rows <> coalesce(a.n, 0) or f.rejected_rows <> coalesce(r.n, 0))""",
    )
    assert miscounted == []
    # every file's version is recorded as loaded: the next run fetches nothing
    again = clang.RunReport()
    forgotten.run(clang.clang_source(report=again, suppression=forgetting("email", "fleur.devries0@kpnmail.nl")))
    assert (again.summary.loaded, again.summary.unchanged) == (0, again.summary.seen)
    assert again.summary.bytes_downloaded == 0


# --- Spotler: `warehouse load spotler` reading the warehouse's list, the person named by their customer number ---


@pytest.fixture
def spotler_api(spotler_standin, monkeypatch):
    server, api = spotler_standin
    for key, value in {
        "BASE_URL": f"{server.url}/integrationservice-1.1.0",
        "CONSUMER_KEY": DEMO_CONSUMER_KEY,
        "CONSUMER_SECRET": DEMO_CONSUMER_SECRET,
        "START_DATE": "2025-01-01",
        "RETRY_DELAY_SECONDS": "0.01",
    }.items():
        monkeypatch.setenv(f"SOURCES__SPOTLER__{key}", value)
    monkeypatch.setenv("PRIVACY__SECRET", SECRET)
    return api


def spotler_cursors(warehouse: Path) -> dict[str, object]:
    state = dlt.attach("spotler", pipelines_dir=str(pipelines_dir(warehouse))).state
    resources = state["sources"]["spotler"]["resources"]
    return {
        name: resources[name]["incremental"][cursor]["last_value"]
        for name, cursor in (
            ("recipients", "change_date"),
            ("opens", "change_date"),
            ("bounces", "change_date"),
            ("contacts", "last_changed_at"),
        )
    }


def test_spotler_leaves_out_the_person_in_every_table_and_its_cursors_move_over_them(
    spotler_api, tmp_path, monkeypatch
):
    def sync(warehouse: Path):
        monkeypatch.setenv("WAREHOUSE_PATH", str(warehouse))
        return load_spotler(stream=io.StringIO(), now=spotler_api.now)

    full, kept = tmp_path / "full.duckdb", tmp_path / "kept.duckdb"
    sync(full)
    # the person with the latest change in the opens feed: the cursor must pass their rows though none is loaded
    (person, latest), *runner_up = query_warehouse(
        full,
        """select external_contact_id, max(change_date) from raw_spotler.opens
           group by 1 order by 2 desc limit 2""",
    )
    assert latest > runner_up[0][1]
    forget_in_warehouse(kept, "customer_number", person)
    report = sync(kept)

    left_out = assert_only_theirs_left_out(
        full,
        kept,
        "raw_spotler",
        lambda columns: (
            f"external_contact_id = '{person}'"
            if "external_contact_id" in columns
            else f"external_id = '{person}'"
            if "external_id" in columns
            else "false"
        ),
    )
    assert left_out["opens"] > 0 and left_out["recipients"] > 0 and left_out["contacts"] == 1
    assert report.suppressed_rows == sum(left_out.values())
    assert report.rows["opens"] == query_warehouse(kept, "select count(*) from raw_spotler.opens")[0][0]
    assert spotler_cursors(kept) == spotler_cursors(full)

    counts = {
        table: query_warehouse(kept, f"select count(*) from raw_spotler.{table}")[0][0]
        for table in ("recipients", "opens", "clicks", "contacts", "campaign_recipients")
    }
    again = sync(kept)  # the feeds ask again from their cursors: only the rows at the cursor, which dlt drops
    assert again.new_mailings == 0 and spotler_cursors(kept) == spotler_cursors(full)
    assert {
        table: query_warehouse(kept, f"select count(*) from raw_spotler.{table}")[0][0] for table in counts
    } == counts

    # the contact histories on demand: the forgotten contact is not even asked for
    other = runner_up[0][0]
    contacts_file = tmp_path / "contacts.txt"
    contacts_file.write_text(f"{person}\n{other}\n", encoding="utf-8")
    monkeypatch.setenv("WAREHOUSE_PATH", str(kept))
    histories = load_spotler(contacts_file=contacts_file, stream=io.StringIO(), now=spotler_api.now)
    assert histories.suppressed_contacts == 1 and histories.rows["contact_mailing_history"] > 0
    assert query_warehouse(kept, "select distinct external_contact_id from raw_spotler.contact_mailing_history") == [
        (other,)
    ]


# --- Directo: `warehouse load directo` reading the warehouse's list, the person named by address ----------------


@pytest.fixture
def directo_app(directo_standin, monkeypatch):
    server, app = directo_standin
    monkeypatch.setenv("SOURCES__DIRECTO__URL", app.url(server))
    monkeypatch.setenv("SOURCES__DIRECTO__KEY", DEMO_KEY)
    monkeypatch.setenv("SOURCES__DIRECTO__RETRY_DELAY_SECONDS", "0.01")
    monkeypatch.setenv("PRIVACY__SECRET", SECRET)
    return app


def test_directo_leaves_out_the_persons_customer_and_datafields(directo_app, tmp_path, monkeypatch):
    def sync(warehouse: Path):
        monkeypatch.setenv("WAREHOUSE_PATH", str(warehouse))
        return load_directo(stream=io.StringIO())

    full, kept = tmp_path / "full.duckdb", tmp_path / "kept.duckdb"
    sync(full)
    forget_in_warehouse(kept, "email", " Fleur.DeVries0@KPNMAIL.nl")
    summary = sync(kept)
    code = "10000"  # Fleur's customer code: her datafields name her by it only
    left_out = assert_only_theirs_left_out(
        full,
        kept,
        "raw_directo",
        lambda columns: f"code = '{code}'" if "code" in columns else f"customer_code = '{code}'",
        ignored=("loaded_at", "customer_loaded_at"),
    )
    assert left_out == {"customers": 1, "datafields": 3}
    assert summary.suppressed_customers == 1 and "1 customers of forgotten people left out" in summary.line()
    assert summary.customers == query_warehouse(kept, "select count(*) from raw_directo.customers")[0][0]

    again = sync(kept)  # each table's last sync day moved: only the changes since are asked for
    assert again.since is not None and directo_app.requests[-1]["ts"] == again.since
    assert query_warehouse(kept, "select count(*) from raw_directo.customers where code = '10000'") == [(0,)]


def test_a_load_with_anyone_forgotten_and_no_secret_stops_before_it_asks_for_anything(
    directo_app, tmp_path, monkeypatch
):
    warehouse = tmp_path / "warehouse.duckdb"
    forget_in_warehouse(warehouse, "email", "fleur.devries0@kpnmail.nl")
    monkeypatch.setenv("WAREHOUSE_PATH", str(warehouse))
    monkeypatch.setenv("PRIVACY__SECRET", " ")  # set but empty: no secret, whatever .dlt/secrets.toml says
    with pytest.raises(PrivacySecretMissing, match=r"\[privacy\] secret"):
        load_directo(stream=io.StringIO())
    assert directo_app.requests == []
