"""Typed domain errors. Services raise them; handlers turn them into translated text.

Each carries the facts a message needs as attributes (never pre-rendered text),
so the same rule can speak Telegram, HTTP or the command line.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule of the network refused the request; nothing was changed."""

    def __init__(self, **params: Any) -> None:
        super().__init__(params)
        self.params = params


# Permissions
class NotAllowed(DomainError):
    """The actor lacks the role; ``role`` names the one that is needed."""


class NotADelegate(DomainError):
    pass


class DelegateNotApproved(DomainError):
    pass


# Roster
class UnknownCity(DomainError):
    pass


class AmbiguousCity(DomainError):
    pass


class InvalidCityName(DomainError):
    pass


class UnknownCountry(DomainError):
    pass


class UnknownTimezone(DomainError):
    pass


class CityAlreadyMember(DomainError):
    pass


class AlreadyDelegate(DomainError):
    pass


class UnknownDelegate(DomainError):
    pass


class UnknownClaim(DomainError):
    pass


class ClaimNotPending(DomainError):
    pass


class ClaimRejected(DomainError):
    """The same claim was rejected recently; the user must contact the secretariat."""


class InvalidUserId(DomainError):
    pass


class InvalidImport(DomainError):
    """A row of a cities file is wrong; ``line`` and ``reason`` say where and why."""


# Working groups
class UnknownGroup(DomainError):
    pass


class InvalidSlug(DomainError):
    pass


class InvalidGroupName(DomainError):
    pass


class GroupExists(DomainError):
    pass


class GroupAlreadyProposed(DomainError):
    pass


class NotAProposal(DomainError):
    pass


class ChatNotLinked(DomainError):
    pass


class AlreadyInGroup(DomainError):
    pass


class NotInGroup(DomainError):
    pass


class AlreadyCoordinator(DomainError):
    pass


# Presidency
class ConsecutiveTerm(DomainError):
    pass


class TermExists(DomainError):
    pass


class InvalidTerm(DomainError):
    pass


class TermYearOutOfRange(DomainError):
    pass


# Applications
class AlreadyApplied(DomainError):
    pass


class UnknownApplication(DomainError):
    pass


class ApplicationDecided(DomainError):
    pass


# Secretariat and people
class AlreadySecretariat(DomainError):
    pass


class NotSecretariat(DomainError):
    pass


class BootstrapSecretariat(DomainError):
    """Staff listed in B40_SECRETARIAT can only be removed from the configuration."""


class UnsupportedLanguage(DomainError):
    pass


# Sessions
class InvalidSessionLength(DomainError):
    pass


class InvalidSessionTitle(DomainError):
    pass


class SessionInPast(DomainError):
    pass


class UnknownSession(DomainError):
    pass


class SessionCancelled(DomainError):
    pass


class SessionOver(DomainError):
    pass


# Polls and planning
class UnknownPoll(DomainError):
    pass


class PollClosed(DomainError):
    """``poll``: closed, superseded, or past its deadline."""


class UnknownPollOption(DomainError):
    pass


class NoCandidates(DomainError):
    """The planner found no time in the window at which any member city is free:
    ``start`` and ``end`` (dates), ``cities`` (how many member cities)."""


class NoMemberCities(DomainError):
    """``group``: a working group with no member cities cannot plan a session."""


class InvalidCadence(DomainError):
    """``weeks`` is not from 0 (off) to ``max``."""


class InvalidRequestReason(DomainError):
    """The reason given is longer than ``max`` characters."""


class AlreadyRequested(DomainError):
    """``city`` has already asked for an extra session that is not planned yet."""


# Choice polls
class InvalidPollQuestion(DomainError):
    """The question is empty or longer than ``max`` characters."""


class InvalidPollOptions(DomainError):
    """Fewer than ``min`` or more than ``max`` options (``count`` were given)."""


class PollOptionTooLong(DomainError):
    """Option ``number`` is longer than ``max`` characters."""


class DuplicatePollOption(DomainError):
    """Option ``number`` repeats an earlier one."""


class PollNotDraft(DomainError):
    """Poll ``poll`` is already open or closed: its settings can no longer change."""


class PollNotOpenYet(DomainError):
    """Poll ``poll`` is still being set up (or an election still takes candidacies)."""


class NoOpenPoll(DomainError):
    """This working group has no open poll to close."""


class SeveralOpenPolls(DomainError):
    """``polls``: the numbers of this group's open polls; which one to close?"""


# The presidency election
class ElectionInProgress(DomainError):
    """The election of the ``year`` term is already under way."""


class NoElection(DomainError):
    pass


class CandidaciesClosed(DomainError):
    """Voting in the election of ``year`` has begun: no more candidacies."""


class AlreadyCandidate(DomainError):
    pass


class NoCandidacies(DomainError):
    """Nobody stands in the election of ``year`` yet."""


class VotingNotOpen(DomainError):
    """The election of ``year`` still takes candidacies; voting has not begun."""


class ElectionHasNoVotes(DomainError):
    """No city has voted in the election of ``year``: it cannot be decided yet."""


# The agenda
class InvalidAgendaTitle(DomainError):
    """The title is empty or longer than ``max`` characters."""


class AgendaTextTooLong(DomainError):
    """A description, opinion, reason or recommendation is longer than ``max`` characters."""


class DuplicateAgendaRequest(DomainError):
    """``city`` already asked for an item of this title: request ``item``, still open."""


class UnknownAgendaItem(DomainError):
    """There is no request ``item`` (in this working group)."""


class AgendaItemDecided(DomainError):
    """Request ``item`` is no longer waiting for a decision."""


class AgendaItemDeclined(DomainError):
    """Request ``item`` was declined: it takes no support, opinion or move."""


class OwnAgendaItem(DomainError):
    """``city`` made request ``item`` itself: supporting it is for other cities."""


class NotOnAgenda(DomainError):
    """Item ``item`` is not accepted: only accepted items are ordered, timed or given an
    outcome."""


class OutcomeTooEarly(DomainError):
    """Item ``item``'s session ``session`` has not started (or it has no session yet)."""


class OutcomeRecorded(DomainError):
    """Item ``item`` already has an outcome; it can no longer be deferred."""


class InvalidAgendaMinutes(DomainError):
    """Minutes not from 1 to ``max`` (or 0 to clear)."""


class InvalidRequestDeadline(DomainError):
    """Days not from 0 to ``max``."""


class NoNextSession(DomainError):
    """The working group has no session planned."""


class InvalidSummitDates(DomainError):
    """The last day is before the first, or the summit would last more than ``max`` days."""


# Broadcasts
class EmptyBroadcast(DomainError):
    pass


class BroadcastTooLong(DomainError):
    """More than ``parts`` messages, or cut only inside a word or a formatting."""


class UnknownBroadcast(DomainError):
    pass


class NotYourBroadcast(DomainError):
    pass


class BroadcastNotDraft(DomainError):
    """Confirmed, finished or cancelled already (``state``)."""


class BroadcastNotSending(DomainError):
    """Stop pressed on a broadcast that is finished (or not yet confirmed)."""


class NoAudience(DomainError):
    pass


class NoRecipients(DomainError):
    pass


class AudienceChanged(DomainError):
    """The roster changed between the preview and the confirmation."""
