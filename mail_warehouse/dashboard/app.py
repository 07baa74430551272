"""The Streamlit app (`streamlit run` this file; `warehouse dashboard` does): the reader's language and number
format, navigation, the published copy's age, and the empty state."""

import streamlit as st

from mail_warehouse.dashboard.auth import gate
from mail_warehouse.dashboard.data import DEFAULT_NUMBER_FORMAT, NUMBER_FORMATS, NothingPublished, published
from mail_warehouse.dashboard.views import contacts, customer, flows, mailings, one_mailing, segments, settling
from mail_warehouse.dashboard.views.common import DEFAULT_LANGUAGE, LANGUAGES, say, when

st.set_page_config(page_title="Mail warehouse", page_icon="✉️", layout="wide")

with st.sidebar:
    st.selectbox(
        "Taal · Language",
        list(LANGUAGES),
        index=list(LANGUAGES).index(DEFAULT_LANGUAGE),
        format_func=lambda key: LANGUAGES[key],
        key="language",
    )
    st.selectbox(
        say("Getallen", "Numbers"),
        list(NUMBER_FORMATS),
        index=list(NUMBER_FORMATS).index(DEFAULT_NUMBER_FORMAT),
        format_func=lambda key: NUMBER_FORMATS[key]["label"],
        key="number_format",
    )


def page(render):
    """A page that opens the published copy read-only for this run only, or says nothing is published."""

    def run():
        try:
            with published() as db:
                with st.sidebar:
                    st.caption(
                        say(
                            f"Bijgewerkt {when(db.published_at)} · `{db.path.name}`, alleen-lezen; "
                            "ververs de pagina voor een nieuwere kopie.",
                            f"Published {when(db.published_at)} · `{db.path.name}` read-only; "
                            "refresh the page for a newer copy.",
                        )
                    )
                render(db)
        except NothingPublished as missing:
            st.title(say("Nog niets gepubliceerd", "Nothing published yet"))
            st.info(
                say(
                    f"Dit dashboard leest de kopie die `warehouse publish` schrijft, `{missing.args[0]}`, en die is "
                    "er nog niet. Draai `warehouse run` (of `warehouse build` en dan `warehouse publish`; `make run` "
                    "voor de demowereld) en ververs deze pagina.",
                    f"This dashboard reads the copy that `warehouse publish` writes, `{missing.args[0]}`, and "
                    "there is none yet. Run `warehouse run` (or `warehouse build` then `warehouse publish`; "
                    "`make run` for the demo world), then refresh this page.",
                )
            )

    run.__name__ = render.__name__
    return run


start = st.Page(page(mailings.mailings), title=say("Mailings", "Mailings"), url_path="overview", default=True)


def go_to_start():
    st.switch_page(start)


navigation = st.navigation(
    [
        start,
        st.Page(page(one_mailing.one_mailing), title=say("Eén mailing", "One mailing"), url_path="mailing"),
        st.Page(
            page(flows.flows), title=say("Automations en campagnes", "Automations and campaigns"), url_path="flows"
        ),
        st.Page(page(contacts.contacts), title=say("Contacten", "Contacts"), url_path="contacts"),
        st.Page(page(customer.customer_card), title=say("Klantkaart", "Customer card"), url_path="contact"),
        st.Page(
            page(segments.segments_and_exports),
            title=say("Segmenten en exports", "Segments and exports"),
            url_path="segments",
        ),
        st.Page(
            page(settling.projections), title=say("Mailings die nog lopen", "Settling mailings"), url_path="projections"
        ),
        # the start page answers at / only; its name in the address bar goes there too
        st.Page(go_to_start, title="Mailings", url_path="mailings", visibility="hidden"),
    ]
)
# who may see the pages: anyone else gets nothing but a login button (or a refusal); stops the script there
gate()
navigation.run()
