"""The Spotler stand-in behaves as the vendor's description says: signatures, paging, errors, faults, models."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests
from oauthlib.oauth1 import Client

from mail_warehouse_demo.standins import spotler, spotler_spec
from mail_warehouse_demo.standins.http import Fault
from mail_warehouse_demo.standins.spotler import (
    CONTACT_HISTORY_PAGE_SIZE,
    DEMO_CONSUMER_KEY,
    DEMO_CONSUMER_SECRET,
    ROUTES,
)
from mail_warehouse_demo.world import WorldSpec, simulate
from mail_warehouse_demo.writers import write_world
from tests.conftest import query_world
from tests.standins.signing import signed_get

YEAR = {"fromDate": "2025-01-01T00:00:00Z", "toDate": "2027-01-01T00:00:00Z"}


def _get(
    server,
    path,
    params=None,
    *,
    key=DEMO_CONSUMER_KEY,
    secret=DEMO_CONSUMER_SECRET,
    base="/integrationservice-1.1.0",
    **kwargs,
):
    return signed_get(f"{server.url}{base}{path}", key, secret, params, **kwargs)


@pytest.fixture
def ids(world_dir):
    """Real identifiers of the test world for every path parameter."""
    busiest = query_world(
        world_dir,
        """
        select m.source_id from mailings m join events e using (mailing_index)
        where m.system = 'spotler' and m.mailing_type = 'EMAIL' group by 1 order by count(*) desc limit 1""",
    )[0][0]
    campaign_mailing, subscription = query_world(
        world_dir,
        """
        select m.source_id, e.subscription_id from mailings m join events e using (mailing_index)
        where m.system = 'spotler_campaign' group by all
        having count(*) filter (where e.event_type = 'open') > 0 and count(*) filter (where e.event_type = 'click') > 0
        order by all limit 1""",
    )[0]
    campaign = query_world(world_dir, "select encrypted_id from campaigns order by campaign_index limit 1")[0][0]
    clicker = query_world(
        world_dir,
        f"""
        select p.directo_code from events e join people p using (person_id) join mailings m using (mailing_index)
        where m.source_id = '{busiest}' and e.event_type = 'click' limit 1""",
    )[0][0]
    form_result = query_world(
        world_dir, "select form_id, form_result_id from form_results where form_id = 103 limit 1"
    )[0]
    return {
        "encryptedMailingId": busiest,
        "externalId": clicker,
        "encryptedCampaignId": campaign,
        "campaignSubscriptionId": str(subscription),
        "formId": str(form_result[0]),
        "formResultId": str(form_result[1]),
        "campaign_mailing": campaign_mailing,
    }


def _concrete(path: str, ids: dict) -> str:
    if path.startswith("/campaign-mailing/"):
        path = path.replace("{encryptedMailingId}", ids["campaign_mailing"])
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    return path


def test_every_served_operation_answers_with_the_models_of_the_spec(spotler_standin, ids):
    server, _ = spotler_standin
    checked = 0
    for spec_path in ROUTES:
        operation, _ = spotler_spec.find_operation("GET", spec_path)
        required = {
            name: YEAR[name] for name, p in operation.query_parameters.items() if p.get("required") and name in YEAR
        }
        if "pageSize" in operation.query_parameters and operation.query_parameters["pageSize"].get("required"):
            required["pageSize"] = "100"
        response = _get(server, _concrete(spec_path, ids), required)
        assert response.status_code == 200, (spec_path, response.text)
        body = response.json()
        assert spotler_spec.check_response(operation, body) == [], spec_path
        items = (
            body
            if isinstance(body, list)
            else next((v for k, v in body.items() if k != "paging" and isinstance(v, list)), [body])
        )
        assert items, f"{spec_path} answered no data to check"
        checked += 1
    assert checked == len(ROUTES) >= 30


def test_the_conformance_check_itself_catches_broken_answers():
    operation, _ = spotler_spec.find_operation("GET", "/mailing/x/opens")
    broken = {"paging": {}, "opens": [{"contactIdentifier": {"externalId": "1"}, "openDate": 12}]}
    problems = spotler_spec.check_response(operation, broken)
    assert any("encryptedId" in p for p in problems)
    assert any("openDate" in p for p in problems)
    stats, _ = spotler_spec.find_operation("GET", "/mailing/x/statistics")
    assert spotler_spec.check_response(stats, {"sentCount": "10"})


def test_both_base_paths_serve_the_same_answer(spotler_standin):
    server, _ = spotler_standin
    old = _get(server, "/mailing", YEAR, base="/integrationservice")
    new = _get(server, "/mailing", YEAR, base="/integrationservice-1.1.0")
    assert old.status_code == new.status_code == 200
    assert old.json() == new.json() and len(new.json()) > 0


def test_one_trailing_slash_is_served_as_without_it(spotler_standin):
    server, _ = spotler_standin
    bare = _get(server, "/mailing", YEAR)
    slashed = _get(server, "/mailing/", YEAR)
    assert bare.status_code == slashed.status_code == 200 and bare.json() == slashed.json()
    assert server.calls["GET /mailing"] == 2
    assert _get(server, "/mailing//", YEAR).status_code == 404


def test_next_may_be_a_path_without_scheme_and_host(spotler_standin, ids):
    server, api = spotler_standin
    api.relative_next = True
    body = _get(server, f"/mailing/{ids['encryptedMailingId']}/recipients", {"pageSize": 3}).json()
    following = body["paging"]["next"]
    assert following.startswith("/integrationservice-1.1.0/mailing/")
    assert signed_get(server.url + following, DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET).status_code == 200


@pytest.mark.parametrize(
    "tamper", ["wrong secret", "wrong key", "changed query", "no signature", "old timestamp", "plaintext method"]
)
def test_requests_without_a_valid_signature_get_401(spotler_standin, tamper):
    server, _ = spotler_standin
    url = f"{server.url}/integrationservice/mailing?fromDate=2025-01-01&toDate=2027-01-01"
    client = Client(DEMO_CONSUMER_KEY, client_secret=DEMO_CONSUMER_SECRET)
    if tamper == "wrong secret":
        client = Client(DEMO_CONSUMER_KEY, client_secret="not-the-secret")
    elif tamper == "wrong key":
        client = Client("someone-else", client_secret=DEMO_CONSUMER_SECRET)
    elif tamper == "old timestamp":
        client = Client(DEMO_CONSUMER_KEY, client_secret=DEMO_CONSUMER_SECRET, timestamp=str(int(time.time()) - 3600))
    elif tamper == "plaintext method":
        client = Client(DEMO_CONSUMER_KEY, client_secret=DEMO_CONSUMER_SECRET, signature_method="PLAINTEXT")
    signed_url, headers, _ = client.sign(url)
    if tamper == "changed query":
        signed_url = signed_url.replace("2025-01-01", "2024-01-01")
    if tamper == "no signature":
        headers = {}
    response = requests.get(signed_url, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["errorType"] == "NOT_AUTHORIZED"
    assert DEMO_CONSUMER_SECRET not in response.text


def test_a_replayed_nonce_is_refused(spotler_standin):
    server, _ = spotler_standin
    url = f"{server.url}/integrationservice/form/list"
    signed_url, headers, _ = Client(DEMO_CONSUMER_KEY, client_secret=DEMO_CONSUMER_SECRET).sign(url)
    assert requests.get(signed_url, headers=headers, timeout=10).status_code == 200
    assert requests.get(signed_url, headers=headers, timeout=10).status_code == 401


def test_signature_covers_query_parameters_sent_in_the_url_and_oauth_in_the_query(spotler_standin):
    server, _ = spotler_standin
    url = f"{server.url}/integrationservice/mailing?fromDate=2025-01-01T00:00:00%2B01:00&toDate=2027-01-01"
    client = Client(DEMO_CONSUMER_KEY, client_secret=DEMO_CONSUMER_SECRET, signature_type="QUERY")
    signed_url, headers, _ = client.sign(url)
    assert "oauth_signature=" in signed_url
    assert requests.get(signed_url, headers=headers, timeout=10).status_code == 200


def _recipient_count(world_dir, mailing):
    return query_world(
        world_dir,
        f"""select count(*) from events e join mailings m using (mailing_index)
                                 where m.source_id = '{mailing}' and e.event_type = 'sent'""",
    )[0][0]


def test_paging_follows_next_to_the_end_and_stops(spotler_standin, ids, world_dir):
    server, _ = spotler_standin
    mailing = ids["encryptedMailingId"]
    total = _recipient_count(world_dir, mailing)
    seen, pages = [], 0
    response = _get(server, f"/mailing/{mailing}/recipients", {"pageSize": 37})
    while True:
        body = response.json()
        pages += 1
        seen += [r["contactIdentifier"]["externalId"] for r in body["recipients"]]
        if "next" not in body["paging"]:
            break
        assert body["paging"]["after"] == len(seen)
        response = signed_get(body["paging"]["next"], DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET)
        assert response.status_code == 200
    assert len(seen) == total == len(set(seen))
    assert pages == -(-total // 37)


def test_a_page_that_ends_exactly_at_the_last_record_has_no_next(spotler_standin, ids, world_dir):
    server, _ = spotler_standin
    mailing = ids["encryptedMailingId"]
    total = _recipient_count(world_dir, mailing)
    whole = _get(server, f"/mailing/{mailing}/recipients", {"pageSize": total}).json()
    assert len(whole["recipients"]) == total and "next" not in whole["paging"]
    last = _get(server, f"/mailing/{mailing}/recipients", {"pageSize": 10, "after": total - 10}).json()
    assert len(last["recipients"]) == 10 and "next" not in last["paging"]
    beyond = _get(server, f"/mailing/{mailing}/recipients", {"after": total}).json()
    assert beyond["recipients"] == [] and "next" not in beyond["paging"]


def test_page_size_defaults_to_1000_and_is_capped_at_10000(spotler_standin):
    server, _ = spotler_standin
    default = _get(server, "/mailing-interaction/sent").json()
    assert len(default["interactions"]) == 1000 and default["paging"]["after"] == 1000
    assert _get(server, "/mailing-interaction/sent", {"pageSize": 10_000}).status_code == 200
    too_big = _get(server, "/mailing-interaction/sent", {"pageSize": 10_001})
    assert too_big.status_code == 400 and too_big.json()["errorType"] == "INVALID_PARAMS"


@pytest.fixture(scope="module")
def many_mailings_world(tmp_path_factory):
    """Few people, many mailings: contacts with more than one history page."""
    out = tmp_path_factory.mktemp("many-mailings")
    write_world(simulate(WorldSpec(contacts=20, mailings=160, days=200, seed=5, end=dt.date(2026, 11, 23))), out)
    server, _api = spotler.serve(out)
    yield server, out
    server.stop()


def test_contact_histories_have_a_fixed_page_size_of_50(many_mailings_world):
    server, out = many_mailings_world
    external_id, sends = query_world(
        out,
        """
        select p.directo_code, count(*)
        from sends s join people p using (person_id) join mailings m using (mailing_index)
        where m.system = 'spotler' group by 1 order by 2 desc limit 1""",
    )[0]
    assert sends > CONTACT_HISTORY_PAGE_SIZE
    first = _get(server, f"/contact/{external_id}/mailings", {"pageSize": 5}).json()
    assert len(first["mailingHistories"]) == CONTACT_HISTORY_PAGE_SIZE and first["paging"]["after"] == 50
    second = signed_get(first["paging"]["next"], DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET).json()
    assert len(second["mailingHistories"]) == min(sends - 50, 50)
    seen = {h["mailing"]["encryptedId"] for h in first["mailingHistories"] + second["mailingHistories"]}
    assert len(seen) == min(sends, 100)


def test_bare_arrays_where_the_spec_has_them(spotler_standin, ids):
    server, _ = spotler_standin
    for path, params in (
        ("/mailing", YEAR),
        ("/campaign/list", None),
        ("/form/list", None),
        (f"/campaign/{ids['encryptedCampaignId']}/mailing", None),
        ("/form/result/101", None),
    ):
        assert isinstance(_get(server, path, params).json(), list), path


def test_errors_come_as_error_type_and_message(spotler_standin):
    server, _ = spotler_standin
    missing = _get(server, "/mailing/nonexistent/statistics")
    assert missing.status_code == 404 and missing.json() == {
        "errorType": "MAILING_NOTFOUND",
        "message": "Mailing not found",
    }
    no_dates = _get(server, "/mailing")
    assert no_dates.status_code == 400 and no_dates.json()["errorType"] == "INVALID_PARAMS"
    bad_date = _get(server, "/mailing", {"fromDate": "yesterday", "toDate": "2026-01-01"})
    assert bad_date.status_code == 400
    assert _get(server, "/contact/nobody").json()["errorType"] == "CONTACT_NOT_FOUND"


def test_campaign_mailing_ids_are_refused_by_mailing_endpoints(spotler_standin, ids):
    server, _ = spotler_standin
    response = _get(server, f"/mailing/{ids['campaign_mailing']}/statistics")
    assert response.status_code == 400 and response.json()["errorType"] == "INVALID_MAILING"


def test_dates_arrive_in_several_iso_forms_and_epoch_millis(spotler_standin, ids):
    server, _ = spotler_standin
    mailing = _get(server, f"/mailing/{ids['encryptedMailingId']}").json()
    assert mailing["scheduledStartDate"][-6:] in ("+01:00", "+02:00")
    opens = _get(server, f"/mailing/{ids['encryptedMailingId']}/opens", {"pageSize": 1}).json()
    assert opens["opens"][0]["openDate"].endswith("Z")
    contact = _get(server, f"/contact/{ids['externalId']}").json()
    assert isinstance(contact["created"], int) and contact["created"] > 1_000_000_000_000


def test_the_clock_hides_what_has_not_happened_yet(spotler_standin, ids):
    server, api = spotler_standin
    mailing = ids["encryptedMailingId"]
    later = _get(server, f"/mailing/{mailing}/statistics").json()
    sent_at = dt.datetime.fromisoformat(_get(server, f"/mailing/{mailing}").json()["scheduledStartDate"])
    api.now = sent_at + dt.timedelta(hours=2)
    early = _get(server, f"/mailing/{mailing}/statistics").json()
    assert early["sentCount"] == later["sentCount"]
    assert 0 < early["openCount"] < later["openCount"]
    api.now = sent_at - dt.timedelta(days=1)
    assert _get(server, f"/mailing/{mailing}/statistics").status_code == 404


def test_interaction_feeds_filter_on_change_date(spotler_standin):
    server, _api = spotler_standin
    everything = _get(server, "/mailing-interaction/opened", {"pageSize": 10_000}).json()["interactions"]
    cut = sorted(i["changeDate"] for i in everything)[len(everything) // 2]
    newer = _get(server, "/mailing-interaction/opened", {"pageSize": 10_000, "fromChangeDate": cut}).json()[
        "interactions"
    ]
    assert 0 < len(newer) < len(everything)
    assert all(i["changeDate"] >= cut for i in newer)


def test_faults_429_with_retry_after_500_and_counted_calls(spotler_standin):
    server, _ = spotler_standin
    server.inject(
        Fault("status", path="/form/list", status=429, retry_after=7), Fault("status", path="/form/list", status=500)
    )
    first = _get(server, "/form/list")
    assert first.status_code == 429 and first.headers["Retry-After"] == "7"
    assert _get(server, "/form/list").status_code == 500
    assert _get(server, "/form/list").status_code == 200
    assert server.calls["GET /form/list"] == 3
    counted = requests.get(f"{server.url}/_standin/calls", timeout=5).json()
    assert counted["calls"]["GET /form/list"] == 3 and counted["total"] == 3


def test_fault_slow_answer(spotler_standin):
    server, _ = spotler_standin
    server.inject(Fault("slow", path="/form/list", delay=1.5))
    with pytest.raises(requests.exceptions.ReadTimeout):
        _get(server, "/form/list", timeout=0.5)
    time.sleep(1.2)
    assert _get(server, "/form/list").status_code == 200


def test_fault_cut_off_body(spotler_standin):
    server, _ = spotler_standin
    server.inject(Fault("cutoff", path="/form/list"))
    with pytest.raises(requests.exceptions.RequestException):
        _get(server, "/form/list").json()
    assert _get(server, "/form/list").status_code == 200


def test_faults_can_be_set_over_http_by_a_process_outside(spotler_standin):
    server, _ = spotler_standin
    requests.post(
        f"{server.url}/_standin/faults", json=[{"kind": "status", "path": "/form/list", "status": 503}], timeout=5
    )
    assert _get(server, "/form/list").status_code == 503
    requests.post(f"{server.url}/_standin/reset", timeout=5)
    assert server.total_calls() == 0
