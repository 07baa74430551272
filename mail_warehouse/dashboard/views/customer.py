"""The customer card: one contact by e-mail address. Consent with its source and date, whether we may mail them
(and why not), engagement, their ids in each system, every mailing they got and what they (or a machine) did
with it, the forms they sent, the segments they are in now and the exports that sent them.

A person's data on screen: the card shows what a marketer needs to answer "why did (or didn't) this person get
our mail", no more (no names, no Directo fields), and the address is never logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from mail_warehouse.consent_guard import normalized_email
from mail_warehouse.dashboard.data import Published
from mail_warehouse.dashboard.views.common import (
    Column,
    metrics,
    name_of,
    num,
    platform_name,
    say,
    show_query,
    table,
    text,
    when,
    yes_no,
)
from mail_warehouse.dashboard.views.contacts import (
    consent_source_name,
    engagement_name,
    engagement_window_days,
    not_mailable_name,
)
from mail_warehouse.dashboard.views.mailings import mailing_type_name
from mail_warehouse.dashboard.views.segments import segment_docs, target_kind_name

ADDRESS = normalized_email("$email")
ROW_HEIGHT = 35  # st.dataframe's

CONTACT = f"""
select *
from marts.contacts
where email = {ADDRESS}"""

MAILINGS = f"""
select
    m.mailing_name,
    m.source_system,
    m.mailing_type,
    m.campaign_name,
    h.sent_at,
    h.was_opened,
    h.was_clicked,
    h.was_machine_opened,
    h.first_opened_at,
    h.bounce,
    h.was_unsubscribed,
    h.has_complained
from marts.contact_mail_history as h
inner join marts.mailings as m using (mailing_key)
where h.email = {ADDRESS}
order by h.sent_at desc, m.mailing_name"""

FORMS = f"""
select form_name, form_sub_type, is_completed, submitted_at
from marts.contact_forms
where email = {ADDRESS}
order by submitted_at desc"""

EXPORTS = f"""
select segment, target_kind, target, delivery_status, sent_at
from marts.contact_segment_sends
where email = {ADDRESS}
order by sent_at desc"""

SEGMENT_TABLES = """
select table_name
from information_schema.columns
where table_schema = 'segments' and column_name = 'email'
order by table_name"""


def customer_card(db: Published) -> None:
    st.title(say("Klantkaart", "Customer card"))
    address = address_asked()
    if not address:
        st.info(
            say(
                "Typ een e-mailadres om te zien wat we van die persoon weten: toestemming (met bron en datum), of "
                "we mogen mailen en zo niet waarom, betrokkenheid, elke mailing met geopend en geklikt (door de "
                "persoon zelf of alleen door een machine), formulieren, segmenten en exports. Hoofdletters en "
                "spaties maken niet uit.",
                "Type an e-mail address to see what we know of that person: consent (with its source and date), "
                "whether we may mail them and if not why, engagement, every mailing with opened and clicked (by the "
                "person or only by a machine), forms, segments and exports. Capitals and spaces do not matter.",
            )
        )
        metrics(
            [
                (
                    say("Contacten", "Contacts"),
                    num(db.value("select count(*) from marts.contacts")),
                    say("adressen die de klantkaart kent", "addresses the customer card knows"),
                )
            ]
        )
        return
    params = {"email": address}
    found = db.frame(CONTACT, params)
    if found.empty:
        st.warning(
            say(
                "Geen contact met dit adres. Controleer de spelling: de klantkaart zoekt het hele adres "
                "(hoofdletters en spaties maken niet uit).",
                "No contact with this address. Check the spelling: the card looks up the whole address (capitals "
                "and spaces do not matter).",
            )
        )
        return
    contact = found.iloc[0]
    days = engagement_window_days(db)
    status(contact, days)
    show_query(CONTACT, params)
    identifiers(contact)
    mailings(db, params)
    forms(db, params)
    segments(db, params)
    exports(db, params)


def address_asked() -> str:
    """The address in the box, which follows the page's `?email=` (a link from another page) and writes it."""
    asked = st.query_params.get("email", "")
    if st.session_state.get("_card_address_asked") != asked:  # arrived by a link: the box takes its address
        st.session_state["card_address"] = asked
        st.session_state["_card_address_asked"] = asked
    typed = st.text_input(
        say("E-mailadres", "E-mail address"),
        key="card_address",
        placeholder=say("naam@voorbeeld.nl", "name@example.com"),
    ).strip()
    if typed != asked:
        st.session_state["_card_address_asked"] = typed
        if typed:
            st.query_params["email"] = typed
        else:
            del st.query_params["email"]
    return typed


