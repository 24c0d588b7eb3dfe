"""Broadcasts: the secretariat's messages to the network, delivered exactly once each.

A broadcast is drafted, given an audience, previewed with its exact recipient count
and confirmed. Confirming writes one outbox row per recipient in the confirming
update's own transaction, so a broadcast is either wholly queued or not at all, and
the outbox worker's leases make a restart resume where delivery stopped. Recipients
known to be unreachable (a person who blocked the bot, a chat that removed it) get a
row written as given up, so that the report names them too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, errors, groups, outbox
from storage.models import (
    Audience,
    Broadcast,
    BroadcastState,
    Chat,
    City,
    Country,
    Delegate,
    DelegateStatus,
    GroupStatus,
    OutboxMessage,
    User,
    WorkingGroup,
)
from storage.roles import Actor

KIND = "broadcast"  # an outbox row of a broadcast: params {"broadcast": id}
REPORT = "broadcast.report"  # the author's final report
MAX_PARTS = 4  # a broadcast is at most this many Telegram messages
MAX_TARGETS = 40

# Why a recipient was not reached, as the report says it.
BLOCKED = "blocked"  # a person blocked the bot
REMOVED = "removed"  # a group removed the bot
NOT_STARTED = "not_started"  # a person never opened a chat with the bot
DEACTIVATED = "deactivated"  # the account was deleted
NOT_FOUND = "not_found"  # Telegram knows no such chat
REFUSED = "refused"  # Telegram refused the message itself
GAVE_UP = "gave_up"  # timeouts or server errors outlasted every retry
UNREACHABLE = "unreachable"  # refused the bot last time (blocked it, or left Telegram)
STOPPED = "stopped"  # the author stopped the broadcast before it reached them

# Written as the error of a recipient given up before sending, from what the bot knew.
KNOWN_BLOCKED = "known unreachable: the person refused the bot's last message"
KNOWN_REMOVED = "known unreachable: the bot is no longer in this chat"
STOPPED_BY_AUTHOR = "stopped by its author before it was sent"


# A recipient still owed the message, and one given up on (a message in flight when the
# broadcast was stopped may still have gone out: that one counts as sent).
_OWED = and_(col(OutboxMessage.sent_at).is_(None), col(OutboxMessage.failed_at).is_(None))
_GIVEN_UP = and_(col(OutboxMessage.failed_at).is_not(None), col(OutboxMessage.sent_at).is_(None))


def reason(error: str | None) -> str:
    """The report's reason for a recipient given up, from the error Telegram gave."""
    if error == KNOWN_BLOCKED:
        return UNREACHABLE
    if error == STOPPED_BY_AUTHOR:
        return STOPPED
    text = (error or "").lower()
    if "blocked" in text:
        return BLOCKED
    if "kicked" in text or "no longer in this chat" in text or "not a member" in text:
        return REMOVED
    if "initiate conversation" in text:
        return NOT_STARTED
    if "deactivated" in text:
        return DEACTIVATED
    if "chat not found" in text:
        return NOT_FOUND
    if text.startswith("bad request") or "can't parse" in text:
        return REFUSED
    return GAVE_UP


@dataclass(frozen=True)
class Recipients:
    """Who a broadcast reaches: chat ids to send to, and those known to be unreachable."""

    reachable: tuple[int, ...]
    unreachable: tuple[tuple[int, str], ...]  # (chat id, why)

    @property
    def total(self) -> int:
        return len(self.reachable) + len(self.unreachable)


@dataclass(frozen=True)
class Counts:
    sent: int = 0
    failed: int = 0
    left: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.failed + self.left


@dataclass(frozen=True)
class Missed:
    """A recipient the broadcast did not reach, named for the report."""

    name: str
    city: str
    reason: str


@dataclass
class Report:
    broadcast: Broadcast
    counts: Counts
    missed: list[Missed] = field(default_factory=list)


# --- drafting -------------------------------------------------------------------------------


