"""What a user sees: the example project's meetings page with recent bots' outcomes, and times in
the viewer's time zone (the browser-reported ``recall_tz`` cookie), in pages and the REST API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from django_recall_calendar.middleware import zone_from
from django_recall_calendar.models import CalendarEvent, RecordingPolicy
from tests import builders

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("example_project.urls"),
    pytest.mark.recall_emulator(unruly=False),
]

EXAMPLE_TEMPLATES = Path(__file__).resolve().parents[1] / "example_project" / "templates"


@pytest.fixture
def site(settings, client):
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [EXAMPLE_TEMPLATES]}]
    return client


def at_two_pm_utc_in_two_days() -> datetime:
    """Never "today" in any zone, whatever the hour the suite runs (tomorrow at 14:00 UTC is
    already today in Berlin from 23:00 UTC, and the page then leaves out the day)."""
    day = timezone.now().astimezone(UTC).date() + timedelta(days=2)
    return datetime(day.year, day.month, day.day, 14, tzinfo=UTC)


@pytest.fixture
def ada(recall_emulator):
    calendar = builders.recall_calendar(
        recall_emulator, "ada@acme.example", recording_policy=RecordingPolicy.ALL
    )
    now = timezone.now()
    _planning, recorded, failed = builders.synced_events(
        recall_emulator,
        calendar,
        {"title": "Planning", "start_time": at_two_pm_utc_in_two_days()},
        {"title": "Retro", "start_time": now + timedelta(minutes=1)},
        {"title": "Customer call", "start_time": now + timedelta(minutes=2)},
    )
    recall_emulator.move_bot(builders.bot_id_of(recorded), "done")
    recall_emulator.move_bot(builders.bot_id_of(failed), "fatal", sub_code="meeting_not_found")
    CalendarEvent.objects.filter(pk__in=[recorded.pk, failed.pk]).update(
        start_time=now - timedelta(hours=3), end_time=now - timedelta(hours=2)
    )
    return calendar.user


def test_the_meetings_page_shows_recent_bots_outcomes(site, ada):
    site.force_login(ada)
    html = site.get("/meetings/").content.decode()

    upcoming, recent = html.split('<table id="recent">')
    assert "Planning" in upcoming and "Bot scheduled" in upcoming
    assert 'state--recorded">Recorded<' in recent
    assert "Recorded, the recording is ready" in recent
    assert 'state--failed">Failed<' in recent
    assert "Failed to record: the meeting was not found" in recent


@pytest.mark.parametrize(
    ("cookie", "zone"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("America/New_York", "America/New_York"),
        ("America%2FNew_York", "America/New_York"),
        ("../../etc/passwd", "UTC"),
        ("Not/AZone", "UTC"),
        ("", "UTC"),
    ],
)
def test_times_are_in_the_viewers_time_zone(site, ada, cookie, zone):
    """A zone the browser reports is used; anything else leaves the site's zone (UTC)."""
    local = at_two_pm_utc_in_two_days().astimezone(ZoneInfo(zone))
    shown = f"{local:%H:%M} {local.tzname()}"
    site.force_login(ada)
    site.cookies["recall_tz"] = cookie

    page = site.get("/meetings/").content.decode()
    api = site.get("/recall/api/events/", {"upcoming": "true"}).json()["results"]

    assert f"bot joins at {local:%a} {local.day} {local:%b}, {shown}" in page
    (planning,) = [row for row in api if row["title"] == "Planning"]
    assert planning["bot_state_reason"].endswith(shown)


def test_a_hostile_cookie_is_ignored():
    assert zone_from("x" * 10_000) is None
    assert zone_from("/etc/localtime") is None
    assert zone_from("Europe/Berlin\x00") is None
    assert zone_from("..%2F..%2Fetc%2Fpasswd") is None
    assert str(zone_from("Europe/Berlin")) == "Europe/Berlin"
