"""One mailing: how did this mailing do, its money, its response curve and its links."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from mail_warehouse.dashboard.data import Published
from mail_warehouse.dashboard.views.common import (
    COLOURS,
    LABEL_LIMIT,
    Column,
    age,
    draw,
    euros,
    hours_since,
    link_to_page,
    metrics,
    num,
    pct,
    platform_name,
    say,
    show_query,
    table,
    when,
)
from mail_warehouse.dashboard.views.mailings import machines_line, mailing_type_name

CHOICES = """
select s.mailing_key, s.mailing_name, s.source_system, s.sent_at, m.campaign_name,
       coalesce(m.is_campaign_mailing, false) as is_flow_step
from marts.mailing_statistics as s
left join marts.mailings as m using (mailing_key)
where s.sent_count > 0
order by s.sent_at desc, s.mailing_key"""

ONE_MAILING = "select * from marts.mailing_statistics where mailing_key = $mailing_key"

RESPONSE_CURVE = """
with first_responses as (
    select 'opens' as response,
           ceil(date_diff('second', sent_at, first_opened_at) / 3600.0) as hour
    from marts.contact_mail_history
    where mailing_key = $mailing_key and first_opened_at is not null
    union all
    select 'clicks', ceil(date_diff('second', sent_at, first_clicked_at) / 3600.0)
    from marts.contact_mail_history
    where mailing_key = $mailing_key and first_clicked_at is not null
),
per_hour as (
    select response, greatest(hour, 0) as hour, count(*) as responses from first_responses group by all
)
select response, hour, sum(responses) over (partition by response order by hour) as cumulative
from per_hour
order by response, hour"""

SNAPSHOTS = """
select hours_since_send as hour, open_count as opens, click_count as clicks, fetched_at
from marts.mailing_statistics_snapshots
where mailing_key = $mailing_key
order by fetched_at"""

LINKS = """
select coalesce(link_name, url) as link, url, link_type, unique_human_click_count, unique_click_count,
       total_click_count
