"""Polls counted one city, one answer: written once, for every kind of poll.

A city answers through its approved delegates; the last answer any of them gives to
an option is the city's answer to it (a row per poll, option and city, overwritten).
Who may answer is decided here: a delegate of a member city of the poll's working
group (any member city for a poll of the whole network), while the poll is open and
its deadline has not passed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction

from sqlalchemy import delete, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, errors, outbox, sessions
from storage.db import insert_for
from storage.models import (
    AuditEntry,
    Chat,
    City,
    GroupMembership,
    Poll,
    PollKind,
    PollOption,
    PollStatus,
    PollVote,
    Quorum,
    Threshold,
    WorkingGroup,
)
from storage.roles import Actor


@dataclass(frozen=True)
class NewOption:
    label: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    notes: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Rules:
    """How a choice poll counts and shows; the one-line /poll takes these defaults."""

    multiple: bool = False
    hidden: bool = False
    anonymous: bool = False
    quorum: Quorum = Quorum.NONE
    threshold: Threshold = Threshold.MAJORITY
    runs_for: timedelta = timedelta(days=7)

    @classmethod
    def of(cls, poll: Poll) -> Rules:
        return cls(
            multiple=poll.multiple,
            hidden=poll.hidden,
            anonymous=poll.anonymous,
            quorum=Quorum(poll.quorum),
            threshold=Threshold(poll.threshold),
            runs_for=poll.closes_at - poll.created_at,
        )


async def create(
    session: AsyncSession,
    *,
    kind: str,
    group: WorkingGroup | None,
    question: str,
    options: Sequence[NewOption],
    closes_at: datetime,
    created_by: int | None,
    length_minutes: int | None = None,
    purpose: str | None = None,
    rules: Rules | None = None,
    status: PollStatus = PollStatus.OPEN,
    now: datetime | None = None,
    language: str | None = None,
) -> Poll:
    if not options and status != PollStatus.DRAFT:
        raise ValueError("an open poll needs options")
    rules = rules or Rules()
    poll = Poll(
        group_id=group.id if group is not None else None,
        kind=kind,
        question=question,
        closes_at=closes_at,
        length_minutes=length_minutes,
        created_by=created_by,
        purpose=purpose,
        status=status.value,
        multiple=rules.multiple,
        hidden=rules.hidden,
        anonymous=rules.anonymous,
        quorum=rules.quorum.value,
        threshold=rules.threshold.value,
        language=language,
    )
    if now is not None:
        poll.created_at = now
    session.add(poll)
    await session.flush()
    await add_options(session, poll, options)
    return poll


async def add_options(session: AsyncSession, poll: Poll, options: Sequence[NewOption]) -> None:
    """Options after those the poll has, numbered on from them."""
    last = (
        await session.exec(
            select(func.max(PollOption.position)).where(PollOption.poll_id == poll.id)
        )
    ).one()
    for position, option in enumerate(options, start=(last or 0) + 1):
        session.add(
            PollOption(
                poll_id=poll.id or 0,
                position=position,
                label=option.label,
                starts_at=option.starts_at,
                ends_at=option.ends_at,
                notes=option.notes,
            )
        )
    await session.flush()


async def get(session: AsyncSession, poll_id: int) -> Poll:
    poll = await session.get(Poll, poll_id)
    if poll is None:
        raise errors.UnknownPoll(poll=poll_id)
    return poll


async def options(session: AsyncSession, poll_id: int) -> list[PollOption]:
    rows = await session.exec(
        select(PollOption).where(PollOption.poll_id == poll_id).order_by(col(PollOption.position))
    )
    return list(rows.all())


def require_open(poll: Poll, *, now: datetime) -> None:
    if poll.status != PollStatus.OPEN.value or poll.closes_at <= now:
        raise errors.PollClosed(poll=poll.id)


async def _entitled(session: AsyncSession, poll: Poll, city: City) -> None:
    """A city answers a working group's poll if it is a member of the group; every member
    city of the network answers a poll of the whole network (the election)."""
    if poll.group_id is None:
        return
    if await session.get(GroupMembership, (poll.group_id, city.id)) is None:
        group = await session.get(WorkingGroup, poll.group_id)
        raise errors.NotInGroup(city=city.name, group=group.name if group else "")


async def _set_answer(
    session: AsyncSession,
    *,
    poll_id: int,
    position: int,
    city: City,
    actor: Actor,
    value: str,
    now: datetime,
) -> None:
    """The city's answer to one option, replacing any earlier one: one statement, so two
    delegates of a city answering at once leave one row, the later one's."""
    insert = insert_for(session)
    statement = insert(PollVote).values(
        poll_id=poll_id,
        position=position,
        city_id=city.id,
        user_id=actor.user_id,
        value=value,
        cast_at=now,
    )
    await session.exec(
        statement.on_conflict_do_update(
            index_elements=["poll_id", "position", "city_id"],
            set_={"user_id": actor.user_id, "value": value, "cast_at": now},
        )
    )


