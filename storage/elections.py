"""The presidency election: candidacies, one vote per member city, a runoff on a tie.

An election is a poll of the whole network (``PollKind.ELECTION``, no working group)
whose options are the standing cities. While it takes candidacies it is a draft;
the secretariat opens the vote, then closes it. The city most cities voted for
becomes the term presidency of the election's year; a tie opens a runoff between
the tied cities. Votes are counted by ``polls.cast``, the one rule for every poll.
The statute: every member city may stand (its mayor does), but the city holding a
term next to the one elected cannot, since no city holds two terms in a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, errors, outbox, polls, presidency
from storage.models import (
    Chat,
    City,
    Poll,
    PollKind,
    PollStatus,
    Presidency,
    Quorum,
    Threshold,
)
from storage.roles import Actor

# The secretariat closes an election; this only keeps a forgotten one from taking votes forever.
LONGEST = timedelta(days=365)
RULES = polls.Rules(
    multiple=False,
    hidden=True,  # no running count to follow: cities vote their own mind
    anonymous=True,  # a secret ballot: counts only, in chat and in the result
    quorum=Quorum.NONE,
    threshold=Threshold.MAJORITY,
    runs_for=LONGEST,
)
OPENED = "election.opened"  # outbox kind: voting is open (sent to every working group's chat)
DECIDED = "election.decided"  # outbox kind: the result


def _record(session: AsyncSession, actor: Actor, action: str, poll: Poll, **details: Any) -> None:
    """An election step in the audit log: who, which round, which term."""
    audit.record(
        session,
        actor_id=actor.user_id,
        action=action,
        subject=polls.subject(poll.id),
        year=year_of(poll),
        **details,
    )


async def current(session: AsyncSession) -> Poll | None:
    """The election under way: taking candidacies or votes (the latest round)."""
    rows = await session.exec(
        select(Poll)
        .where(
            Poll.kind == PollKind.ELECTION.value,
            col(Poll.status).in_([PollStatus.DRAFT.value, PollStatus.OPEN.value]),
        )
        .order_by(col(Poll.id).desc())
    )
    return rows.first()


async def _require_current(session: AsyncSession) -> Poll:
    election = await current(session)
    if election is None:
        raise errors.NoElection()
    return election


def year_of(election: Poll) -> int:
    return int(election.purpose or 0)


async def next_term_year(session: AsyncSession, *, today: date) -> int:
    """The term to elect: the one after the latest recorded, and never one already begun."""
    latest = (
        await session.exec(select(Presidency.year).order_by(col(Presidency.year).desc()))
    ).first()
    return max((latest or 0) + 1, today.year + 1)


async def open_election(
    session: AsyncSession, *, actor: Actor, today: date, now: datetime, language: str | None
) -> Poll:
    """The secretariat opens the election of the next term: candidacies first."""
    actor.require_secretariat()
    running = await current(session)
    if running is not None:
        raise errors.ElectionInProgress(year=year_of(running))
    year = await next_term_year(session, today=today)
    election = await polls.create(
        session,
        kind=PollKind.ELECTION.value,
        group=None,
        question="",
        options=[],
        closes_at=now + LONGEST,
        created_by=actor.user_id,
        purpose=str(year),
        rules=RULES,
        status=PollStatus.DRAFT,
        now=now,
        language=language,
    )
    _record(
        session,
        actor,
        "election.open",
        election,
    )
    return election


async def _neighbour_term(session: AsyncSession, city: City, year: int) -> int | None:
    """The year of a term next to ``year`` that ``city`` holds, if any."""
    rows = await session.exec(
        select(Presidency.year).where(
            Presidency.city_id == city.id, col(Presidency.year).in_([year - 1, year + 1])
        )
    )
    return rows.first()


async def stand(session: AsyncSession, *, actor: Actor) -> tuple[Poll, City]:
    """/candidacy: the actor's city stands for the presidency."""
    city = actor.approved_city()
    election = await _require_current(session)
    year = year_of(election)
    if election.status != PollStatus.DRAFT.value:
        raise errors.CandidaciesClosed(year=year)
    held = await _neighbour_term(session, city, year)
    if held is not None:
        raise errors.ConsecutiveTerm(city=city.name, year=held)
    standing = await candidates(session, election)
    if city.id in {c.id for c in standing}:
        raise errors.AlreadyCandidate(city=city.name, year=year)
    await polls.add_options(
        session, election, [polls.NewOption(label=city.name, notes={"city_id": city.id})]
    )
    _record(session, actor, "election.candidacy", election, city=city.name)
    return election, city