from marts.mailing_link_clicks
where mailing_key = $mailing_key
order by unique_human_click_count desc, unique_click_count desc, total_click_count desc"""


def one_mailing(db: Published) -> None:
    st.title(say("Hoe deed deze mailing het?", "How did this mailing do?"))
    choices = db.frame(CHOICES)
    if choices.empty:
        st.info(say("Nog geen verzonden mailing in de gepubliceerde kopie.", "No mailing with sends in the copy yet."))
        return
    labels = {  # mailing_key is a varchar that is never null
        str(row.mailing_key): f"{row.mailing_name} · {platform_name(row.source_system)} · {when(row.sent_at, False)}"
        for row in choices.itertuples()
    }
    keys = list(labels)
    wanted = st.query_params.get("mailing")
    known = wanted is not None and wanted in labels
    if wanted is not None and not known:
        # never show another mailing's figures as if they were the one asked for
        st.warning(
            say(
                f"Er is geen mailing `{wanted}` in de gepubliceerde kopie. Hieronder staat de nieuwste; kies in de "
                "lijst de mailing die je zocht.",
                f"There is no mailing `{wanted}` in the published copy. Below is the newest; pick the mailing you "
                "were looking for from the list.",
            )
        )
    chosen: str = st.selectbox(
        say("Mailing", "Mailing"),
        keys,
        index=keys.index(wanted) if wanted is not None and known else 0,
        format_func=lambda key: labels[key],
    )
    if known or wanted is None or chosen != keys[0]:
        st.query_params["mailing"] = chosen  # the address names the mailing shown, so it can be shared
    params = {"mailing_key": chosen}
    stats = db.frame(ONE_MAILING, params).iloc[0]
    choice = choices[choices.mailing_key == chosen].iloc[0]
    if choice.is_flow_step:
        flow_name = choice.campaign_name if isinstance(choice.campaign_name, str) else choice.mailing_name
        st.info(
            say(
                f"Deze mailing is een stap van de automation **{flow_name}**: Spotler verstuurt "
                f"hem per contact, elke dag opnieuw, sinds {when(stats.sent_at)}. De cijfers tellen alle verzendingen.",
                f"This mailing is a step of the automation **{flow_name}**: Spotler sends it per "
                f"contact, every day, since {when(stats.sent_at)}. The figures count every send.",
            )
        )
        link_to_page("flows", say("→ Automations en campagnes", "→ Automations and campaigns"))
    else:
        st.caption(
            say(
                f"{platform_name(stats.source_system)} · {mailing_type_name(stats.mailing_type)} · verzonden "
                f"{when(stats.sent_at)}, {age(stats.sent_at)}",
                f"{platform_name(stats.source_system)} · {mailing_type_name(stats.mailing_type)} · sent "
                f"{when(stats.sent_at)}, {age(stats.sent_at)}",
            )
        )
    measures_sales = stats.source_system == "spotler"  # Clang / Deployteq has no conversion links or webshop
    figures = [
        (say("Verzonden", "Sent"), num(stats.sent_count), None),
        (
            say("Afgeleverd", "Delivered"),
            num(stats.delivered_count),
            say("verzonden min bounces", "sent minus bounces"),
        ),
        (
            say("Openratio (ruw)", "Open rate (raw)"),
            pct(stats.open_rate),
            say(
                f"{num(stats.unique_open_count)} unieke openers / afgeleverd, machines meegeteld",
                f"{num(stats.unique_open_count)} unique opens / delivered, machines included",
            ),
        ),
        (
            say("Openratio (mensen)", "Open rate (people)"),
            pct(stats.human_open_rate),
            say(
                f"{num(stats.unique_human_open_count)} mensen die zelf openden of klikten / afgeleverd",
                f"{num(stats.unique_human_open_count)} people who opened or clicked themselves / delivered",
            ),
        ),
        (
            say("Klikratio (ruw)", "Click rate (raw)"),
            pct(stats.click_rate),
            say(
                f"{num(stats.unique_click_count)} unieke klikkers / afgeleverd, linkscanners meegeteld",
                f"{num(stats.unique_click_count)} unique clicks / delivered, link scanners included",
            ),
        ),
        (
            say("Klikratio (mensen)", "Click rate (people)"),
            pct(stats.human_click_rate),
            say(
                f"{num(stats.unique_human_click_count)} mensen die zelf klikten / afgeleverd",
                f"{num(stats.unique_human_click_count)} people who clicked themselves / delivered",
            ),
        ),
        (
            say("Click-to-open", "Click-to-open"),
            pct(stats.click_to_open_rate),
            say("unieke klikkers / unieke openers (ruw)", "unique clicks / unique opens (raw)"),
        ),
        (
            say("Omzet", "Revenue"),
            euros(stats.revenue, 2),
            say(
                "webshopomzet na een klik (Spotler eCommerce); – als het platform geen omzet meet",
                "webshop revenue after a click (Spotler eCommerce); – when the platform measures none",
            ),
        ),
        (
            say("Conversies", "Conversions"),
            num(stats.conversion_click_count) if measures_sales else "–",
            say("contacten die op een conversielink klikten (Spotler)", "contacts who clicked a conversion link"),
        ),
        (
            say("Winkelwagens aangemaakt", "Carts created"),
            num(stats.carts_created_count),
            say("winkelwagens na een klik (Spotler eCommerce)", "carts after a click (Spotler eCommerce)"),
        ),
        (
            say("Winkelwagens betaald", "Carts paid"),
            num(stats.carts_paid_count),
            say("betaalde winkelwagens na een klik (Spotler eCommerce)", "paid carts after a click"),
        ),
        (
            say("Bounceratio", "Bounce rate"),
            pct(stats.bounce_rate, 2),
            say(
                f"{num(stats.hard_bounce_count)} hard + {num(stats.soft_bounce_count)} zacht / verzonden",
                f"{num(stats.hard_bounce_count)} hard + {num(stats.soft_bounce_count)} soft / sent",
            ),
        ),
        (
            say("Afmeldingen", "Unsubscribes"),
            num(stats.unsubscribe_count),
            say(f"{pct(stats.unsubscribe_rate, 2)} van afgeleverd", f"{pct(stats.unsubscribe_rate, 2)} of delivered"),
        ),
        (
            say("Klachtratio", "Complaint rate"),
            pct(stats.complaint_rate, 2),
            say(
                f"{num(stats.complaint_count)} spamklachten / afgeleverd",
                f"{num(stats.complaint_count)} spam complaints / delivered",
            ),
        ),
    ]
    metrics(figures)
    st.caption(
        say(
            f"Machine-opens: voor {num(stats.unique_machine_open_count)} mensen opende alleen een machine, voor "
            f"{num(stats.unique_machine_click_count)} klikte alleen een linkscanner. ",
            f"Machine opens: for {num(stats.unique_machine_open_count)} people only a machine opened, for "
            f"{num(stats.unique_machine_click_count)} only a link scanner clicked. ",
        )
        + machines_line()
    )
    if stats.is_settling:
        st.caption(
            say(
                f"Verzonden {age(stats.sent_at)}: de cijfers groeien nog (zie Mailings die nog lopen voor waar ze "
                "uitkomen).",
                f"Sent {age(stats.sent_at)}: its figures still grow (see Settling mailings for where they will "
                "end up).",
            )
        )
    show_query(ONE_MAILING, params)
    response_curve(db, params, stats)
    links(db, params)


def response_curve(db: Published, params: dict, stats: pd.Series) -> None:
    st.subheader(say("Responscurve", "Response curve"))
    horizon = st.select_slider(
        say("Uren na de verzending", "Hours after the send"),
        [24, 72, 168, 336, 720],
        value=168,
        format_func=lambda hours: (
            say(f"{hours} uur", f"{hours} h") if hours < 72 else say(f"{hours // 24} dagen", f"{hours // 24} days")
        ),
    )
    names = {"opens": say("openers", "openers"), "clicks": say("klikkers", "clickers")}
    scale = alt.Scale(domain=list(names.values()), range=[COLOURS["unique opens"], COLOURS["unique clicks"]])
    curve = db.frame(RESPONSE_CURVE, params)
    curve = curve[curve.hour <= horizon]
    # each line runs on to the mailing's age (or the chart's edge): no new responses is a flat line, not an end
    reach = min(horizon, hours_since(stats.sent_at) or 0)
    ends = curve.groupby("response", as_index=False).agg(hour=("hour", "max"), cumulative=("cumulative", "max"))
    curve = pd.concat([curve, ends[ends.hour < reach].assign(hour=reach)], ignore_index=True)
    curve["response"] = curve.response.map(names)
    snapshots = db.frame(SNAPSHOTS, params)
    snapshots = snapshots[snapshots.hour <= horizon]
    if curve.empty:
        st.info(say("Nog geen opens of kliks.", "No opens or clicks yet."))
    else:
        hour_title = say("Uren na de verzending", "Hours after the send")
        contacts_title = say("Contacten (opgeteld)", "Contacts (cumulative)")
        chart = (
            alt.Chart(curve)
            .mark_line(interpolate="step-after")
            .encode(
                x=alt.X("hour:Q", title=hour_title, scale=alt.Scale(domain=[0, horizon], nice=False)),
                y=alt.Y("cumulative:Q", title=contacts_title),
                color=alt.Color("response:N", title=say("Uit onze events", "From our events"), scale=scale),
                tooltip=[
                    alt.Tooltip("response:N", title=say("Reactie", "Response")),
                    alt.Tooltip("hour:Q", title=hour_title),
                    alt.Tooltip("cumulative:Q", title=contacts_title, format=",d"),
                ],
            )
        )
        if not snapshots.empty:
            points = snapshots.melt(
                id_vars=["hour"], value_vars=["opens", "clicks"], var_name="response", value_name="cumulative"
            )
            points["response"] = points.response.map(names)
            chart += (
                alt.Chart(points)
                .mark_point(filled=True, size=70, shape="diamond")
                .encode(
                    x="hour:Q",
                    y="cumulative:Q",
                    color=alt.Color("response:N", scale=scale),
                    tooltip=[
                        alt.Tooltip("response:N", title=say("Spotler", "Spotler")),
                        alt.Tooltip("hour:Q", title=hour_title),
                        alt.Tooltip("cumulative:Q", title=contacts_title, format=",d"),
                    ],
                )
            )
        draw(st, chart.properties(height=300))
        lines = say(
            "Lijnen: contacten die openden (of klikten) en die klikten, naar uren sinds hun verzending, uit de events.",
            "Lines: contacts who opened (or clicked) and who clicked, by hours since their send, from the events.",
        )
        diamonds = say(
            " Ruiten: Spotlers eigen statistiek bij elk ophaalmoment terwijl de mailing liep.",
            " Diamonds: Spotler's own statistics at each fetch while the mailing settled.",
        )
        st.caption(lines + (diamonds if not snapshots.empty else ""))
    show_query(RESPONSE_CURVE, params)
    if not snapshots.empty:
        show_query(SNAPSHOTS, params)


def links(db: Published, params: dict) -> None:
    st.subheader(say("Links", "Links"))
    clicked = db.frame(LINKS, params)
    if clicked.empty:
        st.info(say("Op geen enkele link geklikt.", "No clicks on any link."))
        show_query(LINKS, params)
        return
    named = bool(clicked.link_type.notna().any())
    clicked["link_type"] = clicked.link_type.fillna("–")
    left, right = st.columns([3, 2])
    draw(
        left,
        alt.Chart(clicked.head(15))
        .mark_bar()
        .encode(
            x=alt.X(
                "unique_human_click_count:Q", title=say("Mensen die zelf klikten", "People who clicked themselves")
            ),
            y=alt.Y("link:N", sort="-x", title=None, axis=alt.Axis(labelLimit=LABEL_LIMIT)),
            color=alt.Color("link_type:N", title=say("Soort link", "Link type"))
            if named
            else alt.value(COLOURS["human click"]),
            tooltip=[
                alt.Tooltip("url:N", title="Url"),
                alt.Tooltip("link_type:N", title=say("Soort link", "Link type")),
                alt.Tooltip("unique_human_click_count:Q", title=say("Mensen", "People"), format=",d"),
                alt.Tooltip("unique_click_count:Q", title=say("Klikkers (ruw)", "Clickers (raw)"), format=",d"),
                alt.Tooltip("total_click_count:Q", title=say("Kliks (ruw)", "Clicks (raw)"), format=",d"),
            ],
        )
        .properties(height=300),
    )
    with right:
        columns = {"link": Column(say("Link", "Link"))}
        if named:  # Spotler names its links and gives their type; Clang's export has only the url
            columns |= {"url": Column("Url", "link"), "link_type": Column(say("Soort", "Type"))}
        columns |= {
            "unique_human_click_count": Column(say("Mensen die klikten", "People who clicked"), "count"),
            "unique_click_count": Column(say("Klikkers (ruw)", "Clickers (raw)"), "count"),
            "total_click_count": Column(say("Kliks (ruw)", "Clicks (raw)"), "count"),
        }
        table(clicked, columns)
    show_query(LINKS, params)
