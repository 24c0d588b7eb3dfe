"""Network and roster: registration, delegates, cities, the presidency, the secretariat."""

from __future__ import annotations

import re
from itertools import groupby

from babel.dates import format_date
from telegram import InlineKeyboardMarkup, Update
from telegram.constants import ChatType

from handlers.common import (
    ROLE_WORDS,
    Forged,
    Usage,
    callback_parts,
    chat_of,
    command_text,
    display_name,
    display_user,
    in_columns,
    keyboard,
    notify,
    notify_secretariat,
    parse_user_id,
    sender,
)
from handlers.context import BotContext, esc
from locales import (
    N_,
    SUPPORTED_LANGUAGES,
    _,
    country_name,
    language_name,
    local_time,
    locale,
    ngettext,
    normalize_language,
    use_language,
)
from storage import delegates, errors, presidency, roles, roster, users
from storage.models import City, Delegate, DelegateRole, DelegateStatus, User

ROLE_NAMES = {
    DelegateRole.MAYOR: N_("mayor"),
    DelegateRole.FOCAL_POINT: N_("focal point"),
    DelegateRole.TECHNICAL_STAFF: N_("technical staff"),
}


def role_name(role: str) -> str:
    return _(ROLE_NAMES[DelegateRole(role)])


def city_label(city: City) -> str:
    return f"{esc(city.name)} ({esc(country_name(city.country_code))})"


# /start and the guided registration: language → country → city → role -------------------

REG_LANGUAGE = re.compile(r"reg:lang:([A-Za-z-]{2,8})")
REG_COUNTRY = re.compile(r"reg:cc:([A-Z]{2})")
REG_CITY = re.compile(r"reg:city:(\d{1,9})")
REG_ROLE = re.compile(r"reg:role:(\d{1,9}):(mayor|focal_point|technical_staff)")


def language_keyboard(prefix: str) -> InlineKeyboardMarkup:
    buttons = [(language_name(code), f"{prefix}{code}") for code in SUPPORTED_LANGUAGES]
    return keyboard(in_columns(buttons, 3))


async def start(update: Update, ctx: BotContext) -> None:
    chat = update.effective_chat
    if chat is not None and chat.type != ChatType.PRIVATE:
        ctx.reply(
            update,
            _(
                "Hello! I keep the rosters of the B40 working groups. In a working group's "
                "chat, delegates send /join to add their city and /roster to see who is in. "
                "/help lists everything."
            ),
        )
        return
    actor = await ctx.actor()
    if actor.is_approved_delegate and actor.city is not None:
        ctx.reply(
            update,
            _(
                "Welcome back! You are a delegate of {city}. Send /join in your working "
                "groups' chats; /help lists everything."
            ).format(city=city_label(actor.city)),
        )
        return
    ctx.reply(
        update,
        _(
            "Welcome to the B40 Balkan Cities Network bot. Let's register you as a delegate "
            "of your city.\n\nFirst, choose your language:"
        ),
        language_keyboard("reg:lang:"),
    )


async def _country_keyboard(ctx: BotContext) -> InlineKeyboardMarkup:
    codes = sorted({city.country_code for city in await roster.list_cities(ctx.session)})
    buttons = sorted(((country_name(code), f"reg:cc:{code}") for code in codes), key=lambda b: b[0])
    return keyboard(in_columns(buttons, 2))


async def registration_language(update: Update, ctx: BotContext) -> None:
    match = callback_parts(update, REG_LANGUAGE)
    language = normalize_language(match.group(1))
    if language is None or language != match.group(1):
        raise Forged()
    user = sender(update)
    await users.set_user_language(ctx.session, telegram_id=user.id, language=language)
    with use_language(language):
        markup = await _country_keyboard(ctx)
        text = (
            _("In which country is your city?")
            if markup.inline_keyboard
            else _("No member cities are registered yet. Please ask the secretariat.")
        )
        ctx.edit(update, text, markup)
        ctx.answer(update)


