"""After a sync, a calendar whose policy records nothing reconciles only the events that can need
a Recall call (a bot to remove, an "always" override to honour), selected in SQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from django_recall_calendar.calendars import sync_changes
from django_recall_calendar.models import CalendarEvent, RecordingPolicy, RecordOverride
from django_recall_calendar.scheduling import reconcile_candidates, schedule_bot
from tests import builders

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.recall_emulator(webhooks=False),  # each test syncs when it means to
]


def later(hours: float):
    return (timezone.now() + timedelta(hours=hours)).replace(microsecond=0)


@pytest.fixture
def calendar(recall_emulator):
    return builders.recall_calendar(
        recall_emulator, "alice@acme.example", recording_policy=RecordingPolicy.OFF
    )


def test_policy_off_selects_only_events_with_a_bot_or_an_always_override(calendar, recall_emulator):
    remotes = recall_emulator.add_events(str(calendar.recall_id), 4, notify=False)
    sync_changes(calendar)
    with_bot, always, never, plain = (CalendarEvent.objects.get(recall_id=r["id"]) for r in remotes)
    schedule_bot(with_bot)
    CalendarEvent.objects.filter(pk=with_bot.pk).update(record_override="")
    CalendarEvent.objects.filter(pk=always.pk).update(record_override=RecordOverride.ALWAYS)
    CalendarEvent.objects.filter(pk=never.pk).update(record_override=RecordOverride.NEVER)

    picked = reconcile_candidates(CalendarEvent.objects.all())
    assert set(picked.values_list("pk", flat=True)) == {with_bot.pk, always.pk}

    # What the sync's receiver does with them: the bot goes, the "always" meeting gets one.
    for remote in remotes:
        recall_emulator.update_event(remote["id"], start_time=later(30))
    assert sync_changes(calendar).events.updated == 4
    bots = dict(CalendarEvent.objects.values_list("pk", "bots"))
    assert [bot["deduplication_key"] for bot in bots[always.pk]]
    assert bots[with_bot.pk] == [] and bots[never.pk] == [] and bots[plain.pk] == []


@pytest.mark.parametrize(
    "fields",
    [
        {"recording_policy": RecordingPolicy.ALL},
        {"series_overrides": {"series-1": RecordOverride.ALWAYS}},
    ],
)
def test_a_calendar_that_may_want_events_keeps_every_event(calendar, recall_emulator, fields):
    recall_emulator.add_events(str(calendar.recall_id), 3, notify=False)
    sync_changes(calendar)
    for name, value in fields.items():
        setattr(calendar, name, value)
    calendar.save()
    assert reconcile_candidates(CalendarEvent.objects.all()).count() == 3


def test_the_selection_costs_two_queries(calendar, recall_emulator, django_assert_num_queries):
    recall_emulator.add_events(str(calendar.recall_id), 50, notify=False)
    sync_changes(calendar)
    with django_assert_num_queries(2):  # the calendars' policies, then the candidates
        assert list(reconcile_candidates(CalendarEvent.objects.all())) == []
