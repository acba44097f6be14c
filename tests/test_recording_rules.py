"""The recording rules people expect: private meetings, blocks of time that are not meetings,
declined meetings and title keywords, on Google- and Microsoft-shaped events synced from the
emulator; and the rule that skipped each meeting, as the REST API shows it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from django_recall_calendar.models import Platform, RecordingPolicy, RecordOverride
from django_recall_calendar.policies import Rule, should_record, title_keyword
from tests import builders

pytestmark = pytest.mark.django_db

GOOGLE, MICROSOFT = Platform.GOOGLE_CALENDAR, Platform.MICROSOFT_OUTLOOK
TOMORROW = {"start_time": timezone.now() + timedelta(days=1)}


def calendar_of(emulator, platform: str, **fields):
    fields.setdefault("recording_policy", RecordingPolicy.ALL)
    return builders.recall_calendar(emulator, "ada@acme.example", platform, **fields)


def synced(emulator, calendar, **spec):
    spec.setdefault("title", "Project sync")
    spec.setdefault("attendees", ["ada@acme.example", "bob@partner.example"])
    (event,) = builders.synced_events(emulator, calendar, {**TOMORROW, **spec})
    event.refresh_from_db()
    return event


@pytest.mark.parametrize(
    ("platform", "raw_extra", "sensitivity"),
    [
        (GOOGLE, {"visibility": "private"}, "private"),
        (GOOGLE, {"visibility": "confidential"}, "confidential"),
        (MICROSOFT, {"sensitivity": "private"}, "private"),
        (MICROSOFT, {"sensitivity": "confidential"}, "confidential"),
    ],
)
def test_private_meetings_get_no_bot_unless_that_meeting_says_always(
    recall_emulator, platform, raw_extra, sensitivity
):
    calendar = calendar_of(recall_emulator, platform)
    calendar.series_overrides = {"weekly": RecordOverride.ALWAYS}
    calendar.save()
    event = synced(recall_emulator, calendar, raw_extra=raw_extra, series_id="weekly")

    assert event.sensitivity == sensitivity
    assert event.bots == []  # neither the "all" policy nor the series' "always" sends a bot
    decision = should_record(event)
    assert (decision.record, decision.rule) == (False, Rule.PRIVATE)
    assert decision.reason == f"{sensitivity} event"

    event.record_override = RecordOverride.ALWAYS
    assert should_record(event).record


@pytest.mark.parametrize(
    ("platform", "raw_extra", "reason"),
    [
        (GOOGLE, {"eventType": "focusTime"}, "not a meeting: focus time"),
        (GOOGLE, {"eventType": "outOfOffice"}, "not a meeting: out of office"),
        (GOOGLE, {"eventType": "workingLocation"}, "not a meeting: working location"),
        (
            GOOGLE,
            {"start": {"date": "2030-01-01"}, "end": {"date": "2030-01-02"}},
            "not a meeting: all-day event",
        ),
        (MICROSOFT, {"isAllDay": True}, "not a meeting: all-day event"),
    ],
)
def test_blocks_of_time_that_are_not_meetings_are_skipped_by_every_policy(
    recall_emulator, platform, raw_extra, reason
):
    calendar = calendar_of(recall_emulator, platform)
    event = synced(recall_emulator, calendar, raw_extra=raw_extra)

    assert event.bots == []
    for policy in RecordingPolicy:
        calendar.recording_policy = policy
        assert should_record(event, calendar)[:3] == (False, reason, Rule.NOT_A_MEETING)


@pytest.mark.parametrize(("platform", "response"), [(GOOGLE, "declined"), (MICROSOFT, "declined")])
def test_a_meeting_the_owner_declined_is_skipped_whatever_the_policy(
    recall_emulator, platform, response
):
    calendar = calendar_of(recall_emulator, platform)
    attendees = [{"email": "ada@acme.example", "response": response}, "bob@partner.example"]
    event = synced(recall_emulator, calendar, attendees=attendees)

    assert event.bots == []
    for policy in RecordingPolicy:
        calendar.recording_policy = policy
        decision = should_record(event, calendar)
        assert (decision.record, decision.rule) == (False, Rule.DECLINED)


@pytest.mark.parametrize("platform", [GOOGLE, MICROSOFT])
def test_title_keywords_skip_a_meeting_case_ignored_and_as_whole_words(recall_emulator, platform):
    calendar = calendar_of(recall_emulator, platform, skip_title_keywords=["interview", "1:1"])
    skipped = synced(recall_emulator, calendar, title="Interview: backend engineer")
    one_on_one = synced(recall_emulator, calendar, title="Ada / Bob 1:1")
    kept = synced(recall_emulator, calendar, title="Interviewing process retro")

    assert skipped.bots == [] and one_on_one.bots == []
    assert kept.bots != []
    assert should_record(skipped)[:3] == (
        False,
        "the title contains “interview”",
        Rule.TITLE_KEYWORD,
    )


@pytest.mark.parametrize(
    ("title", "keywords", "found"),
    [
        ("Quarterly REVIEW", ["review"], "review"),
        ("Pre-review", ["review"], "review"),
        ("Reviewers sync", ["review"], ""),
        ("[private] lunch", ["[private]"], "[private]"),
        ("anything", ["  ", 5, None], ""),
        ("anything", "not a list", ""),
        ("", ["x"], ""),
    ],
)
def test_title_keyword_matching(title, keywords, found):
    assert title_keyword(title, keywords) == found


def test_a_new_calendar_starts_with_the_sites_keywords(settings):
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "DEFAULT_SKIP_TITLE_KEYWORDS": ["do not record"],
    }
    first, second = builders.calendar(), builders.calendar(email="b@example.com")
    assert first.skip_title_keywords == ["do not record"]
    first.skip_title_keywords.append("x")
    assert second.skip_title_keywords == ["do not record"]  # no shared list


def test_the_api_shows_the_rule_that_skipped_each_meeting(recall_emulator):
    calendar = calendar_of(recall_emulator, GOOGLE, skip_title_keywords=["interview"])
    user = calendar.user
    private = synced(recall_emulator, calendar, raw_extra={"visibility": "private"})
    interview = synced(recall_emulator, calendar, title="Interview")
    recorded = synced(recall_emulator, calendar, title="Planning")
    api = APIClient()
    api.force_authenticate(user)

    rows = api.get(reverse("recall_calendar:api-event-list")).json()["results"]
    by_id = {row["id"]: row for row in rows}

    assert by_id[private.pk]["skip_rule"] == "private"
    assert by_id[private.pk]["bot_state_reason"] == "private event"
    assert by_id[interview.pk]["skip_rule"] == "title_keyword"
    assert by_id[recorded.pk]["skip_rule"] is None
    assert by_id[recorded.pk]["bot_state"] == "scheduled"


def test_keywords_are_edited_as_a_list_through_the_api_and_bounded(recall_emulator):
    calendar = calendar_of(recall_emulator, GOOGLE)
    api = APIClient()
    api.force_authenticate(calendar.user)
    detail = reverse("recall_calendar:api-calendar-detail", args=[calendar.pk])

    saved = api.patch(
        detail, {"skip_title_keywords": [" Interview ", "interview", "1:1"]}, format="json"
    )
    assert saved.status_code == 200
    assert saved.json()["skip_title_keywords"] == ["Interview", "1:1"]
    for bad in (["x" * 101], [f"w{i}" for i in range(51)], "interview", [{"a": 1}]):
        refused = api.patch(detail, {"skip_title_keywords": bad}, format="json")
        assert refused.status_code == 400, bad
        assert "skip_title_keywords" in refused.json()
    calendar.refresh_from_db()
    assert calendar.skip_title_keywords == ["Interview", "1:1"]