async def draft(
    session: AsyncSession, *, actor: Actor, text: str, parts: int, chat_id: int, now: datetime
) -> Broadcast:
    """A new broadcast of ``text`` (Telegram HTML, ``parts`` messages long) by the secretariat."""
    actor.require_secretariat()
    if not text.strip():
        raise errors.EmptyBroadcast()
    if parts > MAX_PARTS:  # four parts are at most 16,384 characters: the column holds them
        raise errors.BroadcastTooLong(parts=MAX_PARTS)
    broadcast = Broadcast(
        author_id=actor.user_id, text=text, parts=parts, chat_id=chat_id, created_at=now
    )
    session.add(broadcast)
    await session.flush()
    audit.record(
        session,
        actor_id=actor.user_id,
        action="broadcast.draft",
        subject=f"broadcast:{broadcast.id}",
        parts=parts,
    )
    return broadcast


async def _own_draft(session: AsyncSession, actor: Actor, broadcast_id: int) -> Broadcast:
    """The actor's broadcast ``broadcast_id`` while it is a draft, held for the change."""
    actor.require_secretariat()
    broadcast = await _get(session, broadcast_id, lock=True)
    if broadcast.author_id != actor.user_id:
        raise errors.NotYourBroadcast(number=broadcast_id)
    if broadcast.state != BroadcastState.DRAFT:
        raise errors.BroadcastNotDraft(number=broadcast_id, state=broadcast.state)
    return broadcast


async def _get(session: AsyncSession, broadcast_id: int, *, lock: bool = False) -> Broadcast:
    query = select(Broadcast).where(col(Broadcast.id) == broadcast_id)
    if lock:
        query = query.with_for_update()
    broadcast = (await session.exec(query.execution_options(populate_existing=True))).first()
    if broadcast is None:
        raise errors.UnknownBroadcast(number=broadcast_id)
    return broadcast


async def get(session: AsyncSession, broadcast_id: int) -> Broadcast:
    return await _get(session, broadcast_id)


async def choose(
    session: AsyncSession,
    *,
    actor: Actor,
    broadcast_id: int,
    audience: Audience | None,
    toggle: str | None = None,
) -> Broadcast:
    """Set the draft's audience (None: to be chosen again); ``toggle`` adds or removes one
    group slug or country code."""
    broadcast = await _own_draft(session, actor, broadcast_id)
    if audience is None:
        broadcast.audience = None
        broadcast.targets = []
        session.add(broadcast)
        await session.flush()
        return broadcast
    targets = list(broadcast.targets) if broadcast.audience == audience.value else []
    if toggle is not None:
        if audience == Audience.SOME_GROUPS:
            toggle = (await groups.get_group(session, toggle)).slug
        elif audience == Audience.COUNTRIES:
            if await session.get(Country, toggle) is None:
                raise errors.UnknownCountry(code=toggle)
        else:
            raise errors.UnknownGroup(slug=toggle)
        if toggle in targets:
            targets.remove(toggle)
        elif len(targets) < MAX_TARGETS:
            targets.append(toggle)
    broadcast.audience = audience.value
    broadcast.targets = sorted(targets)
    session.add(broadcast)
    await session.flush()
    return broadcast


