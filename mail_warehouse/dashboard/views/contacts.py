"""Contacts: who can we mail and why not, how the list grows, how each mailbox provider takes our mail, and
a search box that opens one contact's card.

Also what the customer card shares: the words for consent sources, reasons not to mail and engagement, and
the engagement window as the published copy counts it.
"""

from __future__ import annotations

import re

import altair as alt
import pandas as pd
import streamlit as st

from mail_warehouse.dashboard.data import Published
from mail_warehouse.dashboard.views.common import (
    COLOURS,
    LOCAL_TIME_ZONE,
    MONTH_FORMAT,
    RATE_AXIS,
    Column,
    draw,
    metrics,
    name_of,
    num,
    say,
    show_query,
    table,
)
from mail_warehouse.dashboard.views.mailings import TEXT_MESSAGE_TYPES

# --- words a marketer uses ---------------------------------------------------------------------------------


def engagement_name(status, days: int) -> str:
    names = {
        "active": say(
            f"Actief (opende of klikte in de laatste {days} dagen)",
            f"Active (opened or clicked in the last {days} days)",
        ),
        "dormant": say(
            f"Slapend (eerder actief, niet in de laatste {days} dagen)",
            f"Dormant (engaged before, not in the last {days} days)",
        ),
        "new": say(
            "Nieuw (eerste mail minder dan 30 dagen geleden, of nog niet gemaild)",
            "New (first mail less than 30 days ago, or not mailed yet)",
        ),
        "never_engaged": say("Nooit geopend of geklikt", "Never opened or clicked"),
    }
    return name_of(names, status)


def not_mailable_name(reason) -> str:
    names = {
        "hard_bounced": say("Hard gebounced (adres bestaat niet)", "Hard bounced (the address does not exist)"),
        "complained": say("Klacht: als spam gemeld", "Complained: reported as spam"),
        "unsubscribed": say("Afgemeld", "Unsubscribed"),
        "closed_in_directo": say("Gesloten in Directo", "Closed in Directo"),
        "deleted_in_directo": say("Verwijderd uit Directo", "Deleted from Directo"),
        "not_opted_in": say("Geen opt-in", "No opt-in"),
    }
    return name_of(names, reason)


def consent_source_name(source) -> str:
    names = {
        "directo_optin": say("Directo (veld OPTIN)", "Directo (the OPTIN field)"),
        "clang_unsubscribe": say("Afgemeld via Clang / Deployteq", "Unsubscribed via Clang / Deployteq"),
        "spotler_unsubscribe": say("Afgemeld via Spotler Mail+", "Unsubscribed via Spotler Mail+"),
        "clang_complaint": say("Spamklacht via Clang / Deployteq", "Spam complaint via Clang / Deployteq"),
        "spotler_complaint": say("Spamklacht via Spotler Mail+", "Spam complaint via Spotler Mail+"),
        "spotler_email_channel": say("E-mailkanaal uitgezet in Spotler Mail+", "E-mail channel off in Spotler Mail+"),
        "implied_by_mailing": say(
            "Afgeleid: gemaild door een platform (geen Directo)", "Implied: mailed by a platform (no Directo)"
        ),
    }
    if source is None or pd.isna(source):
        return say("Geen toestemming bekend", "No consent known")
    return names.get(source, str(source))


def engagement_window_days(db: Published) -> int:
    """The engagement window, in days, the published contacts were counted with: marts.contacts names its
    columns after it (opens_last_90_days), so the words say what the numbers count."""
    found = [re.fullmatch(r"opens_last_(\d+)_days", column) for column in db.columns("marts", "contacts")]
    return next(int(match.group(1)) for match in found if match)


# --- mailbox providers -------------------------------------------------------------------------------------

