"""The Directo stand-in answers as XMLCore does: customers XML, `ts` filter, GET and POST, error answers."""

from __future__ import annotations

import datetime as dt
from xml.etree import ElementTree

import requests

from mail_warehouse.settings import connect
from mail_warehouse_demo.directo_xml import CUSTOMER_ATTRIBUTES, DIRECTO_TIME_ZONE
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
    dated = [d.get("param") for d in optins if d.get("param") is not None]  # the oldest customers' yes is undated
    assert len(dated) >= len(optins) * 0.8 and all(dt.datetime.strptime(param, "%d.%m.%Y") for param in dated)
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


# --- writes (put=1): the opt-out sync's side ------------------------------------------------------------


def _put(server, app, xmldata, **params):
    form = {"put": "1", "what": "customer", "key": DEMO_KEY, "xmldata": xmldata, **params}
    response = requests.post(app.url(server), data=form, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/xml")
    return response


def _results(response):
    root = ElementTree.fromstring(response.content)
    assert root.tag == "results"
    return [dict(result.attrib) for result in root.findall("Result")]


def _optout(*codes, param="03.12.2026"):
    customers = "".join(
        f'<customer code="{code}" name="ignored"><datafields><data code="OPTIN" content="no" param="{param}"/>'
        "</datafields></customer>"
        for code in codes
    )
    return f"<customers>{customers}</customers>"


def _served(server, app, code, **params):
    return {c.get("code"): c for c in _customers(_ask(server, app, **params))}.get(code)


def _datafields(customer):
    return {d.get("code"): (d.get("content"), d.get("param")) for d in customer.findall("./datafields/data")}


def _two_codes(world_dir):
    con = connect(world_dir / "world.duckdb", read_only=True)
    codes = [code for (code,) in con.execute("select code from customers order by code limit 2").fetchall()]
    con.close()
    return codes


def test_a_write_replaces_the_datafield_in_full_and_ts_reads_of_today(directo_standin, world_dir):
    server, app = directo_standin
    code, other = _two_codes(world_dir)
    before = _served(server, app, code)
    xmldata = (
        f'<customers><customer code="{code}"><datafields><data code="OPTIN" content="no" param="2026-05-03"/>'
        '<data code="NEWFIELD" content="x"/></datafields></customer></customers>'
    )
    answer = _put(server, app, xmldata)
    assert answer.text == (
        '<?xml version="1.0" encoding="UTF-8"?>\n<results><Result Type="0" Desc="OK" '
        f'docid="{code}" doctype="customer" submit="Customers"/></results>'
    )
    after = _served(server, app, code)
    assert _datafields(after) == {**_datafields(before), "OPTIN": ("no", "2026-05-03"), "NEWFIELD": ("x", None)}
    assert after.get("ts") > before.get("ts") and after.get("name") == before.get("name")
    today = dt.datetime.now(DIRECTO_TIME_ZONE).strftime("%d.%m.%Y")
    assert _datafields(_served(server, app, code, ts=today))["OPTIN"] == ("no", "2026-05-03")
    assert _served(server, app, other, ts=today) is None  # nobody else moved
    assert [(w["customer_code"], w["datafield_code"], w["content"], w["param"]) for w in app.writes] == [
        (code, "OPTIN", "no", "2026-05-03"),
        (code, "NEWFIELD", "x", None),
    ]
    assert all(w["at"].tzinfo is not None for w in app.writes)
    assert "key" not in app.writes[0] and app.requests[0]["key"] == "***"
    counted = requests.get(f"{server.url}/_standin/calls", timeout=5).json()["calls"]
    assert counted["POST /xmlcore.asp put"] == 1
    outside = requests.get(f"{server.url}/_standin/writes", timeout=5).json()
    assert outside["total"] == 2 and outside["writes"][0] == {**app.writes[0], "at": app.writes[0]["at"].isoformat()}


def test_an_unknown_or_codeless_customer_fails_alone(directo_standin, world_dir):
    server, app = directo_standin
    code, _other = _two_codes(world_dir)
    xmldata = _optout("C999", code).replace("</customers>", "<customer><datafields/></customer></customers>")
    results = _results(_put(server, app, xmldata))
    assert [(r["Type"], r.get("docid")) for r in results] == [("1", "C999"), ("0", code), ("2", None)]
    assert "C999" in results[0]["Desc"] and "not found" in results[0]["Desc"]
    assert [w["customer_code"] for w in app.writes] == [code]
    assert "C999" not in {c.get("code") for c in _customers(_ask(server, app))}


def test_a_refused_customer_is_type_4_and_not_applied(directo_standin, world_dir):
    server, app = directo_standin
    code, other = _two_codes(world_dir)
    app.refuse_customers[code] = "Customer is locked"
    results = _results(_put(server, app, _optout(code, other)))
    assert [(r["Type"], r["Desc"]) for r in results] == [("4", "Customer is locked"), ("0", "OK")]
    assert [w["customer_code"] for w in app.writes] == [other]


def test_hostile_or_malformed_xmldata_is_refused_whole(directo_standin, world_dir):
    server, app = directo_standin
    code, _other = _two_codes(world_dir)
    hostile = '<?xml version="1.0"?><!DOCTYPE customers [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + _optout(
        code
    ).replace('content="no"', 'content="&e;"')
    for xmldata in (hostile, '<!ENTITY e "x">' + _optout(code), _optout(code)[:-5], ""):
        results = _results(_put(server, app, xmldata))
        assert len(results) == 1 and results[0]["Type"] == "3" and results[0]["Desc"]
    assert app.writes == []
    assert _datafields(_served(server, app, code))["OPTIN"] != ("no", "03.12.2026")


def test_a_write_with_a_wrong_or_missing_key_is_refused_as_a_read_is(directo_standin, world_dir):
    server, app = directo_standin
    code, _other = _two_codes(world_dir)
    wrong = _put(server, app, _optout(code), key="not-the-key")
    assert wrong.text == '<?xml version="1.0" encoding="UTF-8"?>\n<result type="5" desc="Unauthorized"/>'
    missing = _put(server, app, _optout(code), key="")
    assert missing.text == "<err>token required</err>"
    unknown = _put(server, app, _optout(code), what="item")
    assert b"<error desc=" in unknown.content
    assert app.writes == [] and {r["key"] for r in app.requests} == {"***"}
