"""Derived event fields from Google and Microsoft payloads shaped as Recall documents them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from django_recall_calendar.event_fields import (
    ACCEPTED,
    DECLINED,
    DERIVED_FIELDS,
    NEEDS_ACTION,
    TENTATIVE,
    derive_fields,
)

RAW_SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "recall" / "calendar-event-raw.json"
OWNER = "Owner@Example.com"


def google_raw(**overrides) -> dict:
    """A timed, recurring Google event with every key the schema requires."""
    raw = {
        "id": "abc123_20260105T150000Z",
        "kind": "calendar#event",
        "etag": '"3412"',
        "status": "confirmed",
        "created": "2026-01-01T10:00:00.000Z",
        "updated": "2026-01-02T10:00:00.000Z",
        "creator": {"email": "owner@example.com"},
        "organizer": {"email": "owner@example.com", "displayName": "Owner"},
        "iCalUID": "abc123@google.com",
        "summary": "Weekly sync",
        "htmlLink": "https://www.google.com/calendar/event?eid=abc",
        "sequence": 0,
        "eventType": "default",
        "reminders": {"useDefault": True},
        "recurringEventId": "abc123",
        "start": {"dateTime": "2026-01-05T15:00:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2026-01-05T15:30:00Z", "timeZone": "UTC"},
        "originalStartTime": {"dateTime": "2026-01-05T15:00:00Z", "timeZone": "UTC"},
        "attendees": [
            {
                "email": "owner@example.com",
                "organizer": True,
                "self": True,
                "responseStatus": "accepted",
            },
            {"email": "Guest@Partner.org", "responseStatus": "tentative"},
            {"email": "no@partner.org", "responseStatus": "declined"},
            {"email": "later@partner.org", "responseStatus": "needsAction"},
        ],
    }
    raw.update(overrides)
    return raw


def microsoft_raw(**overrides) -> dict:
    """A timed Outlook occurrence of a series with every key the schema requires."""
    raw = {
        "id": "AAMkAGI2",
        "uid": "040000008200E00074C5B7101A82E008",
        "iCalUId": "040000008200E00074C5B7101A82E008",
        "@odata.etag": 'W/"ZlnW4RIAV06KYYwlrfNZvQAAKGWwbw=="',
        "@odata.type": "#microsoft.graph.event",
        "type": "occurrence",
        "subject": "Design review",
        "body": {"content": "", "contentType": "html"},
        "bodyPreview": "",
        "showAs": "busy",
        "webLink": "https://outlook.office365.com/owa/?itemid=AAMkAGI2",
        "isAllDay": False,
        "isCancelled": False,
        "isOrganizer": False,
        "isDraft": False,
        "importance": "normal",
        "sensitivity": "normal",
        "recurrence": None,
        "isReminderOn": True,
        "hideAttendees": False,
        "transactionId": "tx-1",
        "hasAttachments": False,
        "seriesMasterId": "AAMkAGI2-master",
        "createdDateTime": "2026-01-01T10:00:00Z",
        "lastModifiedDateTime": "2026-01-02T10:00:00Z",
        "responseRequested": True,
        "responseStatus": {"response": "accepted", "time": "2026-01-02T10:00:00Z"},
        "onlineMeetingProvider": "teamsForBusiness",
        "isOnlineMeeting": True,
        "onlineMeeting": {"joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting"},
        "originalStartTimeZone": "UTC",
        "originalEndTimeZone": "UTC",
        "reminderMinutesBeforeStart": 15,
        "start": {"dateTime": "2026-01-05T15:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-01-05T16:00:00.0000000", "timeZone": "UTC"},
        "organizer": {"emailAddress": {"name": "Boss", "address": "Boss@Example.com"}},
        "attendees": [
            {
                "type": "required",
                "emailAddress": {"name": "Owner", "address": "owner@example.com"},
                "status": {"response": "accepted", "time": "2026-01-02T10:00:00Z"},
            },
            {
                "type": "optional",
                "emailAddress": {"name": "Ext", "address": "ext@partner.org"},
                "status": {"response": "tentativelyAccepted", "time": "2026-01-02T10:00:00Z"},
            },
            {
                "type": "required",
                "emailAddress": {"name": "N", "address": "n@partner.org"},
                "status": {"response": "declined", "time": "2026-01-02T10:00:00Z"},
            },
            {
                "type": "required",
                "emailAddress": {"name": "Q", "address": "q@partner.org"},
                "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
            },
        ],
    }
    raw.update(overrides)
    return raw


def json_schema(schema):
    """``schema`` with OpenAPI 3.0's ``nullable: true`` turned into JSON Schema's null type."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: json_schema(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable") and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    return converted