# An address's domain, and the mailbox provider behind it (Dutch and Belgian providers' own domains included).
MAILBOX_PROVIDERS = {
    "Gmail": ("gmail.com", "googlemail.com"),
    "Outlook / Hotmail": (
        "outlook.com",
        "outlook.nl",
        "outlook.be",
        "hotmail.com",
        "hotmail.nl",
        "hotmail.be",
        "live.com",
        "live.nl",
        "live.be",
        "msn.com",
    ),
    "Ziggo": ("ziggo.nl", "home.nl", "upcmail.nl", "chello.nl", "casema.nl", "quicknet.nl", "zeelandnet.nl"),
    "KPN": ("kpnmail.nl", "kpnplanet.nl", "planet.nl", "hetnet.nl", "xs4all.nl", "telfort.nl", "kpn.com"),
    "Telenet": ("telenet.be",),
    "Proximus": ("skynet.be", "proximus.be"),
    "iCloud": ("icloud.com", "me.com", "mac.com"),
    "Yahoo": ("yahoo.com", "yahoo.nl", "yahoo.co.uk", "ymail.com", "rocketmail.com"),
}
# a domain of no known provider is shown by its own name when it receives this share of the mail, else
# grouped with the other small domains
OWN_ROW_SHARE = 0.02
OTHERS = "others"


def provider_values() -> str:
    """The provider mapping as a SQL relation (domain, provider)."""
    rows = [f"('{domain}', '{name}')" for name, domains in MAILBOX_PROVIDERS.items() for domain in domains]
    return f"(values {', '.join(rows)}) as p(domain, provider)"


PROVIDERS = f"""
with mails as (
    select h.*, lower(split_part(h.email, '@', 2)) as domain
    from marts.contact_mail_history as h
    inner join marts.mailings as m using (mailing_key)
    where m.mailing_type not in ({", ".join(f"'{t}'" for t in TEXT_MESSAGE_TYPES)}) and h.sent_at is not null
),
per_domain as (
    select
        coalesce(p.provider, mails.domain) as provider,
        p.provider is not null as is_known,
        count(*) as sent,
        count(*) filter (where bounce <> 'none') as bounced,
        count(*) filter (where bounce = 'hard') as hard_bounced,
        count(*) filter (where has_complained) as complaints,
        count(*) filter (where was_opened and bounce = 'none') as human_opens
    from mails
    left join {provider_values()} using (domain)
    group by all
),
grouped as (
    select
        case when is_known or sent >= {OWN_ROW_SHARE} * sum(sent) over () then provider else '{OTHERS}' end
            as provider,
        sent, bounced, hard_bounced, complaints, human_opens
    from per_domain
)
select
    provider,
    sum(sent) as sent,
    sum(sent) - sum(bounced) as delivered,
    (sum(sent) - sum(bounced)) / sum(sent) as delivery_rate,
    sum(bounced) / sum(sent) as bounce_rate,
    sum(hard_bounced) / sum(sent) as hard_bounce_rate,
    sum(complaints) / nullif(sum(sent) - sum(bounced), 0) as complaint_rate,
    sum(human_opens) / nullif(sum(sent) - sum(bounced), 0) as human_open_rate
from grouped
group by provider
order by provider = '{OTHERS}', sent desc"""

# --- the queries ---------------------------------------------------------------------------------------------

CONTACTS_HEADLINE = """
select
    count(*) as contacts,
    count(*) filter (where is_mailable) as mailable,
    count(*) filter (where is_opted_in) as opted_in,
    count(*) filter (where engagement_status = 'active') as active,
    count(*) filter (where is_hard_bounced) as hard_bounced,
    count(*) filter (where is_shared_email) as shared_addresses
from marts.contacts"""

ENGAGEMENT = """
select engagement_status, count(*) as contacts
from marts.contacts
group by all
order by contacts desc"""

NOT_MAILABLE = """
select not_mailable_reason, count(*) as contacts
from marts.contacts
where not is_mailable
group by all
order by contacts desc"""

