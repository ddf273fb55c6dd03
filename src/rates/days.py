"""Days as exactly ``YYYY-MM-DD``: the one form batches and ``/rates`` parameters accept."""

from __future__ import annotations

import re
from datetime import date

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_day(text: str) -> date | None:
    """The real date ``text`` names as exactly YYYY-MM-DD (ASCII digits), or None.

    ``date.fromisoformat`` alone also takes ISO week dates of the same length (``2021-W01-1``
    is 2021-01-04) and, with other lengths, basic and datetime forms."""
    if _ISO_DAY.fullmatch(text) is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