async def recipients(session: AsyncSession, broadcast: Broadcast) -> Recipients:
    """Everyone the draft's audience reaches now, each chat once, in a stable order."""
    audience = Audience(broadcast.audience) if broadcast.audience else None
    found: dict[int, str | None] = {}  # chat id -> why unreachable, or None
    if audience in (Audience.GROUP_CHATS, Audience.SOME_GROUPS):
        query = (
            select(col(Chat.chat_id), col(Chat.bot_is_member))
            .join(WorkingGroup, col(WorkingGroup.id) == col(Chat.group_id))
            .where(WorkingGroup.status == GroupStatus.ACTIVE.value)
        )
        if audience == Audience.SOME_GROUPS:
            query = query.where(col(WorkingGroup.slug).in_(broadcast.targets or [""]))
        for chat_id, member in (await session.exec(query)).all():
            found[chat_id] = None if member else KNOWN_REMOVED
    elif audience in (Audience.DELEGATES, Audience.COUNTRIES):
        people = (
            select(col(Delegate.user_id), col(User.blocked_at))
            .join(City, col(City.id) == col(Delegate.city_id))
            .outerjoin(User, col(User.telegram_id) == col(Delegate.user_id))
            .where(Delegate.status == DelegateStatus.APPROVED.value)
        )
        if audience == Audience.COUNTRIES:
            people = people.where(col(City.country_code).in_(broadcast.targets or [""]))
        for user_id, blocked_at in (await session.exec(people)).all():
            found[user_id] = KNOWN_BLOCKED if blocked_at is not None else None
    ordered = sorted(found.items())
    return Recipients(
        reachable=tuple(chat_id for chat_id, why in ordered if why is None),
        unreachable=tuple((chat_id, why) for chat_id, why in ordered if why is not None),
    )


async def confirm(
    session: AsyncSession,
    *,
    actor: Actor,
    broadcast_id: int,
    expected: int,
    now: datetime,
) -> tuple[Broadcast, Recipients]:
    """Queue the broadcast for everyone in its audience, if that is still the ``expected``
    number of recipients the author was shown; exactly once, whoever presses how often."""
    broadcast = await _own_draft(session, actor, broadcast_id)
    if broadcast.audience is None:
        raise errors.NoAudience(number=broadcast_id)
    found = await recipients(session, broadcast)
    if found.total == 0:
        raise errors.NoRecipients(number=broadcast_id)
    if found.total != expected:
        raise errors.AudienceChanged(number=broadcast_id, count=found.total, expected=expected)
    # The state is the guard: of two confirmations racing past the lock (SQLite takes
    # none on read), only the one that still finds a draft writes anything.
    changed = await session.exec(
        update(Broadcast)
        .where(col(Broadcast.id) == broadcast_id, col(Broadcast.state) == BroadcastState.DRAFT)
        .values(state=BroadcastState.SENDING.value, confirmed_at=now, recipients=found.total)
    )
    if changed.rowcount != 1:
        raise errors.BroadcastNotDraft(number=broadcast_id, state=BroadcastState.SENDING.value)

    def entry(chat_id: int) -> outbox.Entry:
        return outbox.Entry(
            chat_id, KIND, {"broadcast": broadcast_id}, f"broadcast:{broadcast_id}:{chat_id}"
        )

    await outbox.enqueue_many(session, [entry(c) for c in found.reachable], batch_id=broadcast_id)
    for why in {why for _chat, why in found.unreachable}:
        await outbox.enqueue_many(
            session,
            [entry(c) for c, w in found.unreachable if w == why],
            batch_id=broadcast_id,
            dropped=(now, why),
        )
    audit.record(
        session,
        actor_id=actor.user_id,
        action="broadcast.confirm",
        subject=f"broadcast:{broadcast_id}",
        audience=broadcast.audience,
        targets=list(broadcast.targets),
        recipients=found.total,
        unreachable=len(found.unreachable),
    )
    refreshed = await _get(session, broadcast_id)
    return refreshed, found


async def cancel(
    session: AsyncSession, *, actor: Actor, broadcast_id: int, now: datetime
) -> Broadcast:
    """Drop a draft; a broadcast already confirmed cannot be called back."""
    broadcast = await _own_draft(session, actor, broadcast_id)
    broadcast.state = BroadcastState.CANCELLED.value
    broadcast.finished_at = now
    session.add(broadcast)
    await session.flush()
    audit.record(
        session,
        actor_id=actor.user_id,
        action="broadcast.cancel",
        subject=f"broadcast:{broadcast_id}",
    )
    return broadcast


