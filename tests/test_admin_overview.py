"""The admin's "bots at a glance" page: four weeks of meetings per day, drawn server-side."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from django_recall_calendar.models import BotOutcome, CalendarEvent, RecordingPolicy
from tests import builders

pytestmark = pytest.mark.django_db

OVERVIEW = reverse("admin:recall_calendar_meetingoverview_changelist")


def outcome(result: str, status: str = "done", sub_code: str = "", **fields) -> BotOutcome:
    now = timezone.now()
    return BotOutcome.objects.create(
        recall_bot_id=uuid.uuid4(),
        status=status,
        sub_code=sub_code,
        status_at=now,
        first_status_at=now,
        result=result,
        failure_status=status if result == "failed" else "",
        failure_sub_code=sub_code if result == "failed" else "",
        **fields,
    )


def at(days: int, hour: int = 12):
    """Noon (UTC, the admin's zone in the tests) ``days`` from today."""
    today = timezone.localdate()
    return timezone.make_aware(
        timezone.datetime.combine(today + timedelta(days=days), timezone.datetime.min.time())
    ) + timedelta(hours=hour)


@pytest.fixture
def fortnight():
    calendar = builders.calendar(recording_policy=RecordingPolicy.ALL)
    soon = at(1)
    builders.event(calendar, start=at(-1), bot_outcome=outcome("recorded"))
    builders.event(calendar, start=at(-1, 15), bot_outcome=outcome("recorded"))
    builders.event(
        calendar,
        start=at(-3),
        bot_outcome=outcome("failed", "fatal", "meeting_not_found"),
    )
    builders.event(
        calendar,
        start=at(-3, 14),
        bot_outcome=outcome("failed", "fatal", "meeting_not_found"),
    )
    builders.event(
        calendar,
        start=soon,
        bots=[{"bot_id": str(uuid.uuid4()), "start_time": soon.isoformat()}],
    )
    builders.event(calendar, start=at(7), sensitivity="private")
    builders.event(calendar, start=at(7, 9), is_all_day=True)
    builders.event(calendar, start=at(-20))  # outside the four weeks
    return calendar


def test_the_admin_index_links_to_the_overview(admin_client):
    assert OVERVIEW in admin_client.get(reverse("admin:index")).content.decode()


def test_each_day_counts_bots_recorded_failed_with_why_and_skipped_with_which_rule(
    admin_client, fortnight
):
    response = admin_client.get(OVERVIEW)
    assert response.status_code == 200
    days = {day.day: day for day in response.context["days"]}
    assert len(days) == 29
    today = timezone.localdate()
    yesterday = days[today - timedelta(days=1)]
    assert (yesterday.with_bot, yesterday.recorded, yesterday.failed) == (2, 2, 0)
    three_ago = days[today - timedelta(days=3)]
    assert three_ago.failed == 2
    assert dict(three_ago.failures) == {"the meeting was not found": 2}
    tomorrow = days[today + timedelta(days=1)]
    assert (tomorrow.with_bot, tomorrow.pending) == (1, 1)
    next_week = days[today + timedelta(days=7)]
    assert next_week.skipped == 2
    assert dict(next_week.rules) == {
        "Private or confidential": 1,
        "Not a meeting (focus time, out of office, all day…)": 1,
    }
    assert response.context["totals"] == {"with_bot": 5, "recorded": 2, "failed": 2, "skipped": 2}

    html = response.content.decode()
    assert "<svg" in html and "<script" not in html.split("<svg")[1].split("</svg>")[0]
    assert f"{(today - timedelta(days=3)):%a %d %b}: 2 failed" in html  # the bar's tooltip
    assert "2 \N{MULTIPLICATION SIGN} the meeting was not found" in html


def test_the_page_costs_the_same_queries_for_few_and_many_meetings(
    admin_client, fortnight, django_assert_max_num_queries
):
    def queries() -> int:
        with django_assert_max_num_queries(50) as captured:
            assert admin_client.get(OVERVIEW).status_code == 200
        return len(captured)

    few = queries()
    CalendarEvent.objects.bulk_create(
        builders.event(fortnight, start=at(day % 28 - 14), save=False, title=f"m{day}")
        for day in range(200)
    )
    assert queries() == few


def test_staff_without_the_meetings_view_permission_cannot_see_it(client):
    clerk = builders.user("clerk", staff=True)
    client.force_login(clerk)
    assert client.get(OVERVIEW).status_code == 403
    viewer = builders.user("viewer", perms=("view_calendarevent",))
    client.force_login(viewer)
    assert client.get(OVERVIEW).status_code == 200
    assert User.objects.count() == 2
