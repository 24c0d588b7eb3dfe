"""Calendar feeds over HTTP: ``GET`` and ``HEAD /calendar/<token>.ics``.

Every request costs one token lookup; an unknown, malformed or revoked token gets 404
after that same lookup. A known one reads the feed's state in one statement: a
conditional request that matches (``If-None-Match``, else ``If-Modified-Since``) gets 304
without the feed being built, and an unconditional one gets the feed built the last time
the state was the same, from memory. Only a changed state builds the feed again.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response

from handlers import ics
from handlers.context import Deps
from locales import normalize_language, use_language
from storage import calendars
from storage.models import CalendarFeed
from storage.roles import resolve_actor

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/calendar; charset=utf-8"
PATH = ics.FEED_PATH
CACHE_SIZE = 2048  # feeds kept built in memory


@dataclass(frozen=True)
class Built:
    state: tuple[object, ...]
    body: bytes
    etag: str
    last_modified: datetime


def _last_modified(state: tuple[object, ...], feed: CalendarFeed) -> datetime:
    instants = [value for value in state if isinstance(value, datetime)]
    latest = max([feed.created_at, *instants])
    return latest.astimezone(UTC).replace(microsecond=0)


def _matches(header: str, etag: str) -> bool:
    """``If-None-Match``: ``*``, or a list of (possibly weak) tags."""
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


class FeedServer:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._built: OrderedDict[int, Built] = OrderedDict()

    async def serve(self, request: Request) -> Response:
        token = str(request.path_params.get("token", ""))
        now = self.deps.clock()
        async with self.deps.db.engine.connect() as connection:
            found = await calendars.lookup(connection, token, now=now)
        if found is None:
            return Response(
                "Not found\n",
                status_code=404,
                media_type="text/plain",
                headers={"Cache-Control": "no-store"},
            )
        feed = found.feed
        default = self.deps.default_language
        language = normalize_language(found.language or default) or default
        built = self._built.get(feed.id or 0)
        fresh = found.state is not None and built is not None
        if fresh and built is not None and built.state == (*(found.state or ()), language):
            return self._respond(request, built)  # the common case: one statement
        async with self.deps.db.transaction() as session:
            actor = None
            if feed.user_id is not None:
                actor = await resolve_actor(
                    session,
                    user_id=feed.user_id,
                    bootstrap_secretariat=self.deps.bootstrap_secretariat,
                    today=self.deps.today(),
                )
            groups = await calendars.group_ids(session, feed, actor)
            state = (*await calendars.state(session, feed, groups, now=now), language)
            if built is None or built.state != state:
                content = await calendars.content(session, feed, groups, now=now)
                built = self._build(feed, content, state, language)
                self._remember(feed.id or 0, built)
        return self._respond(request, built)

    def _build(
        self,
        feed: CalendarFeed,
        content: calendars.FeedContent,
        state: tuple[object, ...],
        language: str,
    ) -> Built:
        with use_language(language):
            name = ics.feed_name(feed.kind, content.group.name if content.group else None)
            events = [ics.event(shown) for shown in content.shown]
            events += [ics.summit_event(summit, city) for summit, city in content.summits]
            body = ics.calendar(name, events)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return Built(state, body, etag, _last_modified(state, feed))

    def _remember(self, feed_id: int, built: Built) -> None:
        self._built[feed_id] = built
        self._built.move_to_end(feed_id)
        while len(self._built) > CACHE_SIZE:
            self._built.popitem(last=False)

    def _respond(self, request: Request, built: Built) -> Response:
        headers = {
            "ETag": built.etag,
            "Last-Modified": format_datetime(built.last_modified, usegmt=True),
            # A secret address: no shared cache may keep it; calendar apps ask again.
            "Cache-Control": "private, max-age=900",
            "X-Content-Type-Options": "nosniff",
        }
        if _not_modified(request, built):
            return Response(status_code=304, headers=headers)
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(built.body))
            return Response(b"", headers=headers, media_type=CONTENT_TYPE)
        return Response(built.body, headers=headers, media_type=CONTENT_TYPE)


def _not_modified(request: Request, built: Built) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return _matches(if_none_match, built.etag)
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        when = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return built.last_modified <= when
