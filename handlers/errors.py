"""Every refusal becomes a clear, translated message; every surprise is logged, never shown."""

from __future__ import annotations

import json
import logging
from datetime import date, time
from typing import Any

from telegram import Update

from handlers.common import Forged, TooLong, Usage, WrongChat
from handlers.context import UNEXPECTED, BotContext, esc, is_transient, maybe_scope
from handlers.html import plain
from locales import N_, _
from scheduler import errors as scheduler_errors
from storage import errors

log = logging.getLogger(__name__)

# One message per domain error; a test checks that none is missing.
MESSAGES: dict[type[errors.DomainError], str] = {
    errors.NotADelegate: N_(
        "You are not a delegate of a member city yet. Send /start in a private chat "
        "with me to register, or /iam <city>."
    ),
    errors.DelegateNotApproved: N_(
        "Your request to represent {city} is still waiting for the secretariat's approval."
    ),
    errors.UnknownCity: N_(
        "I don't know a member city called “{name}”. See /cities for the list, "
        "or ask the secretariat; a new city can apply with /apply."
    ),
    errors.AmbiguousCity: N_(
        "“{name}” is a member city in several countries ({countries}). "
        "Add the country code, e.g. “{name}, {countries}”."
    ),
    errors.InvalidCityName: N_(
        "A city name has letters, spaces and hyphens only, at most {max} characters."
    ),
    errors.UnknownCountry: N_(
        "“{code}” is not a country code. Use the two-letter ISO code, "
        "e.g. GR, RS, or XK for Kosovo."
    ),
    errors.UnknownTimezone: N_(
        "“{zone}” is not a time zone I know. Use an IANA name such as "
        "Europe/Sofia or Europe/Belgrade."
    ),
    errors.CityAlreadyMember: N_("{city} is already a member city of the network."),
    errors.AlreadyDelegate: N_(
        "You are already a delegate of {city}. To change city, ask the secretariat."
    ),
    errors.UnknownDelegate: N_(
        "There is no delegate with the user id {user_id}. The user must first register "
        "(/start or /iam)."
    ),
    errors.UnknownClaim: N_(
        "There is no delegate request #{claim}. /secretariat lists the requests waiting."
    ),
    errors.ClaimNotPending: N_(
        "Delegate request #{claim} is no longer waiting: it was decided, or replaced by a "
        "newer request. /secretariat lists the requests waiting."
    ),
    errors.ClaimRejected: N_(
        "The secretariat did not approve your request to represent {city} a short while "
        "ago. Please contact the secretariat before you ask again."
    ),
    errors.InvalidUserId: N_(
        "{user_id} is not a Telegram user id. A user id is a positive number such as "
        "123456789; @userinfobot tells people theirs."
    ),
    errors.InvalidImport: N_("Line {line}: {reason}. Nothing was imported."),
    errors.UnknownGroup: N_("There is no working group “{slug}”. See /groups for the list."),
    errors.InvalidSlug: N_(
        "“{slug}” cannot be a working group's short name: use 2–40 lowercase letters, "
        "digits and hyphens, e.g. water-energy."
    ),
    errors.InvalidGroupName: N_(
        "A working group needs a name of at most {max} characters, e.g. "
        "/newgroup water-energy Water and Energy."
    ),
    errors.GroupExists: N_("The working group “{slug}” already exists."),
    errors.GroupAlreadyProposed: N_(
        "The working group “{slug}” is proposed and waits for the {needs} to confirm it."
    ),
    errors.NotAProposal: N_("That proposal was already decided."),
    errors.ChatNotLinked: N_(
        "This chat is not linked to a working group yet. The secretariat can link it "
        "with /link <group>."
    ),
    errors.AlreadyInGroup: N_("{city} is already a member of {group}."),
    errors.NotInGroup: N_("{city} is not a member of {group}."),
    errors.AlreadyCoordinator: N_("User {user_id} already coordinates {group}."),
    errors.ConsecutiveTerm: N_(
        "{city} cannot hold the presidency: it holds the term of {year}, and no city "
        "may hold two terms in a row."
    ),
    errors.TermExists: N_("The presidency of {year} is already recorded."),
    errors.InvalidTerm: N_("That term ({year}) overlaps another or has no valid dates."),
    errors.TermYearOutOfRange: N_(
        "{year} cannot be a term of the network: give a year from {first} to {last}."
    ),
    errors.AlreadyApplied: N_("{city} has already applied; the secretariat will answer soon."),
    errors.UnknownApplication: N_("That application does not exist."),
    errors.ApplicationDecided: N_("The application of {city} was already decided."),
    errors.AlreadySecretariat: N_("User {user_id} is already in the secretariat."),
    errors.NotSecretariat: N_("User {user_id} is not in the secretariat."),
    errors.BootstrapSecretariat: N_(
        "User {user_id} is in the secretariat by configuration (B40_SECRETARIAT) and "
        "can only be removed there."
    ),
    errors.UnsupportedLanguage: N_("“{code}” is not one of my languages: {languages}."),
    errors.InvalidSessionLength: N_(
        "A session lasts from {min} to {max} minutes; {minutes} minutes is not possible."
    ),
    errors.InvalidSessionTitle: N_("A session's title has at most {max} characters."),
    errors.SessionInPast: N_(
        "That time has already passed. Give a time in the future, e.g. next month."
    ),
    errors.UnknownSession: N_("There is no session #{session}. /sessions lists the upcoming ones."),
    errors.SessionCancelled: N_("Session #{session} is cancelled; it cannot be changed any more."),
    errors.SessionOver: N_("Session #{session} is over; it cannot be changed any more."),
    errors.UnknownPoll: N_("There is no poll #{poll}."),
    errors.InvalidAgendaTitle: N_(
        "An agenda item needs a title of at most {max} characters on the first line: "
        "/propose <title>, with any description on the lines below."
    ),
    errors.AgendaTextTooLong: N_("That text is too long: at most {max} characters, please."),
    errors.DuplicateAgendaRequest: N_(
        "{city} has already asked for this: request #{item}. Support it with the button on "
        "its card instead, or give your city's opinion with /opinion {item} <text>."
    ),
    errors.UnknownAgendaItem: N_(
        "There is no agenda request #{item} in this working group. /agenda lists them."
    ),
    errors.AgendaItemDecided: N_(
        "Request #{item} has been decided or changed meanwhile. /agenda shows where it stands."
    ),
    errors.AgendaItemDeclined: N_(
        "Request #{item} was declined; it takes no more support, opinions or moves. "
        "A city may ask again with /propose."
    ),
    errors.OwnAgendaItem: N_(
        "{city} asked for request #{item} itself; support is for the other cities."
    ),
    errors.NotOnAgenda: N_(
        "Request #{item} is not on an agenda: only accepted items are ordered, timed or "
        "given an outcome."
    ),
    errors.OutcomeTooEarly: N_(
        "Item #{item}'s session has not begun yet; record its outcome once the session has started."
    ),
    errors.OutcomeRecorded: N_(
        "Item #{item} already has its outcome, so it can no longer be deferred. "
        "To take it up again, ask for it anew with /propose."
    ),
    errors.InvalidAgendaMinutes: N_(
        "Give an item from 1 to {max} minutes, or 0 to take its time away: "
        "/agenda minutes <number> <minutes>, e.g. /agenda minutes 5 20."
    ),
    errors.InvalidRequestDeadline: N_(
        "Requests can close from 0 to {max} days before a session: "
        "/agenda deadline <days>, e.g. /agenda deadline 7."
    ),
    errors.InvalidSummitDates: N_(
        "A summit lasts from one to {max} days, its last day on or after its first: "
        "/summit 2027-05-12 2027-05-14 Thessaloniki."
    ),
    errors.EmptyBroadcast: N_(
        "Write the broadcast after the command: /broadcast <text>, e.g. /broadcast The "
        "summit is on 12 May. Or reply /broadcast to a message to send its text, formatting "
        "kept."
    ),
    errors.BroadcastTooLong: N_(
        "A broadcast is at most {parts} Telegram messages long, cut at paragraph or line ends "
        "and never inside a word or a formatting. Shorten it, or break up very long lines "
        "and long bold or linked passages."
    ),
    errors.UnknownBroadcast: N_("There is no broadcast #{number}. /broadcasts lists them."),
    errors.NotYourBroadcast: N_(
        "Broadcast #{number} is another person's draft: only its author can send or cancel it."
    ),
    errors.BroadcastNotDraft: N_(
        "Broadcast #{number} is no longer a draft (it was sent, or cancelled): nothing was "
        "changed. /broadcasts shows its state."
    ),
    errors.NoAudience: N_("Choose who receives broadcast #{number} first."),
    errors.BroadcastNotSending: N_(
        "Broadcast #{number} is not being sent (it is finished, or not confirmed yet): "
        "there is nothing to stop."
    ),
    errors.NoRecipients: N_(
        "Nobody is in the audience chosen for broadcast #{number}. Choose another."
    ),
    errors.AudienceChanged: N_(
        "The audience of broadcast #{number} changed since it was shown: it is now {count} "
        "recipients. Check, then press Send again."
    ),
    errors.NoNextSession: N_(
        "This working group has no session planned, so there is no agenda to order yet."
    ),
    errors.PollClosed: N_("This poll is closed; answers and choices are no longer taken."),
    errors.UnknownPollOption: N_("That poll has no such option."),
    errors.NoCandidates: N_(
        "Between {start} and {end} there is no time at which any of the {cities} member "
        "cities is inside its working hours on a working day. Try other dates: "
        "/plan YYYY-MM-DD YYYY-MM-DD."
    ),
    errors.NoMemberCities: N_(
        "{group} has no member cities yet, so there is nobody to plan for. "
        "Delegates can send /join here."
    ),
    errors.InvalidCadence: N_(
        "Give a number of weeks from 1 to {max}, or off: /cadence 4, /cadence off."
    ),
    errors.InvalidRequestReason: N_("Please give a reason of at most {max} characters."),
    errors.AlreadyRequested: N_(
        "{city} has already asked for an extra session; planning opens when enough cities "
        "have asked."
    ),
    errors.InvalidPollQuestion: N_("A poll needs a question of at most {max} characters."),
    errors.InvalidPollOptions: N_(
        "A poll needs {min} to {max} options; you gave {count}. Separate them with |, e.g. "
        "/poll Which theme first? | Heat | Floods."
    ),
    errors.PollOptionTooLong: N_(
        "Option {number} is longer than {max} characters; a button cannot show it. "
        "Please shorten it."
    ),
    errors.DuplicatePollOption: N_("Option {number} repeats an earlier option."),
    errors.PollNotDraft: N_("Poll #{poll} is already open or was discarded: it cannot change."),
    errors.PollNotOpenYet: N_("This vote has not started yet."),
    errors.NoOpenPoll: N_("This working group has no open poll."),
    errors.SeveralOpenPolls: N_(
        "This working group has several open polls ({polls}). Say which: /closepoll <number>."
    ),
    errors.ElectionInProgress: N_(
        "The election of the {year} term presidency is already under way: /election shows it."
    ),
    errors.NoElection: N_(
        "No presidency election is under way. The secretariat opens one with /election open."
    ),
    errors.CandidaciesClosed: N_(
        "Voting in the election of {year} has begun: candidacies are closed."
    ),
    errors.AlreadyCandidate: N_("{city} already stands for the term presidency of {year}."),
    errors.NoCandidacies: N_(
        "No city stands in the election of {year} yet, so there is nothing to vote on."
    ),
    errors.VotingNotOpen: N_(
        "The election of {year} still takes candidacies: open the vote with /election vote."
    ),
    errors.ElectionHasNoVotes: N_(
        "No city has voted in the election of {year} yet, so it cannot be decided. It stays open."
    ),
    scheduler_errors.InvalidWeekdays: N_(
        "“{text}” are not weekdays I understand. Write them like Mon-Fri, Mon,Wed,Fri or 1-5 "
        "(Monday is 1)."
    ),
    scheduler_errors.InvalidDate: N_(
        "“{text}” is not a date. Write dates as YYYY-MM-DD, e.g. 2027-01-14."
    ),
    scheduler_errors.InvalidTime: N_(
        "“{text}” is not a time. Write times as HH:MM on a 24-hour clock, e.g. 10:00 or 14:30."
    ),
    scheduler_errors.SessionEndsBeforeStart: N_(
        "The session would end ({end}) before it starts ({start}). "
        "Give the start first, e.g. 10:00-11:30."
    ),
    scheduler_errors.NonexistentLocalTime: N_(
        "{time} does not exist on {date} in {zone}: the clocks skip that hour for summer "
        "time. Choose a time an hour later or earlier."
    ),
    scheduler_errors.UnknownZone: N_(
        "“{zone}” is not a time zone I know. Use an IANA name such as Europe/Sofia."
    ),
    scheduler_errors.InvalidWindow: N_("I cannot search those dates."),
    scheduler_errors.InvalidDuration: N_(
        "A session lasts from {step} to {max} minutes, in steps of {step}; "
        "{minutes} minutes is not possible."
    ),
    scheduler_errors.InvalidWorkingHours: N_(
        "Working hours must end after they start and name at least one weekday, "
        "e.g. /hours 08:30-16:30 Mon-Fri."
    ),
}

