"""The REST API without Recall: authentication, isolation between users, filters, pages, schema.

Rows are written straight to the database here; tests/test_api_bots.py covers the calls that reach
Recall (through the emulator).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from django_recall_calendar.models import (
    Calendar,
    CalendarEvent,
    CalendarStatus,
    Platform,
    SelfManagedBot,
)
from tests import builders

pytestmark = pytest.mark.django_db

EVENT_FIELDS = {
    "id",
    "recall_id",
    "calendar",
    "title",
    "start_time",
    "end_time",
    "is_all_day",
    "meeting_url",
    "meeting_platform",
    "organizer_email",
    "is_organizer",
    "attendees_count",
    "is_cancelled",
    "is_deleted",
    "bot_state",
    "bot_state_reason",
    "skip_rule",
    "bot_status",
    "bot_result",
    "bot_status_description",
    "bot_status_at",
    "record_override",
}


def future_bot(event: CalendarEvent) -> dict:
    return {
        "bot_id": str(uuid.uuid4()),
        "start_time": event.start_time.isoformat(),
        "deduplication_key": "k",
        "meeting_url": event.meeting_url,
    }


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def bob(db):
    return builders.user("bob", "bob@example.com")


@pytest.fixture
def api(alice) -> APIClient:
    return api_for(alice)


def url(name: str, *args) -> str:
    return reverse(f"recall_calendar:{name}", args=args)


def test_anonymous_requests_are_refused_everywhere(alice):
    calendar = builders.calendar(alice)
    event = builders.event(calendar)
    anonymous = APIClient()
    requests = [
        ("get", url("api-calendar-list")),
        ("get", url("api-calendar-detail", calendar.pk)),
        ("patch", url("api-calendar-detail", calendar.pk)),
        ("delete", url("api-calendar-detail", calendar.pk)),
        ("get", url("api-event-list")),
        ("get", url("api-event-detail", event.pk)),
        ("post", url("api-event-bot", event.pk)),
        ("delete", url("api-event-bot", event.pk)),
    ]
    for method, path in requests:
        response = getattr(anonymous, method)(path, format="json")
        assert response.status_code in (401, 403), (method, path)
        assert "detail" in response.json()
    assert Calendar.objects.filter(pk=calendar.pk).exists()


def test_another_users_objects_are_404_on_every_endpoint(api, bob):
    theirs = builders.calendar(bob, recording_policy="off")
    their_event = builders.event(theirs)
    requests = [
        ("get", url("api-calendar-detail", theirs.pk), None),
        ("patch", url("api-calendar-detail", theirs.pk), {"recording_policy": "all"}),
        ("delete", url("api-calendar-detail", theirs.pk), None),
        ("get", url("api-event-detail", their_event.pk), None),
        ("post", url("api-event-bot", their_event.pk), {"override": "always"}),
        ("delete", url("api-event-bot", their_event.pk), None),
    ]
    for method, path, body in requests:
        response = getattr(api, method)(path, body, format="json")
        assert response.status_code == 404, (method, path, response.content)
        assert set(response.json()) == {"detail"}
    theirs.refresh_from_db()
    their_event.refresh_from_db()
    assert theirs.recording_policy == "off"
    assert their_event.record_override == ""


def test_lists_show_only_the_users_own_objects(api, alice, bob):
    mine = builders.calendar(alice)
    theirs = builders.calendar(bob)
    my_event = builders.event(mine)
    builders.event(theirs)

    calendars = api.get(url("api-calendar-list")).json()
    assert [row["id"] for row in calendars] == [mine.pk]

    events = api.get(url("api-event-list")).json()
    assert events["count"] == 1
    assert [row["id"] for row in events["results"]] == [my_event.pk]

    # Bob sees his own and nothing of Alice's.
    bob_events = api_for(bob).get(url("api-event-list")).json()
    assert [row["calendar"] for row in bob_events["results"]] == [theirs.pk]


def test_calendar_fields(api, alice):
    calendar = builders.calendar(
        alice,
        status=CalendarStatus.DISCONNECTED,
        status_changes=[
            {
                "status": "disconnected",
                "created_at": "2026-01-02T03:04:05Z",
                "code": "Token revoked",
            }
        ],
        recording_policy="organizer",
        min_attendees=3,
        skip_title_keywords=["private"],
    )
    data = api.get(url("api-calendar-detail", calendar.pk)).json()
    assert data == {
        "id": calendar.pk,
        "recall_id": str(calendar.recall_id),
        "platform": "google_calendar",
        "email": "alice@example.com",
        "status": "disconnected",
        "disconnect_reason": "Token revoked",
        "recording_policy": "organizer",
        "skip_declined": True,
        "min_attendees": 3,
        "skip_title_keywords": ["private"],
        "last_synced_at": None,
        "created_at": data["created_at"],
    }
    # Nothing Recall holds about the OAuth account is exposed.
    assert "raw" not in data and "oauth_email" not in data


def test_calendar_patch_validates_and_ignores_read_only_fields(api, alice):
    calendar = builders.calendar(alice, recording_policy="off")
    detail = url("api-calendar-detail", calendar.pk)

    bad = api.patch(detail, {"recording_policy": "sometimes", "min_attendees": -1}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()) == {"recording_policy", "min_attendees"}
    assert '"sometimes" is not a valid choice.' in bad.json()["recording_policy"][0]

    unchanged = api.patch(detail, {"status": "missing", "platform": "x"}, format="json")
    assert unchanged.status_code == 200
    calendar.refresh_from_db()
    assert (calendar.status, calendar.platform) == ("connected", "google_calendar")

    assert api.put(detail, {"recording_policy": "all"}, format="json").status_code == 405
    assert api.post(url("api-calendar-list"), {}, format="json").status_code == 405


def test_event_fields(api, alice):
    calendar = builders.calendar(alice)
    event = builders.event(
        calendar,
        title="Design review",
        attendees=[{"email": "a@x.com"}, {"email": "b@y.com"}],
        is_organizer=True,
        organizer_email="alice@example.com",
    )
    data = api.get(url("api-event-detail", event.pk)).json()
    assert set(data) == EVENT_FIELDS
    assert data["title"] == "Design review"
    assert data["calendar"] == calendar.pk
    assert data["attendees_count"] == 2
    assert data["is_organizer"] is True
    assert data["meeting_platform"] == "google_meet"
    assert data["record_override"] == ""
    assert data["bot_state"] == "none"
    assert data["bot_state_reason"]


def test_event_bot_state_in_the_list(api, alice):
    calendar = builders.calendar(alice)
    with_bot = builders.event(calendar, hours=1)
    with_bot.bots = [future_bot(with_bot)]
    with_bot.save()
    no_link = builders.event(calendar, hours=2, meeting_url=None, meeting_platform=None)
    rows = {row["id"]: row for row in api.get(url("api-event-list")).json()["results"]}
    assert rows[with_bot.pk]["bot_state"] == "scheduled"
    assert rows[no_link.pk]["bot_state"] == "not_possible"
    assert rows[no_link.pk]["bot_state_reason"]


@pytest.fixture
def agenda(alice, bob):
    """Alice's two calendars: past, upcoming, with-bot and deleted meetings; and one of Bob's."""
    work = builders.calendar(alice)
    home = builders.calendar(alice, platform=Platform.MICROSOFT_OUTLOOK)
    events = {
        "past": builders.event(work, hours=-5),
        "soon": builders.event(work, hours=1),
        "tomorrow": builders.event(home, hours=25),
        "next_week": builders.event(work, hours=24 * 7),
        "deleted": builders.event(work, hours=2, is_deleted=True),
    }
    events["tomorrow"].bots = [future_bot(events["tomorrow"])]
    events["tomorrow"].save()
    builders.event(builders.calendar(bob), hours=1)
    return {"work": work, "home": home, **events}


def titles(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["title"] for row in response.json()["results"]]


def named(agenda, *names) -> list[str]:
    return [agenda[name].title for name in names]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["past", "soon", "tomorrow", "next_week"]),
        ({"upcoming": "true"}, ["soon", "tomorrow", "next_week"]),
        ({"upcoming": "false"}, ["past"]),
        ({"has_bot": "true"}, ["tomorrow"]),
        ({"has_bot": "false"}, ["past", "soon", "next_week"]),
        ({"upcoming": "true", "has_bot": "false"}, ["soon", "next_week"]),
    ],
)
def test_event_filters(api, agenda, query, expected):
    assert titles(api.get(url("api-event-list"), query)) == named(agenda, *expected)


def test_event_filters_by_calendar_and_dates(api, agenda):
    events = url("api-event-list")
    assert titles(api.get(events, {"calendar": agenda["home"].pk})) == named(agenda, "tomorrow")
    now = timezone.now()
    window = {
        "start_after": (now + timedelta(minutes=30)).isoformat(),
        "start_before": (now + timedelta(days=2)).isoformat(),
    }
    assert titles(api.get(events, window)) == named(agenda, "soon", "tomorrow")
    after = {"start_after": (now + timedelta(days=2)).isoformat()}
    assert titles(api.get(events, after)) == named(agenda, "next_week")
    combined = {**window, "calendar": agenda["work"].pk}
    assert titles(api.get(events, combined)) == named(agenda, "soon")


def test_has_bot_in_self_managed_mode_reads_the_bots_created_there(api, alice, settings):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "SCHEDULING_MODE": "self_managed"}
    calendar = builders.calendar(alice)
    with_bot, claimed_only, without = (builders.event(calendar, hours=h) for h in (1, 2, 3))
    for event, bot_id in ((with_bot, uuid.uuid4()), (claimed_only, None)):
        bot = SelfManagedBot.objects.create(
            deduplication_key=str(event.pk),
            recall_bot_id=bot_id,
            meeting_url=event.meeting_url,
            join_at=event.start_time,
        )
        bot.events.add(event)
    events = url("api-event-list")
    assert titles(api.get(events, {"has_bot": "true"})) == [with_bot.title]
    assert titles(api.get(events, {"has_bot": "false"})) == [claimed_only.title, without.title]
    rows = api.get(events).json()["results"]
    assert [row["bot_state"] for row in rows] == ["scheduled", "none", "none"]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"upcoming": "maybe"}, "upcoming", "Must be a valid boolean."),
        ({"has_bot": "yes please"}, "has_bot", "Must be a valid boolean."),
        ({"calendar": "abc"}, "calendar", "Incorrect type."),
        ({"calendar": "999999"}, "calendar", "object does not exist"),
        ({"start_after": "yesterday"}, "start_after", "Datetime has wrong format."),
        ({"start_before": "2026-13-45"}, "start_before", "Datetime has wrong format."),
        ({"start_before": ""}, "start_before", "may not be empty"),
        ({"calendar": ""}, "calendar", "may not be empty"),
        ({"upcoming": ""}, "upcoming", "may not be empty"),
        ({"page_size": "null"}, "page_size", "A positive integer."),
        ({"page_size": "0"}, "page_size", "A positive integer."),
        (
            {"start_after": "2030-01-02T00:00:00Z", "start_before": "2030-01-01T00:00:00Z"},
            "start_before",
            "start_before must be later than start_after.",
        ),
    ],
)
def test_bad_filter_values_answer_400_with_a_readable_message(api, agenda, query, field, message):
    response = api.get(url("api-event-list"), query)
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert message in response.json()[field][0]


def test_filtering_by_another_users_calendar_is_refused_like_a_missing_one(api, bob):
    theirs = builders.calendar(bob)
    builders.event(theirs)
    response = api.get(url("api-event-list"), {"calendar": theirs.pk})
    assert response.status_code == 400
    assert response.json()["calendar"] == [f'Invalid pk "{theirs.pk}" - object does not exist.']


def test_events_are_paginated(api, alice):
    calendar = builders.calendar(alice)
    for hour in range(1, 61):
        builders.event(calendar, hours=hour)
    first = api.get(url("api-event-list")).json()
    assert first["count"] == 60
    assert len(first["results"]) == 50
    assert first["previous"] is None
    second = api.get(first["next"]).json()
    assert len(second["results"]) == 10 and second["next"] is None
    starts = [row["start_time"] for row in first["results"] + second["results"]]
    assert starts == sorted(starts)

    small = api.get(url("api-event-list"), {"page_size": 7}).json()
    assert len(small["results"]) == 7
    beyond = api.get(url("api-event-list"), {"page": 99})
    assert beyond.status_code == 404
    assert beyond.json() == {"detail": "Invalid page."}


@pytest.mark.parametrize("count", [3, 40])
def test_event_list_queries_do_not_grow_with_rows(api, alice, count, django_assert_max_num_queries):
    calendar = builders.calendar(alice)
    for hour in range(count):
        builders.event(calendar, hours=hour + 1)
    # session + user, count, page.
    with django_assert_max_num_queries(4):
        response = api.get(url("api-event-list"))
    assert len(response.json()["results"]) == count


def test_schema_describes_the_api_without_warnings():
    GENERATOR_STATS.reset()
    response = APIClient().get(url("api-schema"), {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert not GENERATOR_STATS, "drf-spectacular warned while generating the schema"
    prefix = url("api-calendar-list").removesuffix("calendars/")
    assert sorted(schema["paths"]) == [
        f"{prefix}calendars/",
        f"{prefix}calendars/{{id}}/",
        f"{prefix}events/",
        f"{prefix}events/{{id}}/",
        f"{prefix}events/{{id}}/bot/",
    ]
    events = schema["paths"][f"{prefix}events/"]["get"]
    assert {p["name"] for p in events["parameters"]} >= {
        "upcoming",
        "calendar",
        "has_bot",
        "start_after",
        "start_before",
        "page",
    }
    bot = schema["paths"][f"{prefix}events/{{id}}/bot/"]
    assert set(bot) == {"post", "delete"}
    assert {"200", "400", "409", "502"} <= set(bot["post"]["responses"])
    # DRF's own answers around the views are documented on every operation too.
    for operations in schema["paths"].values():
        for operation in operations.values():
            assert {"401", "403", "429"} <= set(operation["responses"])
    assert "404" in bot["delete"]["responses"] and "400" in events["responses"]
    assert "502" in schema["paths"][f"{prefix}calendars/{{id}}/"]["delete"]["responses"]

    calendar_patch = schema["components"]["schemas"]["PatchedCalendar"]["properties"]
    assert calendar_patch["status"]["readOnly"] is True
    assert "raw" not in schema["components"]["schemas"]["CalendarEvent"]["properties"]


def test_any_other_path_under_the_api_is_a_json_404(api):
    prefix = url("api-calendar-list").removesuffix("calendars/")
    for path in ("calendars/0.5/", "events/abc/bot/", "nothing-here/"):
        response = api.post(prefix + path, {}, format="json")
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}
