"""The Streamlit app (`streamlit run` this file; `warehouse dashboard` does): navigation and the empty state."""

import datetime as dt

import streamlit as st

from mail_warehouse.dashboard import pages
from mail_warehouse.dashboard.data import DEFAULT_NUMBER_FORMAT, NUMBER_FORMATS, NothingPublished, published

st.set_page_config(page_title="Mail warehouse", page_icon="✉️", layout="wide")

with st.sidebar:
    st.selectbox(
        "Numbers",
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
                    modified = dt.datetime.fromtimestamp(db.path.stat().st_mtime, dt.UTC)
                    st.caption(
                        f"Published {modified:%Y-%m-%d %H:%M} UTC · `{db.path.name}` read-only; "
                        "refresh the page for a newer copy."
                    )
                render(db)
        except NothingPublished as missing:
            st.title("Nothing published yet")
            st.info(
                f"This dashboard reads the copy that `warehouse publish` writes, `{missing.args[0]}`, and "
                "there is none yet. Run `warehouse run` (or `warehouse build` then `warehouse publish`; "
                "`make run` for the demo world), then refresh this page."
            )

    run.__name__ = render.__name__
    return run


navigation = st.navigation(
    [
        st.Page(page(pages.mailings), title="Mailings", url_path="mailings", default=True),
        st.Page(page(pages.one_mailing), title="One mailing", url_path="mailing"),
        st.Page(page(pages.contacts), title="Contacts", url_path="contacts"),
        st.Page(page(pages.segments_and_exports), title="Segments and exports", url_path="segments"),
        st.Page(page(pages.projections), title="Settling mailings", url_path="projections"),
    ]
)
navigation.run()
