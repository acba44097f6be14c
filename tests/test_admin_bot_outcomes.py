"""Bot outcomes in the admin: the meeting list's column and filter, the meeting page, and the
action that sends a new bot to a meeting still on whose bot failed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from django_recall_calendar.models import BotResult, CalendarEvent, RecordingPolicy
from tests import builders

pytestmark = [pytest.mark.django_db, pytest.mark.recall_emulator(unruly=False)]

EVENTS = reverse("admin:recall_calendar_calendarevent_changelist")


@pytest.fixture
def meetings(recall_emulator):
    """An ended recorded meeting, an ended failed one, one on now whose bot failed, one to come,
    and a private one no bot goes to."""
    calendar = builders.recall_calendar(
        recall_emulator, "ada@acme.example", recording_policy=RecordingPolicy.ALL
    )
    now = timezone.now()
    specs = {
        "recorded": {"start_time": now + timedelta(minutes=1)},
        "failed": {"start_time": now + timedelta(minutes=2)},
        "on_now": {"start_time": now - timedelta(minutes=10), "duration": 60},
        "upcoming": {"start_time": now + timedelta(days=1)},
        "private": {"start_time": now + timedelta(days=2), "raw_extra": {"visibility": "private"}},
    }
    rows = builders.synced_events(
        recall_emulator,
        calendar,
        *[{"title": title.replace("_", " ").title(), **spec} for title, spec in specs.items()],
    )
    found = dict(zip(specs, rows, strict=True))
    recall_emulator.move_bot(builders.bot_id_of(found["recorded"]), "done")
    recall_emulator.move_bot(
        builders.bot_id_of(found["failed"]), "fatal", sub_code="meeting_not_found"
    )
    recall_emulator.move_bot(
        builders.bot_id_of(found["on_now"]), "fatal", sub_code="meeting_not_started"
    )
    # The first two have ended since (a test cannot wait for them).
    CalendarEvent.objects.filter(pk__in=[found["recorded"].pk, found["failed"].pk]).update(
        start_time=now - timedelta(hours=2), end_time=now - timedelta(hours=1)
    )
    return found


def listed_titles(admin_client, **params) -> set[str]:
    response = admin_client.get(EVENTS, params)
    assert response.status_code == 200
    return {event.title for event in response.context["cl"].result_list}


def test_the_outcome_filter(admin_client, meetings):
    assert listed_titles(admin_client, bot_outcome="failed") == {"Failed", "On Now"}
    assert listed_titles(admin_client, bot_outcome="recorded") == {"Recorded"}
    assert listed_titles(admin_client, bot_outcome="upcoming") == {"Upcoming"}
    assert listed_titles(admin_client, bot_outcome="in_progress") == set()


def test_the_list_says_what_each_bot_did_and_which_rule_skipped_a_meeting(admin_client, meetings):
    html = admin_client.get(EVENTS).content.decode()

    assert "Failed to record: the meeting was not found (" in html
    assert "Failed to record: the meeting had not started (" in html
    assert "Recorded, the recording is ready (" in html
    assert "None: private event" in html


def test_the_meeting_page_shows_the_outcome_and_the_bots_history(admin_client, meetings):
    page = reverse("admin:recall_calendar_calendarevent_change", args=[meetings["failed"].pk])
    html = admin_client.get(page).content.decode()

    assert "Failed to record: the meeting was not found" in html
    assert "&quot;status&quot;: &quot;fatal&quot;" in html
    assert "&quot;sub_code&quot;: &quot;meeting_not_found&quot;" in html


def test_staff_send_a_new_bot_only_where_one_failed_and_the_meeting_is_on(
    admin_client, meetings, recall_emulator
):
    on_now = meetings["on_now"]
    failed_bot = builders.bot_id_of(on_now)
    chosen = [meetings[name].pk for name in ("on_now", "failed", "recorded", "upcoming")]

    response = admin_client.post(
        EVENTS, {"action": "send_new_bot", "_selected_action": chosen}, follow=True
    )

    text = " ".join(str(message) for message in response.context["messages"])
    assert "Sent a new bot to 1 meeting." in text
    assert "ended" in text and "its bot has not failed" in text
    on_now.refresh_from_db()
    (new_bot,) = {entry["bot_id"] for entry in on_now.bots} - {failed_bot}
    assert on_now.bot_outcome is None  # the failed bot no longer speaks for the meeting

    recall_emulator.move_bot(new_bot, "in_call_recording")

    on_now.refresh_from_db()
    assert on_now.bot_outcome.result == BotResult.RECORDED
    assert listed_titles(admin_client, bot_outcome="failed") == {"Failed"}