async def registration_country(update: Update, ctx: BotContext) -> None:
    code = callback_parts(update, REG_COUNTRY).group(1)
    cities = [c for c in await roster.list_cities(ctx.session) if c.country_code == code]
    if not cities:
        raise Forged()
    buttons = [(c.name, f"reg:city:{c.id}") for c in cities]
    ctx.edit(
        update,
        _("Which city do you represent in {country}?").format(country=esc(country_name(code))),
        keyboard(in_columns(buttons, 2)),
    )
    ctx.answer(update)


async def registration_city(update: Update, ctx: BotContext) -> None:
    city_id = int(callback_parts(update, REG_CITY).group(1))
    city = await _city_or_forged(ctx, city_id)
    buttons = [(role_name(role), f"reg:role:{city.id}:{role.value}") for role in DelegateRole]
    ctx.edit(
        update,
        _("What is your role for {city}?").format(city=city_label(city)),
        keyboard([[b] for b in buttons]),
    )
    ctx.answer(update)


async def registration_role(update: Update, ctx: BotContext) -> None:
    match = callback_parts(update, REG_ROLE)
    city = await _city_or_forged(ctx, int(match.group(1)))
    text = await _claim(update, ctx, city, DelegateRole(match.group(2)))
    ctx.edit(update, text)
    ctx.answer(update)


async def _city_or_forged(ctx: BotContext, city_id: int) -> City:
    try:
        return await roster.get_city(ctx.session, city_id)
    except errors.UnknownCity:
        raise Forged() from None


async def iam(update: Update, ctx: BotContext) -> None:
    text = command_text(update)
    if not text:
        raise Usage("iam")
    role = DelegateRole.FOCAL_POINT
    name, _sep, last = text.rpartition(" ")
    if name and last.lower() in ROLE_WORDS:
        text, role = name, ROLE_WORDS[last.lower()]
    city = await roster.find_city(ctx.session, text)
    ctx.reply(update, await _claim(update, ctx, city, role))


async def _claim(update: Update, ctx: BotContext, city: City, role: DelegateRole) -> str:
    actor = await ctx.actor()
    delegate = await delegates.claim_city(ctx.session, actor=actor, city=city, role=role)
    if delegate.status == DelegateStatus.APPROVED:
        return _("You now represent {city} as {role}.").format(
            city=city_label(city), role=role_name(role)
        )
    user = sender(update)
    who = display_name(user.full_name, user.username, user.id)
    await notify_secretariat(
        ctx,
        lambda: _(
            "New delegate request: {who}, user id {user_id}, for {city} as {role}. "
            "Approve with /approve {user_id} or reject with /reject {user_id}."
        ).format(who=who, user_id=user.id, city=city_label(city), role=role_name(role)),
        lambda: keyboard(
            [[(_("Approve"), f"dlg:ok:{user.id}"), (_("Reject"), f"dlg:no:{user.id}")]]
        ),
    )
    return _(
        "Thank you! Your request to represent {city} as {role} is waiting for the "
        "secretariat. I will tell you when it is decided."
    ).format(city=city_label(city), role=role_name(role))


# The secretariat decides ------------------------------------------------------------------

DECIDE = re.compile(r"dlg:(ok|no):(\d{1,20})")


async def approve(update: Update, ctx: BotContext) -> None:
    user_id = parse_user_id(command_text(update), "approve")
    ctx.reply(update, await _decide(ctx, user_id, approve=True))


async def reject(update: Update, ctx: BotContext) -> None:
    user_id = parse_user_id(command_text(update), "reject")
    ctx.reply(update, await _decide(ctx, user_id, approve=False))


async def decide_button(update: Update, ctx: BotContext) -> None:
    match = callback_parts(update, DECIDE)
    text = await _decide(ctx, int(match.group(2)), approve=match.group(1) == "ok")
    ctx.edit(update, text)
    ctx.answer(update)


