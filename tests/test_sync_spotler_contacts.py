"""The warehouse's contacts to Spotler: new ones added in batches, changed ones updated, each answered for, through
the stand-in's contact API on loopback (signed calls, faults injected), nobody created twice."""

from __future__ import annotations

import re
from collections import Counter

import pytest
import requests

from mail_warehouse.sync.spotler_contacts import (
    LOST_ANSWER_NOTE,
    ContactChange,
    contact_body,
    push_contacts,
)
from mail_warehouse_demo.standins import spotler_spec
from mail_warehouse_demo.standins.http import Fault
from tests.conftest import query_world

CREATE = "POST /contact/list"
UPDATE = "PUT /contact/{externalId}"


def _client(server, api, **settings):
    from dlt.common.configuration.resolve import resolve_configuration

    from mail_warehouse_sources.spotler.client import SpotlerClient
    from mail_warehouse_sources.spotler.config import SpotlerSourceConfiguration

    config = resolve_configuration(
        SpotlerSourceConfiguration(
            base_url=f"{server.url}/integrationservice-1.1.0",
            consumer_key=settings.pop("consumer_key", api.consumer_key),
            consumer_secret=settings.pop("consumer_secret", api.consumer_secret),
            retry_delay_seconds=0.05,
            **settings,
        )
    )
    return SpotlerClient(config)


def _new(count: int, prefix: str = "N") -> list[ContactChange]:
    return [
        ContactChange(
            email=f"{prefix.lower()}{i}@voorbeeld.nl",
            external_id=f"{prefix}{i:03d}",
            is_new=True,
            first_name="Jan",
            full_name="Jan de Vries",
            country="NL",
            customer_number=f"{prefix}{i:03d}",
            opted_in=i % 2 == 0,
            properties={"klantklasse": "A"},
        )
        for i in range(count)
    ]


def _changed(external_id: str, email: str, **fields) -> ContactChange:
    values = {
        "first_name": "Marie",
        "full_name": "Bakkerij Jansen BV",
        "country": "BE",
        "customer_number": external_id,
        "opted_in": False,
        "properties": {},
        **fields,
    }
    return ContactChange(email=email, external_id=external_id, is_new=False, **values)


@pytest.fixture
def world_contacts(world_dir) -> list[tuple[str, str]]:
    """(externalId, email) of contacts Spotler holds in the demo world."""
    return query_world(world_dir, "select directo_code, email from people order by joined_at, person_id limit 3")


def test_new_contacts_go_in_batches_and_changed_ones_one_put_each(spotler_standin, world_contacts):
    server, api = spotler_standin
    new = _new(31)
    changed = [_changed(external_id, email) for external_id, email in world_contacts[:2]]
    said: list[str] = []
    outcomes = push_contacts(_client(server, api), new + changed, batch_size=3, workers=3, say=said.append)

    assert [(o.external_id, o.action, o.status) for o in outcomes] == [
        *((c.external_id, "create", "created") for c in new),
        *((c.external_id, "update", "updated") for c in changed),
    ], "an outcome per change, in the order given"
    assert server.calls[CREATE] == 11 and server.calls[UPDATE] == 2  # ceil(31 / 3) batches, one PUT per change
    assert Counter(action for action, _ in api.contact_writes) == {"create": 31, "update": 2}
    # one progress line once 10 batches' worth (30) is answered (in parallel, a call or two more), then the sum
    assert len(said) == 2 and re.fullmatch(r"  spotler contacts: 3[0-2] of 33 answered", said[0]), said
    assert said[1] == "spotler contacts: 31 created, 2 updated"

    # what Spotler holds, read back as the API serves it: the EMAIL channel is the consent the caller gave
    client = _client(server, api)
    first = client.send("GET", "GET /contact/{externalId}", "/contact/N000").body
    assert first["properties"] == {
        "email": "n0@voorbeeld.nl",
        "firstName": "Jan",
        "lastName": "de Vries",
        "country": "NL",
        "klantklasse": "A",
    }
    assert {"name": "EMAIL", "value": True} in first["channels"]
    second = client.send("GET", "GET /contact/{externalId}", "/contact/N001").body
    assert {"name": "EMAIL", "value": False} in second["channels"]
    # an update changes what it sends and keeps the rest; a company's name is no last name to split
    external_id, email = world_contacts[0]
    updated = client.send("GET", "GET /contact/{externalId}", f"/contact/{external_id}").body
    assert updated["properties"]["email"] == email and updated["properties"]["firstName"] == "Marie"
    assert updated["properties"]["country"] == "BE" and "lastName" in updated["properties"]
    assert {"name": "EMAIL", "value": False} in updated["channels"]
    assert spotler_spec.check_model(updated, "Contact") == [] and spotler_spec.check_model(first, "Contact") == []