@pytest.fixture(scope="module")
def raw_schemas() -> dict:
    if not RAW_SCHEMA.exists():
        pytest.skip(f"Recall's raw payload schemas are not available at {RAW_SCHEMA}")
    return json.loads(RAW_SCHEMA.read_text())["components"]["schemas"]


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("CalendarEventRawGoogleCalendar", google_raw()),
        ("CalendarEventRawMicrosoftOutlook", microsoft_raw()),
    ],
)
def test_sample_payloads_match_recalls_schema(raw_schemas, name, payload):
    """The payloads below are the documented shapes, so the derived values hold for real data."""
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(payload, json_schema(raw_schemas[name]))


def test_google_timed_recurring_event_organized_by_owner():
    fields = derive_fields(google_raw(), platform="google_calendar", owner_email=OWNER)
    assert set(fields) == set(DERIVED_FIELDS)
    assert fields == {
        "title": "Weekly sync",
        "organizer_email": "owner@example.com",
        "attendees": [
            {"email": "owner@example.com", "response": ACCEPTED},
            {"email": "guest@partner.org", "response": TENTATIVE},
            {"email": "no@partner.org", "response": DECLINED},
            {"email": "later@partner.org", "response": NEEDS_ACTION},
        ],
        "is_organizer": True,
        "is_cancelled": False,
        "recurring_event_id": "abc123",
        "is_all_day": False,
        "sensitivity": "",
        "kind": "",
    }


def test_google_all_day_cancelled_event_without_attendees_organized_by_someone_else():
    raw = google_raw(
        status="cancelled",
        start={"date": "2026-01-05"},
        end={"date": "2026-01-06"},
        organizer={"email": "boss@example.com"},
        recurringEventId="",
    )
    del raw["attendees"]
    fields = derive_fields(raw, platform="google_calendar", owner_email=OWNER)
    assert fields["is_all_day"] is True
    assert fields["is_cancelled"] is True
    assert fields["attendees"] == []
    assert fields["is_organizer"] is False
    assert fields["recurring_event_id"] == ""


def test_google_organizer_self_flag_wins_over_a_different_owner_address():
    raw = google_raw(organizer={"email": "alias@example.com", "self": True}, attendees=[])
    fields = derive_fields(raw, platform="google_calendar", owner_email="other@example.com")
    assert fields["is_organizer"] is True


def test_microsoft_occurrence_invited_and_accepted():
    fields = derive_fields(microsoft_raw(), platform="microsoft_outlook", owner_email=OWNER)
    assert fields == {
        "title": "Design review",
        "organizer_email": "boss@example.com",
        "attendees": [
            {"email": "owner@example.com", "response": ACCEPTED},
            {"email": "ext@partner.org", "response": TENTATIVE},
            {"email": "n@partner.org", "response": DECLINED},
            {"email": "q@partner.org", "response": NEEDS_ACTION},
        ],
        "is_organizer": False,
        "is_cancelled": False,
        "recurring_event_id": "AAMkAGI2-master",
        "is_all_day": False,
        "sensitivity": "",
        "kind": "",
    }


