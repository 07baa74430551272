"""Contacts: who can we mail, and why not."""

from __future__ import annotations

import altair as alt
import streamlit as st

from mail_warehouse.dashboard.data import Published, number
from mail_warehouse.dashboard.pages.common import (
    draw,
    metrics,
    show_query,
    style,
)

CONTACTS_HEADLINE = """
select
    count(*) as contacts,
    count(*) filter (where is_mailable) as mailable,
    count(*) filter (where is_opted_in) as opted_in,
    count(*) filter (where is_shared_email) as shared_addresses,
    count(*) filter (where is_hard_bounced) as hard_bounced,
    count(*) filter (where engagement_status = 'active') as active
from marts.contacts"""

ENGAGEMENT = """
select replace(engagement_status, '_', ' ') as engagement_status, count(*) as contacts
from marts.contacts
group by all
order by contacts desc"""

NOT_MAILABLE = """
select replace(not_mailable_reason, '_', ' ') as reason, count(*) as contacts
from marts.contacts
where not is_mailable
group by all
order by contacts desc"""

GROWTH = """
with first_mails as (
    select date_trunc('month', first_sent_at) as month, count(*) as new_contacts
    from marts.contacts
    where first_sent_at is not null
    group by all
)
select month, new_contacts, sum(new_contacts) over (order by month) as contacts_mailed
from first_mails
order by month"""

BOUNCES = """
select date_trunc('month', sent_at) as month, sum(hard_bounce_count) as hard, sum(soft_bounce_count) as soft
from marts.mailing_statistics
group by all
order by month"""

SHARED = """
select email, directo_customer_count as customers, directo_customer_codes as customer_codes, is_mailable
from marts.contacts
where is_shared_email
order by directo_customer_count desc, email
limit 200"""


def contacts(db: Published) -> None:
    st.title("Who can we mail?")
    if "is_mailable" not in db.columns("marts", "contacts"):
        st.warning(
            "This copy was published before contacts said who is mailable: run `warehouse build` and "
            "`warehouse publish` again."
        )
        return
    headline = db.frame(CONTACTS_HEADLINE).iloc[0]
    metrics(
        [
            ("Contacts", number(headline.contacts, style=style()), "unique normalised e-mail addresses"),
            (
                "Mailable",
                number(headline.mailable, style=style()),
                "opted in and not hard-bounced, complained, unsubscribed, closed or deleted in Directo",
            ),
            ("Opted in", number(headline.opted_in, style=style()), None),
            ("Active", number(headline.active, style=style()), "opened or clicked in the engagement window"),
            ("Hard bounced", number(headline.hard_bounced, style=style()), None),
            (
                "Shared addresses",
                number(headline.shared_addresses, style=style()),
                "addresses several Directo customers share",
            ),
        ]
    )
    show_query(CONTACTS_HEADLINE)

    left, right = st.columns(2)
    with left:
        st.subheader("Engagement")
        engagement = db.frame(ENGAGEMENT)
        draw(
            st,
            alt.Chart(engagement)
            .mark_bar()
            .encode(
                x=alt.X("contacts:Q", title="Contacts"),
                y=alt.Y("engagement_status:N", sort="-x", title=None),
                tooltip=["engagement_status", "contacts"],
            )
            .properties(height=200),
        )
        show_query(ENGAGEMENT)
    with right:
        st.subheader("Why not mailable")
        reasons = db.frame(NOT_MAILABLE)
        draw(
            st,
            alt.Chart(reasons)
            .mark_bar(color="#c44e52")
            .encode(
                x=alt.X("contacts:Q", title="Contacts"),
                y=alt.Y("reason:N", sort="-x", title=None),
                tooltip=["reason", "contacts"],
            )
            .properties(height=200),
        )
        st.caption(
            "The first reason that applies, in this order: hard bounced, complained, unsubscribed, "
            "closed in Directo, deleted in Directo, not opted in."
        )
        show_query(NOT_MAILABLE)

    left, right = st.columns(2)
    with left:
        st.subheader("Growth: contacts mailed")
        growth = db.frame(GROWTH)
        bars = (
            alt.Chart(growth)
            .mark_bar(opacity=0.5)
            .encode(
                x=alt.X("yearmonth(month):T", title="Month of the first mail"), y=alt.Y("new_contacts:Q", title="New")
            )
        )
        line = (
            alt.Chart(growth)
            .mark_line(point=True)
            .encode(x="yearmonth(month):T", y=alt.Y("contacts_mailed:Q", title="Mailed so far"))
        )
        draw(st, alt.layer(bars, line).resolve_scale(y="independent").properties(height=240))
        show_query(GROWTH)
    with right:
        st.subheader("Bounces per month")
        bounces = db.frame(BOUNCES).melt(id_vars=["month"], var_name="bounce", value_name="count")
        draw(
            st,
            alt.Chart(bounces)
            .mark_bar()
            .encode(
                x=alt.X("yearmonth(month):T", title="Month sent"),
                y=alt.Y("count:Q", title="Bounces"),
                color=alt.Color("bounce:N", title=None),
            )
            .properties(height=240),
        )
        show_query(BOUNCES)

    st.subheader("Shared addresses")
    st.dataframe(db.frame(SHARED), hide_index=True)
    show_query(SHARED)
