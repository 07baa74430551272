"""Automations and campaigns: flows of mails (welcome series, birthdays, abandoned carts) per step, over time."""

from __future__ import annotations

import streamlit as st

from mail_warehouse.dashboard.data import Published


def flows(db: Published) -> None:
    st.title("flows")
