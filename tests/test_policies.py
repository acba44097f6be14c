"""Recording policies: which meetings should get a bot, and the reason a user reads when not."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from django_recall_calendar.event_fields import derive_fields
from django_recall_calendar.models import (
    Calendar,
    CalendarEvent,
    CalendarStatus,
    Platform,
    RecordingPolicy,
    RecordOverride,
)
from django_recall_calendar.policies import should_record, unrecordable_reason
from tests import builders

pytestmark = pytest.mark.django_db

OWNER = "alice@acme.example"
ZOOM = "https://acme.zoom.us/j/85012345678?pwd=x1"


@pytest.fixture
def calendar():
    return builders.calendar(builders.user("alice", OWNER), OWNER)


def event(calendar: Calendar, **fields) -> CalendarEvent:
    """A Zoom meeting tomorrow that the boss organises and the owner accepted."""
    fields = {
        "meeting_url": ZOOM,
        "meeting_platform": "zoom",
        "organizer_email": "boss@acme.example",
        "attendees": attendees("accepted", "boss@acme.example"),
        **fields,
    }
    return builders.event(calendar, hours=24, **fields)


def attendees(owner_response: str, *others: str) -> list[dict]:
    return [{"email": OWNER, "response": owner_response}] + [
        {"email": email, "response": "accepted"} for email in others
    ]


@pytest.mark.parametrize(
    ("policy", "fields", "expected"),
    [
        (RecordingPolicy.OFF, {}, False),
        (RecordingPolicy.ALL, {}, True),
        (RecordingPolicy.ORGANIZER, {"is_organizer": True}, True),
        (RecordingPolicy.ORGANIZER, {"is_organizer": False}, False),
        (RecordingPolicy.EXTERNAL, {"attendees": attendees("accepted", "bob@other.example")}, True),
        (
            RecordingPolicy.EXTERNAL,
            {"attendees": attendees("accepted", "carol@ACME.example")},
            False,
        ),
        (RecordingPolicy.EXTERNAL, {"attendees": [], "organizer_email": "x@vendor.example"}, True),
        (RecordingPolicy.ACCEPTED, {"attendees": attendees("accepted")}, True),
        (RecordingPolicy.ACCEPTED, {"attendees": attendees("tentative")}, False),
        (RecordingPolicy.ACCEPTED, {"attendees": attendees("needs_action")}, False),
        (RecordingPolicy.ACCEPTED, {"attendees": [], "is_organizer": True}, True),
        (RecordingPolicy.ACCEPTED, {"attendees": []}, False),
    ],
)
def test_each_policy(calendar, policy, fields, expected):
    calendar.recording_policy = policy
    decision = should_record(event(calendar, **fields), calendar)
    assert decision.record is expected
    assert decision.reason.startswith("policy: ")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"is_deleted": True}, "deleted"),
        ({"is_cancelled": True}, "cancelled"),
        ({"meeting_url": None}, "no meeting link"),
        ({"meeting_url": ""}, "no meeting link"),
        (
            {
                "start_time": timezone.now() - timedelta(hours=2),
                "end_time": timezone.now() - timedelta(hours=1),
            },
            "ended",
        ),
    ],
)
def test_impossible_meetings_are_never_recorded_even_when_always(calendar, fields, reason):
    calendar.recording_policy = RecordingPolicy.ALL
    meeting = event(calendar, record_override=RecordOverride.ALWAYS, **fields)
    assert unrecordable_reason(meeting) == reason
    assert should_record(meeting, calendar)[:2] == (False, reason)


def test_meeting_in_progress_can_still_be_recorded(calendar):
    calendar.recording_policy = RecordingPolicy.ALL
    now = timezone.now()
    meeting = event(
        calendar, start_time=now - timedelta(minutes=5), end_time=now + timedelta(minutes=25)
    )
    assert should_record(meeting, calendar).record


def test_meeting_override_wins_both_ways(calendar):
    calendar.recording_policy = RecordingPolicy.OFF
    always = event(calendar, record_override=RecordOverride.ALWAYS)
    assert should_record(always, calendar)[:2] == (True, "always record (meeting override)")
    calendar.recording_policy = RecordingPolicy.ALL
    never = event(calendar, record_override=RecordOverride.NEVER)
    assert should_record(never, calendar)[:2] == (False, "never record (meeting override)")


def test_always_override_beats_declined_and_minimum_attendees(calendar):
    calendar.min_attendees = 10
    meeting = event(
        calendar, attendees=attendees("declined"), record_override=RecordOverride.ALWAYS
    )
    assert should_record(meeting, calendar).record


def test_series_override_applies_to_every_occurrence(calendar):
    calendar.recording_policy = RecordingPolicy.OFF
    calendar.series_overrides = {"standup_series": RecordOverride.ALWAYS, "1on1": "never"}
    standups = [event(calendar, recurring_event_id="standup_series") for _ in range(3)]
    assert all(
        should_record(s, calendar)[:2] == (True, "always record (series override)")
        for s in standups
    )
    assert not should_record(event(calendar, recurring_event_id="other"), calendar).record
    calendar.recording_policy = RecordingPolicy.ALL
    assert should_record(event(calendar, recurring_event_id="1on1"), calendar)[:2] == (
        False,
        "never record (series override)",
    )


def test_meeting_override_beats_series_override(calendar):
    calendar.series_overrides = {"standup_series": "always"}
    skipped = event(calendar, recurring_event_id="standup_series", record_override="never")
    assert not should_record(skipped, calendar).record
    calendar.series_overrides = {"standup_series": "never"}
    kept = event(calendar, recurring_event_id="standup_series", record_override="always")
    assert should_record(kept, calendar).record


def test_unknown_series_override_values_are_ignored(calendar):
    calendar.recording_policy = RecordingPolicy.ALL
    calendar.series_overrides = {"s": "sometimes", "": "never"}
    assert should_record(event(calendar, recurring_event_id="s"), calendar).record
    assert should_record(event(calendar, recurring_event_id=""), calendar).record


def test_skip_declined(calendar):
    calendar.recording_policy = RecordingPolicy.ALL
    declined = event(calendar, attendees=attendees("declined", "bob@other.example"))
    assert should_record(declined, calendar)[:2] == (False, "declined by the calendar's owner")
    calendar.skip_declined = False
    assert should_record(declined, calendar).record


def test_minimum_attendees(calendar):
    calendar.recording_policy = RecordingPolicy.ALL
    calendar.min_attendees = 3
    small = event(calendar, attendees=attendees("accepted", "bob@acme.example"))
    small.organizer_email = OWNER  # the owner organizes it: owner and bob
    big = event(calendar, attendees=attendees("accepted", "bob@acme.example", "eve@acme.example"))
    assert should_record(small, calendar)[:2] == (False, "2 attendees, fewer than the minimum 3")
    assert should_record(big, calendar).record


def test_minimum_attendees_counts_the_organizer_once_for_both_providers(calendar):
    """Google lists the organizer among the attendees, Microsoft Graph does not."""
    calendar.recording_policy = RecordingPolicy.ALL
    calendar.min_attendees = 3
    guests = attendees("accepted", "bob@acme.example")  # the owner and bob
    google = event(calendar, attendees=[*guests, {"email": "org@acme.example"}])
    google.organizer_email = "org@acme.example"
    outlook = event(calendar, attendees=guests)
    outlook.organizer_email = "ORG@acme.example"
    assert should_record(google, calendar).record
    assert should_record(outlook, calendar).record


def test_external_policy_needs_the_calendar_email(calendar):
    calendar.recording_policy = RecordingPolicy.EXTERNAL
    calendar.platform_email = ""
    meeting = event(calendar, attendees=attendees("accepted", "bob@other.example"))
    assert should_record(meeting, calendar)[:2] == (
        False,
        "policy: the calendar's email domain is not known yet",
    )


def test_disconnected_calendar_records_nothing(calendar):
    calendar.recording_policy = RecordingPolicy.ALL
    calendar.status = CalendarStatus.DISCONNECTED
    assert should_record(event(calendar), calendar)[:2] == (False, "the calendar is disconnected")


def test_calendar_defaults_to_its_event_calendar(calendar):
    Calendar.objects.filter(pk=calendar.pk).update(recording_policy=RecordingPolicy.ALL)
    meeting = CalendarEvent.objects.get(pk=event(calendar).pk)
    assert should_record(meeting).record


@pytest.mark.parametrize(
    ("platform", "raw", "accepted_policy", "organizer_policy"),
    [
        (
            Platform.GOOGLE_CALENDAR,
            {
                "summary": "Review",
                "organizer": {"email": "boss@acme.example"},
                "attendees": [
                    {"email": OWNER, "responseStatus": "accepted", "self": True},
                    {"email": "boss@acme.example", "responseStatus": "accepted", "organizer": True},
                ],
            },
            True,
            False,
        ),
        (
            Platform.MICROSOFT_OUTLOOK,
            {
                "subject": "Review",
                "isOrganizer": False,
                "organizer": {"emailAddress": {"address": "boss@acme.example"}},
                "attendees": [
                    {"emailAddress": {"address": OWNER}, "status": {"response": "declined"}},
                ],
            },
            False,
            False,
        ),
        (
            Platform.MICROSOFT_OUTLOOK,
            {
                "subject": "My meeting",
                "isOrganizer": True,
                "organizer": {"emailAddress": {"address": OWNER}},
                "attendees": [
                    {
                        "emailAddress": {"address": "bob@other.example"},
                        "status": {"response": "none"},
                    }
                ],
            },
            True,
            True,
        ),
    ],
)
def test_google_and_microsoft_payloads_give_the_same_decisions(
    calendar, platform, raw, accepted_policy, organizer_policy
):
    fields = derive_fields(raw, platform=platform, owner_email=OWNER)
    meeting = event(calendar, platform=platform, raw=raw, **fields)
    calendar.recording_policy = RecordingPolicy.ACCEPTED
    assert should_record(meeting, calendar).record is accepted_policy
    calendar.recording_policy = RecordingPolicy.ORGANIZER
    assert should_record(meeting, calendar).record is organizer_policy
