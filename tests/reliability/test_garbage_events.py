"""Random Recall-shaped calendar events at sync: a field null or missing where the spec allows it,
random Google and Microsoft ``raw`` payloads, never a crash.

The events are generated from ``openapi.json`` itself (``CalendarEvent`` and the two raw schemas):
required fields are always there, nullable ones are sometimes null, optional ones sometimes
missing. They reach ``sync_events`` through the real client over HTTP.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_recall_calendar.client import RecallClient
from django_recall_calendar.models import Calendar, CalendarEvent
from django_recall_calendar.sync import sync_events
from tests import builders

pytestmark = pytest.mark.django_db

SPEC = Path(__file__).resolve().parents[3] / "shared" / "recall" / "openapi.json"
OFFSETS = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
date_times = st.builds(
    lambda moment, offset: moment.replace(tzinfo=UTC).astimezone(offset).isoformat(),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)),
    st.sampled_from(OFFSETS),
)
STRING_FORMATS = {
    "date-time": date_times,
    "uuid": st.uuids().map(str),
    "email": st.emails(),
    "uri": st.sampled_from(["https://zoom.us/j/123", "https://meet.google.com/abc-defg-hij"])
    | st.text(max_size=30),
}


def from_schema(schema: dict[str, Any], schemas: dict[str, Any]) -> st.SearchStrategy:
    """Values valid for an OpenAPI 3.0 schema (the subset openapi.json uses)."""
    if "$ref" in schema:
        values = from_schema(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas)
    elif "oneOf" in schema or "anyOf" in schema:
        options = schema.get("oneOf") or schema["anyOf"]
        values = st.one_of([from_schema(option, schemas) for option in options])
    elif "enum" in schema:
        values = st.sampled_from([value for value in schema["enum"] if value is not None])
    else:
        values = _typed(schema, schemas)
    return st.none() | values if schema.get("nullable") else values


def _typed(schema: dict[str, Any], schemas: dict[str, Any]) -> st.SearchStrategy:
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = {
            name: from_schema(sub, schemas) for name, sub in schema.get("properties", {}).items()
        }
        if not properties:
            return st.dictionaries(st.text(max_size=8), json_values, max_size=3)
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {name: values for name, values in properties.items() if name in required},
            optional={name: values for name, values in properties.items() if name not in required},
        )
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), schemas), max_size=3)
    if kind == "string":
        return STRING_FORMATS.get(schema.get("format"), st.text(max_size=40))
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(min_value=-(2**31), max_value=2**31)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    return json_values


def calendar_events() -> st.SearchStrategy:
    if not SPEC.exists():
        return st.nothing()
    spec = json.loads(SPEC.read_text())
    schemas = spec["components"]["schemas"]
    return from_schema(schemas["CalendarEvent"], schemas)


@pytest.fixture
def calendar(db) -> Calendar:
    if not SPEC.exists():
        pytest.skip(f"Recall's openapi.json is not at {SPEC} (the shared/ folder is absent)")
    return builders.calendar(builders.user("garbage", "garbage@example.com"), platform_email="")


@settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the work tree; each run explores afresh
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(page=st.lists(calendar_events(), min_size=1, max_size=4))
def test_spec_shaped_events_never_crash_the_sync(one_page_recall, calendar, page):
    # Examples share the database: a row left by an earlier one with a later updated_at would
    # rightly keep its newer copy (an older one never overwrites it), so each starts empty.
    CalendarEvent.objects.all().delete()
    one_page_recall.results = page
    client = RecallClient("test-api-key", one_page_recall.base_url, max_retries=0)

    result = sync_events(calendar, full=True, client=client)

    by_id = {event["id"]: event for event in page}
    assert result.received == len(by_id)
    rows = {str(row.recall_id): row for row in CalendarEvent.objects.filter(recall_id__in=by_id)}
    assert set(rows) == set(by_id)
    for recall_id, event in by_id.items():
        row = rows[recall_id]
        # NUL characters are dropped: PostgreSQL cannot store them.
        assert row.meeting_url == ((event["meeting_url"] or "").replace("\x00", "") or None)
        assert row.is_deleted is event["is_deleted"]
        assert row.end_time >= row.start_time


def test_nul_characters_anywhere_in_an_event_are_dropped(one_page_recall, db):
    """PostgreSQL's text and jsonb refuse NUL; one in a provider's payload would fail its page on
    every retry. The client drops them from Recall's answer before the sync reads it."""
    calendar = builders.calendar(builders.user("nul", "nul@example.com"), platform_email="")
    event_id = "00000000-0000-4000-8000-000000000001"
    one_page_recall.results = [
        {
            "id": event_id,
            "calendar_id": str(calendar.recall_id),
            "start_time": "2026-01-05T10:00:00Z",
            "end_time": "2026-01-05T10:30:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "platform": "google_calendar",
            "meeting_url": "https://zoom.us/j/1\x002",
            "ical_uid": "uid\x00@google.com",
            "is_deleted": False,
            "bots": [],
            "raw": {
                "summary": "Plan\x00ning",
                "organizer": {"email": "Boss\x00@example.com"},
                "attendees": [{"email": "a\x00@example.com", "responseStatus": "accepted"}],
                "note\x00": ["x\x00"],
            },
        }
    ]
    client = RecallClient("test-api-key", one_page_recall.base_url, max_retries=0)

    sync_events(calendar, full=True, client=client)

    row = CalendarEvent.objects.get(recall_id=event_id)
    assert (row.meeting_url, row.ical_uid, row.title) == (
        "https://zoom.us/j/12",
        "uid@google.com",
        "Planning",
    )
    assert row.organizer_email == "boss@example.com"
    assert row.attendees == [{"email": "a@example.com", "response": "accepted"}]
    assert row.raw["note"] == ["x"]
