"""The demo as a new user lives it, in a real headless Chromium: sign up, sign in, connect Google
through the emulator's consent page, see the meetings arrive by signed webhooks, see yesterday's
bots (one recorded, two failed, and why) arrive by their own signed webhooks, record one.

The example project's pages run on pytest-django's live server; the emulator delivers its webhooks
to that server over HTTP, as it does in ``make demo``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.browser,
    # The live server's threads share one in-memory SQLite connection: the emulator's concurrent,
    # late webhooks collided on it ("cannot start a transaction within a transaction") and leaked
    # into later tests. PostgreSQL gives each thread its own connection, as production does.
    pytest.mark.postgres(reason="the live server shares one SQLite connection between threads"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("example_project.urls"),
]

EXAMPLE_TEMPLATES = Path(__file__).resolve().parents[2] / "example_project" / "templates"


@pytest.fixture
def example_site(settings, recall_emulator_live_server, live_server):
    """The live server with the example project's templates and login pages; the emulator in
    demo mode (a calendar connects shortly after creation and gets a week of meetings)."""
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [EXAMPLE_TEMPLATES]}]
    settings.LOGIN_URL = "login"
    settings.LOGIN_REDIRECT_URL = "meetings"
    settings.SOCIAL_AUTH_LOGIN_REDIRECT_URL = "/recall/calendars/"
    emulator = recall_emulator_live_server
    emulator.auto_connect = True
    emulator.auto_connect_delay = 0.2
    emulator.seed_events = True
    return live_server.url, emulator


def wait_for_meetings(page, url: str, timeout: float = 20.0) -> None:
    """Reload the meetings page until the webhooks have brought meetings in."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.goto(url)
        if page.locator("tr.meeting").count():
            return
        time.sleep(0.3)
    raise AssertionError(f"No meeting appeared within {timeout:.0f} s:\n{page.inner_text('main')}")


def wait_for_outcomes(page, url: str, endings: list[str], timeout: float = 20.0) -> None:
    """Reload the meetings page until the recent meetings show each of ``endings``: a bot counts
    as recorded once its call ends, but its last report (``bot.done``) may still be on its way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page.goto(url)
        recent = page.locator("#recent")
        shown = recent.inner_text() if recent.count() else ""
        if all(ending in shown for ending in endings):
            return
        time.sleep(0.3)
    raise AssertionError(
        f"No bot outcome appeared within {timeout:.0f} s:\n{page.inner_text('main')}"
    )


def test_a_new_user_connects_google_and_records_a_meeting(
    example_site, browser_page, artifacts_dir
):
    base, emulator = example_site
    page = browser_page

    # Sign up, sign out, sign in again: the account works like any other.
    page.goto(base + "/")
    page.click("text=Sign up")
    page.fill("#id_username", "newcomer")
    page.fill("#id_password1", "a-long-demo-password-42")
    page.fill("#id_password2", "a-long-demo-password-42")
    page.click("form.auth button[type=submit]")
    page.wait_for_url("**/recall/calendars/")
    page.click("header button:has-text('Sign out')")
    page.wait_for_url("**/accounts/login/")
    page.fill("#id_username", "newcomer")
    page.fill("#id_password", "a-long-demo-password-42")
    page.click("form.auth button[type=submit]")
    page.wait_for_url("**/meetings/")
    assert "No calendar is connected yet" in page.inner_text("main")

    # Connect Google Calendar through the emulator's consent page.
    page.click("header a:has-text('My calendars')")
    page.click("button:has-text('Connect Google Calendar')")
    page.wait_for_url(f"{emulator.base_url}/oauth/google/authorize**")
    page.fill("input[name=email]", "newcomer@example.com")
    page.click("button:has-text('Allow')")
    page.wait_for_url("**/recall/calendars/")
    (calendar,) = emulator.calendars.values()
    assert calendar["oauth_email"] == "newcomer@example.com"

    # The emulator connects the calendar and adds a week of meetings, and yesterday's meetings
    # whose bots moved through their statuses; webhooks bring them here, in whatever order.
    wait_for_meetings(page, base + "/meetings/")
    wait_for_outcomes(
        page,
        base + "/meetings/",
        [
            "Recorded, the recording is ready",
            "Failed to record: the meeting was not found",
            "Failed to record: the host refused the recording",
        ],
    )
    page.screenshot(path=str(artifacts_dir / "demo-meetings.png"), full_page=True)
    recent = page.locator("#recent")
    finished = recent.locator("tr.meeting", has_text="Design review")
    assert "Recorded" in finished.locator(".state").inner_text()
    assert "Recorded, the recording is ready" in finished.locator(".reason").inner_text()
    no_join = recent.locator("tr.meeting", has_text="Customer onboarding")
    assert "Failed" in no_join.locator(".state").inner_text()
    assert "Failed to record: the meeting was not found" in no_join.inner_text()
    refused = recent.locator("tr.meeting", has_text="Vendor negotiation")
    assert "Failed to record: the host refused the recording" in refused.inner_text()
    past_bots = set(emulator.bots)

    row = page.locator("tr.meeting", has=page.locator("button:has-text('Record')")).first
    title = row.locator(".title").inner_text()
    row.locator("button:has-text('Record')").click()
    page.wait_for_url("**/meetings/")

    assert f"A bot will record “{title}”." in page.inner_text(".messages")
    recorded = page.locator("tr.meeting", has_text=title).first
    assert "Bot scheduled" in recorded.inner_text()
    (bot,) = [bot for bot_id, bot in emulator.bots.items() if bot_id not in past_bots]
    (event_id,) = bot["event_ids"]
    assert emulator.events[event_id]["calendar_id"] == calendar["id"]
    page.screenshot(path=str(artifacts_dir / "demo-recorded.png"), full_page=True)


def test_the_meetings_page_speaks_the_browsers_time_zone(example_site, chromium, django_user_model):
    """The page's snippet reports the browser's zone (Europe/Berlin here) in the recall_tz cookie
    and reloads once; the times then carry that zone, not the server's UTC."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from tests import builders

    base, _emulator = example_site
    user = django_user_model.objects.create_user("berliner", password="a-long-demo-password-42")
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    start = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 14, tzinfo=UTC)
    builders.event(builders.calendar(user), start=start, title="Planning")
    local = start.astimezone(ZoneInfo("Europe/Berlin"))
    context = chromium.new_context(timezone_id="Europe/Berlin")
    try:
        page = context.new_page()
        page.goto(base + "/accounts/login/")
        page.fill("#id_username", "berliner")
        page.fill("#id_password", "a-long-demo-password-42")
        page.click("form.auth button[type=submit]")
        page.wait_for_url("**/meetings/")
        cookies = {cookie["name"]: cookie["value"] for cookie in context.cookies()}
        assert cookies.get("recall_tz") == "Europe/Berlin"
        page.goto(base + "/meetings/")  # (the snippet's own reload may still be under way)
        when = page.locator("tr.meeting", has_text="Planning").locator(".when").inner_text()
        assert f"{local:%H:%M} {local.tzname()}" in when  # e.g. 15:00 CET for 14:00 UTC
    finally:
        context.close()