UNKNOWN_ZONE_SUGGESTION = N_("“{zone}” is not a time zone I know. Did you mean {suggestion}?")

WINDOW_REASONS = {
    "end_before_start": N_(
        "The period ends ({end}) before it starts ({start}). Give the first day first."
    ),
    "too_long": N_("The period is {days} days long; I search at most {max} days at a time."),
    "past": N_("That period is over. Give dates from today on."),
}

ROLE_NEEDED = {
    "secretariat": N_("Only the secretariat can do that."),
    "presidency_or_secretariat": N_(
        "Only the term presidency or the secretariat can propose a working group."
    ),
    "presidency_or_secretariat_report": N_(
        "Only the term presidency or the secretariat can make the annual report."
    ),
    "chat_admin": N_("Only this chat's administrators or the secretariat can do that."),
    "city_delegate": N_("Only the city's own delegates or the secretariat can do that."),
    "poll_opener": N_(
        "Only this working group's coordinators, the secretariat or the term presidency "
        "can open a poll here."
    ),
    "poll_organiser": N_(
        "Only whoever opened this poll, this working group's coordinators, the secretariat "
        "or the term presidency can do that."
    ),
    "agenda_organiser": N_(
        "Only this working group's coordinators, the secretariat or the term presidency "
        "can decide on agenda requests, order the agenda and record outcomes."
    ),
    "session_organiser": N_(
        "Only this working group's coordinators, the secretariat or the term presidency "
        "can fix, move or cancel its sessions."
    ),
}