async def stop(session: AsyncSession, *, actor: Actor, broadcast_id: int, now: datetime) -> int:
    """Stop a broadcast being delivered: whoever it has not reached yet is not sent it.
    Returns how many that is. A message a worker holds at this moment may still go out."""
    actor.require_secretariat()
    broadcast = await _get(session, broadcast_id, lock=True)
    if broadcast.author_id != actor.user_id:
        raise errors.NotYourBroadcast(number=broadcast_id)
    if broadcast.state != BroadcastState.SENDING:
        raise errors.BroadcastNotSending(number=broadcast_id)
    stopped = await session.exec(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.batch_id) == broadcast_id,
            col(OutboxMessage.kind) == KIND,
            _OWED,
        )
        .values(failed_at=now, error=STOPPED_BY_AUTHOR)
    )
    audit.record(
        session,
        actor_id=actor.user_id,
        action="broadcast.stop",
        subject=f"broadcast:{broadcast_id}",
        stopped=int(stopped.rowcount),
    )
    return int(stopped.rowcount)


async def set_control(session: AsyncSession, *, broadcast_id: int, message_id: int) -> None:
    """The message (in the author's chat) that shows the broadcast's progress."""
    await session.exec(
        update(Broadcast).where(col(Broadcast.id) == broadcast_id).values(message_id=message_id)
    )


# --- delivery -------------------------------------------------------------------------------


async def bodies(session: AsyncSession, broadcast_ids: Sequence[int]) -> dict[int, str]:
    """The text of each of these broadcasts (what the outbox worker sends)."""
    if not broadcast_ids:
        return {}
    rows = await session.exec(
        select(col(Broadcast.id), col(Broadcast.text)).where(
            col(Broadcast.id).in_(list(broadcast_ids))
        )
    )
    return {int(broadcast_id or 0): text for broadcast_id, text in rows.all()}


async def counts(session: AsyncSession, broadcast_ids: Sequence[int]) -> dict[int, Counts]:
    """How far each broadcast's delivery is (every id asked for, nothing yet for a draft):
    one grouped count over their outbox rows."""
    found = dict.fromkeys(broadcast_ids, Counts())
    if not broadcast_ids:
        return found
    sent = func.count(col(OutboxMessage.sent_at))
    failed = func.sum(case((_GIVEN_UP, 1), else_=0))
    left = func.sum(case((_OWED, 1), else_=0))
    rows = await session.exec(
        select(col(OutboxMessage.batch_id), sent, failed, left)
        .where(col(OutboxMessage.batch_id).in_(list(broadcast_ids)), OutboxMessage.kind == KIND)
        .group_by(col(OutboxMessage.batch_id))
    )
    for batch, s, f, rest in rows.all():
        found[int(batch or 0)] = Counts(sent=int(s), failed=int(f or 0), left=int(rest or 0))
    return found


async def sending(session: AsyncSession) -> list[int]:
    """The broadcasts being delivered now."""
    rows = await session.exec(
        select(col(Broadcast.id)).where(Broadcast.state == BroadcastState.SENDING.value)
    )
    return [int(b or 0) for b in rows.all()]


@dataclass(frozen=True)
class Delivery:
    """Where a broadcast's delivery stands, as one look at it found it."""

    broadcast: Broadcast
    counts: Counts
    finished: bool  # closed by this look: its report is owed to the author now


async def finish(session: AsyncSession, *, broadcast_id: int, now: datetime) -> Delivery:
    """Look at a broadcast's delivery; one whose every recipient was reached or given up
    on is closed (once, whoever looks) and its author is owed the report."""
    tally = (await counts(session, [broadcast_id]))[broadcast_id]
    finished = False
    if not tally.left:
        changed = await session.exec(
            update(Broadcast)
            .where(
                col(Broadcast.id) == broadcast_id, col(Broadcast.state) == BroadcastState.SENDING
            )
            .values(state=BroadcastState.DONE.value, finished_at=now)
        )
        finished = changed.rowcount == 1
    broadcast = await _get(session, broadcast_id)
    if finished:
        report = await _report(session, broadcast, tally)
        await outbox.enqueue(
            session,
            chat_id=broadcast.chat_id or broadcast.author_id,
            kind=REPORT,
            params=report_params(report),
            dedupe_key=f"broadcast:{broadcast_id}:report",
        )
        audit.record(
            session,
            actor_id=None,
            action="broadcast.done",
            subject=f"broadcast:{broadcast_id}",
            sent=tally.sent,
            failed=tally.failed,
        )
    return Delivery(broadcast=broadcast, counts=tally, finished=finished)


