"""Spotler Mail+ reporting API as dlt sources (`warehouse load spotler [--contacts FILE]` into `raw_spotler`).

What one run asks for, and so what it costs (the API is paid in calls):
- `GET /mailing` once, for mailings sent since the last sync; details (message, links) once per new mailing;
- statistics and the click list (the only list with link ids) of each mailing still settling (sent within
  `settle_days`): every run, each statistics fetch kept as a snapshot with its `fetched_at`;
- the account-wide feeds `/mailing-interaction/sent|opened|bounced` from their change-date cursors:
  pages of what is new only;
- campaigns: the list, each campaign's mailings, details of new campaign mailings, and each campaign
  mailing's recipients, opens, clicks and bounces from a date cursor (these lists filter by date);
- forms: the list, and each form's results from a date cursor;
- contacts (`/contact/updates/list`): pages of the contacts changed since the latest lastChanged loaded
  (address, EMAIL/SMS channel opt-in, properties); the first sync asks for every contact.
A new mailing costs 3 calls once (details, statistics, clicks) plus its share of feed pages. A second run
with nothing new costs: 1 + 2 per settling mailing + 3 feed calls + 1 contacts call + campaign and form calls
(1 + campaigns + 4 per campaign mailing + 1 + forms), each list one call while it fits a page.
`max_calls_per_run` stops a run cleanly: what was fetched is loaded and the cursors of finished work are
saved; the next run carries on.

Parts: `config` (the settings), `client` (signed calls, retries, budget), `rows` (JSON to rows),
`source` (the dlt sources and their resources).
"""

from mail_warehouse_sources.spotler.config import (
    SpotlerError,
    SpotlerSettingsError,
    SpotlerSourceConfiguration,
    parse_time,
)
from mail_warehouse_sources.spotler.source import SyncReport, spotler_contacts_source, spotler_source

DATASET = "raw_spotler"

__all__ = [
    "DATASET",
    "SpotlerError",
    "SpotlerSettingsError",
    "SpotlerSourceConfiguration",
    "SyncReport",
    "parse_time",
    "spotler_contacts_source",
    "spotler_source",
]