# The month as a reader in Amsterdam names it. Opt-ins: the contacts opted in today, in the month of that
# opt-in (Directo keeps only a customer's latest OPTIN date). Opt-outs: every address's unsubscribes and
# complaints as they happened (a person once a month at most).
MONTH_OF = f"date_trunc('month', timezone('{LOCAL_TIME_ZONE.key}', {{}}))"
LIST_GROWTH = f"""
with opt_ins as (
    select {MONTH_OF.format("consent_changed_at")} as month, count(*) as opt_ins
    from marts.contacts
    where is_opted_in and consent_changed_at is not null
    group by all
),
opt_outs as (
    select {MONTH_OF.format("event_at")} as month, count(distinct email) as opt_outs
    from marts.customer_activity
    where event_type in ('unsubscribe', 'complaint') and email is not null
    group by all
),
months as (
    select month, coalesce(i.opt_ins, 0) as opt_ins, coalesce(o.opt_outs, 0) as opt_outs
    from opt_ins as i
    full outer join opt_outs as o using (month)
)
select month, opt_ins, opt_outs, opt_ins - opt_outs as net_growth
from months
where month > (select max(month) from months) - interval 12 month
order by month"""

BOUNCE_RATES = f"""
select
    {MONTH_OF.format("sent_at")} as month,
    sum(sent_count) as sent,
    sum(hard_bounce_count) / nullif(sum(sent_count), 0) as hard_bounce_rate,
    sum(soft_bounce_count) / nullif(sum(sent_count), 0) as soft_bounce_rate
from marts.mailing_statistics
where mailing_type not in ({", ".join(f"'{t}'" for t in TEXT_MESSAGE_TYPES)})
group by all
order by month"""

SHARED = """
select email, directo_customer_count, array_to_string(directo_customer_codes, ', ') as customer_codes, is_mailable
from marts.contacts
where is_shared_email
order by directo_customer_count desc, email
limit 200"""


def contacts(db: Published) -> None:
    st.title(say("Wie kunnen we mailen?", "Who can we mail?"))
    if "is_mailable" not in db.columns("marts", "contacts"):
        st.warning(
            say(
                "Deze kopie is gepubliceerd voordat contacten zeiden wie mailbaar is: draai `warehouse build` en "
                "`warehouse publish` opnieuw.",
                "This copy was published before contacts said who is mailable: run `warehouse build` and "
                "`warehouse publish` again.",
            )
        )
        return
    days = engagement_window_days(db)
    search_box()
    headline(db, days)

    left, right = st.columns(2)
    with left:
        engagement(db, days)
    with right:
        not_mailable(db)

    list_growth(db)
    providers(db)
    left, right = st.columns(2)
    with left:
        bounces(db)
    with right:
        shared_addresses(db)


def search_box() -> None:
    with st.form("find_contact", border=False):
        typed, go = st.columns([4, 1], vertical_alignment="bottom")
        address = typed.text_input(
            say("Zoek een contact", "Find a contact"),
            placeholder=say("e-mailadres, bijvoorbeeld naam@voorbeeld.nl", "e-mail address, e.g. name@example.com"),
        )
        found = go.form_submit_button(say("Open klantkaart", "Open customer card"))
    if found and address.strip():
        st.switch_page(st.Page(the_customer_card, url_path="contact"), query_params={"email": address.strip()})


def the_customer_card() -> None:  # only its url path matters: st.switch_page goes to the page registered there
    return None