def test_the_body_sends_what_the_warehouse_knows_and_nothing_empty():
    [change] = _new(1)
    company = _changed("D1", "info@jansen.nl", first_name=None, country=None, opted_in=True, properties={"x": "1"})
    assert contact_body(change) == {
        "externalId": "N000",
        "properties": {
            "klantklasse": "A",
            "email": "n0@voorbeeld.nl",
            "firstName": "Jan",
            "lastName": "de Vries",
            "country": "NL",
        },
        "channels": [{"name": "EMAIL", "value": True}],
    }
    assert contact_body(company) == {
        "externalId": "D1",
        "properties": {"x": "1", "email": "info@jansen.nl"},
        "channels": [{"name": "EMAIL", "value": True}],
    }


def test_refusals_and_fallbacks_per_contact_and_the_rest_go_on(spotler_standin, world_contacts):
    server, api = spotler_standin
    api.contact_properties = {"klantklasse"}
    known_id, known_email = world_contacts[0]
    other_id, other_email = world_contacts[1]
    bad_address = ContactChange("geen-adres", "BAD1", True, None, None, None, "BAD1", True, {})
    already_there = ContactChange(known_email, known_id, True, "Ann", None, "NL", known_id, True, {})
    removed_meanwhile = _changed("GONE1", "weg@voorbeeld.nl", opted_in=True)
    unknown_property = _changed(other_id, other_email, properties={"loyaliteit": "goud"})
    without_id = _changed("", "leeg@voorbeeld.nl")
    fine = _new(2)
    outcomes = push_contacts(
        _client(server, api),
        # the batches: [N000, N000 again, a bad address], [one Spotler holds, N001]
        [fine[0], fine[0], bad_address, already_there, fine[1], removed_meanwhile, unknown_property, without_id],
        batch_size=3,
        say=lambda _: None,
    )
    assert [(o.action, o.status, o.message) for o in outcomes] == [
        ("create", "created", None),
        ("create", "updated", None),
        ("create", "refused", "Email is invalid"),
        ("create", "updated", None),
        ("create", "created", None),
        ("update", "created", None),
        ("update", "refused", "Property is invalid: loyaliteit"),
        ("update", "refused", "no externalId (Spotler needs one)"),
    ]
    assert Counter(api.contact_writes) == {
        ("create", "N000"): 1,
        ("update", "N000"): 1,
        ("create", "N001"): 1,
        ("create", "GONE1"): 1,
        ("update", known_id): 1,
    }
    assert server.calls[CREATE] == 2 + 1 and server.calls[UPDATE] == 2 + 2  # and a fallback each way


def test_a_429_with_retry_after_and_a_503_are_absorbed(spotler_standin, world_contacts):
    server, api = spotler_standin
    external_id, email = world_contacts[0]
    server.inject(
        Fault("status", "/contact/list", status=429, retry_after=1),
        Fault("status", f"/contact/{external_id}$", status=503),
    )
    outcomes = push_contacts(
        _client(server, api), [*_new(4), _changed(external_id, email)], batch_size=3, say=lambda _: None
    )
    assert [o.status for o in outcomes] == ["created"] * 4 + ["updated"]
    assert server.calls[CREATE] == 2 + 1 and server.calls[UPDATE] == 1 + 1  # each fault cost one call more
    assert Counter(action for action, _ in api.contact_writes) == {"create": 4, "update": 1}


