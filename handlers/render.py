"""How the network's things are shown: cities, people, roles, groups. One place, escaped."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.context import esc, esc_line
from locales import N_, _, country_name
from storage import roster
from storage.models import City, DelegateRole, WorkingGroup
from storage.models import User as UserRow

ROLE_NAMES = {
    DelegateRole.MAYOR: N_("mayor"),
    DelegateRole.FOCAL_POINT: N_("focal point"),
    DelegateRole.TECHNICAL_STAFF: N_("technical staff"),
}


def role_name(role: str) -> str:
    return _(ROLE_NAMES[DelegateRole(role)])


def city_name_label(name: str, country: str) -> str:
    return f"{esc_line(name)} ({esc(country_name(country))})"


async def member_countries(session: AsyncSession) -> list[tuple[str, str]]:
    """(name in the reader's language, code) of every country with a member city, by name."""
    codes = {city.country_code for city in await roster.list_cities(session)}
    return sorted((country_name(code), code) for code in codes)


def city_label(city: City) -> str:
    return city_name_label(city.name, city.country_code)


def display_name(full_name: str | None, username: str | None, user_id: int) -> str:
    """How a person is shown: their name, with @username when they have one (escaped,
    on one line)."""
    name = esc_line((full_name or "").strip()[:64]) or str(user_id)
    return f"{name} (@{esc_line(username)})" if username else name


def display_user(user: UserRow | None, user_id: int) -> str:
    """``display_name`` for a stored user, who may never have written to the bot."""
    if user is None:
        return display_name(None, None, user_id)
    return display_name(user.full_name, user.username, user_id)


def display_person(params: dict[str, Any]) -> str:
    """``display_name`` from the facts a notice carries (see storage.delegates.person)."""
    return display_name(params.get("full_name"), params.get("username"), int(params["user_id"]))


def group_label(group: WorkingGroup) -> str:
    return group_name_label(group.name, group.slug)


def group_name_label(name: str, slug: str) -> str:
    return f"<b>{esc_line(name)}</b> ({esc(slug)})"
