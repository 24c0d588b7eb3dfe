"""The playground's world: the real bot, the emulator in front of it, a clock that can be
moved, the people one can be, and the sample roster they start with.

Nothing here is a second bot: ``build_application`` makes the same ``Application`` as
``b40-bot run``, with the same handlers, services, outbox and jobs. Updates reach it as
in webhook mode, one at a time through ``process_update``, so the page that sent one
can show the answer as soon as it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, func, select
from telegram import Update

from bot.application import B40Application, build_application, sweep_polls, sweep_sessions
from bot.settings import Settings
from playground import updates
from playground.emulator import BOT_TOKEN, EmulatorRequest, TelegramEmulator, buttons
from playground.updates import Chat, User
from storage import roster
from storage.db import Database
from storage.models import ProcessedUpdate

log = logging.getLogger(__name__)

DATA = Path(__file__).parent / "data"
STATE_SUFFIX = ".state.json"


@dataclass(frozen=True)
class Person:
    """Someone the page lets you be."""

    id: int
    first_name: str
    last_name: str | None
    language_code: str
    about: str  # who they are, in English, for the picker

    @property
    def user(self) -> User:
        return User(
            id=self.id,
            first_name=self.first_name,
            last_name=self.last_name,
            language_code=self.language_code,
        )

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name or ''}".strip()


SECRETARY = Person(900_001, "Ayşe", "Yılmaz", "tr", "secretariat")
SARAJEVO = Person(900_002, "Amra", "Hadžić", "bs", "delegate of Sarajevo, coordinator")
ATHENS = Person(900_003, "Eleni", "Papadopoulou", "el", "delegate of Athens")
ISTANBUL = Person(900_004, "Mehmet", "Demir", "tr", "delegate of İstanbul")
STRANGER = Person(900_005, "Alex", "Novak", "en", "not registered")
SEEDED_PEOPLE = (SECRETARY, SARAJEVO, ATHENS, ISTANBUL, STRANGER)
FIRST_NEW_PERSON = 900_100

# The standing working groups' chats: (slug, chat).
GROUP_CHATS = (
    ("climate", Chat(-1_001_000_000_001, "supergroup", "B40 · Local Climate Action")),
    (
        "democracy-migration",
        Chat(-1_001_000_000_002, "supergroup", "B40 · Democracy and Migration"),
    ),
    ("smart-cities", Chat(-1_001_000_000_003, "supergroup", "B40 · Smart Cities")),
    ("economy", Chat(-1_001_000_000_004, "supergroup", "B40 · Economic and Cultural Cooperation")),
)


class MovableClock:
    """Real time, moved forward on demand: a reminder due in a day can arrive now."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def timestamp(self) -> float:
        return self().timestamp()