def status(contact: pd.Series, days: int) -> None:
    mailable = say("ja", "yes") if contact.is_mailable else short(not_mailable_name(contact.not_mailable_reason))
    metrics(
        [
            (
                say("Opt-in", "Opted in"),
                say("ja", "yes") if contact.is_opted_in else say("nee", "no"),
                say("de laatste toestemmingsverklaring die we kennen", "the latest consent statement we know"),
            ),
            (
                say("Mailbaar", "Mailable"),
                mailable,
                say("zo niet: de eerste reden die geldt", "if not: the first reason that applies"),
            ),
            (
                say("Betrokkenheid", "Engagement"),
                short(engagement_name(contact.engagement_status, days)),
                engagement_name(contact.engagement_status, days),
            ),
            (say(f"Mails ({days} dagen)", f"Mails ({days} days)"), num(contact[f"mails_last_{days}_days"]), None),
            (
                say(f"Opens ({days} dagen)", f"Opens ({days} days)"),
                num(contact[f"opens_last_{days}_days"]),
                say("door de persoon zelf", "by the person"),
            ),
            (
                say(f"Klikken ({days} dagen)", f"Clicks ({days} days)"),
                num(contact[f"clicks_last_{days}_days"]),
                say("door de persoon zelf", "by the person"),
            ),
            (
                say(f"Opens door machines ({days} dagen)", f"Machine opens ({days} days)"),
                num(contact[f"machine_opens_last_{days}_days"]),
                say(
                    "Apples privacyproxy of een scanner opende de mail; geen teken van de persoon",
                    "Apple's privacy proxy or a scanner opened the mail; no sign of the person",
                ),
            ),
        ]
    )
    facts = [
        (say("Toestemming", "Consent"), say("ja", "yes") if contact.is_opted_in else say("nee", "no")),
        (say("Toestemming: bron", "Consent: source"), consent_source_name(contact.consent_source)),
        (
            say("Toestemming: datum", "Consent: date"),
            # Directo's OPTIN is a day; unsubscribes and complaints are dated to the second
            when(contact.consent_changed_at, with_time=contact.consent_source != "directo_optin"),
        ),
        (
            say("Mailbaar", "Mailable"),
            say("ja", "yes") if contact.is_mailable else not_mailable_name(contact.not_mailable_reason),
        ),
        (say("Betrokkenheid", "Engagement"), engagement_name(contact.engagement_status, days)),
        (say("Laatst geopend (door de persoon)", "Last opened (by the person)"), when(contact.last_opened_at)),
        (say("Laatst geklikt (door de persoon)", "Last clicked (by the person)"), when(contact.last_clicked_at)),
        (say("Eerste mail", "First mail"), when(contact.first_sent_at)),
        (say("Laatste mail", "Last mail"), when(contact.last_sent_at)),
    ]
    key_values(facts)
    st.caption(
        say(
            f"Betrokkenheid en de tellingen gaan over de laatste {days} dagen tot de laatste bouw van het "
            "warehouse; tijden in Nederlandse tijd.",
            f"Engagement and the counts cover the last {days} days up to the warehouse's latest build; times in "
            "Amsterdam time.",
        )
    )


