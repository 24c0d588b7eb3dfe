"""Typed errors of the session planner.

Like ``storage.errors``, each carries the facts a message needs as keyword
parameters (``error.params``), never rendered text: the Telegram layer
chooses the words in the reader's language.
"""

from __future__ import annotations

from storage.errors import DomainError


class NonexistentLocalTime(DomainError):
    """The wall time falls in a spring-forward gap: ``date``, ``time``, ``zone``."""


class UnknownZone(DomainError):
    """Not an IANA zone: ``zone`` as typed, ``suggestion`` the closest name or None."""


class InvalidWindow(DomainError):
    """The planning window cannot be searched.

    ``reason`` is one of ``"end_before_start"``, ``"too_long"`` (with ``days`` and
    ``max``) or ``"past"`` (the whole window ends before ``now``); ``start`` and ``end``
    are the dates asked for.
    """


class InvalidDuration(DomainError):
    """A session length the planner refuses: ``minutes``, ``max`` and ``step`` in minutes.

    Raised when it is not positive, not a whole number of grid steps, or longer than ``max``.
    """


class InvalidWorkingHours(DomainError):
    """Working hours that end before they start (``start``, ``end``) or name no weekday."""


class InvalidDate(DomainError):
    """``text`` is not a date written YYYY-MM-DD, or names a day that does not exist."""


class InvalidTime(DomainError):
    """``text`` is not a wall time written HH:MM (00:00 to 23:59)."""


class SessionEndsBeforeStart(DomainError):
    """The end wall time ``end`` is not after the start ``start`` (both HH:MM)."""


class InvalidWeekdays(DomainError):
    """``text`` names no weekdays this way: Mon-Fri, Mon,Wed,Fri or 1-5."""
