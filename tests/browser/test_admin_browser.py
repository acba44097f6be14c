"""Staff schedule bots from the admin in a real browser, end to end against the Recall emulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests import builders

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.recall_emulator(webhooks=False),  # the test syncs explicitly
]


def row(page, title: str):
    return page.locator("#result_list tbody tr", has_text=title)


def test_staff_schedules_bots_for_two_upcoming_meetings(
    browser_page, live_server, recall_emulator, artifacts_dir
):
    builders.user("staff", "staff@corp.example", password="s3cret-pw", superuser=True)
    owner = builders.user("alice", "alice@corp.example")
    calendar = builders.connected_calendar(recall_emulator, owner, "alice@corp.example")
    now = timezone.now()
    builders.synced_events(
        recall_emulator,
        calendar,
        {"start_time": now + timedelta(hours=2), "title": "Design review"},
        {"start_time": now + timedelta(hours=3), "title": "Customer call"},
        {"start_time": now + timedelta(hours=4), "title": "Lunch and learn"},
        {"start_time": now - timedelta(days=2), "title": "Last week's retro"},
    )
    page = browser_page

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "s3cret-pw")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/recall_calendar/calendarevent/?when=upcoming")
    assert page.locator("#result_list tbody tr").count() == 3  # the past retro is filtered out

    row(page, "Design review").locator("input.action-select").check()
    row(page, "Customer call").locator("input.action-select").check()
    page.select_option("select[name=action]", "schedule_bot")
    page.locator("[name=index]").first.click()

    page.fill("#id_bot_name", "Acme Notetaker")
    page.click("input[type=submit][value='Schedule bot']")

    success = page.locator(".messagelist .success")
    assert success.inner_text() == "Scheduled a bot for 2 events."
    for title in ("Design review", "Customer call"):
        assert row(page, title).locator(".field-bot_state").inner_text() == "Scheduled"
    assert row(page, "Lunch and learn").locator(".field-bot_state").inner_text() != "Scheduled"
    page.screenshot(path=str(artifacts_dir / "admin-schedule-bot.png"), full_page=True)

    bots = list(recall_emulator.bots.values())
    assert len(bots) == 2
    assert {bot["bot_config"]["bot_name"] for bot in bots} == {"Acme Notetaker"}


def test_staff_see_failed_bots_at_a_glance_and_find_them_in_the_list(
    browser_page, live_server, artifacts_dir
):
    import uuid

    from django_recall_calendar.models import BotOutcome

    builders.user("staff", "staff@corp.example", password="s3cret-pw", superuser=True)
    calendar = builders.calendar(builders.user("alice", "alice@corp.example"))
    yesterday = timezone.now() - timedelta(days=1)
    failed = BotOutcome.objects.create(
        recall_bot_id=uuid.uuid4(),
        status="fatal",
        sub_code="meeting_not_found",
        status_at=yesterday,
        first_status_at=yesterday,
        failure_status="fatal",
        failure_sub_code="meeting_not_found",
        result="failed",
    )
    builders.event(calendar, start=yesterday, title="Customer call", bot_outcome=failed)
    builders.event(calendar, start=yesterday, title="Stand-up")
    page = browser_page

    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "s3cret-pw")
    page.click("input[type=submit]")
    page.click("text=Bot overview (last and next two weeks)")
    page.wait_for_selector("svg.recall-chart")
    day = page.locator(f"svg.recall-chart g[data-day='{timezone.localdate(yesterday):%Y-%m-%d}']")
    assert day.locator("rect[fill='#dc2626']").count() == 1  # a red "failed" segment
    assert "1 \N{MULTIPLICATION SIGN} the meeting was not found" in page.inner_text(
        "table.recall-days"
    )
    page.screenshot(path=str(artifacts_dir / "admin-bot-overview.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/recall_calendar/calendarevent/?bot_outcome=failed")
    assert row(page, "Customer call").count() == 1
    assert row(page, "Stand-up").count() == 0
    assert "Failed to record: the meeting was not found" in row(page, "Customer call").inner_text()