def test_microsoft_all_day_cancelled_single_event_without_attendees():
    raw = microsoft_raw(
        isAllDay=True, isCancelled=True, isOrganizer=True, seriesMasterId=None, attendees=[]
    )
    fields = derive_fields(raw, platform="microsoft_outlook", owner_email=OWNER)
    assert fields["is_all_day"] is True
    assert fields["is_cancelled"] is True
    assert fields["is_organizer"] is True
    assert fields["attendees"] == []
    assert fields["recurring_event_id"] == ""


def test_microsoft_without_is_organizer_compares_the_owner_address():
    raw = microsoft_raw(organizer={"emailAddress": {"name": "Me", "address": "OWNER@example.com"}})
    del raw["isOrganizer"]
    assert derive_fields(raw, platform="microsoft_outlook", owner_email=OWNER)["is_organizer"]


def test_platform_unknown_falls_back_to_the_payload_shape():
    assert derive_fields(microsoft_raw(), platform=None)["title"] == "Design review"
    assert derive_fields(google_raw(), platform="")["title"] == "Weekly sync"


@pytest.mark.parametrize(
    ("raw", "platform", "sensitivity"),
    [
        (google_raw(visibility="private"), "google_calendar", "private"),
        (google_raw(visibility="confidential"), "google_calendar", "confidential"),
        (google_raw(visibility="default"), "google_calendar", ""),
        (google_raw(visibility="public"), "google_calendar", ""),
        (google_raw(visibility=["private"]), "google_calendar", ""),
        (google_raw(), "google_calendar", ""),
        (microsoft_raw(sensitivity="private"), "microsoft_outlook", "private"),
        (microsoft_raw(sensitivity="confidential"), "microsoft_outlook", "confidential"),
        (microsoft_raw(sensitivity="normal"), "microsoft_outlook", ""),
        (microsoft_raw(sensitivity="personal"), "microsoft_outlook", ""),
        (microsoft_raw(sensitivity=7), "microsoft_outlook", ""),
    ],
)
def test_visibility_and_sensitivity_mark_private_and_confidential_events(
    raw, platform, sensitivity
):
    assert derive_fields(raw, platform=platform)["sensitivity"] == sensitivity


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("focusTime", "focus_time"),
        ("outOfOffice", "out_of_office"),
        ("workingLocation", "working_location"),
        ("default", ""),
        ("fromGmail", ""),
        (None, ""),
    ],
)
def test_google_event_type_marks_blocks_of_time_that_are_not_meetings(event_type, kind):
    raw = google_raw(eventType=event_type)
    assert derive_fields(raw, platform="google_calendar")["kind"] == kind


@pytest.mark.parametrize("raw", [None, {}, [], "text", 42])
@pytest.mark.parametrize("platform", ["google_calendar", "microsoft_outlook"])
def test_empty_or_malformed_payload_gives_blank_fields(raw, platform):
    fields = derive_fields(raw, platform=platform, owner_email=OWNER)
    assert fields == {
        "title": "",
        "organizer_email": "",
        "attendees": [],
        "is_organizer": False,
        "is_cancelled": False,
        "recurring_event_id": "",
        "is_all_day": False,
        "sensitivity": "",
        "kind": "",
    }


@pytest.mark.parametrize("platform", ["google_calendar", "microsoft_outlook"])
def test_wrongly_typed_values_are_ignored_not_fatal(platform):
    raw = {
        "summary": 5,
        "subject": ["x"],
        "organizer": "someone",
        "attendees": [None, "x", {"email": None}, {"emailAddress": None}],
        "start": "2026-01-05",
        "recurringEventId": {"a": 1},
        "seriesMasterId": 7,
        "isAllDay": "yes",
        "isCancelled": 1,
    }
    fields = derive_fields(raw, platform=platform, owner_email="")
    assert fields["title"] == ""
    assert fields["attendees"] == []
    assert fields["is_all_day"] is False
    assert fields["is_cancelled"] is False
    assert fields["is_organizer"] is False