@pytest.mark.parametrize("attempts", [5, 1], ids=["retried-in-the-run", "sent-again-next-run"])
def test_a_batch_whose_answer_was_lost_after_spotler_added_it_creates_nobody_twice(spotler_standin, attempts):
    server, api = spotler_standin
    server.inject(Fault("drop", "/contact/list", act_first=True))
    changes = _new(5)
    client = _client(server, api, max_attempts=attempts)
    outcomes = push_contacts(client, changes, batch_size=3, say=lambda _: None)
    if attempts == 1:  # the batch failed: the caller keeps its contacts and sends them again next run
        assert [o.status for o in outcomes] == ["failed"] * 3 + ["created"] * 2
        assert "POST /contact/list: failed after 1 attempts" in (outcomes[0].message or "")
        again = [c for c, o in zip(changes, outcomes, strict=True) if o.status == "failed"]
        outcomes = push_contacts(client, again, batch_size=3, say=lambda _: None)
        assert [(o.status, o.message) for o in outcomes] == [("updated", None)] * 3
    else:  # the retry was told "already exists": updated with the same values
        lost, answered = [("updated", LOST_ANSWER_NOTE)] * 3, [("created", None)] * 2
        assert [(o.status, o.message) for o in outcomes] == lost + answered
    created = Counter(external_id for action, external_id in api.contact_writes if action == "create")
    assert created == {c.external_id: 1 for c in changes}, "every contact added exactly once"
    assert set(api.written_contacts) == {c.external_id for c in changes}


def test_bad_credentials_stop_the_run_after_one_call(spotler_standin):
    server, api = spotler_standin
    said: list[str] = []
    outcomes = push_contacts(
        _client(server, api, consumer_secret="not-the-secret"), _new(7), batch_size=3, say=said.append
    )
    assert {o.status for o in outcomes} == {"failed"} and server.total_calls() == 1
    assert all("refused the credentials" in (o.message or "") for o in outcomes)
    assert said == ["spotler contacts: 7 failed; the failed ones go again next run"]
    assert not any("not-the-secret" in (o.message or "") for o in outcomes)


def test_a_dry_run_makes_no_call(spotler_standin, world_contacts):
    server, _api = spotler_standin
    said: list[str] = []
    changes = [*_new(4), _changed(*world_contacts[0])]
    outcomes = push_contacts(None, changes, dry_run=True, say=said.append)
    assert [o.status for o in outcomes] == ["would-create"] * 4 + ["would-update"]
    assert said == ["spotler contacts (dry run): 4 would be created, 1 would be updated; nothing was sent"]
    assert server.total_calls() == 0


def test_the_stand_in_checks_bodies_and_tells_processes_outside_what_was_written(spotler_standin):
    server, api = spotler_standin
    client = _client(server, api)
    too_many = client.send("POST", CREATE, "/contact/list", {"contacts": [contact_body(c) for c in _new(101)]})
    assert too_many.status == 400 and too_many.message == "Too many contacts provided (max is 100)"
    without_id = client.send("POST", CREATE, "/contact/list", {"contacts": [{"properties": {"email": "a@b.nl"}}]})
    assert without_id.status == 400 and without_id.message == "Contact without externalId found"
    assert client.send("PUT", UPDATE, "/contact/NOBODY", {"contact": {"properties": {}}}).status == 404
    assert api.contact_writes == []

    push_contacts(client, _new(2), say=lambda _: None)
    assert client.send("PUT", "PUT /contact/anonymize/{externalId}", "/contact/anonymize/N001").status == 204
    state = requests.get(f"{server.url}/_standin/contacts", timeout=5).json()
    assert state["writes"] == [{"action": "create", "externalId": "N000"}, {"action": "create", "externalId": "N001"}]
    assert state["contacts"]["N000"]["properties"]["email"] == "n0@voorbeeld.nl"
    assert state["contacts"]["N001"]["properties"] == {}, "anonymized: what the sync wrote about them is gone"
    assert requests.get(f"{server.url}/_standin/calls", timeout=5).json()["calls"][CREATE] == 3