async def _decide(ctx: BotContext, user_id: int, *, approve: bool) -> str:
    actor = await ctx.actor()
    _delegate, city = await delegates.decide(
        ctx.session, actor=actor, user_id=user_id, approve=approve
    )
    user = await ctx.session.get(User, user_id)
    who = display_user(user, user_id)
    if approve:
        await notify(
            ctx,
            user_id,
            lambda: _(
                "Welcome! The secretariat approved you as a delegate of {city}. In your "
                "working groups' chats, send /join to add your city and /roster to see who is in."
            ).format(city=city_label(city)),
        )
        return _("Approved: {who} is a delegate of {city}.").format(who=who, city=city_label(city))
    await notify(
        ctx,
        user_id,
        lambda: _(
            "The secretariat did not approve your request to represent {city}. "
            "If this is a mistake, please contact the secretariat."
        ).format(city=city_label(city)),
    )
    return _("Rejected: {who} is not a delegate of {city}.").format(who=who, city=city_label(city))


# /cities ------------------------------------------------------------------------------------


async def cities(update: Update, ctx: BotContext) -> None:
    members = await roster.list_cities(ctx.session)
    if not members:
        ctx.reply(update, _("No member cities are registered yet."))
        return
    now = ctx.deps.clock()
    lines = [
        ngettext(
            "<b>{n} member city</b>, local time now:",
            "<b>{n} member cities</b>, local time now:",
            len(members),
        ).format(n=len(members))
    ]
    by_country = sorted(members, key=lambda c: (country_name(c.country_code), c.search_key))
    for code, group in groupby(by_country, key=lambda c: c.country_code):
        lines.append("")
        lines.append(f"<b>{esc(country_name(code))}</b>")
        for city in group:
            founding = " ★" if city.founding else ""
            lines.append(f"• {esc(city.name)}{founding} — {local_time(now, city.timezone)}")
    lines.append("")
    lines.append(_("★ founding city (Istanbul, 2021)"))
    ctx.reply(update, "\n".join(lines))


# /presidency --------------------------------------------------------------------------------


async def presidency_command(update: Update, ctx: BotContext) -> None:
    args = command_text(update)
    if args:
        year_text, _sep, city_name = args.partition(" ")
        if not re.fullmatch(r"\d{4}", year_text) or not city_name.strip():
            raise Usage("presidency")
        actor = await ctx.actor()
        actor.require_secretariat()
        city = await roster.find_city(ctx.session, city_name)
        term = await presidency.set_term(ctx.session, actor=actor, city=city, year=int(year_text))
        ctx.reply(
            update,
            _("Recorded: {city} holds the term presidency of {year}.").format(
                city=city_label(city), year=term.year
            ),
        )
        return
    today = ctx.deps.today()
    current = await presidency.current(ctx.session, today=today)
    lines = []
    if current is None:
        lines.append(_("No term presidency is recorded for today."))
    else:
        term, city = current
        lines.append(
            _("Term presidency {year}: {city}, {start} – {end}.").format(
                year=term.year,
                city=city_label(city),
                start=format_date(term.starts_on, "medium", locale=locale()),
                end=format_date(term.ends_on, "medium", locale=locale()),
            )
        )
    terms = await presidency.history(ctx.session)
    if terms:
        lines.append("")
        lines.append(_("<b>All terms</b>"))
        lines.extend(f"{term.year} — {city_label(city)}" for term, city in terms)
    ctx.reply(update, "\n".join(lines))


# /language ----------------------------------------------------------------------------------

LANGUAGE_BUTTON = re.compile(r"lang:([A-Za-z-]{2,8})")


def _supported() -> str:
    return ", ".join(SUPPORTED_LANGUAGES)


async def language_command(update: Update, ctx: BotContext) -> None:
    code = command_text(update)
    if not code:
        ctx.reply(update, _("Choose your language:"), language_keyboard("lang:"))
        return
    language = normalize_language(code)
    if language is None:
        raise errors.UnsupportedLanguage(code=code[:16], languages=_supported())
    await _set_language(update, ctx, language)


async def language_button(update: Update, ctx: BotContext) -> None:
    code = callback_parts(update, LANGUAGE_BUTTON).group(1)
    language = normalize_language(code)
    if language is None or language != code:
        raise Forged()
    await _set_language(update, ctx, language)
    ctx.answer(update)