def headline(db: Published, days: int) -> None:
    values = db.frame(CONTACTS_HEADLINE).iloc[0]
    metrics(
        [
            (
                say("Contacten", "Contacts"),
                num(values.contacts),
                say("unieke e-mailadressen", "unique e-mail addresses"),
            ),
            (
                say("Mailbaar", "Mailable"),
                num(values.mailable),
                say(
                    "opt-in, en niet hard gebounced, geen spamklacht, niet afgemeld, niet gesloten of verwijderd "
                    "in Directo",
                    "opted in, and not hard bounced, complained, unsubscribed, closed or deleted in Directo",
                ),
            ),
            (say("Opt-in", "Opted in"), num(values.opted_in), say("toestemming om te mailen", "consent to be mailed")),
            (
                say(f"Actief ({days} dagen)", f"Active ({days} days)"),
                num(values.active),
                say(
                    f"opende of klikte zelf in de laatste {days} dagen (opens door machines tellen niet)",
                    f"opened or clicked themselves in the last {days} days (machines' opens do not count)",
                ),
            ),
            (say("Hard gebounced", "Hard bounced"), num(values.hard_bounced), None),
            (
                say("Gedeelde adressen", "Shared addresses"),
                num(values.shared_addresses),
                say("adressen die meerdere Directo-klanten delen", "addresses several Directo customers share"),
            ),
        ]
    )
    show_query(CONTACTS_HEADLINE)


def contacts_per_label(frame, label: str, label_title: str, colour: str) -> alt.Chart:
    """Contacts per label (a status, a reason) as horizontal bars, the largest on top."""
    return (
        alt.Chart(frame)
        .mark_bar(color=colour)
        .encode(
            x=alt.X("contacts:Q", title=say("Contacten", "Contacts")),
            y=alt.Y(f"{label}:N", sort="-x", title=None, axis=alt.Axis(labelLimit=360)),
            tooltip=[
                alt.Tooltip(f"{label}:N", title=label_title),
                alt.Tooltip("contacts:Q", title=say("Contacten", "Contacts"), format=",d"),
            ],
        )
        .properties(height=200)
    )


def engagement(db: Published, days: int) -> None:
    st.subheader(say(f"Betrokkenheid (laatste {days} dagen)", f"Engagement (last {days} days)"))
    frame = db.frame(ENGAGEMENT)
    frame["status"] = frame["engagement_status"].map(lambda status: engagement_name(status, days))
    draw(st, contacts_per_label(frame, "status", say("Status", "Status"), COLOURS["human open"]))
    st.caption(
        say(
            f"Betrokkenheid telt wat een persoon zelf deed in de laatste {days} dagen: opens door Apples "
            "privacyproxy en klikken door linkscanners tellen niet mee.",
            f"Engagement counts what a person did themselves in the last {days} days: opens by Apple's privacy "
            "proxy and clicks by link scanners do not count.",
        )
    )
    show_query(ENGAGEMENT)


def not_mailable(db: Published) -> None:
    st.subheader(say("Waarom niet mailbaar", "Why not mailable"))
    frame = db.frame(NOT_MAILABLE)
    frame["reason"] = frame["not_mailable_reason"].map(not_mailable_name)
    draw(st, contacts_per_label(frame, "reason", say("Reden", "Reason"), COLOURS["bounce"]))
    st.caption(
        say(
            "De eerste reden die geldt, in deze volgorde: hard gebounced, spamklacht, afgemeld, gesloten in "
            "Directo, verwijderd uit Directo, geen opt-in.",
            "The first reason that applies, in this order: hard bounced, complained, unsubscribed, closed in "
            "Directo, deleted from Directo, no opt-in.",
        )
    )
    show_query(NOT_MAILABLE)


