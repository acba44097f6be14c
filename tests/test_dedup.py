"""Deduplication keys and meeting URL canonicalisation (table-driven, no database needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_recall_calendar.dedup import (
    MAX_KEY_LENGTH,
    canonical_meeting_url,
    deduplication_key,
    format_start,
)
from django_recall_calendar.models import CalendarEvent
from tests import builders

TEAMS_JOIN = (
    "https://teams.microsoft.com/l/meetup-join/"
    "19%3ameeting_NjQ4ZDU3YjEtMmE2Zi00YzM0LWI4MjctZDA3NWQ0NjE2ZDQx%40thread.v2/0"
)
TEAMS_CONTEXT_ALICE = (
    "?context=%7b%22Tid%22%3a%2272f988bf-86f1-41af-91ab-2d7cd011db47%22%2c"
    "%22Oid%22%3a%22a1b2c3d4-0000-4000-8000-000000000001%22%7d"
)
TEAMS_CONTEXT_BOB = (
    "?context=%7B%22Tid%22%3A%2272f988bf-86f1-41af-91ab-2d7cd011db47%22%2C"
    "%22Oid%22%3A%22b1b2c3d4-0000-4000-8000-000000000002%22%7D"
)

#: Pairs of links to the SAME meeting, as different invitees' calendars show them.
SAME_MEETING = [
    # Zoom: vanity subdomain vs regional host, per-invitee name, tracking, trailing slash, fragment.
    (
        "https://acme.zoom.us/j/85012345678?pwd=aBcD1234efGh",
        "https://us02web.zoom.us/j/85012345678?pwd=aBcD1234efGh",
    ),
    (
        "https://zoom.us/j/85012345678?pwd=aBcD1234efGh&uname=Alice%20Smith",
        "https://zoom.us/j/85012345678?pwd=aBcD1234efGh&uname=Bob",
    ),
    (
        "HTTPS://ACME.ZOOM.US/j/85012345678/?pwd=aBcD1234efGh#success",
        "https://acme.zoom.us/j/85012345678?pwd=aBcD1234efGh",
    ),
    (
        "https://zoom.us/j/85012345678?utm_source=calendar&pwd=x1",
        "https://zoom.us/j/85012345678?pwd=x1",
    ),
    ("https://us05web.zoom.us/wc/join/85012345678?pwd=x1", "https://zoom.us/j/85012345678?pwd=x1"),
    # Google Meet: authuser / hs are per viewer; codes are case-insensitive.
    (
        "https://meet.google.com/abc-defg-hij?authuser=1&hs=122",
        "https://meet.google.com/abc-defg-hij",
    ),
    ("https://Meet.Google.com/ABC-DEFG-HIJ/", "https://meet.google.com/abc-defg-hij?pli=1"),
    # Teams: the context parameter carries the invitee's object id; percent-encoding case differs.
    (TEAMS_JOIN + TEAMS_CONTEXT_ALICE, TEAMS_JOIN + TEAMS_CONTEXT_BOB),
    (TEAMS_JOIN + TEAMS_CONTEXT_ALICE, TEAMS_JOIN.replace("%3a", "%3A").replace("%40", "@")),
    (
        "https://teams.live.com/meet/9398765432101?p=AbCdEfGh123",
        "https://teams.live.com/meet/9398765432101/?p=AbCdEfGh123&utm_medium=mail",
    ),
    # Webex: MTID identifies the meeting; registration ids and tracking do not.
    (
        "https://acme.webex.com/acme/j.php?MTID=m4c1f3a2b9d8e7f6a5b4c3d2e1f0a9b8c",
        "https://ACME.webex.com/acme/j.php?RGID=r123&MTID=m4c1f3a2b9d8e7f6a5b4c3d2e1f0a9b8c",
    ),
    ("https://acme.webex.com/meet/jdoe", "https://acme.webex.com/meet/jdoe/#"),
    # Anything else: case of scheme and host, default port, tracking.
    ("HTTPS://Video.Example.COM:443/room/42?utm_campaign=x", "https://video.example.com/room/42"),
]

#: Pairs of links to DIFFERENT meetings, which must never share a key.
DIFFERENT_MEETINGS = [
    ("https://zoom.us/j/85012345678?pwd=x1", "https://zoom.us/j/85012345679?pwd=x1"),
    ("https://zoom.us/j/85012345678?pwd=x1", "https://zoom.us/j/85012345678?pwd=x2"),
    ("https://acme.zoom.us/j/85012345678?pwd=aBc", "https://acme.zoom.us/j/85012345678?pwd=abc"),
    ("https://zoom.us/j/85012345678", "https://zoomgov.com/j/85012345678"),
    ("https://meet.google.com/abc-defg-hij", "https://meet.google.com/abc-defg-hik"),
    (TEAMS_JOIN, TEAMS_JOIN.replace("NjQ4", "NjQ5")),
    (
        "https://teams.live.com/meet/9398765432101?p=AbCd",
        "https://teams.live.com/meet/9398765432101?p=XyZw",
    ),
    ("https://acme.webex.com/acme/j.php?MTID=m111", "https://acme.webex.com/acme/j.php?MTID=m222"),
    ("https://acme.webex.com/meet/jdoe", "https://other.webex.com/meet/jdoe"),
    ("https://video.example.com/room/42?id=1", "https://video.example.com/room/42?id=2"),
]


@pytest.mark.parametrize(("first", "second"), SAME_MEETING)
def test_copies_of_one_meeting_canonicalise_to_the_same_url(first, second):
    assert canonical_meeting_url(first) == canonical_meeting_url(second)


@pytest.mark.parametrize(("first", "second"), DIFFERENT_MEETINGS)
def test_different_meetings_keep_different_urls(first, second):
    assert canonical_meeting_url(first) != canonical_meeting_url(second)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://acme.zoom.us/j/85012345678?uname=x&pwd=p", "https://zoom.us/j/85012345678?pwd=p"),
        ("https://meet.google.com/abc-defg-hij?authuser=2", "https://meet.google.com/abc-defg-hij"),
        (TEAMS_JOIN + TEAMS_CONTEXT_ALICE, TEAMS_JOIN.replace("%3a", ":").replace("%40", "@")),
        (
            "https://acme.webex.com/acme/j.php?MTID=m1&utm_source=x",
            "https://acme.webex.com/acme/j.php?MTID=m1",
        ),
        ("meet.google.com/abc-defg-hij", "https://meet.google.com/abc-defg-hij"),
        ("  https://zoom.us/j/1  ", "https://zoom.us/j/1"),
        ("", ""),
        (None, ""),
    ],
)
def test_canonical_forms(url, expected):
    assert canonical_meeting_url(url) == expected


@pytest.mark.parametrize(
    "start",
    [
        datetime(2026, 11, 30, 15, 0, tzinfo=UTC),
        datetime(2026, 11, 30, 16, 0, tzinfo=timezone(timedelta(hours=1))),
        datetime(2026, 11, 30, 10, 0, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2026, 11, 30, 15, 0, 0, 123456, tzinfo=UTC),
    ],
)
def test_start_is_one_utc_form(start):
    assert format_start(start) == "2026-11-30T15:00:00Z"


def _event(url: str, *, email: str = "alice@acme.example", start=None) -> CalendarEvent:
    """An unsaved meeting of an unsaved calendar: the key needs no database."""
    start = start or datetime(2026, 11, 30, 15, tzinfo=UTC)
    calendar = builders.calendar(email=email, save=False)
    return builders.event(calendar, start=start, minutes=60, meeting_url=url, save=False)


def custom_key(event: CalendarEvent) -> str:
    return f"custom-{event.recall_id}"


def not_a_string(event: CalendarEvent) -> int:
    return 42


MEETING = "https://acme.zoom.us/j/85012345678?pwd=x1"


def test_meeting_scheme_shares_the_key_across_invitees(settings):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "DEDUPLICATION": "meeting"}
    alice = _event(MEETING + "&uname=Alice")
    bob = _event("https://us02web.zoom.us/j/85012345678?pwd=x1", email="bob@other.example")
    assert deduplication_key(alice) == deduplication_key(bob)
    assert deduplication_key(alice) == "2026-11-30T15:00:00Z-https://zoom.us/j/85012345678?pwd=x1"


def test_meeting_scheme_key_changes_when_the_meeting_moves():
    first = _event(MEETING)
    moved = _event(MEETING, start=datetime(2026, 11, 30, 16, tzinfo=UTC))
    assert deduplication_key(first) != deduplication_key(moved)


def test_domain_scheme_separates_companies(settings):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "DEDUPLICATION": "domain"}
    alice = _event(MEETING, email="alice@ACME.example")
    carol = _event(MEETING, email="carol@acme.example")
    bob = _event(MEETING, email="bob@other.example")
    assert deduplication_key(alice) == deduplication_key(carol)
    assert deduplication_key(alice) != deduplication_key(bob)
    assert deduplication_key(alice).endswith("-acme.example")


def test_event_scheme_gives_each_calendar_its_own_bot(settings):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "DEDUPLICATION": "event"}
    alice, bob = _event(MEETING), _event(MEETING)
    assert deduplication_key(alice) != deduplication_key(bob)
    assert deduplication_key(alice).endswith(str(alice.recall_id))


def test_dotted_path_to_a_callable(settings):
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "DEDUPLICATION": f"{__name__}.custom_key",
    }
    event = _event(MEETING)
    assert deduplication_key(event) == f"custom-{event.recall_id}"


@pytest.mark.parametrize(
    "setting",
    ["no.such.module.function", "meetings", f"{__name__}.not_a_string", f"{__name__}.MEETING"],
)
def test_bad_deduplication_setting_is_a_clear_configuration_error(settings, setting):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "DEDUPLICATION": setting}
    with pytest.raises(ImproperlyConfigured, match="DEDUPLICATION"):
        deduplication_key(_event(MEETING))


def test_very_long_links_still_fit_recalls_key_limit():
    long_url = "https://video.example.com/room?id=" + "x" * 3000
    other = "https://video.example.com/room?id=" + "x" * 2999 + "y"
    key = deduplication_key(_event(long_url))
    assert len(key) <= MAX_KEY_LENGTH
    assert key != deduplication_key(_event(other))


@pytest.mark.parametrize("url", ["https://zoom.us:99999/j/1", "https://[meet.example.com/x"])
def test_an_unparseable_link_is_its_own_canonical_form(url):
    assert canonical_meeting_url(f"  {url} ") == url