SIDE_NAMES = {"presidency": N_("term presidency"), "secretariat": N_("secretariat")}

USAGE = {
    "iam": N_(
        "Tell me your city: /iam <city>, e.g. /iam Thessaloniki "
        "(add mayor or technical for those roles)."
    ),
    "approve": N_(
        "Give the number of the delegate request: /approve <number>, e.g. /approve 17. "
        "/secretariat lists the requests waiting."
    ),
    "reject": N_(
        "Give the number of the delegate request: /reject <number>, e.g. /reject 17. "
        "/secretariat lists the requests waiting."
    ),
    "link": N_("Name the working group: /link <group>, e.g. /link climate. See /groups."),
    "coordinator": N_("Give the delegate's user id: /coordinator <user id>."),
    "newgroup": N_(
        "Give a short name and a name: /newgroup <short-name> <name>, "
        "e.g. /newgroup water-energy Water and Energy."
    ),
    "presidency": N_("To record a term: /presidency <year> <city>, e.g. /presidency 2027 Sofia."),
    "apply": N_(
        "Give the city, its country code and its time zone: "
        "/apply <city>, <country code>, <IANA zone>, e.g. /apply Ohrid, MK, Europe/Skopje."
    ),
    "language": N_("Choose a language code: /language <code>, e.g. /language tr."),
    "secretariat": N_("Use /secretariat add <user id> or /secretariat remove <user id>."),
    "schedule": N_(
        "Give the day and the time: /schedule YYYY-MM-DD HH:MM [zone] [minutes] [| title], "
        "e.g. /schedule 2027-01-14 10:00 Europe/Belgrade 90 | Heat action plans. "
        "The time is in {zone} unless you name a zone; /plan finds a time that suits everyone."
    ),
    "move": N_(
        "Give the session's number and its new day and time: "
        "/move <session> YYYY-MM-DD HH:MM [zone], e.g. /move 12 2027-01-14 10:00."
    ),
    "cancel": N_("Give the session's number: /cancel <session>, e.g. /cancel 12."),
    "hours": N_(
        "Give the working hours and, if not Monday to Friday, the days: "
        "/hours HH:MM-HH:MM [days], e.g. /hours 08:30-16:30 Mon-Fri. "
        "The secretariat names the city first: /hours Sofia 08:30-16:30."
    ),
    "cadence": N_(
        "/cadence <weeks> sets how many weeks before each quarter planning opens by "
        "itself; /cadence off stops it. E.g. /cadence 4."
    ),
    "poll": N_(
        "Give the question and at least two options, separated by |: "
        "/poll <question> | <option> | <option>, e.g. /poll Which theme first? | Heat | Floods. "
        "Send /poll alone to set the rules step by step."
    ),
    "closepoll": N_("Give the poll's number: /closepoll <number>, e.g. /closepoll 7."),
    "calendar": N_(
        "/calendar gives the links of your calendar subscriptions (in a working group's "
        "chat, the group's); /calendar reset replaces them."
    ),
    "report": N_("Give the year: /report <year>, e.g. /report 2027."),
    "broadcasts": N_(
        "/broadcasts lists the latest broadcasts; /broadcasts <number> shows one's report, "
        "e.g. /broadcasts 3."
    ),
    "summit": N_(
        "/summit shows the summits recorded. The secretariat records one with its first and "
        "last day and the host city: /summit 2027-05-12 2027-05-14 Thessaloniki."
    ),
    "propose": N_(
        "Give the item's title, and any description on the lines below: /propose <title>, "
        "e.g. /propose Heat action plans for schools."
    ),
    "agenda": N_(
        "/agenda shows the next session's agenda; /agenda <session> another session's. "
        "Organisers: /agenda order <number> <number> …, /agenda minutes <number> <minutes>, "
        "/agenda deadline <days>."
    ),
    "decline": N_(
        "Give the request's number and the reason: /decline <number> <reason>, "
        "e.g. /decline 5 Already covered by item 3."
    ),
    "opinion": N_(
        "Give the request's number and your city's opinion: /opinion <number> <text>, "
        "e.g. /opinion 5 We support this and can present our plan. "
        "/opinion <number> alone shows the opinions given."
    ),
    "outcome": N_(
        "Give the item's number and the recommendation made: "
        "/outcome <number> <recommendation>; /outcome <number> alone offers the other outcomes."
    ),
    "election": N_(
        "/election shows the presidency election; the secretariat runs it with "
        "/election open, /election vote and /election close."
    ),
    "plan": N_(
        "/plan proposes the best times for the next four weeks from a week ahead. "
        "To choose: /plan [YYYY-MM-DD YYYY-MM-DD] [minutes] [| title], "
        "e.g. /plan 2027-01-11 2027-01-29 90 | Quarterly session."
    ),
}

