"""The disconnection reason comes from Recall's untyped ``status_changes`` entries: whatever
fields the latest disconnection carries beyond its status and time, under any key, and nothing
invented when it carries none."""

from __future__ import annotations

import pytest

from django_recall_calendar.models import CalendarStatus
from django_recall_calendar.status_changes import disconnection_details
from tests import builders

AT = "2026-03-02T09:15:00.123456Z"


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        # Status and time only (what the emulator sends by default): no detail to show.
        (
            [
                {"status": "connected", "created_at": AT},
                {"status": "disconnected", "created_at": AT},
            ],
            "",
        ),
        # One detail under any key: its value.
        (
            [{"status": "disconnected", "created_at": AT, "error_code": "invalid_grant"}],
            "invalid_grant",
        ),
        ([{"code": "disconnected", "at": AT, "message": "Token revoked"}], "Token revoked"),
        # Several: each named; an object (a Graph error) as JSON.
        (
            [
                {
                    "status": "disconnected",
                    "created_at": AT,
                    "error": {"code": "InvalidAuthenticationToken"},
                    "provider": "microsoft_outlook",
                }
            ],
            'error: {"code": "InvalidAuthenticationToken"}; provider: microsoft_outlook',
        ),
        # The latest disconnection counts, not an earlier one nor the reconnection after it.
        (
            [
                {"status": "disconnected", "created_at": AT, "error_code": "old"},
                {"status": "connected", "created_at": AT},
                {"status": "disconnected", "created_at": AT, "error_code": "new"},
            ],
            "new",
        ),
        # Nothing usable: not a list, entries that are not objects, no disconnection.
        (None, ""),
        ({"status": "disconnected", "error_code": "x"}, ""),
        (["disconnected", 7], ""),
        ([{"status": "connected", "created_at": AT, "error_code": "x"}], ""),
        ([{"status": "disconnected", "created_at": AT, "note": None, "extra": ""}], ""),
    ],
)
def test_the_latest_disconnections_own_fields_are_shown(changes, shown):
    assert disconnection_details(changes) == shown


def test_a_long_detail_is_cut():
    changes = [{"status": "disconnected", "created_at": AT, "message": "x" * 5000}]
    assert disconnection_details(changes) == "x" * 500


@pytest.mark.django_db
@pytest.mark.recall_emulator(unruly=False)
def test_a_calendar_disconnected_without_details_says_so_without_inventing_one(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator, "alice@work.example")

    recall_emulator.disconnect_calendar(str(calendar.recall_id))

    calendar.refresh_from_db()
    assert calendar.status == CalendarStatus.DISCONNECTED
    assert calendar.disconnect_reason == ""