async def candidates(session: AsyncSession, election: Poll) -> list[City]:
    found = []
    for option in await polls.options(session, election.id or 0):
        city = await session.get(City, option.notes.get("city_id"))
        if city is not None:
            found.append(city)
    return found


async def open_vote(session: AsyncSession, *, actor: Actor, now: datetime) -> Poll:
    """The secretariat ends the candidacies and opens the vote; every group's chat is told."""
    actor.require_secretariat()
    election = await _require_current(session)
    year = year_of(election)
    if election.status != PollStatus.DRAFT.value:
        raise errors.ElectionInProgress(year=year)
    if not await polls.options(session, election.id or 0):
        raise errors.NoCandidacies(year=year)
    election.status = PollStatus.OPEN.value
    election.created_at = now
    election.closes_at = now + LONGEST
    session.add(election)
    await session.flush()
    _record(
        session,
        actor,
        "election.vote",
        election,
    )
    await _tell_network(session, election, kind=OPENED)
    return election


async def _tell_network(session: AsyncSession, election: Poll, *, kind: str) -> None:
    chats = (
        await session.exec(
            select(Chat.chat_id).where(col(Chat.group_id).is_not(None), col(Chat.bot_is_member))
        )
    ).all()
    facts = await polls.describe_choice(session, election)
    await outbox.enqueue_many(
        session,
        [
            outbox.Entry(chat, kind, facts, dedupe_key=f"{kind}:{election.id}:{chat}")
            for chat in sorted(chats)
        ],
    )


@dataclass(frozen=True)
class Decision:
    election: Poll  # the round that was closed
    winner: City | None
    term: Presidency | None
    runoff: Poll | None  # the next round, between the tied cities


async def close(session: AsyncSession, *, actor: Actor, now: datetime) -> Decision:
    """The secretariat closes the vote: the city most cities voted for holds the next term;
    on a tie a runoff between the tied cities opens at once."""
    actor.require_secretariat()
    election = await _require_current(session)
    year = year_of(election)
    if election.status != PollStatus.OPEN.value:
        raise errors.VotingNotOpen(year=year)
    found = await polls.outcome(session, election)
    if found.voted == 0:
        raise errors.ElectionHasNoVotes(year=year)
    by_position = {o.position: o for o in await polls.options(session, election.id or 0)}
    leading = found.leading
    winner = term = runoff = None
    if len(leading) == 1:
        winner = await session.get(City, by_position[leading[0]].notes["city_id"])
        if winner is None:
            raise errors.UnknownCity(name=by_position[leading[0]].label)
    if not await polls.close(
        session, election, now=now, outcome=leading[0] if winner is not None else None
    ):
        raise errors.PollClosed(poll=election.id)
    _record(
        session,
        actor,
        "election.close",
        election,
        counts={by_position[p].label: n for p, n in found.counts.items()},
        voted=found.voted,
        entitled=found.entitled,
        winner=winner.name if winner else None,
    )
    if winner is not None:
        term = await presidency.set_term(session, actor=actor, city=winner, year=year)
    else:
        runoff = await polls.create(
            session,
            kind=PollKind.ELECTION.value,
            group=None,
            question="runoff",
            options=[
                polls.NewOption(label=by_position[p].label, notes=dict(by_position[p].notes))
                for p in leading
            ],
            closes_at=now + LONGEST,
            created_by=actor.user_id,
            purpose=str(year),
            rules=RULES,
            now=now,
            language=election.language,
        )
        _record(
            session,
            actor,
            "election.runoff",
            runoff,
            cities=[by_position[p].label for p in leading],
        )
    await _tell_network(session, election, kind=DECIDED)
    if runoff is not None:
        await _tell_network(session, runoff, kind=OPENED)
    return Decision(election=election, winner=winner, term=term, runoff=runoff)
