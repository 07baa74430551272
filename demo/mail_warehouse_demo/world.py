"""The demo world: one set of people, mailed by Clang and Spotler, kept as customers in Directo.

`simulate(spec)` returns plain Arrow tables (people, customers, mailings, links, sends, events, ...).
Everything is drawn from one numpy generator seeded with `spec.seed`, and all times are offsets from
`spec.end`, so a seed gives the same world on every machine (only the calendar shifts with `end`).

The behaviour model, per send, in time order so that earlier sends shape later ones:
- a contact is mailed while opted in, not hard-bounced, not complained, and (after an unsubscribe)
  only again once a fresh OPTIN=yes arrived;
- hard bounce 0.5 %, soft bounce 1 %; a delivered mail is opened with the contact's own propensity
  (mean about 25 %, 15 % of people never open), clicked by a share of openers (2–6 % of delivered);
- responses arrive over hours to weeks (log-normal delays), openers open more than once;
- some clickers block images, so their click is the only trace of the open;
- a quarter of engaged contacts go quiet at some day and stop responding (re-activation candidates);
- unsubscribes 0.2 %, complaints 0.02 % of delivered; a quarter of unsubscribers opt in again later.

Machines open and click too, drawn from a random stream of their own (a seed's people act as without them):
- Apple Mail users (`apple_mail_share`): Apple's privacy proxy fetches the images of nearly every delivered
  mail (an open) a log-normal delay after delivery (median `proxy_delay_minutes`, minutes to hours), whether
  or not the person reads it; the person's own opens are then invisible, their clicks are not;
- addresses behind a scanning corporate gateway (`scanned_share`): every link but the unsubscribe link is
  followed within two seconds of each other, a log-normal delay after the send (median
  `scanner_delay_seconds`, seconds to minutes), most often with an image fetch at the same moment; the
  person behind the address behaves as anyone else.
Every event says which machine made it (`machine`; null for a person), and each person when they last
opened (seen or not) or clicked themselves (`last_engaged_at`): the truth the warehouse's rules are measured
against.

A steady company (`steady=True`) keeps `contacts` mailable customers over the years instead of a set of people
that only shrinks: sign-ups arrive at the rate customers are lost (hard bounces, unsubscribes, complaints at the
mailing rhythm of `mailings` per `days`), mailings are evenly spaced, people go quiet within a year of joining,
and every birthday recurs, so each year of its history has the same daily volume. Its `days` is the length of
the history; `mailings` counts the mailings over all of it (keep `mailings / days` for the same rhythm).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from mail_warehouse_demo import names

DAY = 86_400
HOUR = 3_600

HARD_BOUNCE_RATE = 0.005
SOFT_BOUNCE_RATE = 0.010
UNSUBSCRIBE_RATE = 0.002
COMPLAINT_RATE = 0.0002
NEVER_ENGAGED_SHARE = 0.15
GOING_QUIET_SHARE = 0.25
REOPTIN_SHARE = 0.25
IMAGES_BLOCKED_SHARE = 0.12
OPTED_OUT_SHARE = 0.04
SHARED_EMAIL_SHARE = 0.03
CLOSED_SHARE = 0.04
CLANG_SHARE_OF_MAILINGS = 0.55
SPOTLER_SMS_SHARE = 0.05
CART_TRIGGER_SHARE = 0.03
SECOND_CUSTOMER_CODES = 50_000_000  # codes of the extra customers that share an address
STEADY_AUDIENCE_SHARE = 0.86  # the mean audience share of a mailing (_draw_mailings: 60 % to all, else 40-90 %)
APPLE_MAIL_SHARE = 0.35
SCANNED_SHARE = 0.05
PROXY_FETCH_SHARE = 0.97  # of the mails delivered to an Apple Mail user, those the proxy fetches
SCANNER_OPEN_SHARE = 0.7  # of the mails a gateway scans, those whose images it fetches too
OTHER_CLIENT, APPLE_MAIL, SCANNED_GATEWAY = range(3)
MAIL_CLIENTS = ("other", "apple_mail", "scanned_gateway")
MACHINES = (None, "apple_privacy_proxy", "link_scanner")

EVENT_TYPES = ("sent", "hard_bounce", "soft_bounce", "open", "click", "unsubscribe", "complaint")
SENT, HARD, SOFT, OPEN, CLICK, UNSUB, COMPLAINT = range(len(EVENT_TYPES))
COUNTRY_CALLING_CODES = {"NL": 31, "BE": 32, "EE": 372}


@dataclass(frozen=True)
class WorldSpec:
    contacts: int = 2_000
    mailings: int = 40
    days: int = 180
    seed: int = 42
    end: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())
    clang_share: float = CLANG_SHARE_OF_MAILINGS  # share of newsletters sent by Clang, the rest by Spotler
    apple_mail_share: float = APPLE_MAIL_SHARE  # people reading in Apple Mail (privacy proxy opens)
    scanned_share: float = SCANNED_SHARE  # addresses behind a link-scanning corporate gateway
    proxy_delay_minutes: float = 20.0  # median of the proxy's fetch after delivery
    scanner_delay_seconds: float = 20.0  # median of the gateway's scan after the send
    steady: bool = False  # a steady customer base over the years (see the module's docstring)

    def __post_init__(self) -> None:
        if self.contacts < 10:
            raise ValueError("--contacts must be at least 10")
        if self.mailings < 1:
            raise ValueError("--mailings must be at least 1")
        if self.days < 7:
            raise ValueError("--days must be at least 7")
        if not 0 <= self.clang_share <= 1:
            raise ValueError("clang_share must be between 0 and 1")
        if not (
            self.apple_mail_share >= 0 and self.scanned_share >= 0 and self.apple_mail_share + self.scanned_share <= 1
        ):
            raise ValueError("apple_mail_share and scanned_share must be shares that add up to at most 1")
        if self.proxy_delay_minutes <= 0 or self.scanner_delay_seconds <= 0:
            raise ValueError("proxy_delay_minutes and scanner_delay_seconds must be positive")

    @property
    def end_ts(self) -> int:
        """The world's "now": 22:00 UTC the day before `end`, at or after midnight in Amsterdam.

        So the last nightly Clang export (the day before `end`, local time) holds every event there is.
        """
        return int(dt.datetime.combine(self.end - dt.timedelta(days=1), dt.time(22), dt.UTC).timestamp())

    @property
    def start_ts(self) -> int:
        return self.end_ts - self.days * DAY

    @property
    def sign_ups(self) -> int:
        """People who join during the period of a steady company: as many as it loses at its mailing rhythm.

        A customer receives the mailings of a year times their mean audience share, and each mail loses them
        with the chance of a hard bounce, an unsubscribe that is not taken back, or a complaint."""
        if not self.steady:
            return 0
        mails_per_year = self.mailings * 365 / self.days * STEADY_AUDIENCE_SHARE
        lost_per_mail = HARD_BOUNCE_RATE + UNSUBSCRIBE_RATE * (1 - REOPTIN_SHARE) + COMPLAINT_RATE
        return round(self.contacts * mails_per_year * lost_per_mail * self.days / 365)

    @property
    def people(self) -> int:
        """Everyone the world holds: the customers at the start, and in a steady company its sign-ups."""
        return self.contacts + self.sign_ups


@dataclass
class World:
    spec: WorldSpec
    people: pa.Table
    customers: pa.Table
    datafields: pa.Table
    mailings: pa.Table
    links: pa.Table
    sends: pa.Table
    events: pa.Table
    conversions: pa.Table
    campaigns: pa.Table
    form_results: pa.Table

    def counts(self) -> dict[str, int]:
        return {
            name: getattr(self, name).num_rows
            for name in ("people", "customers", "datafields", "mailings", "links", "sends", "events", "form_results")
        }


def _ts(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype("int64"), pa.int64()).cast(pa.timestamp("s", tz="UTC"))


class _EventLog:
    """Columns of events gathered batch by batch, concatenated once at the end."""

    def __init__(self) -> None:
        self.columns: dict[str, list[np.ndarray]] = {
            k: []
            for k in (
                "mailing_index",
                "person_id",
                "event_type",
                "event_ts",
                "link_id",
                "reason_index",
                "subscription_id",
                "machine",
            )
        }

    def add(
        self,
        mailing_index,
        person_id,
        event_type,
        event_ts,
        link_id=None,
        reason_index=None,
        subscription_id=None,
        machine=0,
    ) -> None:
        n = len(person_id)
        if n == 0:
            return

        def fill(v, default: int) -> np.ndarray:
            return np.full(n, default, "int64") if v is None else np.broadcast_to(v, n).astype("int64")

        self.columns["mailing_index"].append(np.broadcast_to(mailing_index, n).astype("int64"))
        self.columns["person_id"].append(np.asarray(person_id, "int64"))
        self.columns["event_type"].append(np.full(n, event_type, "int8"))
        self.columns["event_ts"].append(np.asarray(event_ts, "int64"))
        self.columns["link_id"].append(fill(link_id, -1))
        self.columns["reason_index"].append(fill(reason_index, -1))
        self.columns["subscription_id"].append(fill(subscription_id, -1))
        self.columns["machine"].append(np.full(n, machine, "int8"))

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: (np.concatenate(v) if v else np.empty(0, "int64")) for k, v in self.columns.items()}


def simulate(spec: WorldSpec) -> World:
    rng = np.random.default_rng(spec.seed)
    machine_rng = np.random.default_rng([spec.seed, 2021])  # the machines' own stream
    people = _draw_people(rng, spec)
    client_roll = machine_rng.random(spec.people)
    people["mail_client"] = np.where(
        client_roll < spec.apple_mail_share,
        APPLE_MAIL,
        np.where(client_roll < spec.apple_mail_share + spec.scanned_share, SCANNED_GATEWAY, OTHER_CLIENT),
    )
    mailing_rows, link_rows = _draw_mailings(rng, spec)
    campaign_rows, subscriptions = _draw_campaign_triggers(rng, spec, people, mailing_rows, link_rows)
    state = _ContactState(people)
    log = _EventLog()
    sends_log = _EventLog()
    conversions: list[tuple[int, int, bool, int]] = []
    links_by_mailing = _links_by_mailing(link_rows)
    for batch in _send_batches(spec, mailing_rows, subscriptions):
        delivered = _simulate_batch(
            rng, spec, batch, people, state, mailing_rows, links_by_mailing, log, sends_log, conversions
        )
        if delivered is not None:
            _machines_of_batch(machine_rng, spec, batch[1], people, links_by_mailing, log, *delivered)
    reoptins = state.reopt_ins
    return _assemble(
        rng, spec, people, state, reoptins, mailing_rows, link_rows, campaign_rows, log, sends_log, conversions
    )


# --- people -----------------------------------------------------------------------------------------


def _draw_people(rng: np.random.Generator, spec: WorldSpec) -> dict[str, np.ndarray]:
    n = spec.people
    country = rng.choice(len(names.COUNTRIES), n, p=names.COUNTRY_WEIGHTS)
    first_pick = rng.integers(0, 20, n)
    last_pick = rng.integers(0, 16, n)
    # 70 % were subscribers before the period began; the rest join during it.
    existing = rng.random(n) < 0.7
    if spec.steady:  # the customers at the start, then the sign-ups spread over the period
        existing = np.arange(n) < spec.contacts
    joined = np.where(
        existing,
        spec.start_ts - rng.integers(DAY, 3 * 365 * DAY, n),
        spec.start_ts + rng.integers(0, spec.days * DAY, n),
    )
    never_engaged = rng.random(n) < NEVER_ENGAGED_SHARE
    open_p = np.where(never_engaged, 0.0, np.clip(rng.beta(2.2, 5.0, n) * 1.05, 0.0, 0.95))
    click_p = np.clip(rng.beta(2.0, 9.0, n), 0.0, 0.9)
    going_quiet = (~never_engaged) & (rng.random(n) < GOING_QUIET_SHARE)
    quiet_after = rng.integers(5 * DAY, max(6 * DAY, (spec.days - 20) * DAY), n)
    if spec.steady:  # within a year of joining (or of the period's start), whenever that is
        quiet_at = np.maximum(joined, spec.start_ts) + quiet_after % (365 * DAY)
    else:
        quiet_at = spec.start_ts + quiet_after
    quiet_at = np.where(going_quiet, quiet_at, np.iinfo("int64").max)
    opted_out = rng.random(n) < OPTED_OUT_SHARE
    birthday_doy = rng.integers(0, 365, n)
    birth_year = rng.integers(1950, 2006, n)
    return {
        "person_id": np.arange(n),
        "country": country,
        "first": first_pick,
        "last": last_pick,
        "joined": joined,
        "open_p": open_p,
        "click_p": click_p,
        "quiet_at": quiet_at,
        "opted_out": opted_out,
        "birthday_doy": birthday_doy,
        "birth_year": birth_year,
        "domain": rng.integers(0, 3, n),
        "email_case_noise": rng.random(n) < 0.05,
        "closed": rng.random(n) < CLOSED_SHARE,
        "class": rng.choice(4, n, p=names.DIRECTO_CLASS_WEIGHTS),
        "shares_email": rng.random(n) < SHARED_EMAIL_SHARE,
        "city": rng.integers(0, 7, n),
        "encrypted": rng.integers(0, 2**62, n),
    }


class _ContactState:
    """What the mail platforms know of each person at a moment: stop-mailing facts with their times."""

    NEVER = np.iinfo("int64").max

    def __init__(self, people: dict[str, np.ndarray]) -> None:
        n = len(people["person_id"])
        self.people = people
        self.hard_bounced_at = np.full(n, self.NEVER, "int64")
        self.complained_at = np.full(n, self.NEVER, "int64")
        self.unsubscribed_at = np.full(n, self.NEVER, "int64")
        self.reoptin_at = np.full(n, self.NEVER, "int64")
        self.reopt_ins: list[tuple[int, int]] = []
        self.unsubscribers = 0
        self.last_engaged_at = np.full(n, -1, "int64")  # a person's own last open (seen or not) or click

    def engaged(self, person_id: np.ndarray, at: np.ndarray, end_ts: int) -> None:
        seen = at < end_ts
        np.maximum.at(self.last_engaged_at, person_id[seen], at[seen])

    def mailable(self, person_id: np.ndarray, at: np.ndarray) -> np.ndarray:
        unsubscribed = (self.unsubscribed_at[person_id] <= at) & ~(self.reoptin_at[person_id] <= at)
        return (
            (self.people["joined"][person_id] <= at)
            & ~self.people["opted_out"][person_id]
            & (self.hard_bounced_at[person_id] > at)
            & (self.complained_at[person_id] > at)
            & ~unsubscribed
        )


# --- mailings -----------------------------------------------------------------------------------------


@dataclass
class _Mailing:
    index: int
    system: str  # clang | spotler | spotler_campaign
    source_id: str
    mailing_type: str
    name: str
    subject: str
    sent_ts: int | None  # None for campaign mailings (sent per subscription)
    sender: str
    target_group: str
    audience_share: float
    campaign_index: int = -1
    offset_days: float = 0.0


def _draw_mailings(rng, spec):
    mailings: list[_Mailing] = []
    links: list[tuple[int, int, str, str, str | None, str]] = []
    send_days = np.sort(rng.integers(1, spec.days - 1, spec.mailings))
    if spec.steady:  # the same rhythm all along: evenly spaced, a day or two either way
        even = np.linspace(1, spec.days - 2, spec.mailings).round().astype("int64")
        send_days = np.sort(np.clip(even + rng.integers(-2, 3, spec.mailings), 1, spec.days - 2))
    send_hours = rng.integers(6, 10, spec.mailings)
    clang_types = ("SINGLE", "CAMPAIGN", "QUICKMAIL", "SPLITRUN")
    next_link_id = 1
    for i in range(spec.mailings):
        topic = names.NEWSLETTER_TOPICS[rng.integers(len(names.NEWSLETTER_TOPICS))]
        subject = names.SUBJECT_TEMPLATES[rng.integers(len(names.SUBJECT_TEMPLATES))].format(topic=topic)
        sent = spec.start_ts + int(send_days[i]) * DAY + int(send_hours[i]) * HOUR
        sent -= sent % DAY % HOUR  # on the hour
        share = 1.0 if rng.random() < 0.6 else float(rng.uniform(0.4, 0.9))
        group = names.TARGET_GROUPS[0] if share == 1.0 else names.TARGET_GROUPS[1 + rng.integers(5)]
        if rng.random() < spec.clang_share:
            system, source_id = "clang", str(20_000 + i * 7 + int(rng.integers(0, 7)))
            mailing_type = clang_types[int(rng.choice(4, p=(0.55, 0.2, 0.15, 0.1)))]
        else:
            system, source_id = "spotler", f"{int(rng.integers(0, 2**63)):016x}"
            mailing_type = "SMS" if rng.random() < SPOTLER_SMS_SHARE else "EMAIL"
        name = f"{topic} {dt.datetime.fromtimestamp(sent, dt.UTC):%Y-%m-%d}"
        mailing = _Mailing(
            len(mailings),
            system,
            source_id,
            mailing_type,
            name,
            subject,
            sent,
            names.SENDERS[rng.integers(len(names.SENDERS))],
            group,
            share,
        )
        mailings.append(mailing)
        next_link_id = _draw_links(rng, mailing, links, next_link_id)
    return mailings, links


def _draw_links(rng, mailing: _Mailing, links: list, next_link_id: int) -> int:
    if mailing.mailing_type == "SMS":
        return next_link_id
    body = rng.choice(5, size=int(rng.integers(2, 5)), replace=False)
    for kind in [*sorted(body.tolist()), 5, 6, 7]:
        link_name, path, link_type = names.LINK_KINDS[kind]
        url = path if path.startswith("http") else f"{names.WEBSITE}{path}?utm_campaign=m{mailing.index}"
        links.append((mailing.index, next_link_id, link_name, url, link_type, f"L{kind}"))
        next_link_id += 1
    return next_link_id


def _links_by_mailing(link_rows):
    grouped: dict[int, dict[str, np.ndarray]] = {}
    for mailing_index, link_id, _name, _url, link_type, _code in link_rows:
        entry = grouped.setdefault(mailing_index, {"ids": [], "types": []})
        entry["ids"].append(link_id)
        entry["types"].append(link_type or "")
    result = {}
    for mailing_index, entry in grouped.items():
        ids = np.array(entry["ids"], "int64")
        types = np.array(entry["types"], dtype=object)
        clickable = ~np.isin(types, ("unsubscribe", "editprofile", "openhtml"))
        weights = np.where(clickable, 1.0, 0.0)
        weights[np.isin(types, ("openhtml", "editprofile"))] = 0.08
        result[mailing_index] = {
            "ids": ids,
            "p": weights / weights.sum(),
            "types": types,
            "unsubscribe": int(ids[types == "unsubscribe"][0]),
        }
    return result


def _draw_campaign_triggers(rng, spec, people, mailings: list[_Mailing], links):
    """Spotler campaigns: per trigger a subscription, per campaign mailing a send after its offset."""
    campaign_rows = []
    subscriptions = []  # (mailing index, person ids, send times, subscription ids)
    next_subscription = 1
    next_link_id = max((row[1] for row in links), default=0) + 1
    n = spec.people
    for c, (campaign_name, steps, trigger) in enumerate(names.CAMPAIGNS):
        campaign_id = f"{int(rng.integers(0, 2**63)):016x}"
        campaign_rows.append((c, campaign_id, campaign_name, True, f"Start {campaign_name}"))
        if trigger == "joined":
            who = np.flatnonzero(people["joined"] >= spec.start_ts)
            at = people["joined"][who] + 600
        elif trigger == "birthday":
            start_doy = dt.datetime.fromtimestamp(spec.start_ts, dt.UTC).timetuple().tm_yday - 1
            offset = (people["birthday_doy"] - start_doy) % 365
            if spec.steady:  # every year's birthday (a short world sees at most one)
                years = np.arange(spec.days // 365 + 1)
                offset = (offset[:, None] + 365 * years[None, :]).ravel()
                who = np.repeat(np.arange(n), len(years))
                who, offset = who[offset < spec.days], offset[offset < spec.days]
            else:
                who = np.flatnonzero(offset < spec.days)
                offset = offset[who]
            at = spec.start_ts - spec.start_ts % DAY + offset * DAY + 7 * HOUR
        else:
            count = max(1, int(n * CART_TRIGGER_SHARE * spec.days / 30))
            who = rng.integers(0, n, count)
            at = spec.start_ts + rng.integers(0, spec.days * DAY, count)
        subscription_ids = np.arange(next_subscription, next_subscription + len(who))
        next_subscription += len(who)
        for step_name, step_type, offset_days in steps:
            mailing = _Mailing(
                len(mailings),
                "spotler_campaign",
                f"{int(rng.integers(0, 2**63)):016x}",
                step_type,
                step_name,
                step_name if step_type == "EMAIL" else "",
                None,
                names.SENDERS[0],
                campaign_name,
                1.0,
                c,
                offset_days,
            )
            mailings.append(mailing)
            next_link_id = _draw_links(rng, mailing, links, next_link_id)
            send_at = at + int(offset_days * DAY)
            keep = send_at < spec.end_ts
            subscriptions.append((mailing.index, who[keep], send_at[keep], subscription_ids[keep]))
    for campaign_name, trigger_name in names.EXTERNALLY_TRIGGERED_CAMPAIGNS:
        # ids from the name, not the random stream: adding one leaves every other draw of the world as it was
        campaign_id = hashlib.sha256(f"campaign {campaign_name}".encode()).hexdigest()[:16]
        campaign_rows.append((len(campaign_rows), campaign_id, campaign_name, True, trigger_name))
    return campaign_rows, subscriptions


def _send_batches(spec, mailings: list[_Mailing], subscriptions):
    """Every send, grouped in batches (a mailing, or a campaign mailing's sends of one day) in time order."""
    batches = []
    for m in mailings:
        if m.sent_ts is not None:
            batches.append((m.sent_ts, m.index, None, None, None))
    for mailing_index, who, send_at, subscription_ids in subscriptions:
        day = send_at // DAY
        order = np.argsort(day, kind="stable")
        who, send_at, subscription_ids, day = who[order], send_at[order], subscription_ids[order], day[order]
        bounds = np.flatnonzero(np.diff(day)) + 1
        for part in np.split(np.arange(len(day)), bounds):
            if len(part):
                batches.append(
                    (int(send_at[part].min()), mailing_index, who[part], send_at[part], subscription_ids[part])
                )
    batches.sort(key=lambda b: (b[0], b[1]))
    return batches


def _simulate_batch(
    rng,
    spec,
    batch,
    people,
    state: _ContactState,
    mailings,
    links_by_mailing,
    log: _EventLog,
    sends_log: _EventLog,
    conversions,
):
    """A batch's sends and what people did with them; returns the delivered sends (who, when, subscription)."""
    _, mailing_index, who, send_at, subscription_ids = batch
    mailing: _Mailing = mailings[mailing_index]
    if who is None:  # a regular mailing: its target group, sent over the first minutes
        selected = rng.random(spec.people) < mailing.audience_share
        who = np.flatnonzero(selected)
        send_at = mailing.sent_ts + (np.arange(len(who)) * 600 // max(1, len(who)))
        subscription_ids = None
    mailable = state.mailable(who, send_at)
    who, send_at = who[mailable], send_at[mailable]
    if subscription_ids is not None:
        subscription_ids = subscription_ids[mailable]
    n = len(who)
    if n == 0:
        return None
    sends_log.add(mailing_index, who, SENT, send_at, subscription_id=subscription_ids)
    log.add(mailing_index, who, SENT, send_at, subscription_id=subscription_ids)
    if mailing.mailing_type == "SMS":
        return None

    def sub(mask):
        return None if subscription_ids is None else subscription_ids[mask]

    roll = rng.random(n)
    hard = roll < HARD_BOUNCE_RATE
    soft = (roll >= HARD_BOUNCE_RATE) & (roll < HARD_BOUNCE_RATE + SOFT_BOUNCE_RATE)
    delivered = ~(hard | soft)
    bounce_at = send_at + rng.integers(30, 1800, n)
    log.add(
        mailing_index,
        who[hard],
        HARD,
        bounce_at[hard],
        reason_index=rng.integers(0, 3, hard.sum()),
        subscription_id=sub(hard),
    )
    log.add(
        mailing_index,
        who[soft],
        SOFT,
        bounce_at[soft],
        reason_index=rng.integers(0, 3, soft.sum()),
        subscription_id=sub(soft),
    )
    state.hard_bounced_at[who[hard]] = np.minimum(state.hard_bounced_at[who[hard]], bounce_at[hard])

    responsive = send_at < people["quiet_at"][who]
    opened = delivered & responsive & (rng.random(n) < people["open_p"][who])
    first_open = send_at + np.minimum(rng.lognormal(np.log(3 * HOUR), 1.6, n), 45 * DAY).astype("int64")
    clicked = opened & (rng.random(n) < people["click_p"][who])
    images_blocked = clicked & (rng.random(n) < IMAGES_BLOCKED_SHARE)
    visible_open = opened & ~images_blocked
    open_counts = np.where(visible_open, rng.geometric(0.55, n), 0)
    rows = np.repeat(np.arange(n), open_counts)
    first_of_row = np.r_[True, rows[1:] != rows[:-1]] if len(rows) else np.empty(0, bool)
    later = np.where(first_of_row, 0, rng.lognormal(np.log(DAY), 1.3, len(rows)).astype("int64"))
    state.engaged(who[opened], first_open[opened], spec.end_ts)
    # an Apple Mail user's own opens come from the proxy's cache: never seen
    seen = people["mail_client"][who[rows]] != APPLE_MAIL
    log.add(
        mailing_index,
        who[rows][seen],
        OPEN,
        (first_open[rows] + later)[seen],
        subscription_id=None if subscription_ids is None else subscription_ids[rows][seen],
    )

    link_info = links_by_mailing[mailing_index]
    first_click = first_open + rng.exponential(90, n).astype("int64") + 5
    click_counts = np.where(clicked, rng.geometric(0.6, n), 0)
    rows = np.repeat(np.arange(n), click_counts)
    first_of_row = np.r_[True, rows[1:] != rows[:-1]] if len(rows) else np.empty(0, bool)
    later = np.where(first_of_row, 0, rng.exponential(900, len(rows)).astype("int64"))
    link_ids = rng.choice(link_info["ids"], len(rows), p=link_info["p"])
    log.add(
        mailing_index,
        who[rows],
        CLICK,
        first_click[rows] + later,
        link_id=link_ids,
        subscription_id=None if subscription_ids is None else subscription_ids[rows],
    )
    state.engaged(who[rows], first_click[rows] + later, spec.end_ts)
    if mailing.system != "clang":
        webshop_ids = link_info["ids"][np.isin(link_info["types"], ("webshop", "conversion"))]
        shoppers = np.unique(rows[np.isin(link_ids, webshop_ids)])
        carts = shoppers[rng.random(len(shoppers)) < 0.3]
        paid = rng.random(len(carts)) < 0.5
        values = rng.integers(1_500, 25_000, len(carts))
        conversions.extend(
            zip(
                [mailing_index] * len(carts),
                who[carts].tolist(),
                paid.tolist(),
                np.where(paid, values, 0).tolist(),
                strict=True,
            )
        )

    unsubscribed = delivered & (rng.random(n) < UNSUBSCRIBE_RATE)
    unsubscribe_at = np.where(opened, first_open, send_at + rng.integers(HOUR, 3 * DAY, n)) + 45
    if mailing.system == "clang":
        log.add(
            mailing_index, who[unsubscribed], UNSUB, unsubscribe_at[unsubscribed], subscription_id=sub(unsubscribed)
        )
    else:  # Spotler shows an unsubscribe as a click on the mailing's unsubscribe link
        log.add(
            mailing_index,
            who[unsubscribed],
            CLICK,
            unsubscribe_at[unsubscribed],
            link_id=link_info["unsubscribe"],
            subscription_id=sub(unsubscribed),
        )
        log.add(
            mailing_index, who[unsubscribed], UNSUB, unsubscribe_at[unsubscribed], subscription_id=sub(unsubscribed)
        )
    complained = delivered & ~unsubscribed & (rng.random(n) < COMPLAINT_RATE)
    complaint_at = send_at + rng.integers(2 * HOUR, 5 * DAY, n)
    log.add(mailing_index, who[complained], COMPLAINT, complaint_at[complained], subscription_id=sub(complained))
    state.complained_at[who[complained]] = np.minimum(state.complained_at[who[complained]], complaint_at[complained])

    newly = who[unsubscribed]
    state.unsubscribed_at[newly] = unsubscribe_at[unsubscribed]
    state.reoptin_at[newly] = _ContactState.NEVER
    # Every fourth unsubscriber (the first included) opts in again, so even a small world has some.
    order = state.unsubscribers + np.arange(len(newly))
    state.unsubscribers += len(newly)
    comes_back = order % round(1 / REOPTIN_SHARE) == 0
    back_at = unsubscribe_at[unsubscribed] + rng.integers(10 * DAY, 60 * DAY, len(newly))
    back = comes_back & (back_at < spec.end_ts)
    state.reoptin_at[newly[back]] = back_at[back]
    state.reopt_ins.extend(zip(newly[back].tolist(), back_at[back].tolist(), strict=True))
    return who[delivered], send_at[delivered], None if subscription_ids is None else subscription_ids[delivered]


def _machines_of_batch(
    rng,
    spec: WorldSpec,
    mailing_index: int,
    people,
    links_by_mailing,
    log: _EventLog,
    who: np.ndarray,
    send_at: np.ndarray,
    subscription_ids,
) -> None:
    """The opens and clicks machines make of a batch's delivered mails (see the module's docstring)."""
    client = people["mail_client"][who]
    sub = (lambda mask: None) if subscription_ids is None else (lambda mask: subscription_ids[mask])

    fetched = (client == APPLE_MAIL) & (rng.random(len(who)) < PROXY_FETCH_SHARE)
    delay = np.clip(rng.lognormal(np.log(spec.proxy_delay_minutes * 60), 1.0, len(who)), 30, 12 * HOUR)
    log.add(
        mailing_index,
        who[fetched],
        OPEN,
        (send_at + delay.astype("int64"))[fetched],
        subscription_id=sub(fetched),
        machine=1,
    )

    scanned = np.flatnonzero(client == SCANNED_GATEWAY)
    if not len(scanned):
        return
    link_info = links_by_mailing[mailing_index]
    followed = link_info["ids"][link_info["types"] != "unsubscribe"]
    scan_at = send_at[scanned] + np.clip(
        rng.lognormal(np.log(spec.scanner_delay_seconds), 0.8, len(scanned)), 2, 15 * 60
    ).astype("int64")
    for link_id in followed:
        log.add(
            mailing_index,
            who[scanned],
            CLICK,
            scan_at + rng.integers(0, 3, len(scanned)),
            link_id=link_id,
            subscription_id=sub(scanned),
            machine=2,
        )
    images = scanned[rng.random(len(scanned)) < SCANNER_OPEN_SHARE]
    log.add(mailing_index, who[images], OPEN, scan_at[np.isin(scanned, images)], subscription_id=sub(images), machine=2)


# --- assembling the tables ----------------------------------------------------------------------------


def _assemble(rng, spec, people, state, reoptins, mailings, link_rows, campaign_rows, log, sends_log, conversions):
    events = log.arrays()
    visible = events["event_ts"] < spec.end_ts
    events = {k: v[visible] for k, v in events.items()}
    order = np.lexsort((events["event_type"], events["person_id"], events["event_ts"]))
    events = {k: v[order] for k, v in events.items()}
    sends = sends_log.arrays()

    people_table = _people_table(spec, people, state)
    customers, datafields = _directo_tables(rng, people, people_table, reoptins, spec)
    mailing_table = pa.table(
        {
            "mailing_index": [m.index for m in mailings],
            "system": [m.system for m in mailings],
            "source_id": [m.source_id for m in mailings],
            "mailing_type": [m.mailing_type for m in mailings],
            "mailing_name": [m.name for m in mailings],
            "subject": [m.subject for m in mailings],
            "sent_at": pa.array([m.sent_ts for m in mailings], pa.int64()).cast(pa.timestamp("s", tz="UTC")),
            "sender": [m.sender for m in mailings],
            "target_group": [m.target_group for m in mailings],
            "campaign_index": [m.campaign_index for m in mailings],
            "offset_days": [m.offset_days for m in mailings],
        }
    )
    link_table = pa.table(
        {
            "mailing_index": [r[0] for r in link_rows],
            "link_id": [r[1] for r in link_rows],
            "link_name": [r[2] for r in link_rows],
            "url": [r[3] for r in link_rows],
            "link_type": [r[4] for r in link_rows],
            "link_code": [r[5] for r in link_rows],
        }
    )
    reasons = {HARD: names.HARD_BOUNCE_REASONS, SOFT: names.SOFT_BOUNCE_REASONS}
    reason_text = np.full(len(events["event_type"]), None, dtype=object)
    for kind, texts in reasons.items():
        mask = events["event_type"] == kind
        reason_text[mask] = np.array(texts, dtype=object)[events["reason_index"][mask]]
    reason_text[events["event_type"] == COMPLAINT] = names.COMPLAINT_REASON
    event_table = pa.table(
        {
            "event_seq": np.arange(len(events["event_ts"])),
            "mailing_index": events["mailing_index"],
            "person_id": events["person_id"],
            "event_type": pa.DictionaryArray.from_arrays(events["event_type"], list(EVENT_TYPES)).cast(pa.string()),
            "event_at": _ts(events["event_ts"]),
            "link_id": pa.array(events["link_id"], mask=events["link_id"] < 0),
            "reason": pa.array(reason_text.tolist(), pa.string()),
            "subscription_id": pa.array(events["subscription_id"], mask=events["subscription_id"] < 0),
            "machine": pa.array(np.array(MACHINES, dtype=object)[events["machine"]].tolist(), pa.string()),
        }
    )
    send_table = pa.table(
        {
            "mailing_index": sends["mailing_index"],
            "person_id": sends["person_id"],
            "sent_at": _ts(sends["event_ts"]),
            "subscription_id": pa.array(sends["subscription_id"], mask=sends["subscription_id"] < 0),
        }
    )
    conversion_table = pa.table(
        {
            "mailing_index": pa.array([c[0] for c in conversions], pa.int64()),
            "person_id": pa.array([c[1] for c in conversions], pa.int64()),
            "paid": pa.array([c[2] for c in conversions], pa.bool_()),
            "value_cents": pa.array([c[3] for c in conversions], pa.int64()),
        }
    )
    campaign_table = pa.table(
        {
            "campaign_index": [c[0] for c in campaign_rows],
            "encrypted_id": [c[1] for c in campaign_rows],
            "campaign_name": [c[2] for c in campaign_rows],
            "active": [c[3] for c in campaign_rows],
            "trigger_name": [c[4] for c in campaign_rows],
        }
    )
    form_results = _form_results(rng, spec, people, state)
    return World(
        spec,
        people_table,
        customers,
        datafields,
        mailing_table,
        link_table,
        send_table,
        event_table,
        conversion_table,
        campaign_table,
        form_results,
    )


def _email_local(first: str, last: str, person_id: int) -> str:
    return f"{first.translate(names.TRANSLITERATION)}.{last.translate(names.TRANSLITERATION)}{person_id}".lower()


def _people_table(spec, people, state) -> pa.Table:
    n = spec.people
    first, last, email = [], [], []
    for i in range(n):
        country = names.COUNTRIES[people["country"][i]]
        first_name = names.FIRST_NAMES[country][people["first"][i]]
        last_name = names.LAST_NAMES[country][people["last"][i]]
        first.append(first_name)
        last.append(last_name)
        email.append(f"{_email_local(first_name, last_name, i)}@{names.MAIL_DOMAINS[country][people['domain'][i]]}")
    never = _ContactState.NEVER

    def opt(a: np.ndarray) -> pa.Array:
        return pa.array(np.where(a == never, 0, a), mask=a == never).cast(pa.timestamp("s", tz="UTC"))

    return pa.table(
        {
            "person_id": people["person_id"],
            "country": [names.COUNTRIES[c] for c in people["country"]],
            "first_name": first,
            "last_name": last,
            "email": email,
            "directo_code": [str(10_000 + i) for i in range(n)],
            "clang_customer_id": (500_000 + people["person_id"]).astype("int64"),
            "spotler_encrypted_id": [f"{v:016x}" for v in people["encrypted"].tolist()],
            "joined_at": _ts(people["joined"]),
            "opted_out": people["opted_out"],
            "mail_client": [MAIL_CLIENTS[c] for c in people["mail_client"]],
            "last_engaged_at": opt(np.where(state.last_engaged_at < 0, never, state.last_engaged_at)),
            "open_propensity": people["open_p"],
            "quiet_since": opt(people["quiet_at"]),
            "hard_bounced_at": opt(state.hard_bounced_at),
            "complained_at": opt(state.complained_at),
            "unsubscribed_at": opt(np.where(state.unsubscribed_at < spec.end_ts, state.unsubscribed_at, never)),
            "reoptin_at": opt(state.reoptin_at),
            "closed": people["closed"],
            "birth_date": [
                dt.date(int(y), 1, 1) + dt.timedelta(days=int(d))
                for y, d in zip(people["birth_year"], people["birthday_doy"], strict=True)
            ],
        }
    )


def _directo_tables(rng, people, people_table: pa.Table, reoptins, spec):
    """Directo customers (one per person, some extra customers sharing an e-mail) and their datafields."""
    table = people_table.to_pylist()
    reopt = dict(reoptins)
    customers, datafields = [], []
    optin_spellings = ("yes", "yes", "yes", "yes", "Yes", "jah", "JAH", "true", "1")
    optout_spellings = ("no", "no", "no", "No", "ei", "false", "0")
    for p in table:
        i = p["person_id"]
        country = p["country"]
        email = p["email"].upper() if rng.random() < 0.02 else p["email"]
        optin_at = reopt.get(i, int(p["joined_at"].timestamp()))
        changed = max(optin_at, spec.start_ts + int(rng.integers(0, spec.days * DAY)))
        code = p["directo_code"]
        customers.append(
            _customer_row(
                rng,
                code,
                f"{p['first_name']} {p['last_name']}",
                p["first_name"],
                country,
                email,
                names.DIRECTO_CLASSES[people["class"][i]],
                int(p["closed"]),
                changed,
                people["city"][i],
            )
        )
        if p["opted_out"]:
            value = optout_spellings[rng.integers(len(optout_spellings))]
        elif rng.random() < 0.002:
            value = "maybe"  # a value nobody can read: the loader keeps it raw and flags it
        else:
            value = optin_spellings[rng.integers(len(optin_spellings))] if rng.random() < 0.05 else "yes"
        # Customers from before Directo dated its OPTIN have an undated yes: one in 40, and one in three of those
        # who later unsubscribed on a platform without coming back (chosen by number: the random stream stays)
        undated = value != "maybe" and not p["opted_out"] and i not in reopt
        undated = undated and (i % 40 == 3 or (i % 3 == 0 and p["unsubscribed_at"] is not None))
        datafields.append((code, "OPTIN", value, None if undated else _directo_date(optin_at)))
        datafields.append((code, "KEEL", names.LANGUAGES[country], None))
        datafields.append((code, "SYNNIPAEV", p["birth_date"].strftime("%d.%m.%Y"), None))
        if rng.random() < 0.3:
            datafields.append((code, "LEMMIKPOOD", names.CITIES[country][people["city"][i]], None))
        if people["shares_email"][i]:
            second = str(SECOND_CUSTOMER_CODES + i)  # never one of the primary codes (10000 + person)
            company = f"{p['last_name']} OÜ" if country == "EE" else f"{p['last_name']} BV"
            customers.append(
                _customer_row(
                    rng,
                    second,
                    company,
                    None,
                    country,
                    email.title() if rng.random() < 0.3 else email,
                    "ÄRIKLIENT",
                    int(rng.random() < 0.3),
                    changed,
                    people["city"][i],
                )
            )
            datafields.append((second, "OPTIN", "yes", _directo_date(optin_at)))
    customer_table = pa.Table.from_pylist(customers)
    datafield_table = pa.table(
        {
            "customer_code": [d[0] for d in datafields],
            "datafield_code": [d[1] for d in datafields],
            "content": [d[2] for d in datafields],
            "param": [d[3] for d in datafields],
        }
    )
    return customer_table, datafield_table


def _directo_date(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%d.%m.%Y")


def _customer_row(rng, code, name, contact, country, email, klass, closed, changed_ts, city_index):
    city = names.CITIES[country][city_index]
    street = ("Pikk", "Kalamaja", "Hoofdstraat", "Kerkstraat", "Stationsstraat")[int(rng.integers(5))]
    return {
        "code": code,
        "name": name,
        "contact": contact,
        "country": country,
        "county": names.EE_COUNTIES[city_index] if country == "EE" else None,
        "address1": f"{street} {int(rng.integers(1, 200))}",
        "address2": city,
        "address3": f"{int(rng.integers(10000, 99999))}",
        "phone": f"+{COUNTRY_CALLING_CODES[country]} {int(rng.integers(10**6, 10**7))}",
        "email": email,
        "regno": None if contact else f"{int(rng.integers(10**7, 10**8))}",
        "loyaltycard": f"LC{int(rng.integers(10**5, 10**6))}" if rng.random() < 0.4 else None,
        "vatregno": None if contact else f"{country}{int(rng.integers(10**8, 10**9))}",
        "class": klass,
        "comment": "Püsiklient & <VIP>" if klass == "VIP" else None,
        "payterm": "14P",
        "vatregion": 0 if country == "EE" else 1,
        "priceformula": "JAE" if contact else "HULGI",
        "specialpriceformula": None,
        "balance": f"{rng.uniform(-50, 500):.2f}",
        "creditlimit": "0.00" if contact else "5000.00",
        "creditbalance": f"{rng.uniform(0, 100):.2f}",
        "deliveryinvoice": 1,
        "salesman": ("MARI", "TÕNU", "JAN")[int(rng.integers(3))],
        "currency": "EUR",
        "discount": f"{(0, 0, 5, 10)[int(rng.integers(4))]:.1f}",
        "closed": closed,
        "ts": dt.datetime.fromtimestamp(changed_ts, dt.UTC),
    }


def _form_results(rng, spec, people, state) -> pa.Table:
    rows = []
    result_id = 5_000
    joined = np.flatnonzero((people["joined"] >= spec.start_ts) & (people["joined"] < spec.end_ts))
    for i in joined.tolist():
        result_id += 1
        rows.append((101, result_id, i, int(people["joined"][i]) - 30, True, None))
    unsubscribed = np.flatnonzero(state.unsubscribed_at < spec.end_ts)
    for i in unsubscribed.tolist():
        result_id += 1
        rows.append((102, result_id, i, int(state.unsubscribed_at[i]), True, None))
    surveyed = np.flatnonzero(rng.random(spec.people) < 0.03)
    for i in surveyed.tolist():
        result_id += 1
        at = spec.start_ts + int(rng.integers(0, spec.days * DAY))
        answers = [int(rng.integers(len(q[3]))) for q in names.SURVEY_QUESTIONS]
        completed = bool(rng.random() < 0.85)
        rows.append((103, result_id, i, at, completed, answers if completed else answers[:1]))
    rows.sort(key=lambda r: r[3])
    return pa.table(
        {
            "form_id": pa.array([r[0] for r in rows], pa.int64()),
            "form_result_id": pa.array([r[1] for r in rows], pa.int64()),
            "person_id": pa.array([r[2] for r in rows], pa.int64()),
            "submitted_at": _ts(np.array([r[3] for r in rows], "int64")),
            "completed": pa.array([r[4] for r in rows], pa.bool_()),
            "answer_indexes": pa.array([r[5] for r in rows], pa.list_(pa.int64())),
        }
    )