async def vote(
    session: AsyncSession,
    *,
    actor: Actor,
    poll_id: int,
    position: int,
    value: str,
    allowed: Collection[str],
    now: datetime,
) -> tuple[Poll, City]:
    """Record the actor's city's answer ``value`` to option ``position``; the last counts."""
    city = actor.approved_city()
    poll = await get(session, poll_id)
    require_open(poll, now=now)
    if value not in allowed or await session.get(PollOption, (poll_id, position)) is None:
        raise errors.UnknownPollOption(poll=poll_id, option=position)
    await _entitled(session, poll, city)
    await _set_answer(
        session, poll_id=poll_id, position=position, city=city, actor=actor, value=value, now=now
    )
    return poll, city


@dataclass
class Tally:
    """Per option: each city's answer (the last one cast for it), cities by name."""

    answers: dict[int, dict[str, str]]

    def count(self, position: int, value: str) -> int:
        return sum(1 for answer in self.answers.get(position, {}).values() if answer == value)

    def cities(self, position: int, value: str) -> list[str]:
        return [city for city, answer in self.answers.get(position, {}).items() if answer == value]

    def by_value(self, position: int, values: Sequence[str]) -> dict[str, list[str]]:
        return {value: self.cities(position, value) for value in values}


async def tally(session: AsyncSession, poll: Poll) -> Tally:
    """Every city's answer to every option. Only cities that are still members count (a
    city that left the group since it answered is not counted)."""
    query = (
        select(PollVote.position, City.name, PollVote.value)
        .join(City, col(City.id) == col(PollVote.city_id))
        .where(PollVote.poll_id == poll.id)
        .order_by(col(PollVote.position), col(City.search_key), col(City.country_code))
    )
    if poll.group_id is not None:
        query = query.join(
            GroupMembership,
            (col(GroupMembership.city_id) == col(PollVote.city_id))
            & (col(GroupMembership.group_id) == poll.group_id),
        )
    answers: dict[int, dict[str, str]] = {}
    for position, name, value in (await session.exec(query)).all():
        answers.setdefault(position, {})[name] = value
    return Tally(answers)


async def close(
    session: AsyncSession,
    poll: Poll,
    *,
    now: datetime,
    outcome: int | None,
    status: PollStatus = PollStatus.CLOSED,
    session_id: int | None = None,
) -> bool:
    """Close an open poll; False if it was no longer open (someone else closed it first)."""
    result = await session.exec(
        update(Poll)
        .where(col(Poll.id) == poll.id, col(Poll.status) == PollStatus.OPEN.value)
        .values(status=status.value, outcome=outcome, closed_at=now, session_id=session_id)
    )
    if result.rowcount != 1:
        return False
    await session.refresh(poll)
    return True


async def due(session: AsyncSession, *, now: datetime, kind: str) -> list[Poll]:
    rows = await session.exec(
        select(Poll)
        .where(Poll.status == PollStatus.OPEN.value, Poll.kind == kind, col(Poll.closes_at) <= now)
        .order_by(col(Poll.closes_at), col(Poll.id))
    )
    return list(rows.all())


# Choice polls (/poll) and the election's ballot ---------------------------------------------

BALLOT = 0  # one choice per city: the city's one row, whose value is the chosen option
CHOSEN = "yes"  # several choices per city: a row per chosen option
MIN_OPTIONS = 2
MAX_OPTIONS = 10  # as many as Telegram's own polls take; a keyboard that still fits a phone
MAX_OPTION = 100  # characters, as in Telegram's own polls
MAX_QUESTION = 300
RESULT = "poll.result"  # outbox kind: a poll closed, here is how the cities voted
QUORUM_SHARE = {
    Quorum.NONE: Fraction(0),
    Quorum.THIRD: Fraction(1, 3),
    Quorum.HALF: Fraction(1, 2),
    Quorum.TWO_THIRDS: Fraction(2, 3),
}
COUNTED = (PollKind.CHOICE.value, PollKind.ELECTION.value)


