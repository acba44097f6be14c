"""``manage.py recall_sync``: progress, summary, selection, and failures that stop nothing else."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_recall_calendar.client import RecallClient
from django_recall_calendar.models import Calendar, CalendarEvent, CalendarStatus, RecordingPolicy
from django_recall_calendar.sync import sync_events
from tests import builders

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.recall_emulator(webhooks=False),  # each test syncs when it means to
]


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("recall_sync", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def two_calendars(recall_emulator):
    google = builders.recall_calendar(recall_emulator, "ann@example.com")
    outlook = builders.recall_calendar(recall_emulator, "bob@example.com", "microsoft_outlook")
    recall_emulator.add_events(str(google.recall_id), 150, notify=False)
    recall_emulator.add_events(str(outlook.recall_id), 3, notify=False)
    return google, outlook


def test_syncs_every_calendar_and_prints_progress_and_a_summary(two_calendars):
    google, _ = two_calendars

    out, err = run()

    assert err == ""
    assert f"Calendar {Calendar.objects.get(pk=google.pk)} ({google.recall_id}):" in out
    assert "  status: connected" in out
    assert "  page 1: 100 event(s) read\n  page 2: 150 event(s) read" in out
    assert "  done: 2 page(s), 150 created, 0 updated, 0 deleted" in out
    assert "  done: 1 page(s), 3 created, 0 updated, 0 deleted" in out
    assert out.rstrip().endswith(
        "Synced 2 of 2 calendar(s): 3 page(s), 153 event(s) read, 153 created, 0 updated, "
        "0 deleted."
    )
    assert CalendarEvent.objects.count() == 153
    assert set(Calendar.objects.values_list("status", flat=True)) == {CalendarStatus.CONNECTED}


# Listed in order: pages in no order move a watermark only to a second before the listing began,
# so how much an incremental run reads again would depend on the clock (test_sync_watermark.py).
@pytest.mark.recall_emulator(webhooks=False, unruly=False)
def test_a_second_run_is_incremental_and_full_reads_everything(recall_emulator, two_calendars):
    google, _ = two_calendars
    run()
    recall_emulator.update_event(next(iter(recall_emulator.events)), title="Changed")

    incremental, _ = run()
    full, _ = run("--full", "--calendar", str(google.pk))

    # From each watermark: the changed event, plus each calendar's newest one read again (gte).
    assert incremental.rstrip().endswith(
        "Synced 2 of 2 calendar(s): 2 page(s), 3 event(s) read, 0 created, 1 updated, 0 deleted."
    )
    assert "Synced 1 of 1 calendar(s): 2 page(s), 150 event(s) read, 0 created, 0 updated" in full


def test_one_failing_calendar_does_not_stop_the_others(recall_emulator, two_calendars):
    google, outlook = two_calendars
    recall_emulator.inject_fault("502", count=50, path=f"/api/v2/calendars/{google.recall_id}/")

    with pytest.raises(CommandError) as failure:
        run()

    message = str(failure.value)
    assert message.startswith("1 calendar(s) failed: ")
    assert str(google.recall_id) in message and "502" in message
    assert str(outlook.recall_id) not in message
    assert CalendarEvent.objects.filter(calendar=outlook).count() == 3
    assert not CalendarEvent.objects.filter(calendar=google).exists()


def test_failure_output_goes_to_stderr_and_the_summary_still_prints(recall_emulator, two_calendars):
    google, _ = two_calendars
    recall_emulator.inject_fault("503", count=50, path=f"/api/v2/calendars/{google.recall_id}/")
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError):
        call_command("recall_sync", stdout=out, stderr=err)

    assert "failed: " in err.getvalue()
    assert "Synced 1 of 2 calendar(s)" in out.getvalue()
    assert "test-api-key" not in out.getvalue() + err.getvalue()


def test_calendars_named_by_local_id_or_recall_id(two_calendars):
    google, outlook = two_calendars

    out, _ = run("--calendar", str(outlook.recall_id).upper())

    assert "Synced 1 of 1 calendar(s)" in out and str(google.recall_id) not in out
    assert not CalendarEvent.objects.filter(calendar=google).exists()

    out, _ = run("--calendar", str(google.pk), "--calendar", str(outlook.recall_id))
    assert "Synced 2 of 2 calendar(s)" in out


@pytest.mark.parametrize(
    "name", ["999999", "not-an-id", "00000000-0000-0000-0000-000000000000", "²", "١٢"]
)
def test_unknown_calendar_is_an_error_before_anything_runs(recall_emulator, two_calendars, name):
    with pytest.raises(CommandError, match=f"No such calendar: {name}"):
        run("--calendar", name)
    assert recall_emulator.requests == []


def test_a_calendar_gone_at_recall_is_marked_missing_and_skipped(two_calendars):
    google, outlook = two_calendars
    RecallClient.from_settings().delete_calendar(str(google.recall_id))

    out, _ = run()

    assert "  status: missing\n  skipped: Recall no longer knows this calendar." in out
    assert Calendar.objects.get(pk=google.pk).status == CalendarStatus.MISSING
    assert CalendarEvent.objects.filter(calendar=outlook).count() == 3
    assert "Synced 2 of 2 calendar(s)" in out


def test_no_calendars_is_not_an_error(recall_emulator):
    out, _ = run()
    assert out.strip() == (
        "Recall calls: 0.\n"
        "Synced 0 of 0 calendar(s): 0 page(s), 0 event(s) read, 0 created, 0 updated, 0 deleted."
    )


def test_a_bot_whose_scheduling_failed_after_a_sync_is_scheduled_by_the_next_run(recall_emulator):
    """The policy runs on what a sync changed; a bot Recall refused then (507 or 429 past every
    retry) belongs to an event no later sync sees changed, so only this command can repair it."""
    calendar = builders.recall_calendar(recall_emulator)
    calendar.recording_policy = RecordingPolicy.ALL
    calendar.save()
    remote = recall_emulator.add_event(str(calendar.recall_id))
    recall_emulator.inject_fault(
        "507", count=50, path=f"/api/v2/calendar-events/{remote['id']}/bot/"
    )
    sync_events(calendar)
    assert CalendarEvent.objects.get(recall_id=remote["id"]).bots == []
    recall_emulator.clear_faults()

    out, err = run()

    assert err == ""
    assert "  bots: 1 scheduled, 0 rescheduled, 0 unscheduled, 0 failed" in out
    assert len(CalendarEvent.objects.get(recall_id=remote["id"]).bots) == 1
    assert len(recall_emulator.events[remote["id"]]["bots"]) == 1
    assert "  bots:" not in run()[0]  # nothing left to do: no Recall call, no line
