"""The REST API's calls to Recall through the emulator: bots, policy changes, disconnect."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from django_recall_calendar import sync
from django_recall_calendar.models import Calendar, CalendarEvent
from django_recall_calendar.scheduling import has_bot
from tests import builders

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(alice) -> APIClient:
    client = APIClient()
    client.force_login(alice)
    return client


@pytest.fixture
def calendar(recall_emulator, alice) -> Calendar:
    """Alice's Google calendar, connected at the emulator and mirrored locally."""
    return sync.refresh_calendar(
        builders.recall_calendar(recall_emulator, "alice@example.com", owner=alice)
    )


def hours_from_now(hours: float) -> dict:
    start = timezone.now() + timedelta(hours=hours)
    return {
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(minutes=30)).isoformat(),
    }


def bot_url(event: CalendarEvent) -> str:
    return reverse("recall_calendar:api-event-bot", args=[event.pk])


def bot_calls(emulator) -> int:
    return len(emulator.requests_for(None, "/bot/"))


def test_post_schedules_a_bot_with_the_given_config(api, recall_emulator, calendar):
    (event,) = builders.synced_events(recall_emulator, calendar, hours_from_now(2))

    response = api.post(
        bot_url(event), {"bot_config": {"bot_name": "Alice's notes"}}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["bot_state"] == "scheduled"
    assert response.json()["record_override"] == "always"
    (bot,) = recall_emulator.bots.values()
    assert bot["bot_config"]["bot_name"] == "Alice's notes"
    event.refresh_from_db()
    assert event.record_override == "always" and has_bot(event)


def test_never_and_delete_remove_the_bot_and_keep_it_away(api, recall_emulator, calendar):
    (event,) = builders.synced_events(recall_emulator, calendar, hours_from_now(2))
    assert api.post(bot_url(event), {}, format="json").status_code == 200
    assert len(recall_emulator.bots) == 1

    never = api.post(bot_url(event), {"override": "never"}, format="json")
    assert never.status_code == 200
    assert (never.json()["bot_state"], never.json()["record_override"]) == ("none", "never")
    assert recall_emulator.bots == {}

    assert api.post(bot_url(event), {"override": "always"}, format="json").status_code == 200
    assert len(recall_emulator.bots) == 1
    deleted = api.delete(bot_url(event))
    assert deleted.status_code == 200
    assert (deleted.json()["bot_state"], deleted.json()["record_override"]) == ("none", "never")
    assert recall_emulator.bots == {}


def test_empty_override_hands_the_meeting_back_to_the_policy(api, recall_emulator, calendar):
    calendar.recording_policy = "all"
    calendar.save()
    (event,) = builders.synced_events(recall_emulator, calendar, hours_from_now(3))
    assert api.delete(bot_url(event)).status_code == 200
    assert recall_emulator.bots == {}

    response = api.post(bot_url(event), {"override": ""}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["bot_state"], response.json()["record_override"]) == ("scheduled", "")
    assert len(recall_emulator.bots) == 1


def test_a_meeting_no_bot_can_join_is_refused_without_calling_recall(
    api, recall_emulator, calendar
):
    no_link, ended = builders.synced_events(
        recall_emulator,
        calendar,
        {**hours_from_now(2), "meeting_url": None, "meeting_platform": None},
        hours_from_now(-3),
    )
    calls = bot_calls(recall_emulator)

    refused = api.post(bot_url(no_link), {}, format="json")
    assert refused.status_code == 400
    assert set(refused.json()) == {"detail"}
    assert refused.json()["detail"].startswith("No bot can be sent to this meeting")
    ended_delete = api.delete(bot_url(ended))
    assert ended_delete.status_code == 400
    assert "ended" in ended_delete.json()["detail"]

    assert bot_calls(recall_emulator) == calls
    no_link.refresh_from_db()
    assert no_link.record_override == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"override": "sometimes"}, "override"),
        ({"override": "never", "bot_config": {"bot_name": "x"}}, "bot_config"),
        ({"bot_config": "not an object"}, "bot_config"),
    ],
)
def test_bad_bot_bodies_answer_400(api, recall_emulator, calendar, body, field):
    (event,) = builders.synced_events(recall_emulator, calendar, hours_from_now(2))
    calls = bot_calls(recall_emulator)
    response = api.post(bot_url(event), body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert bot_calls(recall_emulator) == calls


def test_a_recall_failure_is_a_502_with_a_readable_message(api, recall_emulator, calendar):
    (event,) = builders.synced_events(recall_emulator, calendar, hours_from_now(2))
    recall_emulator.inject_fault("500", count=20, path="/api/v2/calendar-events/")

    response = api.post(bot_url(event), {}, format="json")

    assert response.status_code == 502
    detail = response.json()["detail"]
    assert detail.startswith("Recall did not complete the request:")
    assert "test-api-key" not in detail and "refresh" not in detail
    event.refresh_from_db()
    assert event.record_override == "" and not has_bot(event)


@pytest.mark.recall_emulator(webhooks=False)  # the change below is not synced here yet
def test_recall_refusing_the_request_is_a_400_with_its_reason(api, recall_emulator, calendar):
    """The meeting ended at Recall before the sync told us: Recall's reason reaches the caller."""
    (event,) = builders.synced_events(recall_emulator, calendar, hours_from_now(2))
    recall_emulator.update_event(str(event.recall_id), **hours_from_now(-2))

    response = api.post(bot_url(event), {}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Recall refused the request: Cannot schedule bot as calendar event has ended."
    )


def test_a_policy_change_reconciles_the_calendar(
    api, recall_emulator, calendar, django_capture_on_commit_callbacks
):
    """The bots follow in a task enqueued once the change commits (the test backend runs it)."""
    builders.synced_events(
        recall_emulator, calendar, hours_from_now(1), hours_from_now(5), hours_from_now(30)
    )
    detail = reverse("recall_calendar:api-calendar-detail", args=[calendar.pk])

    def patch(policy: str):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = api.patch(detail, {"recording_policy": policy}, format="json")
        assert response.status_code == 200
        return response, callbacks

    response, callbacks = patch("all")
    assert len(callbacks) == 1
    assert response.json()["recording_policy"] == "all"
    assert len(recall_emulator.bots) == 3
    events = api.get(reverse("recall_calendar:api-event-list"), {"has_bot": "true"}).json()
    assert events["count"] == 3
    assert {row["bot_state"] for row in events["results"]} == {"scheduled"}

    # Saving the same policy again changes nothing: no task, no Recall call.
    calls = bot_calls(recall_emulator)
    assert patch("all")[1] == []
    assert bot_calls(recall_emulator) == calls

    patch("off")
    assert recall_emulator.bots == {}


def test_delete_disconnects_the_calendar_at_recall_and_here(api, recall_emulator, calendar):
    builders.synced_events(recall_emulator, calendar, hours_from_now(2))
    detail = reverse("recall_calendar:api-calendar-detail", args=[calendar.pk])

    recall_emulator.inject_fault("500", count=20, path="/api/v2/calendars/")
    failed = api.delete(detail)
    assert failed.status_code == 502
    assert Calendar.objects.filter(pk=calendar.pk).exists()
    recall_emulator.clear_faults()

    assert api.delete(detail).status_code == 204
    assert str(calendar.recall_id) not in recall_emulator.calendars
    assert not Calendar.objects.filter(pk=calendar.pk).exists()
    assert api.get(detail).status_code == 404


def test_the_readme_fixture_example(recall_emulator, django_user_model):
    """The README's example test (install step 8), verbatim; tests/test_readme_host.py runs the
    README's own copy in a new project."""
    user = django_user_model.objects.create_user("ann")
    remote = recall_emulator.create_calendar(oauth_email="ann@example.com")
    calendar = Calendar.objects.create(
        user=user, recall_id=remote["id"], platform=remote["platform"], recording_policy="all"
    )
    recall_emulator.connect_calendar(remote["id"], email="ann@example.com")  # calendar.update
    recall_emulator.add_event(remote["id"])  # calendar.sync_events -> sync -> policy -> bot
    recall_emulator.settle()  # Recall delivers late, maybe twice, in any order: wait for all

    assert CalendarEvent.objects.filter(calendar=calendar).count() == 1
    assert len(recall_emulator.bots) == 1


def test_no_bot_is_sent_to_a_meeting_of_a_disconnected_calendar(api, recall_emulator, calendar):
    """The policy treats a disconnected calendar as making a bot impossible; a bot sent by hand
    anyway was removed again by the next sync's reconcile (and Recall drops it meanwhile)."""
    (event,) = builders.synced_events(recall_emulator, calendar, hours_from_now(2))
    recall_emulator.disconnect_calendar(
        str(calendar.recall_id), details={"error_code": "invalid_grant"}
    )
    sync.refresh_calendar(calendar)
    calls = bot_calls(recall_emulator)

    response = api.post(bot_url(event), {}, format="json")

    assert response.status_code == 400
    assert "disconnected" in response.json()["detail"]
    assert bot_calls(recall_emulator) == calls