def short(words: str) -> str:
    """A headline's value: the words before their explanation in brackets."""
    return words.split(" (")[0]


def key_values(rows: Sequence[tuple[str, Any]]) -> None:
    frame = pd.DataFrame([(what, text(value)) for what, value in rows])
    table(frame.set_axis(["what", "value"], axis=1), {"what": Column(say("Wat", "What")), "value": Column(" ")})


def identifiers(contact: pd.Series) -> None:
    st.subheader(say("In de systemen", "In the systems"))
    codes = contact.directo_customer_codes
    codes = [str(code) for code in codes] if codes is not None and not isinstance(codes, float) else []
    key_values(
        [
            (say("Directo-klantcode(s)", "Directo customer code(s)"), ", ".join(codes) or None),
            (say("Gesloten in Directo", "Closed in Directo"), yes_no(contact.is_closed_in_directo)),
            (say("Clang / Deployteq: klant-id", "Clang / Deployteq: customer id"), contact.clang_customer_id),
            (say("Spotler Mail+: extern id", "Spotler Mail+: external id"), contact.spotler_external_id),
        ]
    )


def opened_by(row) -> str:
    if row.was_opened:
        return say("de persoon", "the person")
    if row.was_machine_opened:
        return say("alleen machine (Apple-privacyproxy)", "only a machine (Apple privacy proxy)")
    return "–"


def bounce_name(bounce) -> str:
    return {"hard": say("hard", "hard"), "soft": say("zacht", "soft")}.get(bounce, "–")


def mailings(db: Published, params: dict) -> None:
    frame = db.frame(MAILINGS, params)
    st.subheader(say(f"Mailings ({num(len(frame))})", f"Mailings ({num(len(frame))})"))
    if frame.empty:
        st.info(say("Dit contact kreeg nog geen mailing.", "This contact has not been sent a mailing yet."))
        return
    frame["platform"] = frame["source_system"].map(platform_name)
    frame["type"] = frame["mailing_type"].map(mailing_type_name)
    frame["opened_by"] = frame.apply(opened_by, axis=1)
    frame["bounce_name"] = frame["bounce"].map(bounce_name)
    table(
        frame,
        {
            "mailing_name": Column(say("Mailing", "Mailing")),
            "platform": Column(say("Platform", "Platform")),
            "type": Column(say("Soort", "Type")),
            "campaign_name": Column(say("Campagne", "Campaign")),
            "sent_at": Column(say("Verzonden", "Sent"), "time"),
            "was_opened": Column(say("Geopend", "Opened"), "yes_no"),
            "was_clicked": Column(say("Geklikt", "Clicked"), "yes_no"),
            "opened_by": Column(say("Geopend door", "Opened by")),
            "first_opened_at": Column(say("Eerst geopend", "First opened"), "time"),
            "bounce_name": Column(say("Bounce", "Bounce")),
            "was_unsubscribed": Column(say("Afgemeld", "Unsubscribed"), "yes_no"),
            "has_complained": Column(say("Spamklacht", "Complaint"), "yes_no"),
        },
        # every mailing in sight, up to 40 rows, without scrolling inside the table
        height=ROW_HEIGHT * (min(len(frame), 40) + 1) + 3,
    )
    st.caption(
        say(
            "Geopend en geklikt: door de persoon zelf. 'Alleen een machine': Apples privacyproxy of een scanner "
            "haalde de mail op, zonder teken dat de persoon hem las. Tijden in Nederlandse tijd.",
            "Opened and clicked: by the person. 'Only a machine': Apple's privacy proxy or a scanner fetched the "
            "mail, with no sign the person read it. Times in Amsterdam time.",
        )
    )
    show_query(MAILINGS, params)


def form_kind(kind) -> str:
    kinds = {
        "normal": say("Enquête", "Survey"),
        "subscribe": say("Aanmelden", "Subscribe"),
        "unSubscribe": say("Afmelden", "Unsubscribe"),
        "editProfile": say("Profiel wijzigen", "Edit profile"),
    }
    return name_of(kinds, kind)


