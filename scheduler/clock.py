"""The bot's clock and the network's date.

Instants are aware UTC datetimes from one injectable clock (tests set it to moments
where the network's zones disagree); the network's date is the date in its
reference zone (``B40_TIMEZONE``), never the UTC date.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

import storage  # noqa: F401  (zone rules from the pinned tzdata package)
from storage.types import utcnow

Clock = Callable[[], datetime]

__all__ = ["Clock", "network_date", "utcnow"]


def network_date(instant: datetime, zone: str) -> date:
    """The date at ``instant`` in the network's reference ``zone``."""
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant!r}: the clock must give aware UTC instants")
    return instant.astimezone(ZoneInfo(zone)).date()