WRONG_CHAT = {
    "private": N_("Please send this command to me in a private chat."),
    "group": N_("This command works in a working group's chat. Send it there."),
}

TOO_LONG = N_("That is too long for me. Please keep it shorter.")


def message_for(error: BaseException) -> str | None:
    """The translated text for a refusal, or None for an unexpected error."""
    # These templates are plain text ("/link <group>"): escaped whole, since replies are HTML.
    # (Templates are looked up first and translated after, so that the extractor
    # does not take the lookup keys for messages.)
    if isinstance(error, errors.NotAllowed):
        template = ROLE_NEEDED[error.params["role"]]
        return esc(_(template))
    if isinstance(error, errors.GroupAlreadyProposed):
        side = SIDE_NAMES[error.params["needs"]]
        params = dict(error.params, needs=_(side))
        return esc(_(MESSAGES[errors.GroupAlreadyProposed])).format(**_escaped(params))
    if isinstance(error, scheduler_errors.UnknownZone) and error.params.get("suggestion"):
        return esc(_(UNKNOWN_ZONE_SUGGESTION)).format(**_escaped(error.params))
    if isinstance(error, scheduler_errors.InvalidWindow):
        params = {k: str(v) for k, v in error.params.items()}
        return esc(_(WINDOW_REASONS[params["reason"]])).format(**_escaped(params))
    if isinstance(error, errors.DomainError):
        message = MESSAGES.get(type(error))
        if message is None:
            return None
        return esc(_(message)).format(**_escaped(error.params))
    if isinstance(error, Usage):
        return esc(_(USAGE[error.command])).format(zone=esc(current_scope_zone()))
    if isinstance(error, WrongChat):
        return esc(_(WRONG_CHAT[error.needs]))
    if isinstance(error, TooLong):
        return esc(_(TOO_LONG))
    return None


