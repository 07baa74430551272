"""Which of a source's resources dlt extracts in this run: the one place the three sources ask.

Each resource keeps its own dlt state; what several share (a listing, a download, an answer) is fetched for the
resources that are selected, so that a table not loaded in a run (`with_resources`) never moves.
"""

from __future__ import annotations

from collections.abc import Iterable

import dlt
from dlt.extract.exceptions import CurrentSourceNotAvailable


def selected_resources(names: Iterable[str]) -> tuple[str, ...]:
    """Of `names`, those dlt extracts in this run, in the order given; all of them where no source is being
    extracted (a resource iterated on its own)."""
    names = tuple(names)
    try:
        selected = dlt.current.source().selected_resources
    except CurrentSourceNotAvailable:
        return names
    return tuple(name for name in names if name in selected)
