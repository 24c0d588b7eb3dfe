"""Membership applications of cities that are not yet members."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import audit, delegates, errors, outbox, roster, secretariat
from storage.models import ApplicationStatus, City, MembershipApplication, User
from storage.roles import Actor
from storage.types import utcnow

# Outbox kinds this module writes (rendered by handlers.membership).
CREATED = "application.created"
ADMITTED = "application.admitted"
DECLINED = "application.declined"


def facts(application: MembershipApplication) -> dict[str, object]:
    return {
        "application": application.id,
        "city": application.city_name,
        "country": application.country_code,
        "zone": application.timezone,
    }


async def apply(
    session: AsyncSession,
    *,
    applicant: User | None,
    applicant_id: int,
    name: str,
    country_code: str,
    timezone: str,
    bootstrap: Collection[int],
) -> MembershipApplication:
    name = roster.clean_city_name(name)
    country_code = roster.check_country(country_code)
    timezone = roster.check_timezone(timezone)
    key = roster.city_key(name)
    member = (
        await session.exec(
            select(City).where(City.country_code == country_code, City.search_key == key)
        )
    ).first()
    if member is not None:
        raise errors.CityAlreadyMember(city=member.name)
    for open_application in (
        await session.exec(
            select(MembershipApplication).where(
                MembershipApplication.status == ApplicationStatus.PENDING,
                MembershipApplication.country_code == country_code,
            )
        )
    ).all():
        if roster.city_key(open_application.city_name) == key:
            raise errors.AlreadyApplied(city=open_application.city_name)
    application = MembershipApplication(
        applicant_id=applicant_id, city_name=name, country_code=country_code, timezone=timezone
    )
    session.add(application)
    await session.flush()
    audit.record(session, actor_id=applicant_id, action="application.create", subject=name)
    await secretariat.tell(
        session,
        kind=CREATED,
        params={**facts(application), **delegates.person(applicant, applicant_id)},
        dedupe=f"application:{application.id}",
        bootstrap=bootstrap,
    )
    return application


async def decide(
    session: AsyncSession, *, actor: Actor, application_id: int, admit: bool, today: date
) -> tuple[MembershipApplication, City | None]:
    actor.require_secretariat()
    application = await session.get(MembershipApplication, application_id)
    if application is None:
        raise errors.UnknownApplication(id=application_id)
    if application.status != ApplicationStatus.PENDING:
        raise errors.ApplicationDecided(city=application.city_name, status=application.status)
    city = None
    if admit:
        city = await roster.add_city(
            session,
            name=application.city_name,
            country_code=application.country_code,
            timezone=application.timezone,
            joined_on=today,
            actor_id=actor.user_id,
        )
        application.city_id = city.id
    application.status = ApplicationStatus.ADMITTED if admit else ApplicationStatus.DECLINED
    application.decided_by = actor.user_id
    application.decided_at = utcnow()
    session.add(application)
    audit.record(
        session,
        actor_id=actor.user_id,
        action="application.admit" if admit else "application.decline",
        subject=application.city_name,
    )
    await outbox.enqueue(
        session,
        chat_id=application.applicant_id,
        kind=ADMITTED if admit else DECLINED,
        params=facts(application),
        dedupe_key=f"application-decided:{application.id}",
    )
    return application, city
