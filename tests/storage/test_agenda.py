"""The agenda's guard against lost decisions, below the row lock: a decision applies only to
the request as it was read (on SQLite, where there is no row lock, and PostgreSQL alike)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from storage import agenda, errors
from storage.db import Database
from storage.models import AgendaItem, City, GroupMembership, WorkingGroup

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


async def _request(db: Database) -> int:
    async with db.transaction() as session:
        group = (
            await session.exec(select(WorkingGroup).where(WorkingGroup.slug == "climate"))
        ).one()
        city = (await session.exec(select(City).where(City.name == "Sofia"))).one()
        session.add(GroupMembership(group_id=group.id or 0, city_id=city.id or 0))
        item = AgendaItem(
            group_id=group.id or 0, city_id=city.id or 0, user_id=1, title="Heat", updated_at=NOW
        )
        session.add(item)
        await session.flush()
        return item.id or 0


@pytest.mark.parametrize("changed", [{"status": "accepted"}, {"deferrals": 1}])
async def test_a_decision_on_a_request_that_changed_since_it_was_read_is_refused(
    seeded: Database, changed: dict[str, object]
) -> None:
    item_id = await _request(seeded)
    async with seeded.transaction() as session:
        read = await session.get(AgendaItem, item_id)
        assert read is not None
        session.expunge(read)
    async with seeded.transaction() as session:  # someone else decides meanwhile
        current = await session.get(AgendaItem, item_id)
        assert current is not None
        for name, value in changed.items():
            setattr(current, name, value)
        session.add(current)
    with pytest.raises(errors.AgendaItemDecided):
        async with seeded.transaction() as session:
            await agenda._change(
                session, read, statuses=agenda.OPEN, status="declined", reason="late"
            )
    async with seeded.transaction() as session:
        after = await session.get(AgendaItem, item_id)
    assert after is not None and after.status != "declined"