def forms(db: Published, params: dict) -> None:
    st.subheader(say("Formulieren", "Forms"))
    if not db.has_table("marts", "contact_forms"):
        st.info(say("Deze kopie kent nog geen formulieren per contact.", "This copy holds no forms per contact yet."))
        return
    frame = db.frame(FORMS, params)
    if frame.empty:
        st.info(
            say(
                "Geen formulier met dit adres. Spotler zegt niet wie een formulier invulde: alleen een formulier "
                "dat om het e-mailadres vraagt (aanmelden, profiel) staat op de klantkaart.",
                "No form with this address. Spotler does not say who sent a form: only a form that asks for the "
                "e-mail address (subscribe, profile) shows on the card.",
            )
        )
        return
    frame["kind"] = frame["form_sub_type"].map(form_kind)
    table(
        frame,
        {
            "form_name": Column(say("Formulier", "Form")),
            "kind": Column(say("Soort", "Kind")),
            "is_completed": Column(say("Volledig ingevuld", "Completed"), "yes_no"),
            "submitted_at": Column(say("Verstuurd", "Sent"), "time"),
        },
    )
    show_query(FORMS, params)


def segments(db: Published, params: dict) -> None:
    st.subheader(say("Segmenten (nu)", "Segments (now)"))
    tables = list(db.frame(SEGMENT_TABLES)["table_name"])
    member_of = [
        name
        for name in tables
        if db.value(f'select count(*) from segments."{name}" where email = {ADDRESS}', params)  # names from the copy
    ]
    if not tables:
        st.info(say("Deze kopie heeft geen segmenten.", "This copy has no segments."))
    elif not member_of:
        st.info(
            say(
                f"In geen enkel segment (van de {num(len(tables))}).",
                f"In no segment (of {num(len(tables))}).",
            )
        )
    else:
        docs = segment_docs(db, member_of)
        st.markdown("\n".join(f"- {docs[name].label(name)}" for name in member_of))
    st.caption(
        say(
            "Zoals de segmenten bij de laatste bouw waren: wie er nu in zit, wordt bij de volgende export verstuurd.",
            "As the segments were at the latest build: whoever is in one now goes out with the next export.",
        )
    )


def delivery_name(status) -> str:
    statuses = {
        "uploaded": say("Geüpload", "Uploaded"),
        "done": say("Verwerkt door Deployteq", "Processed by Deployteq"),
        "triggered": say("Campagne gestart", "Campaign started"),
        "already-in-campaign": say("Zat al in de campagne", "Already in the campaign"),
        "pending": say("Nog niet bevestigd", "Not confirmed yet"),
        "calling": say("Bezig", "In progress"),
    }
    return name_of(statuses, status)


def exports(db: Published, params: dict) -> None:
    st.subheader(say("Exports", "Exports"))
    if not db.has_table("marts", "contact_segment_sends"):
        st.info(say("Deze kopie kent nog geen exports per contact.", "This copy holds no exports per contact yet."))
        return
    frame = db.frame(EXPORTS, params)
    if frame.empty:
        st.info(say("Nog nooit met een segment verstuurd.", "Never sent with a segment."))
        return
    docs = segment_docs(db, sorted(set(frame["segment"])))
    frame["segment_name"] = [docs[name].label(name) for name in frame["segment"]]
    frame["target_kind_name"] = frame["target_kind"].map(target_kind_name)
    frame["delivery"] = frame["delivery_status"].map(delivery_name)
    table(
        frame,
        {
            "segment_name": Column(say("Segment", "Segment")),
            "target_kind_name": Column(say("Naar", "To")),
            "target": Column(say("Bestand of trigger", "File or trigger")),
            "delivery": Column(say("Uitkomst", "Outcome")),
            "sent_at": Column(say("Wanneer", "When"), "time"),
        },
    )
    show_query(EXPORTS, params)
