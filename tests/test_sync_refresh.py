"""refresh_calendar against the emulator: status transitions, their signals, 404, stored secrets."""

from __future__ import annotations

import pytest

from django_recall_calendar import signals
from django_recall_calendar.client import RecallClient
from django_recall_calendar.exceptions import RecallServerError
from django_recall_calendar.models import Calendar, CalendarStatus
from django_recall_calendar.sync import refresh_calendar, strip_secrets
from tests import builders

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.recall_emulator(webhooks=False),  # each test syncs when it means to
]


@pytest.fixture
def sent():
    """(signal name, kwargs) for every connect/disconnect signal sent during the test."""
    calls: list[tuple[str, dict]] = []
    receivers = {
        name: (lambda sender, name=name, **kwargs: calls.append((name, kwargs)))
        for name in ("calendar_connected", "calendar_disconnected")
    }
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver, weak=False)
    yield calls
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


def test_connecting_then_connected_sends_calendar_connected_once(recall_emulator, sent):
    calendar = builders.recall_calendar(recall_emulator, connect=False)

    refresh_calendar(calendar)
    assert calendar.status == CalendarStatus.CONNECTING
    assert calendar.platform_email == ""
    assert sent == []

    recall_emulator.connect_calendar(str(calendar.recall_id), email="Owner@Example.com")
    returned = refresh_calendar(calendar)
    refresh_calendar(calendar)

    assert returned is calendar
    stored = Calendar.objects.get(pk=calendar.pk)
    assert stored.status == CalendarStatus.CONNECTED
    assert stored.platform_email == "Owner@Example.com"
    assert (
        stored.status_changes
        == recall_emulator.calendars[str(calendar.recall_id)]["status_changes"]
    )
    assert [name for name, _ in sent] == ["calendar_connected"]
    assert sent[0][1]["calendar"].pk == calendar.pk


def test_disconnect_sends_the_reason_and_reconnect_sends_connected(recall_emulator, sent):
    calendar = builders.recall_calendar(recall_emulator, status=CalendarStatus.CONNECTING)
    refresh_calendar(calendar)
    recall_emulator.disconnect_calendar(
        str(calendar.recall_id), details={"error_code": "invalid_grant"}
    )

    refresh_calendar(calendar)
    refresh_calendar(calendar)

    assert Calendar.objects.get(pk=calendar.pk).status == CalendarStatus.DISCONNECTED
    assert [name for name, _ in sent] == ["calendar_connected", "calendar_disconnected"]
    assert sent[1][1]["reason"] == "invalid_grant"
    assert sent[1][1]["deleted"] is False

    RecallClient.from_settings().update_calendar(str(calendar.recall_id))  # empty PATCH: reconnect
    refresh_calendar(calendar)

    assert calendar.status == CalendarStatus.CONNECTED
    assert [name for name, _ in sent][-1] == "calendar_connected"


def test_a_404_marks_the_calendar_missing_and_says_so_once(recall_emulator, sent):
    calendar = builders.recall_calendar(recall_emulator, status=CalendarStatus.CONNECTING)
    refresh_calendar(calendar)
    RecallClient.from_settings().delete_calendar(str(calendar.recall_id))

    refresh_calendar(calendar)
    refresh_calendar(calendar)

    calendar.refresh_from_db()
    assert calendar.status == CalendarStatus.MISSING
    assert calendar.is_disconnected
    assert [name for name, _ in sent] == ["calendar_connected", "calendar_disconnected"]
    assert sent[1][1]["reason"] == calendar.disconnect_reason != ""


def test_other_errors_propagate_and_change_nothing(recall_emulator, sent):
    calendar = builders.recall_calendar(recall_emulator, status=CalendarStatus.CONNECTING)
    recall_emulator.inject_fault("500", count=50, path="/api/v2/calendars/")

    with pytest.raises(RecallServerError):
        refresh_calendar(calendar)

    assert Calendar.objects.get(pk=calendar.pk).status == CalendarStatus.CONNECTING
    assert sent == []


def test_stored_raw_has_no_secrets(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator, status=CalendarStatus.CONNECTING)
    echoed = recall_emulator.calendars[str(calendar.recall_id)]
    assert echoed["oauth_refresh_token"] and echoed["oauth_client_secret"]

    refresh_calendar(calendar)

    raw = Calendar.objects.get(pk=calendar.pk).raw
    assert raw["id"] == str(calendar.recall_id)
    assert "oauth_client_secret" not in raw and "oauth_refresh_token" not in raw
    assert echoed["oauth_refresh_token"] not in repr(raw)
    assert echoed["oauth_client_secret"] not in repr(raw)


@pytest.mark.parametrize("value", [None, [], "text"])
def test_strip_secrets_of_a_non_object_is_empty(value):
    assert strip_secrets(value) == {}