class Playground:
    """The bot and its emulator, and what a person on the page can do to them."""

    def __init__(self, settings: Settings, db: Database, state_file: Path) -> None:
        self.settings = settings
        self.db = db
        self.state_file = state_file
        self.clock = MovableClock()
        self.telegram = TelegramEmulator(strict=True, now=self.clock.timestamp)
        self.people: dict[int, Person] = {p.id: p for p in SEEDED_PEOPLE}
        self.application: B40Application = build_application(
            settings, db, request=EmulatorRequest(self.telegram), clock=self.clock
        )
        # The outbox works on the bot's clock too, so that what falls due when the clock
        # moves is sent at once.
        self.application.outbox.clock = self.clock
        self._processing = asyncio.Lock()
        self._next_update_id = 1
        self.seeded = False

    # --- people and chats ---------------------------------------------------------------------

    def chats_of(self, person: Person) -> list[dict[str, Any]]:
        """The chats the person can be in: their private chat with the bot, then every group."""
        private = {"id": person.id, "type": "private", "title": "Private chat with the bot"}
        groups = [
            {**chat, "title": chat.get("title", str(chat_id))}
            for chat_id, chat in self.telegram.chats.items()
            if chat_id < 0
        ]
        return [private, *sorted(groups, key=lambda c: c["id"], reverse=True)]

    def add_person(self, first_name: str, language_code: str) -> Person:
        first, _, last = " ".join(first_name.split()).partition(" ")
        person = Person(
            id=max([FIRST_NEW_PERSON - 1, *self.people]) + 1,
            first_name=first[:64] or "Guest",
            last_name=last[:64] or None,
            language_code=language_code,
            about="new",
        )
        self.people[person.id] = person
        self.save()
        return person

    def _chat(self, person: Person, chat_id: int) -> Chat:
        if chat_id == person.id:
            return person.user.private
        known = self.telegram.chats.get(chat_id)
        if known is None or chat_id > 0:
            raise LookupError(f"no chat {chat_id} for {person.name}")
        return Chat(id=chat_id, type=str(known["type"]), title=known.get("title"))

    # --- what a person does -------------------------------------------------------------------

    async def say(self, person: Person, chat_id: int, text: str) -> None:
        """A person sends a message (a command or text) in a chat."""
        chat = self._chat(person, chat_id)
        update = updates.message(text, person.user, chat)
        update["update_id"] = self._new_update_id()
        update["message"]["message_id"] = self.telegram.next_message_id()
        update["message"]["date"] = int(self.clock.timestamp())
        self.telegram.receive(update)
        await self._process(update)

    async def press(self, person: Person, chat_id: int, message_id: int, data: str) -> str | None:
        """A person presses a button under a message; returns what the bot answered on
        the button (a toast), if anything. Only buttons the message shows can be pressed,
        as in Telegram."""
        shown = self.telegram.shown(chat_id, message_id)
        if shown is None or data not in _callback_data(shown):
            raise LookupError("no such button on that message")
        update = updates.callback(data, person.user, shown, self._chat(person, chat_id))
        update["update_id"] = self._new_update_id()
        query_id = update["callback_query"]["id"]
        await self._process(update)
        return self.telegram.callback_answers.get(query_id)

    def _new_update_id(self) -> int:
        self._next_update_id += 1
        return self._next_update_id - 1

    async def _process(self, update: dict[str, Any]) -> None:
        async with self._processing:
            await self.application.process_update(Update.de_json(update, self.application.bot))
        # Messages to other people go through the outbox; deliver them now rather than at
        # the worker's next round, so a second tab sees them at once.
        await self.application.outbox.deliver_due()
        self.save()

    async def advance(self, by: timedelta) -> None:
        """Move the bot's clock forward and do at once what falls due."""
        self.clock.offset += by
        await sweep_sessions(self.application)
        await sweep_polls(self.application)
        await self.application.outbox.deliver_due()
        self.save()

    # --- start, stop, keep ----------------------------------------------------------------------

    def save(self) -> None:
        state = {
            "seeded": self.seeded,
            "emulator": self.telegram.state(),
            "people": [p.__dict__ for p in self.people.values() if p.id >= FIRST_NEW_PERSON],
            "clock_offset_seconds": self.clock.offset.total_seconds(),
            "next_update_id": self._next_update_id,
        }
        temporary = self.state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
        temporary.replace(self.state_file)

    def _restore(self) -> bool:
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return False
        if not state.get("seeded"):
            return False
        self.telegram.restore(state["emulator"])
        for data in state["people"]:
            self.people[data["id"]] = Person(**data)
        self.clock.offset = timedelta(seconds=state["clock_offset_seconds"])
        self._next_update_id = int(state["next_update_id"])
        self.seeded = True
        return True

    async def _continue_update_ids(self) -> None:
        """Update ids go on from the last one the bot saw: it ignores ones it has seen."""
        async with self.db.transaction() as session:
            seen = (await session.exec(select(func.max(col(ProcessedUpdate.update_id))))).one()
        self._next_update_id = max(self._next_update_id, (seen or 0) + 1)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Playground]:
        await self.db.upgrade()
        restored = self._restore()
        await self._continue_update_ids()
        await self.application.initialize()
        await self.application.start()
        try:
            if not restored:
                await self.seed()
            yield self
        finally:
            self.save()
            await self.application.stop()
            await self.application.shutdown()

    # --- the sample network ---------------------------------------------------------------------

    async def seed(self) -> None:
        """The sample roster, made the way people make it: by talking to the bot."""
        started = time.monotonic()
        rows = roster.parse_cities_csv((DATA / "b40-cities.csv").read_text(encoding="utf-8"))
        async with self.db.transaction() as session:
            await roster.import_cities(session, rows, today=self.clock().date())
        for person in SEEDED_PEOPLE:
            self.telegram.started.add(person.id)
            self.telegram.chats[person.id] = person.user.private.to_dict()
        for _slug, chat in GROUP_CHATS:
            self.telegram.chats[chat.id] = chat.to_dict()
        for person, city in ((SARAJEVO, "Sarajevo"), (ATHENS, "Athens"), (ISTANBUL, "İstanbul")):
            await self.say(person, person.id, f"/iam {city} mayor")
            await self._approve_latest_claim(person)
        climate = GROUP_CHATS[0][1].id
        for slug, chat in GROUP_CHATS:
            await self.say(SECRETARY, chat.id, f"/link {slug}")
        for person in (SARAJEVO, ATHENS, ISTANBUL):
            await self.say(person, climate, "/join")
        await self.say(SARAJEVO, GROUP_CHATS[1][1].id, "/join")
        await self.say(ATHENS, GROUP_CHATS[2][1].id, "/join")
        await self.say(SECRETARY, climate, f"/coordinator {SARAJEVO.id}")
        await self.say(SECRETARY, SECRETARY.id, f"/presidency {self.clock().year} Thessaloniki")
        # A session in two days at 10:00 in Sarajevo: its reminders come as the clock moves.
        day = (self.clock() + timedelta(days=2)).astimezone(ZoneInfo("Europe/Sarajevo")).date()
        while day.weekday() >= 5:
            day += timedelta(days=1)
        await self.say(
            SARAJEVO,
            climate,
            f"/schedule {day.isoformat()} 10:00 Europe/Sarajevo 90 | Quarterly session",
        )
        await self._seed_agenda(climate)
        await self._seed_broadcast()
        # The chats start clean: what seeding said is not a conversation anyone had.
        self.telegram.history.clear()
        self.seeded = True
        self.save()
        log.info("playground seeded in %.1f s", time.monotonic() - started)

    async def _seed_agenda(self, climate: int) -> None:
        """An agenda for that session: an item İstanbul asked for, which Athens supports,
        has an opinion on and the coordinator accepted and timed; Athens's own request
        waiting for a decision. Requests close a day before, so both are in time."""
        await self.say(SARAJEVO, climate, "/agenda deadline 1")
        await self.say(
            ISTANBUL,
            climate,
            "/propose Heat action plans for schools\nHow İstanbul keeps classrooms cool in July.",
        )
        await self._press_card(ATHENS, climate, "ag:1:sup")
        await self._press_card(SARAJEVO, climate, "ag:1:acc")
        await self.say(SARAJEVO, climate, "/agenda minutes 1 30")
        await self.say(ATHENS, climate, "/opinion 1 Athens will share its heatwave data.")
        await self.say(ATHENS, climate, "/propose Flood early warning across borders")

    async def _seed_broadcast(self) -> None:
        """A broadcast the secretariat sent to every delegate, so that /broadcasts lists one."""
        await self.say(
            SECRETARY,
            SECRETARY.id,
            "/broadcast Welcome to the B40 working-group bot. /next shows your next session, "
            "/calendar adds every session to your calendar.",
        )
        await self._press_card(SECRETARY, SECRETARY.id, "bc:1:a:delegates")
        await self._press_card(SECRETARY, SECRETARY.id, "bc:1:ok:")
        await self.application.broadcasts.settle()
        await self.application.outbox.deliver_due()

    async def _press_card(self, person: Person, chat_id: int, data: str) -> None:
        """Press the latest button whose data is ``data`` (or, ending in ':', starts so)."""
        for message in reversed(self.telegram.history.get(chat_id, [])):
            for found in _callback_data(message):
                if found == data or (data.endswith(":") and found.startswith(data)):
                    await self.press(person, chat_id, message["message_id"], found)
                    return
        raise RuntimeError(f"seeding: no button {data} in chat {chat_id}")

    async def _approve_latest_claim(self, person: Person) -> None:
        for message in reversed(self.telegram.history.get(SECRETARY.id, [])):
            for data in _callback_data(message):
                if data.startswith("dlg:ok:") and str(person.id) in message.get("text", ""):
                    await self.press(SECRETARY, SECRETARY.id, message["message_id"], data)
                    return
        raise RuntimeError(f"seeding: no claim of {person.name} reached the secretariat")


def _callback_data(message: dict[str, Any]) -> list[str]:
    return [data for _label, data in buttons(message) if data]


def playground_settings(database_file: Path, like: Settings | None = None) -> Settings:
    """The operator's settings (language, zone, meeting link), with the playground's own
    token, database and secretariat: it never talks to Telegram or touches the bot's data."""
    base = like.model_dump() if like is not None else {}
    return Settings.model_validate(
        base
        | {
            "bot_token": BOT_TOKEN,
            "database_url": f"sqlite:///{database_file}",
            "secretariat": frozenset({SECRETARY.id}),
            "webhook": False,
        }
    )
