"""The customer card: one contact by e-mail address."""

from __future__ import annotations

import streamlit as st

from mail_warehouse.dashboard.data import Published


def customer_card(db: Published) -> None:
    st.title("customer")