def list_growth(db: Published) -> None:
    st.subheader(say("Groei van de lijst per maand", "List growth per month"))
    frame = db.frame(LIST_GROWTH)
    if frame.empty:
        st.info(say("Nog geen aan- of afmeldingen.", "No opt-ins or opt-outs yet."))
        return
    frame["month"] = pd.to_datetime(frame["month"])
    bars = frame.melt(id_vars=["month"], value_vars=["opt_ins", "opt_outs"], var_name="kind", value_name="contacts")
    names = {"opt_ins": say("Aanmeldingen", "Opt-ins"), "opt_outs": say("Afmeldingen", "Opt-outs")}
    bars["signed"] = bars.apply(lambda row: row.contacts if row.kind == "opt_ins" else -row.contacts, axis=1)
    bars["kind"] = bars["kind"].map(names)
    month_axis = alt.X("month:T", title=None, axis=alt.Axis(format=MONTH_FORMAT), timeUnit="yearmonth")
    counts = (
        alt.Chart(bars)
        .mark_bar(opacity=0.8)
        .encode(
            x=month_axis,
            y=alt.Y("signed:Q", title=say("Contacten", "Contacts")),
            color=alt.Color(
                "kind:N",
                title=None,
                scale=alt.Scale(domain=list(names.values()), range=[COLOURS["human open"], COLOURS["unsubscribe"]]),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                alt.Tooltip("month:T", title=say("Maand", "Month"), format=MONTH_FORMAT),
                alt.Tooltip("kind:N", title=" "),
                alt.Tooltip("contacts:Q", title=say("Contacten", "Contacts"), format=",d"),
            ],
        )
    )
    net = (
        alt.Chart(frame.assign(label=say("Netto groei", "Net growth")))
        .mark_line(point=True, color="#222222")
        .encode(
            x=month_axis,
            y="net_growth:Q",
            tooltip=[
                alt.Tooltip("month:T", title=say("Maand", "Month"), format=MONTH_FORMAT),
                alt.Tooltip("net_growth:Q", title=say("Netto groei", "Net growth"), format=",d"),
            ],
        )
    )
    chart, numbers = st.columns([1, 1])
    draw(chart, alt.layer(counts, net).properties(height=300))
    with numbers:
        table(
            frame.sort_values("month", ascending=False).assign(month_name=frame["month"].map(month_name)),
            {
                "month_name": Column(say("Maand", "Month")),
                "opt_ins": Column(say("Aanmeldingen", "Opt-ins"), "count"),
                "opt_outs": Column(say("Afmeldingen", "Opt-outs"), "count"),
                "net_growth": Column(say("Netto groei", "Net growth"), "count"),
            },
            height=300,
        )
    st.caption(
        say(
            "Aanmeldingen: contacten met nu een opt-in, in de maand van die opt-in (de OPTIN-datum in Directo; "
            "Directo bewaart alleen de laatste, dus wie zich later afmeldde telt hier niet meer). Afmeldingen: "
            "afmeldingen en spamklachten op beide platforms, in de maand waarin ze gebeurden (een adres één keer "
            "per maand). Netto groei = aanmeldingen − afmeldingen. De laatste 12 maanden, in Nederlandse tijd.",
            "Opt-ins: contacts opted in today, in the month of that opt-in (Directo's OPTIN date; Directo keeps "
            "only the latest, so whoever unsubscribed later no longer counts here). Opt-outs: unsubscribes and "
            "spam complaints on either platform, in the month they happened (an address once a month). Net "
            "growth = opt-ins − opt-outs. The last 12 months, in Amsterdam time.",
        )
    )
    show_query(LIST_GROWTH)


def month_name(month) -> str:
    names = (
        say("januari", "January"),
        say("februari", "February"),
        say("maart", "March"),
        say("april", "April"),
        say("mei", "May"),
        say("juni", "June"),
        say("juli", "July"),
        say("augustus", "August"),
        say("september", "September"),
        say("oktober", "October"),
        say("november", "November"),
        say("december", "December"),
    )
    return f"{names[month.month - 1]} {month.year}"