def subject(poll_id: int | None) -> str:
    """The audit log's subject for everything that happens to one poll."""
    return f"poll:{poll_id}"


def clean_question(text: str) -> str:
    question = " ".join(text.split())
    if not question or len(question) > MAX_QUESTION:
        raise errors.InvalidPollQuestion(max=MAX_QUESTION)
    return question


def clean_options(labels: Sequence[str]) -> list[str]:
    cleaned = [" ".join(label.split()) for label in labels]
    cleaned = [label for label in cleaned if label]
    if not MIN_OPTIONS <= len(cleaned) <= MAX_OPTIONS:
        raise errors.InvalidPollOptions(min=MIN_OPTIONS, max=MAX_OPTIONS, count=len(cleaned))
    seen: set[str] = set()
    for number, label in enumerate(cleaned, start=1):
        if len(label) > MAX_OPTION:
            raise errors.PollOptionTooLong(number=number, max=MAX_OPTION)
        if label.casefold() in seen:
            raise errors.DuplicatePollOption(number=number)
        seen.add(label.casefold())
    return cleaned


def require_poll_organiser(actor: Actor, poll: Poll) -> None:
    """Who runs a working group's poll: its coordinators, the secretariat, the term
    presidency, and whoever opened it."""
    if poll.created_by == actor.user_id and poll.created_by is not None:
        return
    if poll.group_id is not None and actor.is_organiser(poll.group_id):
        return
    if actor.is_presidency or actor.is_secretariat:
        return
    raise errors.NotAllowed(role="poll_organiser")


def _require_group_organiser(actor: Actor, group: WorkingGroup) -> None:
    if not (actor.is_organiser(group.id or 0) or actor.is_presidency):
        raise errors.NotAllowed(role="poll_opener")


async def open_choice(
    session: AsyncSession,
    *,
    actor: Actor,
    group: WorkingGroup,
    question: str,
    options: Sequence[str],
    rules: Rules,
    now: datetime,
    language: str | None,
) -> Poll:
    """/poll: a question to the group's cities, open at once."""
    _require_group_organiser(actor, group)
    poll = await create(
        session,
        kind=PollKind.CHOICE.value,
        group=group,
        question=clean_question(question),
        options=[NewOption(label=label) for label in clean_options(options)],
        closes_at=now + rules.runs_for,
        created_by=actor.user_id,
        rules=rules,
        now=now,
        language=language,
    )
    _audit_opened(session, actor, poll, group)
    return poll


def _audit_opened(session: AsyncSession, actor: Actor, poll: Poll, group: WorkingGroup) -> None:
    audit.record(
        session,
        actor_id=actor.user_id,
        action="poll.open",
        subject=subject(poll.id),
        group=group.slug,
        question=poll.question,
        rules=rules_facts(poll),
    )


def rules_facts(poll: Poll) -> dict[str, object]:
    """How the poll counts and shows, as JSON-able facts (for messages and the audit log)."""
    return {
        "multiple": poll.multiple,
        "hidden": poll.hidden,
        "anonymous": poll.anonymous,
        "quorum": poll.quorum,
        "threshold": poll.threshold,
        "closes_at": poll.closes_at.isoformat(),
    }


async def start_draft(
    session: AsyncSession,
    *,
    actor: Actor,
    group: WorkingGroup,
    chat_id: int,
    now: datetime,
    language: str | None,
) -> Poll:
    """/poll alone: a draft waiting for its question, to be posted in ``chat_id``. An
    organiser has one such draft: a second /poll starts it over, for the new chat."""
    _require_group_organiser(actor, group)
    existing = await waiting_draft_of(session, user_id=actor.user_id)
    if existing is not None:
        await discard(session, actor=actor, poll_id=existing.id or 0)
    rules = Rules()
    draft = await create(
        session,
        kind=PollKind.CHOICE.value,
        group=group,
        question="",
        options=[],
        closes_at=now + rules.runs_for,
        created_by=actor.user_id,
        rules=rules,
        status=PollStatus.DRAFT,
        now=now,
        language=language,
    )
    draft.chat_id = chat_id
    session.add(draft)
    return draft


