"""The playground in a real browser: ``b40-bot playground`` as a process, Chromium driven
by Playwright, two tabs as two people.

Skipped, with the reason, where Chromium or Playwright is missing; in CI (``CI=true``)
their absence fails the test instead, since ``.ci/run`` installs both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.bot.test_polling_over_http import free_port

CHROMIUM = os.environ.get("B40_CHROMIUM", "/usr/bin/chromium")
STARTUP_SECONDS = 30.0
WAIT_MS = 15_000  # for the bot's answers on a busy, shared machine


def _browser_or_skip() -> None:
    problems = []
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        problems.append(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("Playwright is not installed (pip install -e '.[test]')")
    if problems:
        reason = "; ".join(problems)
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)


@pytest.fixture
def playground(tmp_path: Path) -> Iterator[str]:
    """The playground as people start it, on a free port, with its own database file."""
    _browser_or_skip()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("B40_")}
    command = [sys.executable, "-m", "bot", "playground", "--db", str(tmp_path / "p.db")]
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        [*command, "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = process.communicate()[0]
                pytest.fail(f"the playground did not start:\n{output}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            output = process.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            output = process.communicate()[0]
    assert process.returncode == 0, output
    assert "Traceback" not in output, output


def test_a_new_delegate_registers_in_turkish_and_the_secretariat_approves(
    playground: str,
) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM)
        context = browser.new_context(locale="tr-TR")
        context.set_default_timeout(WAIT_MS)
        try:
            # A newcomer, Telegram in Turkish.
            newcomer = context.new_page()
            newcomer.goto(f"{playground}/playground")
            newcomer.get_by_text("Someone new").click()
            newcomer.get_by_label("Name").fill("Deniz Arslan")
            newcomer.get_by_label("Telegram language").select_option("tr")
            newcomer.get_by_role("button", name="Be this person").click()
            expect(newcomer.get_by_label("You are")).to_contain_text("Deniz Arslan")
            messages = newcomer.get_by_role("list", name="Messages")

            box = newcomer.get_by_role("textbox", name="Message")
            box.fill("/start")
            box.press("Enter")
            expect(messages).to_contain_text("hoş geldiniz")
            expect(box).to_be_empty()  # the composer is ready for the next message

            # The guided registration: language, country, city, role, all by buttons.
            newcomer.get_by_role("button", name="Türkçe").click()
            newcomer.get_by_role("button", name="Türkiye").click()
            newcomer.get_by_role("button", name="İstanbul", exact=True).click()
            newcomer.get_by_role("button", name="Belediye başkanı").click()
            expect(messages.locator("li").last).to_contain_text("sekretaryanın onayını bekliyor")

            # The secretariat, in a second tab, approves with the button on the notice.
            secretariat = context.new_page()
            secretariat.goto(f"{playground}/playground")
            expect(secretariat.get_by_label("You are")).to_contain_text("Ayşe Yılmaz")
            notice = secretariat.locator("li.message", has_text="Deniz Arslan").last
            expect(notice).to_contain_text("İstanbul")
            notice.get_by_role("button", name="Onayla").click()
            expect(secretariat.locator("li.message").last).to_contain_text("onaylandı")

            # The newcomer's tab hears of it without reloading.
            expect(messages.locator("li").last).to_contain_text("Hoş geldiniz")
            expect(messages.locator("li").last).to_contain_text("İstanbul")

            # In the climate group's chat, the roster lists the new delegate.
            secretariat.get_by_label("Chat").select_option(label="B40 · Local Climate Action")
            expect(secretariat.get_by_role("heading", level=1)).to_have_text(
                "B40 · Local Climate Action"
            )
            group_box = secretariat.get_by_role("textbox", name="Message")
            group_box.fill("/roster")
            group_box.press("Enter")
            roster = secretariat.locator("li.message.bot").last
            expect(roster).to_contain_text("Deniz Arslan")
            expect(roster).to_contain_text("Mehmet Demir")

            # The same page on a phone-sized screen: nothing wider than the screen.
            secretariat.set_viewport_size({"width": 360, "height": 740})
            overflow = secretariat.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0
        finally:
            context.close()
            browser.close()
