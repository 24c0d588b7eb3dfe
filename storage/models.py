"""The network's state: SQLModel tables.

Every instant is an aware UTC datetime (``UTCDateTime``); every zone an IANA
name; every Telegram id a 64-bit integer. Enumerations are stored as short
strings, checked by the services, so that SQLite and PostgreSQL hold the
same thing and a new value needs no type migration.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


class DelegateRole(StrEnum):
    MAYOR = "mayor"
    FOCAL_POINT = "focal_point"
    TECHNICAL_STAFF = "technical_staff"


class DelegateStatus(StrEnum):
    """The life of one claim. A user has at most one pending and one approved claim."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # replaced by a newer claim of the same user before a decision
    SUPERSEDED = "superseded"  # an approved claim replaced by a newer approved one (new role)
    REMOVED = "removed"


class GroupStatus(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    ARCHIVED = "archived"


class ApplicationStatus(StrEnum):
    PENDING = "pending"
    ADMITTED = "admitted"
    DECLINED = "declined"


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def _instant(nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable)


def _telegram_id(*, primary_key: bool = False, nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=Column(BigInteger, primary_key=primary_key, nullable=nullable, index=index),
    )


class Country(SQLModel, table=True):
    __tablename__ = "country"
    code: str = Field(primary_key=True, max_length=2)  # ISO 3166 alpha-2, XK for Kosovo
    name: str = Field(max_length=80)  # English name; shown names come from Babel


class City(SQLModel, table=True):
    __tablename__ = "city"
    __table_args__ = (UniqueConstraint("country_code", "search_key", name="uq_city_country_key"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80)
    search_key: str = Field(max_length=80, index=True)
    country_code: str = Field(foreign_key="country.code", max_length=2, index=True)
    timezone: str = Field(max_length=64)
    founding: bool = False
    joined_on: date
    created_at: datetime = _created()
    # Working hours for planning, in local wall time: "HH:MM", and ISO weekdays "12345".
    work_start: str = Field(default="09:00", max_length=5)
    work_end: str = Field(default="17:00", max_length=5)
    work_days: str = Field(default="12345", max_length=7)


class User(SQLModel, table=True):
    """Anyone who has spoken to the bot: their language and whether they blocked it."""

    __tablename__ = "telegram_user"

    telegram_id: int = _telegram_id(primary_key=True)
    full_name: str = Field(default="", max_length=200)
    username: str | None = Field(default=None, max_length=64)
    language: str | None = Field(default=None, max_length=16)  # chosen with /language or /start
    telegram_language: str | None = Field(default=None, max_length=16)  # Telegram's language_code
    blocked_at: datetime | None = _instant()
    first_seen: datetime = _created()


class Delegate(SQLModel, table=True):
    """A claim of a Telegram user to speak for a member city, and its decision.

    Every claim is a row of its own with a number the secretariat decides by, so a
    decision can never land on a claim the user made after the notice was drawn. The
    partial unique indexes keep at most one pending and one approved claim per user,
    also when two updates race.
    """

    __tablename__ = "delegate"
    __table_args__ = (
        Index(
            "uq_delegate_pending",
            "user_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "uq_delegate_approved",
            "user_id",
            unique=True,
            sqlite_where=text("status = 'approved'"),
            postgresql_where=text("status = 'approved'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    city_id: int = Field(foreign_key="city.id", index=True)
    role: str = Field(default=DelegateRole.FOCAL_POINT.value, max_length=20)
    status: str = Field(default=DelegateStatus.PENDING.value, max_length=12, index=True)
    created_at: datetime = _created()
    decided_at: datetime | None = _instant()
    decided_by: int | None = _telegram_id(nullable=True)


class SecretariatMember(SQLModel, table=True):
    """Staff added in chat; those in B40_SECRETARIAT are members without a row."""

    __tablename__ = "secretariat_member"

    user_id: int = _telegram_id(primary_key=True)
    added_by: int | None = _telegram_id(nullable=True)
    added_at: datetime = _created()


class WorkingGroup(SQLModel, table=True):
    __tablename__ = "working_group"
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=40, unique=True, index=True)
    name: str = Field(max_length=120)
    status: str = Field(default=GroupStatus.ACTIVE.value, max_length=12)
    proposed_by: int | None = _telegram_id(nullable=True)
    proposed_as: str | None = Field(default=None, max_length=12)  # "presidency" | "secretariat"
    confirmed_by: int | None = _telegram_id(nullable=True)
    created_at: datetime = _created()
    # The quarterly cadence: planning opens this many weeks before each quarter; 0 is off.
    cadence_weeks: int = 4
    # Agenda requests for a session close this many days before it starts.
    request_deadline_days: int = 7


class GroupMembership(SQLModel, table=True):
    __tablename__ = "group_membership"
    group_id: int = Field(foreign_key="working_group.id", primary_key=True)
    city_id: int = Field(foreign_key="city.id", primary_key=True, index=True)
    joined_at: datetime = _created()


class Chat(SQLModel, table=True):
    """A chat the bot is or was in; linked to at most one working group."""

    __tablename__ = "chat"

    chat_id: int = _telegram_id(primary_key=True)
    type: str = Field(max_length=12)
    title: str = Field(default="", max_length=256)
    language: str | None = Field(default=None, max_length=16)
    bot_is_member: bool = True
    group_id: int | None = Field(default=None, foreign_key="working_group.id", index=True)
    linked_by: int | None = _telegram_id(nullable=True)
    updated_at: datetime = _created()


class Coordinator(SQLModel, table=True):
    __tablename__ = "coordinator"
    group_id: int = Field(foreign_key="working_group.id", primary_key=True)
    user_id: int = _telegram_id(primary_key=True)
    appointed_by: int | None = _telegram_id(nullable=True)
    appointed_at: datetime = _created()


class Presidency(SQLModel, table=True):
    """A term presidency: one member city for one year."""

    __tablename__ = "presidency"

    id: int | None = Field(default=None, primary_key=True)
    city_id: int = Field(foreign_key="city.id")
    year: int = Field(unique=True, index=True)
    starts_on: date
    ends_on: date
    created_at: datetime = _created()


class MembershipApplication(SQLModel, table=True):
    __tablename__ = "membership_application"
    id: int | None = Field(default=None, primary_key=True)
    applicant_id: int = _telegram_id()
    city_name: str = Field(max_length=80)
    country_code: str = Field(max_length=2)
    timezone: str = Field(max_length=64)
    status: str = Field(default=ApplicationStatus.PENDING.value, max_length=12, index=True)
    city_id: int | None = Field(default=None, foreign_key="city.id")
    created_at: datetime = _created()
    decided_by: int | None = _telegram_id(nullable=True)
    decided_at: datetime | None = _instant()


class AuditEntry(SQLModel, table=True):
    """Append-only: who changed the roster, groups, presidency, agendas and polls, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_subject", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _created()
    actor_id: int | None = _telegram_id(nullable=True)
    action: str = Field(max_length=40, index=True)
    subject: str = Field(default="", max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ProcessedUpdate(SQLModel, table=True):
    """Telegram delivers at least once: an id seen here is not processed again."""

    __tablename__ = "processed_update"

    update_id: int = _telegram_id(primary_key=True)
    processed_at: datetime = _created()


class OutboxMessage(SQLModel, table=True):
    """A message owed to a chat because state changed, written in the same transaction.

    Typed: ``kind`` names what is said and ``params`` the facts, rendered in the
    recipient's language when it is delivered. ``dedupe_key`` makes a second write of
    the same notice a no-op; ``leased_until`` keeps two workers from sending one row.
    """

    __tablename__ = "outbox_message"

    __table_args__ = (
        Index("ix_outbox_due", "sent_at", "failed_at", "not_before"),
        Index("ix_outbox_chat", "chat_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = _telegram_id()
    kind: str = Field(max_length=40)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dedupe_key: str | None = Field(default=None, max_length=120, unique=True, index=True)
    batch_id: int | None = Field(default=None, index=True)
    created_at: datetime = _created()
    not_before: datetime = _created()
    leased_until: datetime | None = _instant()
    attempts: int = 0
    parts_sent: int = 0  # of a text split in several messages, how many went out
    sent_at: datetime | None = _instant()
    failed_at: datetime | None = _instant()
    error: str | None = Field(default=None, max_length=300)


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class WorkingSession(SQLModel, table=True):
    """A session of a working group: when (UTC), for how long, where to join.

    ``sequence`` rises on every change (calendar feeds carry it as SEQUENCE); a
    cancelled session keeps its row, so feeds and the record show it as cancelled.
    """

    __tablename__ = "working_session"
    __table_args__ = (Index("ix_working_session_group_start", "group_id", "starts_at"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="working_group.id")
    title: str = Field(default="", max_length=200)
    starts_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    ends_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    status: str = Field(default=SessionStatus.SCHEDULED.value, max_length=12, index=True)
    join_url: str = Field(max_length=500)
    sequence: int = 0
    created_by: int | None = _telegram_id(nullable=True)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class SessionRsvp(SQLModel, table=True):
    """A delegate's answer for a session: attending, maybe, or not."""

    __tablename__ = "session_rsvp"

    session_id: int = Field(foreign_key="working_session.id", primary_key=True)
    user_id: int = _telegram_id(primary_key=True)
    city_id: int = Field(foreign_key="city.id", index=True)
    answer: str = Field(max_length=8)
    answered_at: datetime = _created()


class PollKind(StrEnum):
    AVAILABILITY = "availability"  # each option answered yes / maybe / no (planning a session)
    CHOICE = "choice"  # /poll: a question to a working group's cities
    ELECTION = "election"  # the presidency election: every member city of the network


class Quorum(StrEnum):
    """The share of the cities entitled to vote that must vote for the result to stand."""

    NONE = "none"
    THIRD = "third"
    HALF = "half"
    TWO_THIRDS = "two_thirds"


class Threshold(StrEnum):
    """What the leading option needs of the cities that voted to carry the poll."""

    MAJORITY = "majority"  # more than half
    TWO_THIRDS = "two_thirds"  # at least two thirds


class PollStatus(StrEnum):
    DRAFT = "draft"  # being set up (/poll's guided form; an election taking candidacies)
    OPEN = "open"
    CLOSED = "closed"  # decided: ``outcome`` names the option, or None when none was chosen
    SUPERSEDED = "superseded"  # a newer poll of the same group and kind replaced it


class Poll(SQLModel, table=True):
    """A question to the cities, counted one city, one answer (the last of its delegates)."""

    __tablename__ = "poll"
    __table_args__ = (Index("ix_poll_status_closes", "status", "closes_at"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int | None = Field(default=None, foreign_key="working_group.id", index=True)
    kind: str = Field(max_length=16)
    question: str = Field(default="", max_length=300)
    status: str = Field(default=PollStatus.OPEN.value, max_length=12)
    closes_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    length_minutes: int | None = None  # availability: the session's length
    # Why it was opened: "2027Q1" by the quarterly cadence, "request" by cities' requests.
    purpose: str | None = Field(default=None, max_length=16)
    outcome: int | None = None  # the chosen option's position
    session_id: int | None = Field(default=None, foreign_key="working_session.id")
    created_by: int | None = _telegram_id(nullable=True)
    created_at: datetime = _created()
    closed_at: datetime | None = _instant()
    # How a choice poll or an election counts and shows (the availability poll ignores these).
    multiple: bool = False  # each city may choose several options
    hidden: bool = False  # results shown only when the poll closes
    anonymous: bool = False  # counts only, never which city chose what
    quorum: str = Field(default=Quorum.NONE.value, max_length=12)
    threshold: str = Field(default=Threshold.MAJORITY.value, max_length=12)
    # The message that shows the tally, and what it last showed ("status:last vote's audit id").
    chat_id: int | None = _telegram_id(nullable=True)
    message_id: int | None = _telegram_id(nullable=True)
    drawn: str = Field(default="", max_length=40)
    language: str | None = Field(default=None, max_length=16)  # the tally's, when drawn by the bot


class PollOption(SQLModel, table=True):
    __tablename__ = "poll_option"

    poll_id: int = Field(foreign_key="poll.id", primary_key=True)
    position: int = Field(primary_key=True)  # 1, 2, ... as shown
    label: str = Field(default="", max_length=200)
    starts_at: datetime | None = _instant()
    ends_at: datetime | None = _instant()
    # Why the proposal leaves cities out, as the planner said when it was made.
    notes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class PollVote(SQLModel, table=True):
    """A city's answer to one option: the last delegate of the city to answer sets it."""

    __tablename__ = "poll_vote"

    poll_id: int = Field(foreign_key="poll.id", primary_key=True)
    position: int = Field(primary_key=True)
    city_id: int = Field(foreign_key="city.id", primary_key=True)
    user_id: int = _telegram_id()
    value: str = Field(max_length=8)
    cast_at: datetime = _created()


class SessionRequest(SQLModel, table=True):
    """A city asks its working group for an extra session (``/request_session``)."""

    __tablename__ = "session_request"
    __table_args__ = (Index("ix_session_request_group", "group_id", "poll_id"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="working_group.id")
    city_id: int = Field(foreign_key="city.id")
    user_id: int = _telegram_id()
    reason: str = Field(default="", max_length=300)
    requested_at: datetime = _created()
    poll_id: int | None = Field(default=None, foreign_key="poll.id")  # the planning it opened


class AgendaStatus(StrEnum):
    PENDING = "pending"  # waiting for the organisers' decision
    ACCEPTED = "accepted"  # on the session's agenda
    DECLINED = "declined"  # with the organisers' reason


class AgendaOutcome(StrEnum):
    """What became of an accepted item at its session (the annual report counts these)."""

    RECOMMENDATION = "recommendation"  # a recommendation was made: ``recommendation`` says it
    NOTED = "noted"  # discussed; nothing recommended
    NOT_REACHED = "not_reached"  # the session did not get to it


class AgendaItem(SQLModel, table=True):
    """A city's request for an item on a working group's agenda, and what became of it.

    ``session_id`` is the session it is for: None while the group has no session taking
    requests (it is attached when one is fixed). A deferred item moves on to the following
    session and waits for a decision there again (``deferrals`` counts the moves).
    """

    __tablename__ = "agenda_item"
    __table_args__ = (Index("ix_agenda_item_group_session", "group_id", "session_id"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="working_group.id")
    session_id: int | None = Field(default=None, foreign_key="working_session.id", index=True)
    city_id: int = Field(foreign_key="city.id")
    user_id: int = _telegram_id()
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=1500)
    status: str = Field(default=AgendaStatus.PENDING.value, max_length=12)
    late: bool = False  # asked after the deadline of the session that was next
    deferrals: int = 0
    position: int | None = None  # order on the agenda, among the accepted items
    minutes: int | None = None  # time given to it
    reason: str = Field(default="", max_length=300)  # why it was declined
    decided_by: int | None = _telegram_id(nullable=True)
    decided_at: datetime | None = _instant()
    outcome: str | None = Field(default=None, max_length=16)
    recommendation: str = Field(default="", max_length=1500)
    outcome_by: int | None = _telegram_id(nullable=True)
    outcome_at: datetime | None = _instant()
    requested_at: datetime = _created()
    # Any change (calendar feeds read it to know their agenda is stale).
    updated_at: datetime = Field(
        default_factory=utcnow,
        sa_type=UTCDateTime,
        nullable=False,
        sa_column_kwargs={"onupdate": utcnow},
    )
    # The request card in the group's chat, redrawn when the item changes.
    chat_id: int | None = _telegram_id(nullable=True)
    message_id: int | None = _telegram_id(nullable=True)


class AgendaSupport(SQLModel, table=True):
    """A city co-sponsors another city's request (the last of its delegates to press)."""

    __tablename__ = "agenda_support"

    item_id: int = Field(foreign_key="agenda_item.id", primary_key=True)
    city_id: int = Field(foreign_key="city.id", primary_key=True)
    user_id: int = _telegram_id()
    at: datetime = _created()


class AgendaOpinion(SQLModel, table=True):
    """A city's opinion on an item: one per city, the latest replaces the earlier."""

    __tablename__ = "agenda_opinion"

    item_id: int = Field(foreign_key="agenda_item.id", primary_key=True)
    city_id: int = Field(foreign_key="city.id", primary_key=True)
    user_id: int = _telegram_id()
    text: str = Field(max_length=1500)
    at: datetime = _created()


class FeedKind(StrEnum):
    PERSON = "person"  # every session of the person's groups, with their own answer
    GROUP = "group"  # one working group's sessions
    NETWORK = "network"  # every working group's sessions


class CalendarFeed(SQLModel, table=True):
    """A calendar subscription: who or what it shows, and its secret.

    The address's token is never stored: it is an HMAC of ``nonce`` under the server's
    key, so a copy of the database alone opens no calendar. ``token_hash`` (SHA-256 of the
    token) is what a request is looked up by. A reset revokes the row and makes another.
    """

    __tablename__ = "calendar_feed"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=12)
    user_id: int | None = _telegram_id(nullable=True, index=True)
    group_id: int | None = Field(default=None, foreign_key="working_group.id", index=True)
    nonce: str = Field(max_length=64)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = _created()
    revoked_at: datetime | None = _instant()


class Summit(SQLModel, table=True):
    """The network's annual summit, as the secretariat records it; in the network's calendar.

    ``sequence`` rises when it is recorded again (new dates or host), as calendars expect."""

    __tablename__ = "summit"

    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(unique=True, index=True)
    city_id: int = Field(foreign_key="city.id")
    starts_on: date
    ends_on: date
    sequence: int = 0
    recorded_by: int | None = _telegram_id(nullable=True)
    updated_at: datetime = _created()


class BroadcastState(StrEnum):
    DRAFT = "draft"  # written, audience being chosen
    SENDING = "sending"  # confirmed: its outbox rows are being delivered
    DONE = "done"  # every recipient was reached or given up on; the report was written
    CANCELLED = "cancelled"  # dropped before it was confirmed


class Audience(StrEnum):
    GROUP_CHATS = "chats"  # every working group's chat
    SOME_GROUPS = "groups"  # the chats of chosen working groups
    DELEGATES = "delegates"  # every approved delegate, in private
    COUNTRIES = "countries"  # the approved delegates of chosen countries, in private


class Broadcast(SQLModel, table=True):
    """A message of the secretariat to the whole network (or part of it).

    Its text is Telegram HTML made from the author's own formatting. Confirming writes one
    outbox row per recipient (``batch_id`` is this id) in the same transaction; the
    rows' states are the delivery's state. ``chat_id`` and ``message_id`` are the author's
    control message, redrawn with the progress.
    """

    __tablename__ = "broadcast"

    id: int | None = Field(default=None, primary_key=True)
    author_id: int = _telegram_id()
    text: str = Field(max_length=20000)
    parts: int = 1  # messages each recipient receives
    state: str = Field(default=BroadcastState.DRAFT.value, max_length=12, index=True)
    audience: str | None = Field(default=None, max_length=12)
    targets: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    recipients: int = 0  # written at confirmation
    chat_id: int | None = _telegram_id(nullable=True)
    message_id: int | None = _telegram_id(nullable=True)
    created_at: datetime = _created()
    confirmed_at: datetime | None = _instant()
    finished_at: datetime | None = _instant()
