"""A reconcile reads a calendar's meetings a chunk at a time, and still handles each once, in order.

A first sync of a large calendar ends with a reconcile of every upcoming meeting; loading them all
at once took memory in proportion to the calendar. Here the chunk is made small so that a handful
of meetings span several chunks, some sharing a start time across a chunk's edge.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from django_recall_calendar import scheduling
from django_recall_calendar.calendars import sync_calendar
from tests import builders

pytestmark = [pytest.mark.django_db, pytest.mark.recall_emulator(webhooks=False)]


def test_every_meeting_across_chunks_gets_one_bot_earliest_first(recall_emulator, monkeypatch):
    monkeypatch.setattr(scheduling, "RECONCILE_CHUNK", 3)
    calendar = builders.recall_calendar(recall_emulator, recording_policy="all")
    soon = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    starts = [soon + timedelta(hours=hours) for hours in (0, 1, 2, 2, 2, 3, 4, 5)]
    start_of = {}
    for start in starts:
        event = recall_emulator.add_event(
            str(calendar.recall_id), start_time=start, end_time=start + timedelta(minutes=30)
        )
        start_of[event["id"]] = start

    done = sync_calendar(calendar, full=True)

    assert (done.bots.scheduled, done.bots.failed) == (len(starts), 0)
    scheduled = recall_emulator.requests_for("POST", "/bot/")
    assert len(scheduled) == len(starts)
    meetings = [request.path.rstrip("/").split("/")[-2] for request in scheduled]
    assert sorted(meetings) == sorted(start_of)  # each meeting once
    assert [start_of[meeting] for meeting in meetings] == sorted(starts)