async def waiting_draft_of(session: AsyncSession, *, user_id: int) -> Poll | None:
    """The user's draft that still waits for its question and options."""
    rows = await session.exec(
        select(Poll)
        .where(
            Poll.created_by == user_id,
            Poll.status == PollStatus.DRAFT.value,
            Poll.kind == PollKind.CHOICE.value,
            Poll.question == "",
        )
        .order_by(col(Poll.id).desc())
    )
    return rows.first()


async def _draft(session: AsyncSession, *, actor: Actor, poll_id: int) -> Poll:
    poll = await get(session, poll_id)
    if poll.kind != PollKind.CHOICE.value:
        raise errors.UnknownPoll(poll=poll_id)
    require_poll_organiser(actor, poll)
    if poll.status != PollStatus.DRAFT.value:
        raise errors.PollNotDraft(poll=poll_id)
    return poll


async def fill_draft(
    session: AsyncSession, *, actor: Actor, poll: Poll, question: str, options: Sequence[str]
) -> Poll:
    """The question and options the organiser sent for a draft."""
    poll = await _draft(session, actor=actor, poll_id=poll.id or 0)
    poll.question = clean_question(question)
    labels = clean_options(options)
    await session.exec(delete(PollOption).where(col(PollOption.poll_id) == poll.id))
    await add_options(session, poll, [NewOption(label=label) for label in labels])
    session.add(poll)
    return poll


async def configure(session: AsyncSession, *, actor: Actor, poll_id: int, rules: Rules) -> Poll:
    """Change a draft's rules (the guided form's buttons)."""
    poll = await _draft(session, actor=actor, poll_id=poll_id)
    poll.multiple = rules.multiple
    poll.hidden = rules.hidden
    poll.anonymous = rules.anonymous
    poll.quorum = rules.quorum.value
    poll.threshold = rules.threshold.value
    poll.closes_at = poll.created_at + rules.runs_for
    session.add(poll)
    await session.flush()
    return poll


async def publish(session: AsyncSession, *, actor: Actor, poll_id: int, now: datetime) -> Poll:
    """Open a draft: it runs for its chosen time from now, in the chat /poll was sent to."""
    poll = await _draft(session, actor=actor, poll_id=poll_id)
    if not poll.question:
        raise errors.InvalidPollQuestion(max=MAX_QUESTION)
    runs_for = poll.closes_at - poll.created_at
    result = await session.exec(
        update(Poll)
        .where(col(Poll.id) == poll_id, col(Poll.status) == PollStatus.DRAFT.value)
        .values(
            status=PollStatus.OPEN.value,
            created_at=now,
            closes_at=now + runs_for,
        )
    )
    if result.rowcount != 1:
        raise errors.PollNotDraft(poll=poll_id)  # the other press of two won
    await session.refresh(poll)
    group = await session.get(WorkingGroup, poll.group_id)
    if group is not None:
        _audit_opened(session, actor, poll, group)
    return poll


async def discard(session: AsyncSession, *, actor: Actor, poll_id: int) -> None:
    poll = await _draft(session, actor=actor, poll_id=poll_id)
    await session.exec(delete(PollOption).where(col(PollOption.poll_id) == poll.id))
    await session.delete(poll)


async def attach(session: AsyncSession, *, poll_id: int, chat_id: int, message_id: int) -> None:
    """The message that shows the poll's tally, once it is known (first one wins)."""
    await session.exec(
        update(Poll)
        .where(col(Poll.id) == poll_id, col(Poll.message_id).is_(None))
        .values(chat_id=chat_id, message_id=message_id)
    )


@dataclass(frozen=True)
class Cast:
    poll: Poll
    city: City
    chosen: tuple[int, ...]  # the city's choices now
    changed: bool


