"""The annual report: /report <year> for the secretariat and the term presidency, and the
same files from the command line (``b40-bot report 2027 --out DIR``).

Three files people can open and forward: the report as one HTML page (its chart inside
it), the figures as CSV, and the chart (attendance by city per quarter, drawn with
matplotlib) as a PNG of its own.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import re
from dataclasses import dataclass

from telegram import InputFile, Update
from telegram.constants import ChatType

from handlers.common import Usage, WrongChat, chat_of, command_text
from handlers.context import BotContext
from locales import N_, _, country_name, current_language
from storage import errors
from storage import report as figures
from storage.models import AgendaOutcome

FIRST_YEAR, LAST_YEAR = 2000, 2100

OUTCOME_WORDS = {
    AgendaOutcome.RECOMMENDATION.value: N_("recommendation made"),
    AgendaOutcome.NOTED.value: N_("noted"),
    AgendaOutcome.NOT_REACHED.value: N_("not reached"),
    "none": N_("no outcome recorded"),
}


@dataclass(frozen=True)
class Files:
    html: bytes
    csv: bytes
    png: bytes


def chart(report: figures.AnnualReport) -> bytes:
    """Sessions each city answered it was coming to, per quarter: one stacked bar a city."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = [r for r in report.attendance if r.expected] or [figures.CityAttendance("—", "")]
    height = max(2.5, 0.32 * len(rows) + 1.2)
    figure, axes = plt.subplots(figsize=(8, height), dpi=110)
    try:
        names = [r.city for r in rows]
        left = [0] * len(rows)
        for quarter in range(4):
            values = [r.by_quarter[quarter] for r in rows]
            axes.barh(names, values, left=left, label=f"Q{quarter + 1}")
            left = [a + b for a, b in zip(left, values, strict=True)]
        axes.invert_yaxis()
        axes.set_xlabel(_("sessions attended"))
        axes.set_title(_("Attendance by city per quarter, {year}").format(year=report.year))
        axes.legend(loc="lower right")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(figure)


