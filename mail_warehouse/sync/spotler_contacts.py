"""The warehouse's contacts to Spotler Mail+: what the caller decided changed, each contact answered for.

The caller (`sync.contacts`) says WHAT changed, one `ContactChange` per address; this module says HOW it goes to
Spotler, through the export's `SpotlerClient` (OAuth 1.0a, the loaders' one retry policy for 429 Retry-After,
5xx and lost connections):

- **New** contacts (`is_new`) go in batches of at most 100 with `POST /contact/list` (`update: false`), and
  Spotler answers a code per contact (AddContactResponse): `OK` is `created`; `CONTACT_ALREADY_EXISTS` (the
  externalId is taken) falls back to `PUT /contact/{externalId}`, `updated`. That fallback is also what makes a
  batch whose answer was lost end right: sent again (by the retry policy, or by the next run for a batch that
  `failed`), Spotler says the contacts it added exist, they are updated with the same values, and nobody is
  created twice. `PROPERTY_INVALID` (an invalid address or a property the account lacks), `CONTACT_OPTOUT`,
  `NO_ACTIVE_CHANNEL`, `CONTACT_UNKNOWN` are `refused` with Spotler's message; `ERROR` is `failed`. A contact
  without an externalId is `refused` without a call (Spotler refuses the whole batch for one).
- **Changed** contacts go one a call with `PUT /contact/{externalId}`, `workers` calls at a time (as the export
  sends its campaign triggers): 204 is `updated`; 404 (removed in Spotler meanwhile) falls back to adding it,
  `created`; 400 is `refused` with Spotler's message.
- A call that still fails after the retries makes its contacts `failed` (the caller sends them again next run);
  the others go on. Spotler refusing the credentials (401) stops the run: every contact not yet sent is `failed`.
- `dry_run`: no call at all; every contact `would-create` or `would-update`, and one line says how many.

`ContactOutcome.action` is what the caller asked (`create` for `is_new`), `status` what Spotler ended up holding,
so a change that fell back reads `action="update", status="created"`.

What a contact carries (the reference's Contact model: `externalId`, a free `properties` map, `channels`):
`properties` `email`, `firstName`, `country` (the ISO code) and `lastName` only where the full name starts with
the first name ("Jan de Vries" and "Jan": "de Vries"); Directo's name may be a company's, so it is not split
otherwise. The customer number has no standard property: it is the externalId of every contact the warehouse
adds, and an account with a property of its own gets it through `properties`, as any extra property (Directo
datafields and classes a setting names), passed as they are. Values the warehouse lacks are left out, never sent
empty, and `purge` is never set: Spotler keeps what it has for them. The EMAIL permission is the channel
`{"name": "EMAIL", "value": opted_in}`, mapped as the caller gives it (True only for a yes to consent), and left out
when the warehouse knows no consent statement of its own (`opted_in` None: Spotler keeps its own).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from mail_warehouse_sources.spotler.client import Answer, SpotlerClient

MAX_BATCH = 100  # POST /contact/list takes at most 100 contacts a call
PROGRESS_EVERY_BATCHES = 10  # a progress line each time another 10 batches' worth of contacts is answered
CREATE = ("POST", "POST /contact/list", "/contact/list")
UPDATE_ENDPOINT = "PUT /contact/{externalId}"
REFUSED_CODES = ("PROPERTY_INVALID", "CONTACT_OPTOUT", "NO_ACTIVE_CHANNEL", "CONTACT_UNKNOWN")
LOST_ANSWER_NOTE = "an earlier call went unanswered; Spotler already held the contact, updated with the same values"


@dataclass(frozen=True)
class ContactChange:
    email: str  # normalised address
    external_id: str  # Spotler's externalId: an existing Spotler contact's id when known, else the Directo code
    is_new: bool  # True: not in Spotler as far as the warehouse knows (POST /contact/list); False: PUT
    first_name: str | None
    full_name: str | None
    country: str | None  # ISO code, e.g. "NL"
    customer_number: str | None  # Directo customer code
    opted_in: bool | None  # the EMAIL channel permission: True only for a yes to consent; None: no statement
    #                        (the warehouse knows no consent of its own: Spotler's channel is left as it is)
    properties: dict[str, str]  # extra Spotler contact properties (a setting names them), may be empty


@dataclass(frozen=True)
class ContactOutcome:
    email: str
    external_id: str
    action: str  # "create" | "update": what the caller asked
    status: str  # "created" | "updated" | "refused" | "failed" (dry run: "would-create" | "would-update")
    message: str | None = None


def contact_body(change: ContactChange) -> dict:
    """The Contact Spotler receives for a change (see the module's docstring for what goes where)."""
    named = {
        "email": change.email,
        "firstName": change.first_name,
        "lastName": _last_name(change),
        "country": change.country,
    }
    properties = {**change.properties, **{name: value for name, value in named.items() if value}}
    body: dict = {"externalId": change.external_id, "properties": properties}
    if change.opted_in is not None:
        body["channels"] = [{"name": "EMAIL", "value": bool(change.opted_in)}]
    return body


def _last_name(change: ContactChange) -> str | None:
    first, full = (change.first_name or "").strip(), (change.full_name or "").strip()
    if first and full.startswith(first + " "):
        return full[len(first) :].strip() or None
    return None


def push_contacts(
    client: SpotlerClient | None,
    changes: list[ContactChange],
    *,
    dry_run: bool = False,
    batch_size: int = MAX_BATCH,
    workers: int = 1,
    say: Callable[[str], None] = print,
    answered: Callable[[list[ContactOutcome]], None] = lambda outcomes: None,
) -> list[ContactOutcome]:
    """Every change to Spotler; an outcome per change, in the order of `changes`. `batch_size` is capped at 100;
    `workers` calls run at a time. `say` gets progress and a summary line (counts only: no address, no secret);
    `answered` gets each call's outcomes as they come, on the calling thread (the caller records them, so a run
    stopped midway keeps what Spotler already answered)."""
    if dry_run:
        outcomes = [
            ContactOutcome(c.email, c.external_id, _action(c), "would-create" if c.is_new else "would-update")
            for c in changes
        ]
        counts = Counter(o.status for o in outcomes)
        say(
            f"spotler contacts (dry run): {counts['would-create']:,} would be created, "
            f"{counts['would-update']:,} would be updated; nothing was sent"
        )
        return outcomes
    if not changes:
        return []
    if client is None:
        raise ValueError("push_contacts needs a SpotlerClient unless dry_run")
    batch_size = max(1, min(batch_size, MAX_BATCH))
    push = _Push(client)
    results: dict[int, ContactOutcome] = {}
    for index, change in enumerate(changes):
        if not change.external_id.strip():
            results[index] = ContactOutcome(
                change.email, change.external_id, _action(change), "refused", "no externalId (Spotler needs one)"
            )
    new = [(i, c) for i, c in enumerate(changes) if c.is_new and i not in results]
    changed = [(i, c) for i, c in enumerate(changes) if not c.is_new and i not in results]
    progress_step, answered_count, reported = PROGRESS_EVERY_BATCHES * batch_size, len(results), 0
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="spotler-contacts") as pool:
        tasks = [
            pool.submit(push.create_batch, new[start : start + batch_size]) for start in range(0, len(new), batch_size)
        ]
        tasks += [pool.submit(push.update_one, index, change) for index, change in changed]
        for task in as_completed(tasks):
            done = task.result()
            results.update(done)
            answered(list(done.values()))
            answered_count += len(done)
            if answered_count // progress_step > reported and answered_count < len(changes):
                reported = answered_count // progress_step
                say(f"  spotler contacts: {answered_count:,} of {len(changes):,} answered")
    outcomes = [results[index] for index in range(len(changes))]
    counts = Counter(o.status for o in outcomes)
    told = ", ".join(f"{counts[s]:,} {s}" for s in ("created", "updated", "refused", "failed") if counts[s])
    say(f"spotler contacts: {told}" + ("; the failed ones go again next run" if counts["failed"] else ""))
    return outcomes