async def cast(
    session: AsyncSession, *, actor: Actor, poll_id: int, position: int, now: datetime
) -> Cast:
    """The actor's city's vote on a choice poll or in the election: one city, one vote,
    the last of its delegates counting. With several choices a press toggles the option."""
    city = actor.approved_city()
    poll = await get(session, poll_id)
    if poll.kind not in COUNTED:
        raise errors.UnknownPoll(poll=poll_id)
    if poll.status == PollStatus.DRAFT.value:
        raise errors.PollNotOpenYet(poll=poll_id)
    require_open(poll, now=now)
    if await session.get(PollOption, (poll_id, position)) is None:
        raise errors.UnknownPollOption(poll=poll_id, option=position)
    await _entitled(session, poll, city)
    mine = (
        await session.exec(
            select(PollVote.position, PollVote.value).where(
                PollVote.poll_id == poll_id, PollVote.city_id == city.id
            )
        )
    ).all()
    if poll.multiple:
        before = tuple(sorted(p for p, _value in mine))
        if position in before:
            await session.exec(
                delete(PollVote).where(
                    col(PollVote.poll_id) == poll_id,
                    col(PollVote.position) == position,
                    col(PollVote.city_id) == city.id,
                )
            )
            chosen = tuple(p for p in before if p != position)
        else:
            await _set_answer(
                session,
                poll_id=poll_id,
                position=position,
                city=city,
                actor=actor,
                value=CHOSEN,
                now=now,
            )
            chosen = tuple(sorted((*before, position)))
    else:
        before = tuple(int(value) for _p, value in mine)
        chosen = (position,)
        if before != chosen:
            await _set_answer(
                session,
                poll_id=poll_id,
                position=BALLOT,
                city=city,
                actor=actor,
                value=str(position),
                now=now,
            )
    changed = before != chosen
    if changed:
        # Who voted how is in the log even for an anonymous poll: the audit log is the
        # secretariat's record, never shown in chat.
        audit.record(
            session,
            actor_id=actor.user_id,
            action="poll.vote",
            subject=subject(poll_id),
            city=city.name,
            before=list(before),
            chosen=list(chosen),
        )
    return Cast(poll=poll, city=city, chosen=chosen, changed=changed)


@dataclass(frozen=True)
class Outcome:
    """How the cities voted, and what it means under the poll's rules."""

    counts: dict[int, int]  # option -> cities that chose it
    cities: dict[int, list[str]]  # option -> which cities (by name)
    voted: int  # cities that voted
    entitled: int  # cities that may vote
    quorum_needed: int
    quorum_met: bool
    carried: list[int]  # options chosen by the threshold's share of the cities that voted
    leading: list[int]  # the options most cities chose (several on a tie)


def passes(count: int, voted: int, threshold: Threshold) -> bool:
    if threshold == Threshold.TWO_THIRDS:
        return voted > 0 and count * 3 >= voted * 2
    return count * 2 > voted


async def entitled(session: AsyncSession, poll: Poll) -> int:
    """How many cities may vote: the group's member cities, or the network's."""
    if poll.group_id is None:
        return (await session.exec(select(func.count()).select_from(City))).one()
    return (
        await session.exec(
            select(func.count())
            .select_from(GroupMembership)
            .where(GroupMembership.group_id == poll.group_id)
        )
    ).one()