def figures_csv(report: figures.AnnualReport) -> bytes:
    """The figures in one table, a row per number: section, group, city, country, quarter,
    measure, value."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "group", "city", "country", "quarter", "measure", "value"])
    for group in report.groups:
        writer.writerow(["sessions", group.slug, "", "", "", "held", group.held])
        writer.writerow(["sessions", group.slug, "", "", "", "cancelled", group.cancelled])
    for row in report.attendance:
        writer.writerow(["attendance", "", row.city, row.country, "", "expected", row.expected])
        writer.writerow(["attendance", "", row.city, row.country, "", "attended", row.attended])
        for quarter, value in enumerate(row.by_quarter, start=1):
            writer.writerow(["attendance", "", row.city, row.country, quarter, "attended", value])
    for outcome, count in sorted(report.outcomes().items()):
        writer.writerow(["agenda", "", "", "", "", outcome, count])
    for line in report.polls:
        writer.writerow(["polls", line.group, "", "", "", "voted", line.voted])
        writer.writerow(["polls", line.group, "", "", "", "entitled", line.entitled])
    writer.writerow(["members", "", "", "", "", "new cities", len(report.new_cities)])
    writer.writerow(["members", "", "", "", "", "new delegates", len(report.new_delegates)])
    # Excel opens UTF-8 with a byte order mark as UTF-8: city names keep their letters.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _table(head: list[str], rows: list[list[object]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(value))}</td>" for value in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _heading(text: str) -> str:
    return f"<h2>{html.escape(text)}</h2>"


def report_html(report: figures.AnnualReport, png: bytes, language: str) -> bytes:
    title = _("B40 Balkan Cities Network: annual report {year}").format(year=report.year)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    if report.presidency:
        city, starts, ends = report.presidency
        parts.append(
            "<p>"
            + html.escape(
                _("Term presidency: {city}, {start} – {end}.").format(
                    city=city, start=starts.isoformat(), end=ends.isoformat()
                )
            )
            + "</p>"
        )
    parts.append(_heading(_("Sessions")))
    parts.append(
        _table(
            [_("Working group"), _("held"), _("cancelled")],
            [[g.name, g.held, g.cancelled] for g in report.groups],
        )
    )
    parts.append(_heading(_("Attendance")))
    parts.append(
        "<p>"
        + html.escape(
            _(
                "A city is counted as attending a session when one of its delegates answered "
                "that they were coming."
            )
        )
        + "</p>"
    )
    chart_data = base64.b64encode(png).decode()
    alt = html.escape(_("Attendance by city per quarter, {year}").format(year=report.year))
    parts.append(f'<img src="data:image/png;base64,{chart_data}" alt="{alt}">')
    parts.append(
        _table(
            [_("City"), _("Country"), _("expected"), _("attended"), "Q1", "Q2", "Q3", "Q4"],
            [
                [r.city, country_name(r.country), r.expected, r.attended, *r.by_quarter]
                for r in report.attendance
            ],
        )
    )
    parts.append(
        _table(
            [_("Country"), _("expected"), _("attended")],
            [[country_name(c), e, a] for c, e, a in report.by_country()],
        )
    )
    parts.append(_heading(_("Agenda items")))
    parts.append(
        _table(
            [_("Outcome"), _("items")],
            [[_(OUTCOME_WORDS[k]), v] for k, v in sorted(report.outcomes().items())],
        )
    )
    parts.append(
        _table(
            [_("Working group"), _("Session"), _("Item"), _("City"), _("Outcome")],
            [
                [
                    a.group,
                    f"#{a.session}",
                    a.title,
                    a.city,
                    a.recommendation or _(OUTCOME_WORDS[a.outcome]),
                ]
                for a in report.agenda
            ],
        )
    )
    parts.append(_heading(_("Polls")))
    parts.append(
        _table(
            [_("Working group"), _("Question"), _("cities voted"), _("Result")],
            [
                [
                    p.group or _("the whole network"),
                    p.question,
                    f"{p.voted} / {p.entitled}",
                    p.result or _("nothing carried"),
                ]
                for p in report.polls
            ],
        )
    )
    parts.append(_heading(_("Membership")))
    parts.append(
        _table(
            [_("New member city"), _("Country"), _("joined")],
            [[n, country_name(c), j.isoformat()] for n, c, j in report.new_cities],
        )
    )
    parts.append(
        "<p>"
        + html.escape(_("New delegates approved: {count}.").format(count=len(report.new_delegates)))
        + "</p>"
    )
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;"
        "padding:.2em .5em;text-align:left}img{max-width:100%}"
    )
    page = (
        f'<!DOCTYPE html><html lang="{html.escape(language)}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{style}</style></head>"
        f"<body>{''.join(parts)}</body></html>"
    )
    return page.encode("utf-8")


def render(report: figures.AnnualReport, language: str) -> Files:
    png = chart(report)
    return Files(html=report_html(report, png, language), csv=figures_csv(report), png=png)


def parse_year(text: str) -> int:
    if not re.fullmatch(r"\d{4}", text.strip()):
        raise Usage("report")
    year = int(text)
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise Usage("report")
    return year


async def report_command(update: Update, ctx: BotContext) -> None:
    """/report <year>, in private, by the secretariat or the term presidency."""
    if chat_of(update).type != ChatType.PRIVATE:
        raise WrongChat("private")
    year = parse_year(command_text(update))
    actor = await ctx.actor()
    if not (actor.is_secretariat or actor.is_presidency):
        raise errors.NotAllowed(role="presidency_or_secretariat_report")
    found = await figures.build(ctx.session, year=year, zone=ctx.deps.reference_zone, now=ctx.now())
    if found.empty:
        ctx.reply(
            update,
            _(
                "There is nothing to report for {year}: no session, poll, new member city, "
                "new delegate or term presidency is recorded for it."
            ).format(year=year),
        )
        return
    files = render(found, current_language.get())
    bot, chat_id = ctx.bot, chat_of(update).id
    caption = _("The B40 annual report {year}: the report, its figures and its chart.").format(
        year=year
    )

    async def send() -> None:
        await bot.send_document(
            chat_id, InputFile(files.html, filename=f"b40-report-{year}.html"), caption=caption
        )
        await bot.send_document(chat_id, InputFile(files.csv, filename=f"b40-figures-{year}.csv"))
        await bot.send_photo(chat_id, InputFile(files.png, filename=f"b40-attendance-{year}.png"))

    ctx.after_commit(send)