def providers(db: Published) -> None:
    st.subheader(say("Bezorging per mailprovider", "Deliverability per mailbox provider"))
    frame = db.frame(PROVIDERS)
    frame["provider"] = frame["provider"].map(lambda p: say("Overige", "Others") if p == OTHERS else p)
    table(
        frame,
        {
            "provider": Column(say("Provider", "Provider")),
            "sent": Column(say("Verzonden", "Sent"), "count"),
            "delivery_rate": Column(say("Afgeleverd", "Delivered"), "percent"),
            "bounce_rate": Column(say("Bounces", "Bounces"), "percent"),
            "complaint_rate": Column(say("Spamklachten", "Complaints"), "percent2"),
            "human_open_rate": Column(say("Geopend door mensen", "Opened by people"), "percent"),
        },
    )
    st.caption(
        say(
            "De provider volgt uit het domein van het adres (gmail.com → Gmail, hotmail.nl → Outlook / Hotmail, "
            "kpnmail.nl → KPN, ...); een ander domein met minstens "
            f"{OWN_ROW_SHARE:.0%} van de mail staat er met zijn eigen naam, de rest onder Overige. Afgeleverd en "
            "bounces: van de verzonden mails; spamklachten en geopend door mensen: van de afgeleverde (opens door "
            "Apples privacyproxy tellen niet). E-mail, geen sms.",
            "The provider follows from the address's domain (gmail.com → Gmail, hotmail.nl → Outlook / Hotmail, "
            f"kpnmail.nl → KPN, ...); another domain with at least {OWN_ROW_SHARE:.0%} of the mail is shown by "
            "its own name, the rest under Others. Delivered and bounces: of the mails sent; complaints and opened "
            "by people: of those delivered (opens by Apple's privacy proxy do not count). E-mail, not text messages.",
        )
    )
    show_query(PROVIDERS)


def bounces(db: Published) -> None:
    st.subheader(say("Bounces per maand", "Bounces per month"))
    frame = db.frame(BOUNCE_RATES)
    if frame.empty:
        st.info(say("Nog geen mailings verzonden.", "No mailings sent yet."))
        return
    frame["month"] = pd.to_datetime(frame["month"])
    names = {"hard_bounce_rate": say("Hard", "Hard"), "soft_bounce_rate": say("Zacht", "Soft")}
    rates = frame.melt(id_vars=["month", "sent"], value_vars=list(names), var_name="kind", value_name="rate")
    rates["kind"] = rates["kind"].map(names)
    draw(
        st,
        alt.Chart(rates)
        .mark_bar()
        .encode(
            x=alt.X("month:T", title=None, timeUnit="yearmonth", axis=alt.Axis(format=MONTH_FORMAT)),
            xOffset="kind:N",
            y=alt.Y("rate:Q", axis=RATE_AXIS),
            color=alt.Color(
                "kind:N",
                title=None,
                scale=alt.Scale(domain=list(names.values()), range=[COLOURS["bounce"], "#f4a6a5"]),
                legend=alt.Legend(orient="top"),
            ),
            tooltip=[
                alt.Tooltip("month:T", title=say("Maand", "Month"), format=MONTH_FORMAT),
                alt.Tooltip("kind:N", title=" "),
                alt.Tooltip("rate:Q", title=say("Van de verzonden", "Of those sent"), format=".2%"),
                alt.Tooltip("sent:Q", title=say("Verzonden", "Sent"), format=",d"),
            ],
        )
        .properties(height=260),
    )
    st.caption(
        say(
            "Bounces als aandeel van de verzonden mails, per maand van verzending (Nederlandse tijd).",
            "Bounces as a share of the mails sent, per month sent (Amsterdam time).",
        )
    )
    show_query(BOUNCE_RATES)


def shared_addresses(db: Published) -> None:
    st.subheader(say("Gedeelde adressen", "Shared addresses"))
    st.caption(
        say(
            "Adressen die meerdere Directo-klanten delen (een gezin, een bedrijf): één contact, één keer gemaild.",
            "Addresses several Directo customers share (a family, a company): one contact, mailed once.",
        )
    )
    table(
        db.frame(SHARED),
        {
            "email": Column(say("E-mailadres", "E-mail address")),
            "directo_customer_count": Column(say("Klanten", "Customers"), "count"),
            "customer_codes": Column(say("Klantcodes in Directo", "Customer codes in Directo")),
            "is_mailable": Column(say("Mailbaar", "Mailable"), "yes_no"),
        },
    )
    show_query(SHARED)