async def outcome(session: AsyncSession, poll: Poll) -> Outcome:
    counted = await tally(session, poll)
    positions = [option.position for option in await options(session, poll.id or 0)]
    if poll.multiple:
        cities = {p: counted.cities(p, CHOSEN) for p in positions}
        voters = {city for names in cities.values() for city in names}
    else:
        cities = {p: counted.cities(BALLOT, str(p)) for p in positions}
        voters = set(counted.answers.get(BALLOT, {}))
    voted = len(voters)
    may = await entitled(session, poll)
    share = QUORUM_SHARE[Quorum(poll.quorum)]
    needed = -(-share.numerator * may // share.denominator)  # the ceiling, exactly
    quorum_met = voted > 0 and voted >= needed
    counts = {p: len(names) for p, names in cities.items()}
    top = max(counts.values(), default=0)
    threshold = Threshold(poll.threshold)
    return Outcome(
        counts=counts,
        cities=cities,
        voted=voted,
        entitled=may,
        quorum_needed=needed,
        quorum_met=quorum_met,
        carried=[p for p in positions if quorum_met and passes(counts[p], voted, threshold)],
        leading=[p for p in positions if top > 0 and counts[p] == top],
    )


async def describe_choice(session: AsyncSession, poll: Poll) -> dict[str, object]:
    """What a message about a choice poll or a ballot needs, as JSON-able facts. An
    anonymous poll's facts hold counts only, so that no message can show more."""
    group = await session.get(WorkingGroup, poll.group_id) if poll.group_id else None
    found = await outcome(session, poll)
    labels = {option.position: option.label for option in await options(session, poll.id or 0)}
    return {
        "poll": poll.id,
        "kind": poll.kind,
        "question": poll.question,
        "purpose": poll.purpose,
        "status": poll.status,
        "group": group.name if group else None,
        "slug": group.slug if group else None,
        **rules_facts(poll),
        "places": [list(place) for place in await _places(session, poll)],
        "options": [
            {
                "position": position,
                "label": label,
                "count": found.counts.get(position, 0),
                "cities": [] if poll.anonymous else found.cities.get(position, []),
            }
            for position, label in labels.items()
        ],
        "voted": found.voted,
        "entitled": found.entitled,
        "quorum_needed": found.quorum_needed,
        "quorum_met": found.quorum_met,
        "carried": found.carried,
        "leading": found.leading,
    }


async def _places(session: AsyncSession, poll: Poll) -> list[tuple[str, str]]:
    """Where the deadline is read: the group's cities; the network's zones for an election."""
    if poll.group_id is not None:
        return await sessions.places(session, poll.group_id)
    return []


async def close_choice(
    session: AsyncSession, *, actor: Actor | None, poll_id: int, now: datetime
) -> Poll:
    """Close a choice poll (by an organiser, or at its deadline when ``actor`` is None) and
    post the result, once, to the chat that shows the poll (else the group's chats)."""
    poll = await get(session, poll_id)
    if poll.kind != PollKind.CHOICE.value:
        raise errors.UnknownPoll(poll=poll_id)
    if actor is not None:
        require_poll_organiser(actor, poll)
    if poll.status == PollStatus.DRAFT.value:
        raise errors.PollNotOpenYet(poll=poll_id)
    found = await outcome(session, poll)
    chosen = found.carried[0] if found.carried and not poll.multiple else None
    if not await close(session, poll, now=now, outcome=chosen):
        raise errors.PollClosed(poll=poll_id)
    audit.record(
        session,
        actor_id=actor.user_id if actor else None,
        action="poll.close",
        subject=subject(poll_id),
        counts={str(p): n for p, n in found.counts.items()},
        voted=found.voted,
        entitled=found.entitled,
        quorum_met=found.quorum_met,
        carried=found.carried,
    )
    chats = (
        [poll.chat_id] if poll.chat_id else await sessions.group_chats(session, poll.group_id or 0)
    )
    facts = await describe_choice(session, poll)
    await outbox.enqueue_many(
        session,
        [
            outbox.Entry(chat, RESULT, facts, dedupe_key=f"{RESULT}:{poll_id}:{chat}")
            for chat in chats
        ],
    )
    return poll


async def open_choices(session: AsyncSession, group_id: int) -> list[Poll]:
    rows = await session.exec(
        select(Poll)
        .where(
            Poll.group_id == group_id,
            Poll.kind == PollKind.CHOICE.value,
            Poll.status == PollStatus.OPEN.value,
        )
        .order_by(col(Poll.id))
    )
    return list(rows.all())


async def drawn_state(session: AsyncSession, poll: Poll) -> str:
    """What the tally message must reflect: the poll's status and its last vote."""
    last = (
        await session.exec(
            select(func.max(AuditEntry.id)).where(AuditEntry.subject == subject(poll.id))
        )
    ).one()
    return f"{poll.status}:{last or 0}"


async def chat_language(session: AsyncSession, poll: Poll) -> str | None:
    """The tally's language: its chat's, else the language it was opened in."""
    chat = await session.get(Chat, poll.chat_id) if poll.chat_id is not None else None
    return (chat.language if chat is not None else None) or poll.language


async def mark_drawn(session: AsyncSession, *, poll_id: int, state: str) -> None:
    await session.exec(update(Poll).where(col(Poll.id) == poll_id).values(drawn=state))


async def stale_tallies(session: AsyncSession, *, now: datetime) -> list[int]:
    """Polls whose message may show less than what is stored (a process ended between a
    vote and its redraw): open ones, and those closed in the last day."""
    rows = await session.exec(
        select(Poll).where(
            col(Poll.kind).in_(COUNTED),
            col(Poll.message_id).is_not(None),
            or_(
                col(Poll.status) == PollStatus.OPEN.value,
                col(Poll.closed_at) >= now - timedelta(days=1),
            ),
        )
    )
    return [poll.id or 0 for poll in rows.all() if poll.drawn != await drawn_state(session, poll)]