def current_scope_zone() -> str:
    """The network's reference zone, named in usage texts that default to it."""
    scope = maybe_scope()
    return scope.deps.reference_zone if scope is not None else "Europe/Istanbul"


def _escaped(params: dict[str, Any]) -> dict[str, Any]:
    return {k: esc(_shown(v)) if isinstance(v, str | date | time) else v for k, v in params.items()}


def _shown(value: str | date | time) -> str:
    """Dates and times in the notation people type them in: 2027-03-28, 03:30."""
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return value


async def on_error(update: object, context: BotContext) -> None:
    """The error handler: refusals are answered, surprises logged and apologised for."""
    error = context.error
    scope = maybe_scope()
    if scope is not None:
        # Roll back whatever the handler wrote, and drop replies that announced it.
        scope.failed = True
        scope.error = error
        scope.after_commit.clear()
    if not isinstance(update, Update):
        log.error("error outside an update", exc_info=error)
        return
    if error is None:
        return
    if isinstance(error, Forged):
        log.warning(
            "refused forged callback data %r", update.callback_query and update.callback_query.data
        )
        _answer(update, context, None, scope_present=scope is not None)
        return
    text = message_for(error)
    if text is None and is_transient(error):
        # The unit of work tries the update once more; it logs if that fails too.
        log.warning("update %s met a passing fault: %s", update.update_id, error)
        text = _(UNEXPECTED)
    elif text is None:
        # Log before telling the user, so the error is on record even if telling fails.
        log.error(
            "unexpected error while handling update %s",
            json.dumps(update.to_dict(), ensure_ascii=False)[:2000],
            exc_info=error,
        )
        text = _(UNEXPECTED)
    _answer(update, context, text, scope_present=scope is not None)


def _answer(update: Update, context: BotContext, text: str | None, *, scope_present: bool) -> None:
    if not scope_present:
        return
    if update.callback_query is not None:
        # An alert is plain text: what was escaped for HTML is shown as typed.
        context.answer(update, plain(text) if text is not None else None, alert=text is not None)
    elif text is not None:
        context.reply(update, text)
