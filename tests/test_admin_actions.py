"""Admin actions, run through the Django test client against the Recall emulator over real HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin import site
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from django_recall_calendar.models import (
    Calendar,
    CalendarEvent,
    CalendarStatus,
    DeliveryStatus,
    RecordingPolicy,
    WebhookDelivery,
)
from tests import builders

pytestmark = pytest.mark.django_db

CALENDARS = reverse("admin:recall_calendar_calendar_changelist")
EVENTS = reverse("admin:recall_calendar_calendarevent_changelist")
DELIVERIES = reverse("admin:recall_calendar_webhookdelivery_changelist")


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def run_action(client, url: str, action: str, objects, follow: bool = False, **data):
    data = {"action": action, "_selected_action": [o.pk for o in objects], **data}
    return client.post(url, data, follow=follow)


def bot_names(emulator) -> list[str]:
    return sorted(bot["bot_config"].get("bot_name", "") for bot in emulator.bots.values())


@pytest.fixture
def calendar(recall_emulator) -> Calendar:
    user = builders.user("alice", "alice@corp.example")
    return builders.connected_calendar(recall_emulator, user, "alice@corp.example")


def upcoming(hours: float, **spec) -> dict:
    return {"start_time": timezone.now() + timedelta(hours=hours), **spec}


# --- Schedule bot ---------------------------------------------------------------------------------


def test_schedule_bot_asks_for_a_name_first(admin_client, recall_emulator, calendar, settings):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "BOT_CONFIG": {"bot_name": "Recorder"}}
    events = builders.synced_events(
        recall_emulator, calendar, upcoming(2, title="Planning"), upcoming(3)
    )
    response = run_action(admin_client, EVENTS, "schedule_bot", events, index="0")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Schedule a bot" in html and "Planning" in html
    assert response.context["form"]["bot_name"].value() == "Recorder"
    for event in events:
        assert f'name="_selected_action" value="{event.pk}"' in html
    assert recall_emulator.requests_for("POST", "/bot/") == []


def test_schedule_bot_with_a_custom_name_and_config(
    admin_client, recall_emulator, calendar, settings
):
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "BOT_CONFIG": {
            "bot_name": "Default",
            "recording_config": {"video_mixed_layout": "gallery"},
        },
    }
    events = builders.synced_events(recall_emulator, calendar, upcoming(2), upcoming(5))
    response = run_action(
        admin_client,
        EVENTS,
        "schedule_bot",
        events,
        post="yes",
        bot_name="Acme Notetaker",
        bot_config='{"recording_config": {"transcript": {"provider": {"meeting_captions": {}}}}}',
    )
    assert response.status_code == 302
    assert messages_of(response) == [("success", "Scheduled a bot for 2 events.")]
    assert bot_names(recall_emulator) == ["Acme Notetaker", "Acme Notetaker"]
    config = next(iter(recall_emulator.bots.values()))["bot_config"]
    assert config["recording_config"] == {
        "video_mixed_layout": "gallery",
        "transcript": {"provider": {"meeting_captions": {}}},
    }
    listing = admin_client.get(EVENTS, {"has_bot": "yes"})
    assert {e.pk for e in listing.context["cl"].result_list} == {e.pk for e in events}
    assert listing.content.decode().count(">Scheduled<") == 2


def test_schedule_bot_for_every_filtered_event_across_pages(
    admin_client, recall_emulator, calendar
):
    events = builders.synced_events(
        recall_emulator, calendar, upcoming(2), upcoming(3), upcoming(4)
    )
    builders.synced_events(recall_emulator, calendar, upcoming(-5))  # filtered out: past
    url = f"{EVENTS}?when=upcoming"
    page = run_action(admin_client, url, "schedule_bot", events[:1], index="0", select_across="1")
    assert 'name="select_across" value="1"' in page.content.decode()
    assert page.context["count"] == 3

    response = run_action(
        admin_client, url, "schedule_bot", events[:1], post="yes", select_across="1", bot_name="All"
    )
    assert messages_of(response) == [("success", "Scheduled a bot for 3 events.")]
    assert bot_names(recall_emulator) == ["All", "All", "All"]


@pytest.mark.parametrize(
    ("bot_config", "error"),
    [
        ("{not json", "Enter a valid JSON."),
        ('["a", "list"]', "Enter a JSON object"),
        ("42", "Enter a JSON object"),
    ],
)
def test_schedule_bot_rejects_bad_config(
    admin_client, recall_emulator, calendar, bot_config, error
):
    events = builders.synced_events(recall_emulator, calendar, upcoming(2))
    response = run_action(
        admin_client,
        EVENTS,
        "schedule_bot",
        events,
        post="yes",
        bot_name="X",
        bot_config=bot_config,
    )
    assert response.status_code == 200
    assert error in response.content.decode()
    assert recall_emulator.requests_for("POST", "/bot/") == []
    assert recall_emulator.bots == {}


def test_schedule_bot_reports_successes_skips_and_failures(admin_client, recall_emulator, calendar):
    broken_1, ok_1, ended, broken_2, no_link, ok_2 = builders.synced_events(
        recall_emulator,
        calendar,
        upcoming(1),
        upcoming(2),
        upcoming(-3),
        upcoming(3),
        upcoming(4, meeting_url=None),
        upcoming(5),
    )
    for broken in (broken_1, broken_2):
        recall_emulator.inject_fault(
            "500", count=10, path=f"/api/v2/calendar-events/{broken.recall_id}/bot/"
        )
    response = run_action(
        admin_client,
        EVENTS,
        "schedule_bot",
        [broken_1, ok_1, ended, broken_2, no_link, ok_2],
        post="yes",
        bot_name="Bot",
        bot_config="",
    )
    (success, skipped, failed) = messages_of(response)
    assert success == ("success", "Scheduled a bot for 2 events.")
    assert skipped[0] == "warning"
    assert skipped[1].startswith("Skipped 2: ")
    assert "ended (1)" in skipped[1] and "no meeting link (1)" in skipped[1]
    # The same failure at two events is one reason, counted twice.
    assert failed[0] == "error" and failed[1].startswith("Failed 2: [500] ")
    assert failed[1].endswith(" (2).") and failed[1].count("[500]") == 1
    scheduled = {event_id for bot in recall_emulator.bots.values() for event_id in bot["event_ids"]}
    assert scheduled == {str(ok_1.recall_id), str(ok_2.recall_id)}


def test_remove_bot(admin_client, recall_emulator, calendar):
    first, second, bare = builders.synced_events(
        recall_emulator, calendar, upcoming(2), upcoming(3), upcoming(4)
    )
    scheduled = run_action(
        admin_client, EVENTS, "schedule_bot", [first, second], post="yes", bot_name="B", follow=True
    )
    assert "Scheduled a bot for 2 events." in scheduled.content.decode()  # shown, so consumed
    assert len(recall_emulator.bots) == 2

    response = run_action(admin_client, EVENTS, "remove_bot", [first, second, bare])
    assert messages_of(response) == [
        ("success", "Removed the bots of 2 events."),
        ("warning", "Skipped 1: no bot to remove (1)."),
    ]
    assert recall_emulator.bots == {}
    assert not CalendarEvent.objects.exclude(bots=[]).exists()


def test_an_event_cannot_be_deleted_on_its_own(admin_client, recall_emulator, calendar):
    [event] = builders.synced_events(recall_emulator, calendar, upcoming(2))
    change = reverse("admin:recall_calendar_calendarevent_change", args=[event.pk])
    delete = reverse("admin:recall_calendar_calendarevent_delete", args=[event.pk])
    assert delete not in admin_client.get(change).content.decode()

    response = admin_client.post(delete, {"post": "yes"})

    assert response.status_code == 302 and response["Location"] == change
    assert "cannot be deleted here" in messages_of(response)[0][1]
    assert CalendarEvent.objects.filter(pk=event.pk).exists()


def test_self_managed_mode_schedules_lists_and_removes_bots(
    admin_client, recall_emulator, calendar, settings
):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "SCHEDULING_MODE": "self_managed"}
    first, second, bare = builders.synced_events(
        recall_emulator, calendar, upcoming(2), upcoming(3), upcoming(4)
    )
    response = run_action(
        admin_client,
        EVENTS,
        "schedule_bot",
        [first, second],
        post="yes",
        bot_name="Solo",
        follow=True,
    )
    assert "Scheduled a bot for 2 events." in response.content.decode()
    assert [bot["bot_name"] for bot in recall_emulator.bots.values()] == ["Solo", "Solo"]
    assert recall_emulator.requests_for("POST", "/api/v1/bot/")
    listing = admin_client.get(EVENTS, {"has_bot": "yes"})
    assert {e.pk for e in listing.context["cl"].result_list} == {first.pk, second.pk}
    assert listing.content.decode().count(">Scheduled<") == 2
    (row,) = admin_client.get(CALENDARS).context["cl"].result_list
    assert (row.upcoming_count, row.scheduled_bot_count) == (3, 2)

    response = run_action(admin_client, EVENTS, "remove_bot", [first, second, bare])
    assert messages_of(response) == [
        ("success", "Removed the bots of 2 events."),
        ("warning", "Skipped 1: no bot to remove (1)."),
    ]
    assert recall_emulator.bots == {}


# --- calendar actions ----------------------------------------------------------------------------


def test_refresh_status_shows_a_disconnection(admin_client, recall_emulator, calendar):
    recall_emulator.disconnect_calendar(
        str(calendar.recall_id), details={"error_code": "invalid_grant"}
    )
    response = run_action(admin_client, CALENDARS, "refresh_status", [calendar])
    assert messages_of(response) == [("success", f"Refreshed 1 calendar. {calendar}: Disconnected")]
    calendar.refresh_from_db()
    assert calendar.status == CalendarStatus.DISCONNECTED


def test_sync_now(admin_client, recall_emulator, calendar):
    recall_emulator.add_events(str(calendar.recall_id), 3, notify=False)
    response = run_action(admin_client, CALENDARS, "sync_now", [calendar])
    assert messages_of(response) == [
        (
            "success",
            f"Synced 1 calendar. {calendar}: 3 new, 0 updated, 0 deleted; "
            "bots: 0 scheduled, 0 removed, 0 failed.",
        )
    ]
    assert calendar.events.count() == 3


def test_apply_recording_policy(admin_client, recall_emulator, calendar):
    builders.synced_events(
        recall_emulator, calendar, upcoming(2), upcoming(3), upcoming(4, meeting_url=None)
    )
    Calendar.objects.filter(pk=calendar.pk).update(recording_policy=RecordingPolicy.ALL)
    response = run_action(admin_client, CALENDARS, "apply_recording_policy", [calendar])
    ((level, text),) = messages_of(response)
    assert level == "success"
    assert "2 scheduled, 0 rescheduled, 0 removed, 1 unchanged, 0 failed." in text
    assert len(recall_emulator.bots) == 2


def test_changing_the_policy_on_the_detail_page_applies_it(admin_client, recall_emulator, calendar):
    builders.synced_events(recall_emulator, calendar, upcoming(2), upcoming(3))
    url = reverse("admin:recall_calendar_calendar_change", args=[calendar.pk])
    form = {"skip_declined": "on", "min_attendees": "0", "series_overrides": "{}"}
    response = admin_client.post(url, {**form, "recording_policy": "all"})
    assert response.status_code == 302
    assert (
        "success",
        f"Applied the recording policy of 1 calendar. {calendar}: 2 scheduled, "
        "0 rescheduled, 0 removed, 0 unchanged, 0 failed.",
    ) in messages_of(response)
    assert len(recall_emulator.bots) == 2

    # Saving without a policy change makes no Recall call.
    before = len(recall_emulator.requests)
    admin_client.post(url, {**form, "recording_policy": "all"})
    assert len(recall_emulator.requests) == before


def test_refresh_failure_does_not_hide_the_other_calendars(admin_client, recall_emulator, calendar):
    other_user = builders.user("bob", "bob@corp.example")
    other = builders.connected_calendar(recall_emulator, other_user, "bob@corp.example")
    recall_emulator.inject_fault("500", count=10, path=f"/api/v2/calendars/{calendar.recall_id}/")
    response = run_action(admin_client, CALENDARS, "refresh_status", [calendar, other])
    (success, failed) = messages_of(response)
    assert success == ("success", f"Refreshed 1 calendar. {other}: Connected")
    assert failed[0] == "error" and failed[1].startswith("Failed 1: ")


def test_disconnect_asks_for_confirmation_then_deletes_at_recall(
    admin_client, recall_emulator, calendar
):
    recall_id = str(calendar.recall_id)
    page = run_action(admin_client, CALENDARS, "disconnect", [calendar], index="0")
    assert page.status_code == 200
    assert "Yes, disconnect" in page.content.decode() and str(calendar) in page.content.decode()
    assert (
        recall_id in recall_emulator.calendars and Calendar.objects.filter(pk=calendar.pk).exists()
    )

    response = run_action(admin_client, CALENDARS, "disconnect", [calendar], post="yes")
    assert messages_of(response) == [("success", "Disconnected 1 calendar.")]
    assert recall_id not in recall_emulator.calendars
    assert not Calendar.objects.filter(pk=calendar.pk).exists()


# --- Delete (the change page's "Delete") -------------------------------------------------------


def test_deleting_a_calendar_disconnects_it_at_recall(admin_client, recall_emulator, calendar):
    recall_id = str(calendar.recall_id)
    builders.synced_events(recall_emulator, calendar, upcoming(2))
    delete = reverse("admin:recall_calendar_calendar_delete", args=[calendar.pk])
    assert admin_client.get(delete).status_code == 200

    response = admin_client.post(delete, {"post": "yes"})

    assert response.status_code == 302
    assert recall_id not in recall_emulator.calendars
    assert not Calendar.objects.filter(pk=calendar.pk).exists()
    assert not CalendarEvent.objects.exists()
    assert len(recall_emulator.requests_for("DELETE", f"/api/v2/calendars/{recall_id}/")) == 1
    assert LogEntry.objects.filter(action_flag=DELETION).count() == 1


def test_a_calendar_already_gone_at_recall_is_deleted_here(admin_client, recall_http, calendar):
    recall_http.delete(f"/api/v2/calendars/{calendar.recall_id}/")
    delete = reverse("admin:recall_calendar_calendar_delete", args=[calendar.pk])

    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not Calendar.objects.filter(pk=calendar.pk).exists()


def test_a_recall_failure_keeps_the_calendar_and_says_why(admin_client, recall_emulator, calendar):
    recall_emulator.inject_fault("500", count=20, path="/api/v2/calendars/")
    delete = reverse("admin:recall_calendar_calendar_delete", args=[calendar.pk])

    response = admin_client.post(delete, {"post": "yes"})

    change = reverse("admin:recall_calendar_calendar_change", args=[calendar.pk])
    assert response.status_code == 302 and response["Location"] == change
    ((level, text),) = messages_of(response)
    assert level == "error" and "was not deleted" in text and "500" in text
    assert str(calendar.recall_id) in recall_emulator.calendars
    assert Calendar.objects.filter(pk=calendar.pk).exists()
    assert not LogEntry.objects.filter(action_flag=DELETION).exists()


def test_delete_queryset_disconnects_each_calendar_at_recall(rf, admin_user, recall_emulator):
    calendars = [
        builders.connected_calendar(recall_emulator, builders.user(name), f"{name}@corp.example")
        for name in ("ann", "bob")
    ]
    request = rf.post("/")
    request.user = admin_user

    site.get_model_admin(Calendar).delete_queryset(request, Calendar.objects.all())

    assert recall_emulator.calendars == {}
    assert not Calendar.objects.exists()
    for calendar in calendars:
        path = f"/api/v2/calendars/{calendar.recall_id}/"
        assert len(recall_emulator.requests_for("DELETE", path)) == 1


def test_deleting_a_user_deletes_their_calendars_at_recall_once(
    admin_client, recall_emulator, calendar, django_capture_on_commit_callbacks
):
    """The user's calendars cascade locally (not through the calendar admin); the user deletion
    receiver deletes them at Recall once the deletion commits, and only once."""
    delete = reverse("admin:auth_user_delete", args=[calendar.user.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client.post(delete, {"post": "yes"}).status_code == 302

    path = f"/api/v2/calendars/{calendar.recall_id}/"
    assert len(recall_emulator.requests_for("DELETE", path)) == 1
    assert recall_emulator.calendars == {}
    assert not Calendar.objects.exists()


# --- Replay --------------------------------------------------------------------------------------


def test_replay_processes_again_and_reports_each_outcome(admin_client, recall_emulator, calendar):
    recall_emulator.disconnect_calendar(
        str(calendar.recall_id), details={"error_code": "token revoked"}
    )
    (failed,) = builders.deliveries(
        calendar, 1, event_type="calendar.update", status=DeliveryStatus.FAILED, last_error="x"
    )
    (unknown,) = builders.deliveries(None, 1, event_type="calendar.update")
    response = run_action(admin_client, DELIVERIES, "replay", [failed, unknown])
    assert messages_of(response) == [
        ("success", "Replayed 1 delivery."),
        ("warning", f"Skipped 1: ignored: Unknown calendar '{unknown.calendar_recall_id}'. (1)."),
    ]
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.PROCESSED
    assert Calendar.objects.get(pk=calendar.pk).status == CalendarStatus.DISCONNECTED


def test_replay_failure_is_reported(admin_client, recall_emulator, calendar):
    (delivery,) = builders.deliveries(calendar, 1, event_type="calendar.update")
    recall_emulator.inject_fault("500", count=10, path=f"/api/v2/calendars/{calendar.recall_id}/")
    response = run_action(admin_client, DELIVERIES, "replay", [delivery])
    ((level, text),) = messages_of(response)
    assert level == "error" and text.startswith("Failed 1: ") and "500" in text
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == DeliveryStatus.FAILED


# --- the event's change page ----------------------------------------------------------------------


def test_an_override_saved_on_the_event_page_is_applied_at_once(
    admin_client, recall_emulator, calendar
):
    """Saved only locally, it waited for the meeting to change at Recall (a sync reconciles only
    the events it changed), so "always" sent no bot and "never" kept the bot."""
    (event,) = builders.synced_events(recall_emulator, calendar, upcoming(5))
    change = reverse("admin:recall_calendar_calendarevent_change", args=[event.pk])

    saved = admin_client.post(change, {"record_override": "always", "bot_config": "{}"})
    assert saved.status_code == 302
    assert len(recall_emulator.bots) == 1

    admin_client.post(change, {"record_override": "never", "bot_config": "{}"})
    assert recall_emulator.bots == {}
    event.refresh_from_db()
    assert (event.record_override, event.bots) == ("never", [])


@pytest.mark.parametrize("value", ['["x"]', '"Notetaker"', "3"])
def test_an_event_bot_config_must_be_a_json_object(admin_client, recall_emulator, calendar, value):
    """Any other JSON was saved, then every scheduling of the meeting failed merging it."""
    (event,) = builders.synced_events(recall_emulator, calendar, upcoming(5))
    change = reverse("admin:recall_calendar_calendarevent_change", args=[event.pk])

    response = admin_client.post(change, {"record_override": "always", "bot_config": value})

    assert response.status_code == 200
    assert "bot_config" in response.context["adminform"].form.errors
    event.refresh_from_db()
    assert (event.record_override, event.bot_config) == ("", {})


def test_an_event_bot_config_with_non_object_metadata_is_refused(
    admin_client, recall_emulator, calendar
):
    (event,) = builders.synced_events(recall_emulator, calendar, upcoming(5))
    change = reverse("admin:recall_calendar_calendarevent_change", args=[event.pk])

    response = admin_client.post(
        change, {"record_override": "always", "bot_config": '{"metadata": "notes"}'}
    )

    assert response.status_code == 200
    assert "bot_config" in response.context["adminform"].form.errors
    assert recall_emulator.bots == {}
