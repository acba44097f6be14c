"""A sync of 2,000 events while 30% of Recall's answers are 429s, 5xx or stalls: nothing is lost.

The client retries with tiny backoffs; a sync that still fails is simply run again (as the next
webhook or ``recall_sync`` would), resuming from the watermark. The end state must equal Recall's.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from django_recall_calendar.exceptions import RecallError
from django_recall_calendar.models import Calendar
from django_recall_calendar.sync import sync_events
from django_recall_calendar.utils import parse_datetime_or_none
from tests import builders
from tests.test_sync import assert_mirrors

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.recall_emulator(webhooks=False),  # each test syncs when it means to
]

EVENTS = 2_000
FAULT_RATE = 0.3
FAULT_KINDS = ("429", "500", "502", "503", "504", "stall")
#: Client timeout; a stall holds its answer longer, so the client gives up and retries.
TIMEOUT = 0.2
MAX_SYNCS = 25


def sync_until_success(calendar: Calendar) -> int:
    """Sync until one run completes; returns how many runs failed before it."""
    for failures in range(MAX_SYNCS):
        try:
            sync_events(calendar)
        except RecallError:
            continue
        return failures
    raise AssertionError(f"no sync completed in {MAX_SYNCS} runs")


@pytest.fixture
def flaky_recall(recall_emulator, settings):
    settings.RECALL_CALENDAR = {
        **settings.RECALL_CALENDAR,
        "TIMEOUT": TIMEOUT,
        "MAX_RETRIES": 3,
        "BACKOFF_BASE": 0.001,
        "BACKOFF_CAP": 0.005,
        "RETRY_AFTER_CAP": 0.005,
    }
    recall_emulator.fault_rate(
        FAULT_RATE, FAULT_KINDS, seed=2024, retry_after=0, seconds=TIMEOUT * 2
    )
    yield recall_emulator
    recall_emulator.clear_faults()


def test_sync_under_faults_ends_equal_to_recall(recall_emulator, flaky_recall):
    calendar = builders.recall_calendar(recall_emulator)
    calendar_id = str(calendar.recall_id)
    events = flaky_recall.add_events(calendar_id, EVENTS, notify=False)

    sync_until_success(calendar)
    for event in events[:150]:
        start = parse_datetime_or_none(event["start_time"]) + timedelta(hours=2)
        end = start + timedelta(minutes=45)
        flaky_recall.update_event(
            event["id"], start_time=start, end_time=end, title="Moved", meeting_url=None
        )
    for event in events[150:200]:
        flaky_recall.delete_event(event["id"])
    flaky_recall.add_events(calendar_id, 100, notify=False)
    sync_until_success(calendar)

    logged = flaky_recall.requests_for("GET", "/api/v2/calendar-events/")
    faulted = [request for request in logged if request.fault]
    # Seeded, so the same faults each run: status errors and stalls, about 30% of the few dozen
    # requests.
    assert len({request.fault for request in faulted}) >= 3
    assert "stall" in {request.fault for request in faulted}
    assert 0.1 < len(faulted) / len(logged) < 0.5
    assert_mirrors(flaky_recall)
