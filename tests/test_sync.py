"""Two-way sync: the Directo customers to Deployteq's import folder, opt-outs Directo does not know back to it.

A Clang + Directo company (no Spotler account): the built test world, a private Directo stand-in (its writes
change what it serves) and the Deployteq stand-in's import folder."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from mail_warehouse import settings
from tests.conftest import company_environment, warehouse_cli
from tests.conftest import query_warehouse as query

pytestmark = pytest.mark.slow

DEFAULT_HEADER = ["emailadres", "klantnummer", "naam", "land", "optin", "optin_datum"]


@pytest.fixture
def clang_directo_company(warehouse_copy, directo_standin):
    """(environment, warehouse, stand-ins, private Directo stand-in): Clang and Directo, Deployteq configured."""
    env, database, stack = warehouse_copy
    server, directo = directo_standin
    company = company_environment(stack, ("clang", "directo"))
    company.update(
        {key: value for key, value in env.items() if key in ("WAREHOUSE_PATH", "EXPORT__DEPLOYTEQ__LOCAL_DIR")}
    )
    company["SOURCES__DIRECTO__URL"] = directo.url(server)
    return company, database, stack, directo


def imported(stack) -> list[Path]:
    return sorted((stack.deployteq_dir / "Import").iterdir())


def read_rows(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=";")
        return list(reader.fieldnames or []), list(reader)


def test_opt_outs_directo_does_not_know_are_written_once(clang_directo_company):
    env, database, _stack, directo = clang_directo_company
    expected = {
        (code, day.isoformat())
        for code, day in query(database, "select customer_code, opted_out_on from marts.directo_optins_to_withdraw")
    }
    undated, dated = query(
        database,
        """select count(*) filter (directo_optin_date is null), count(*) filter (directo_optin_date is not null)
           from marts.directo_optins_to_withdraw""",
    )[0]
    assert undated and dated, "the test world holds both kinds of yes Directo does not know is outdated"
    # the rule's other side: no address whose latest statement is a Directo yes or a bounce is written
    assert not query(
        database,
        """select * from marts.directo_optins_to_withdraw w join marts.contacts c using (email)
           where c.is_opted_in or c.consent_source = 'directo_optin' or w.directo_optin_date > w.opted_out_on""",
    )

    dry = warehouse_cli("sync", "consent", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    said = {line for line in dry.stderr.splitlines() if "would write customer" in line}
    assert {line.split("customer ")[1].split(":")[0] for line in said} == {code for code, _ in expected}
    assert directo.writes == [] and f"would write OPTIN=no for {len(expected):,} Directo customers" in dry.stdout

    first = warehouse_cli("sync", "consent", env=env)
    assert first.returncode == 0, first.stderr
    written = {(w["customer_code"], w["param"]) for w in directo.writes}
    assert written == expected
    assert all(w["datafield_code"] == "OPTIN" and w["content"] == "no" for w in directo.writes)
    assert len(directo.writes) == len(expected)  # each once
    assert directo.key not in first.stdout + first.stderr
    ledger = query(database, "select status, count(*) from sync.directo_consent_writes group by all")
    assert ledger == [("written", len(expected))]

    second = warehouse_cli("sync", "consent", env=env)
    assert second.returncode == 0 and len(directo.writes) == len(expected), second.stdout
    assert f"{len(expected):,} written by earlier runs left alone" in second.stdout

    # Directo now says no, dated with the opt-out: after its next load the model lists nobody of them
    loaded = warehouse_cli("load", "directo", env=env)
    assert loaded.returncode == 0, loaded.stderr
    rebuilt = warehouse_cli(
        "build", "--", "--select", "+directo_optins_to_withdraw", "--exclude-resource-type", "unit_test", env=env
    )
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]
    assert query(database, "select count(*) from marts.directo_optins_to_withdraw")[0][0] == 0


def test_a_refused_customer_is_reported_and_tried_again(clang_directo_company):
    env, database, _stack, directo = clang_directo_company
    (code,) = query(database, "select min(customer_code) from marts.directo_optins_to_withdraw")[0]
    directo.refuse_customers[code] = "Customer is locked"
    refused = warehouse_cli("sync", "consent", env=env)
    assert refused.returncode == 1 and f"Directo refused customer {code}: Customer is locked" in refused.stderr
    assert code not in {w["customer_code"] for w in directo.writes}
    directo.refuse_customers.clear()
    again = warehouse_cli("sync", "consent", env=env)
    assert again.returncode == 0, again.stderr
    assert [w["customer_code"] for w in directo.writes].count(code) == 1


def test_contacts_go_to_deployteqs_import_folder_once_and_then_only_changes(clang_directo_company):
    env, database, stack, _directo = clang_directo_company
    contacts = dict(
        query(
            database,
            """select email, case when is_opted_in then '1' else '0' end from marts.contacts
               where directo_customer_code is not null""",
        )
    )
    dry = warehouse_cli("sync", "contacts", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would send contacten_" in dry.stdout and f"{len(contacts):,} contacts" in dry.stdout
    assert imported(stack) == []

    first = warehouse_cli("sync", "contacts", env=env)
    assert first.returncode == 0, first.stderr
    (delivered,) = imported(stack)
    header, rows = read_rows(delivered)
    assert header == DEFAULT_HEADER
    assert len(rows) == len(contacts) == len({r["emailadres"] for r in rows})  # each customer once
    assert {r["emailadres"]: r["optin"] for r in rows} == contacts
    assert "Spotler: skipped" in first.stdout

    again = warehouse_cli("sync", "contacts", env=env)
    assert again.returncode == 0 and "nothing changed" in again.stdout and imported(stack) == [delivered]

    # one customer unsubscribes: the next file holds that row only
    con = settings.connect(database)
    (email,) = con.execute(
        "select min(email) from marts.contacts where directo_customer_code is not null and is_opted_in"
    ).fetchone()
    con.execute("update marts.contacts set is_opted_in = false where email = $e", {"e": email})
    con.close()
    changed = warehouse_cli("sync", "contacts", env=env)
    assert changed.returncode == 0, changed.stderr
    (newer,) = set(imported(stack)) - {delivered}
    assert [(r["emailadres"], r["optin"]) for r in read_rows(newer)[1]] == [(email, "0")]


def test_contacts_file_columns_are_settings(clang_directo_company):
    env, _database, stack, _directo = clang_directo_company
    env = {
        **env,
        "SYNC__CONTACTS_COLUMNS": '{"optin": "nieuwsbrief", "emailadres": "email"}',
        "SYNC__CONTACTS_DATAFIELDS": '["OPTIN"]',
        "SYNC__CONTACTS_CLASS": "true",
        "SYNC__CONTACTS_FILE_NAME": "klanten_{date:%Y%m%d%H%M%S}.csv",
    }
    result = warehouse_cli("sync", "contacts", env=env)
    assert result.returncode == 0, result.stderr
    (delivered,) = imported(stack)
    assert delivered.name.startswith("klanten_")
    header, rows = read_rows(delivered)
    assert header == ["email", "klantnummer", "naam", "land", "nieuwsbrief", "optin_datum", "optin", "klass"]
    assert {r["nieuwsbrief"] for r in rows} == {"0", "1"} and "yes" in {r["optin"] for r in rows}
    assert {r["klass"] for r in rows} >= {"ERAKLIENT", "VIP"}
    for setting, value, named in (
        ("SYNC__CONTACTS_COLUMNS", '{"telefoon": "x"}', "SYNC__CONTACTS_COLUMNS"),
        ("SYNC__CONTACTS_COLUMNS", '{"naam": "land"}', "clash"),
        ("SYNC__CONTACTS_FILE_NAME", "klanten_{date:%Y%m%d}_{run}.csv", "SYNC__CONTACTS_FILE_NAME"),
    ):
        wrong = warehouse_cli("sync", "contacts", env={**env, setting: value})
        assert wrong.returncode == 2 and named in wrong.stderr, (setting, value, wrong.stderr[-2000:])


def test_contacts_go_to_spotler_created_or_updated_with_consent_once(built_warehouse, spotler_standin, tmp_path):
    """A Spotler + Directo company: who has no Spotler contact is created, who has one is updated under its own id,
    the EMAIL channel says the consent where the warehouse knows one; a second run sends nothing."""
    _env, database, stack = built_warehouse
    server, api = spotler_standin
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(database, copy)
    company = {
        key: value
        for key, value in company_environment(stack, ("spotler", "directo")).items()
        if not key.startswith("EXPORT__DEPLOYTEQ__")
    }
    company.update(
        {
            "WAREHOUSE_PATH": str(copy),
            "SOURCES__SPOTLER__BASE_URL": f"{server.url}/integrationservice-1.1.0",
            "SOURCES__SPOTLER__CONSUMER_KEY": api.consumer_key,
            "SOURCES__SPOTLER__CONSUMER_SECRET": api.consumer_secret,
        }
    )
    expected = {
        row[0]: row[1:]
        for row in query(
            copy,
            """select coalesce(spotler_external_id, directo_customer_code), spotler_external_id is null,
                      case when consent_source is not null then is_opted_in end
               from marts.contacts where directo_customer_code is not null""",
        )
    }
    first = warehouse_cli("sync", "contacts", env=company)
    assert first.returncode == 0, first.stderr
    assert "Deployteq: skipped" in first.stdout
    actions = {external_id: action for action, external_id in api.contact_writes}
    assert len(api.contact_writes) == len(actions) == len(expected)  # each once
    assert actions == {key: "create" if new else "update" for key, (new, _) in expected.items()}
    channels = {
        key: {c["name"]: c["value"] for c in contact.get("channels") or []}.get("EMAIL")
        for key, contact in api.written_contacts.items()
    }
    # the EMAIL channel says the consent where the warehouse knows one; without a statement it is left to Spotler
    stated = {key: opted_in for key, (_, opted_in) in expected.items() if opted_in is not None}
    assert stated and {key: channels[key] for key in stated} == stated
    again = warehouse_cli("sync", "contacts", env=company)
    assert again.returncode == 0 and "nothing changed" in again.stdout
    assert len(api.contact_writes) == len(expected)
