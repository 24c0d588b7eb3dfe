"""/secretariat: the staff and the claims waiting for them; adding and removing staff."""

from __future__ import annotations

from telegram import Update

from handlers.common import Usage, command_text, parse_user_id
from handlers.context import BotContext
from handlers.render import city_label, display_user, role_name
from locales import _
from storage import delegates, secretariat
from storage.models import City, Delegate, User


async def secretariat_command(update: Update, ctx: BotContext) -> None:
    actor = await ctx.actor()
    actor.require_secretariat()
    verb, _sep, rest = command_text(update).partition(" ")
    if verb in ("add", "remove"):
        user_id = parse_user_id(rest, "secretariat")
        if verb == "add":
            await secretariat.add(ctx.session, actor=actor, user_id=user_id)
            ctx.reply(
                update, _("User {user_id} is now in the secretariat.").format(user_id=user_id)
            )
        else:
            await secretariat.remove(
                ctx.session, actor=actor, user_id=user_id, bootstrap=ctx.deps.bootstrap_secretariat
            )
            ctx.reply(
                update, _("User {user_id} is no longer in the secretariat.").format(user_id=user_id)
            )
        return
    if verb:
        raise Usage("secretariat")
    staff = sorted(
        await secretariat.staff_ids(ctx.session, bootstrap=ctx.deps.bootstrap_secretariat)
    )
    lines = [_("<b>The secretariat</b>")]
    for user_id in staff:
        user = await ctx.session.get(User, user_id)
        lines.append("• " + display_user(user, user_id) + f" — {user_id}")
    pending = await delegates.pending(ctx.session)
    if pending:
        lines.append("")
        lines.append(_("<b>Waiting for approval</b>"))
        lines.extend("• " + _pending_line(delegate, city, user) for delegate, city, user in pending)
    ctx.reply(update, "\n".join(lines))


def _pending_line(delegate: Delegate, city: City, user: User | None) -> str:
    who = display_user(user, delegate.user_id)
    role = role_name(delegate.role)
    return f"#{delegate.id} {who} — {city_label(city)}, {role} — /approve {delegate.id}"