def _action(change: ContactChange) -> str:
    return "create" if change.is_new else "update"


class _Push:
    """The calls of one run over one client; `stopped` says why no call is made any more (bad credentials)."""

    def __init__(self, client: SpotlerClient) -> None:
        self.client = client
        self.stopped: str | None = None

    def _send(self, method: str, endpoint: str, path: str, body: dict) -> Answer | str:
        """Spotler's answer, or why there is none (the client's error after its retries names the endpoint)."""
        from mail_warehouse_sources.spotler.config import SpotlerCredentialsRefused, SpotlerError

        if self.stopped:
            return self.stopped
        try:
            return self.client.send(method, endpoint, path, body)
        except SpotlerCredentialsRefused as error:  # every other call would be refused too
            self.stopped = f"not sent: {error}"
            return str(error)
        except SpotlerError as error:
            return str(error)

    def create_batch(self, batch: list[tuple[int, ContactChange]]) -> dict[int, ContactOutcome]:
        return dict(zip((i for i, _ in batch), self._create([c for _, c in batch], fall_back=True), strict=True))

    def update_one(self, index: int, change: ContactChange) -> dict[int, ContactOutcome]:
        return {index: self._update(change, fall_back=True)}

    def _create(self, changes: list[ContactChange], *, fall_back: bool) -> list[ContactOutcome]:
        method, endpoint, path = CREATE
        body = {"update": False, "purge": False, "contacts": [contact_body(c) for c in changes]}
        answer = self._send(method, endpoint, path, body)
        if isinstance(answer, str):
            return [_outcome(c, "failed", answer) for c in changes]
        if not answer.ok or not isinstance(answer.body, list):
            status = "refused" if answer.status == 400 else "failed"
            return [_outcome(c, status, f"{endpoint}: HTTP {answer.status} {answer.message}".strip()) for c in changes]
        outcomes = []
        for change, item in zip(changes, _answers_per_contact(changes, answer.body), strict=True):
            code = str(item.get("code") or "OK")
            message = str(item.get("message") or code)
            if code == "OK":
                outcomes.append(_outcome(change, "created"))
            elif code == "CONTACT_ALREADY_EXISTS" and fall_back:
                updated = self._update(change, fall_back=False)
                note = LOST_ANSWER_NOTE if answer.after_lost_answer and updated.status == "updated" else None
                outcomes.append(_outcome(change, updated.status, note or updated.message))
            elif code == "CONTACT_ALREADY_EXISTS":
                outcomes.append(_outcome(change, "failed", "Spotler said the contact was unknown, then that it exists"))
            elif code in REFUSED_CODES:
                outcomes.append(_outcome(change, "refused", message))
            else:
                outcomes.append(_outcome(change, "failed", f"{endpoint}: {message}"))
        return outcomes

    def _update(self, change: ContactChange, *, fall_back: bool) -> ContactOutcome:
        path = f"/contact/{quote(change.external_id, safe='')}"
        answer = self._send("PUT", UPDATE_ENDPOINT, path, {"purge": False, "contact": contact_body(change)})
        if isinstance(answer, str):
            return _outcome(change, "failed", answer)
        if answer.ok:
            return _outcome(change, "updated")
        if answer.status == 404 and fall_back:  # removed in Spotler meanwhile: added again
            [added] = self._create([change], fall_back=False)
            return added
        if answer.status == 404:
            return _outcome(change, "failed", "Spotler said the contact exists, then that it is unknown")
        if answer.status == 400:
            return _outcome(change, "refused", answer.message or "HTTP 400")
        return _outcome(change, "failed", f"{UPDATE_ENDPOINT}: HTTP {answer.status} {answer.message}".strip())


def _outcome(change: ContactChange, status: str, message: str | None = None) -> ContactOutcome:
    return ContactOutcome(change.email, change.external_id, _action(change), status, message)


def _answers_per_contact(changes: list[ContactChange], body: list) -> list[dict]:
    """Spotler's AddContactResponse for each contact sent, matched by externalId in the order given (a batch
    holding one externalId twice reads right); a contact the answer leaves out was added (`OK`): Spotler may list
    only the contacts it did not add."""
    by_id: dict[str, list[dict]] = {}
    for item in body:
        if isinstance(item, dict):
            by_id.setdefault(str(item.get("externalId")), []).append(item)
    return [(by_id.get(change.external_id) or [{"code": "OK"}]).pop(0) for change in changes]
