"""The Directo stand-in answers as XMLCore does: customers XML, `ts` filter, GET and POST, error answers."""

from __future__ import annotations

import datetime as dt
from xml.etree import ElementTree

import requests

from mail_warehouse.settings import connect
from mail_warehouse_demo.directo_xml import CUSTOMER_ATTRIBUTES
from mail_warehouse_demo.standins.directo import DEMO_KEY


def _ask(server, app, method="GET", **params):
    params = {"get": "1", "what": "customer", "key": DEMO_KEY, **params}
    if method == "POST":
        return requests.post(app.url(server), data=params, timeout=30)
    return requests.get(app.url(server), params=params, timeout=30)


def _customers(response):
    assert response.status_code == 200
    root = ElementTree.fromstring(response.content)
    assert root.tag == "transport"
    return root.findall("./customers/customer")


def test_full_answer_holds_every_customer_with_schema_attributes_and_datafields(directo_standin, world_dir):
    server, app = directo_standin
    customers = _customers(_ask(server, app))
    con = connect(world_dir / "world.duckdb", read_only=True)
    expected = con.execute("select count(*) from customers").fetchone()[0]
    con.close()
    assert len(customers) == expected
    assert set().union(*(c.attrib for c in customers)) <= set(CUSTOMER_ATTRIBUTES)
    optins = [d for c in customers for d in c.findall("./datafields/data") if d.get("code") == "OPTIN"]
    assert len(optins) >= len(customers) * 0.95
    assert all(dt.datetime.strptime(d.get("param"), "%d.%m.%Y") for d in optins)
    assert any("õ" in (c.get("name") or "") or "ä" in (c.get("name") or "") for c in customers)


def test_post_form_answers_like_get(directo_standin):
    server, app = directo_standin
    assert _ask(server, app, "POST").content == _ask(server, app).content


def test_ts_returns_customers_changed_since_that_day_in_estonian_time(directo_standin):
    server, app = directo_standin
    everyone = _customers(_ask(server, app))
    stamps = sorted(c.get("ts") for c in everyone)
    middle_day = dt.date.fromisoformat(stamps[len(stamps) // 2][:10])
    recent = _customers(_ask(server, app, ts=middle_day.strftime("%d.%m.%Y")))
    assert 0 < len(recent) < len(everyone)
    assert all(c.get("ts")[:10] >= middle_day.isoformat() for c in recent)
    assert len(recent) == sum(s[:10] >= middle_day.isoformat() for s in stamps)


def test_empty_answer_is_a_bare_transport(directo_standin):
    server, app = directo_standin
    response = _ask(server, app, ts="01.01.2099")
    assert response.status_code == 200
    assert b"<transport></transport>" in response.content


def test_error_answers_come_with_http_200(directo_standin):
    server, app = directo_standin
    wrong = _ask(server, app, key="not-the-key")
    assert wrong.status_code == 200 and b'<result type="5" desc="Unauthorized"/>' in wrong.content
    missing = requests.get(app.url(server), params={"get": "1", "what": "customer"}, timeout=10)
    assert missing.status_code == 200 and missing.text == "<err>token required</err>"
    unknown = _ask(server, app, what="nonsense")
    assert unknown.status_code == 200 and b"<error desc=" in unknown.content and b'code="' in unknown.content
    bad_ts = _ask(server, app, ts="2026-11-01")
    assert bad_ts.status_code == 200 and b"<error desc=" in bad_ts.content


def test_the_key_is_not_kept_in_the_request_log(directo_standin):
    server, app = directo_standin
    _ask(server, app, ts="01.11.2026")
    assert app.requests[-1] == {"get": "1", "what": "customer", "key": "***", "ts": "01.11.2026"}


def test_raw_answers_replace_the_next_answers_for_hostile_input_tests(directo_standin):
    server, app = directo_standin
    app.serve_raw(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><transport>&e;</transport>'
    )
    assert b"<!ENTITY" in _ask(server, app).content
    assert b"<customers>" in _ask(server, app).content


def test_unknown_database_is_404(directo_standin):
    server, _app = directo_standin
    assert requests.get(f"{server.url}/xmlcore/other/xmlcore.asp", timeout=10).status_code == 404