async def _set_language(update: Update, ctx: BotContext, language: str) -> None:
    chat, user = chat_of(update), sender(update)
    if chat.type == ChatType.PRIVATE:
        await users.set_user_language(ctx.session, telegram_id=user.id, language=language)
        with use_language(language):
            ctx.reply(
                update,
                _("I will speak {language} with you.").format(language=language_name(language)),
            )
        return
    member = await ctx.bot.get_chat_member(chat.id, user.id)
    await users.set_chat_language(
        ctx.session,
        actor=await ctx.actor(),
        is_chat_admin=member.status in ("creator", "administrator"),
        chat_id=chat.id,
        chat_type=chat.type,
        title=chat.title or "",
        language=language,
    )
    with use_language(language):
        ctx.reply(
            update,
            _("I will speak {language} in this chat.").format(language=language_name(language)),
        )


# /secretariat -------------------------------------------------------------------------------


async def secretariat_command(update: Update, ctx: BotContext) -> None:
    actor = await ctx.actor()
    actor.require_secretariat()
    verb, _sep, rest = command_text(update).partition(" ")
    if verb in ("add", "remove"):
        user_id = parse_user_id(rest, "secretariat")
        if verb == "add":
            await delegates.add_secretariat(ctx.session, actor=actor, user_id=user_id)
            ctx.reply(
                update, _("User {user_id} is now in the secretariat.").format(user_id=user_id)
            )
        else:
            await delegates.remove_secretariat(
                ctx.session, actor=actor, user_id=user_id, bootstrap=ctx.deps.bootstrap_secretariat
            )
            ctx.reply(
                update, _("User {user_id} is no longer in the secretariat.").format(user_id=user_id)
            )
        return
    if verb:
        raise Usage("secretariat")
    staff = sorted(
        await roles.secretariat_ids(ctx.session, bootstrap=ctx.deps.bootstrap_secretariat)
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
    return f"{who} — {city_label(city)}, {role_name(delegate.role)} — /approve {delegate.user_id}"


# /help --------------------------------------------------------------------------------------

HELP_EVERYONE = [
    ("start", N_("register as a delegate of your city")),
    ("iam", N_("<city> — claim to be a delegate of a member city")),
    ("cities", N_("member cities by country, with their local time")),
    ("groups", N_("working groups, their cities and chats")),
    ("join", N_("in a working group's chat: your city joins the group")),
    ("leave", N_("in a working group's chat: your city leaves the group")),
    ("roster", N_("in a working group's chat: its cities and delegates")),
    ("presidency", N_("the term presidency and its history")),
    ("apply", N_("<city>, <country code>, <zone> — a new city asks to join")),
    ("language", N_("<code> — the language I speak with you")),
]
HELP_SECRETARIAT = [
    ("approve", N_("<user id> — approve a pending delegate")),
    ("reject", N_("<user id> — reject a pending delegate")),
    ("link", N_("<group> — in a group chat: make it that working group's chat")),
    ("coordinator", N_("<user id> — make a delegate a coordinator of this chat's group")),
    ("newgroup", N_("<short-name> <name> — propose or confirm a new working group")),
    ("presidency", N_("<year> <city> — record a term presidency")),
    ("secretariat", N_("list staff and pending requests; add or remove <user id>")),
]


async def help_command(update: Update, ctx: BotContext) -> None:
    lines = [_("<b>What I can do</b>")]
    lines.extend(f"/{name} {esc(_(text))}" for name, text in HELP_EVERYONE)
    actor = await ctx.actor()
    if actor.is_presidency and not actor.is_secretariat:
        lines.append("")
        lines.append("/newgroup " + esc(_(HELP_SECRETARIAT[4][1])))
    if actor.is_secretariat:
        lines.append("")
        lines.append(_("<b>For the secretariat</b>"))
        lines.extend(f"/{name} {esc(_(text))}" for name, text in HELP_SECRETARIAT)
    ctx.reply(update, "\n".join(lines))