async def report_of(session: AsyncSession, *, actor: Actor, broadcast_id: int) -> Report:
    """The broadcast, its counts and every recipient it did not reach, named (for the
    secretariat)."""
    actor.require_secretariat()
    broadcast = await _get(session, broadcast_id)
    return await _report(session, broadcast, (await counts(session, [broadcast_id]))[broadcast_id])


async def _report(session: AsyncSession, broadcast: Broadcast, tally: Counts) -> Report:
    broadcast_id = broadcast.id or 0
    failed = await session.exec(
        select(col(OutboxMessage.chat_id), col(OutboxMessage.error)).where(
            col(OutboxMessage.batch_id) == broadcast_id, OutboxMessage.kind == KIND, _GIVEN_UP
        )
    )
    rows = list(failed.all())
    names = await _names(session, [chat_id for chat_id, _error in rows])
    missed = [
        Missed(
            # Someone the bot never met (a delegate imported by hand) is named by their id.
            name=names.get(chat_id, (str(chat_id), ""))[0],
            city=names.get(chat_id, (str(chat_id), ""))[1],
            reason=reason(error),
        )
        for chat_id, error in rows
    ]
    missed.sort(key=lambda m: (m.name.casefold(), m.city.casefold()))
    return Report(broadcast=broadcast, counts=tally, missed=missed)


async def _names(session: AsyncSession, chat_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """(name, city or group) of each chat: a person and their city, or a group's chat."""
    found: dict[int, tuple[str, str]] = {}
    people = [c for c in chat_ids if c > 0]
    groups = [c for c in chat_ids if c < 0]
    if people:
        rows = await session.exec(
            select(col(User.telegram_id), col(User.full_name), col(City.name))
            .outerjoin(
                Delegate,
                and_(
                    col(Delegate.user_id) == col(User.telegram_id),
                    col(Delegate.status) == DelegateStatus.APPROVED.value,
                ),
            )
            .outerjoin(City, col(City.id) == col(Delegate.city_id))
            .where(col(User.telegram_id).in_(people))
        )
        for user_id, name, city in rows.all():
            found[user_id] = (name or str(user_id), city or "")
    if groups:
        chats = await session.exec(
            select(col(Chat.chat_id), col(Chat.title), col(WorkingGroup.name))
            .outerjoin(WorkingGroup, col(WorkingGroup.id) == col(Chat.group_id))
            .where(col(Chat.chat_id).in_(groups))
        )
        for chat_id, title, group in chats.all():
            found[chat_id] = (title or str(chat_id), group or "")
    return found


def report_params(report: Report) -> dict[str, Any]:
    """The facts of the author's report, for the outbox (rendered in the author's language)."""
    return {
        "number": report.broadcast.id,
        "sent": report.counts.sent,
        "total": report.counts.total,
        # Those the author stopped it for are counted, not named: they may be hundreds.
        "stopped": sum(1 for m in report.missed if m.reason == STOPPED),
        "missed": [
            {"name": m.name, "city": m.city, "reason": m.reason}
            for m in report.missed
            if m.reason != STOPPED
        ],
    }


async def recent(
    session: AsyncSession, *, actor: Actor, limit: int = 10
) -> list[tuple[Broadcast, Counts]]:
    """The latest broadcasts (drafts dropped are left out), newest first, with their counts."""
    actor.require_secretariat()
    rows = await session.exec(
        select(Broadcast)
        .where(Broadcast.state != BroadcastState.CANCELLED.value)
        .order_by(col(Broadcast.id).desc())
        .limit(limit)
    )
    found = list(rows.all())
    tallies = await counts(session, [b.id or 0 for b in found])
    return [(b, tallies[b.id or 0]) for b in found]
