"""Processing stored deliveries: handlers, ignored ones, failures and retries, claims, coalescing.

Deliveries come from the emulator (real signed webhooks, posted in-process to the endpoint) and the
processing talks to the emulator over HTTP. ``transaction=True`` so that each delivery really
commits and its ``transaction.on_commit`` processing runs as in production (a plain ``django_db``
test gets the fixture's stand-in for that commit instead).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_recall_calendar import conf, signals, tasks, webhooks
from django_recall_calendar.models import (
    Calendar,
    CalendarEvent,
    CalendarStatus,
    DeliveryStatus,
    WebhookDelivery,
)
from tests import builders

# These tests follow one delivery at a time: a kind emulator delivers each change at once.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.recall_emulator(unruly=False)]

EVENTS_PATH = "/api/v2/calendar-events/"


@pytest.fixture
def calendar(recall_emulator) -> Calendar:
    """A calendar created at the emulator and mirrored locally (still ``connecting``)."""
    return builders.recall_calendar(recall_emulator, "ada@example.com", connect=False)


def run_queued(backend) -> list[str]:
    """Run every task the queued backend holds, as a worker would (in order); the statuses of
    the deliveries they processed (the endpoint's tasks carry a batch, a retry one delivery)."""
    results = list(backend.results)
    backend.results.clear()
    statuses = []
    for result in results:
        done = result.task.call(*result.args, **result.kwargs)
        statuses.extend(done if isinstance(done, list) else [done])
    return statuses


def list_calls(emulator) -> int:
    return len(emulator.requests_for("GET", EVENTS_PATH))


def test_calendar_update_refreshes_the_calendar(recall_emulator, calendar):
    recall_emulator.connect_calendar(str(calendar.recall_id), email="ada@example.com")

    calendar.refresh_from_db()
    assert calendar.status == CalendarStatus.CONNECTED
    assert calendar.platform_email == "ada@example.com"
    delivery = WebhookDelivery.objects.get(event_type="calendar.update")
    assert delivery.status == DeliveryStatus.PROCESSED
    assert delivery.calendar == calendar
    assert delivery.attempts == 1
    assert delivery.processed_at is not None
    assert recall_emulator.deliveries[-1].status == 200


def test_sync_events_mirrors_the_events_and_hands_them_to_the_policy_hook(
    recall_emulator, calendar
):
    seen = []

    def receiver(sender, calendar, events, **kwargs):
        seen.append((calendar.pk, sorted(str(event.recall_id) for event in events)))

    signals.events_synced.connect(receiver)
    try:
        first = recall_emulator.add_event(str(calendar.recall_id))
        second = recall_emulator.add_event(str(calendar.recall_id))
    finally:
        signals.events_synced.disconnect(receiver)

    assert set(CalendarEvent.objects.values_list("recall_id", flat=True)) == {
        uuid.UUID(first["id"]),
        uuid.UUID(second["id"]),
    }
    assert [status for (status,) in WebhookDelivery.objects.values_list("status")] == [
        DeliveryStatus.PROCESSED
    ] * 2
    assert seen[0] == (calendar.pk, [first["id"]])
    assert (calendar.pk, [second["id"]]) in seen


def test_an_unknown_calendar_is_ignored_with_the_reason(recall_emulator, calendar):
    stranger = str(uuid.uuid4())
    before = len(recall_emulator.requests)

    delivery = recall_emulator.send_webhook("calendar.update", {"calendar_id": stranger})

    assert delivery.status == 200
    row = WebhookDelivery.objects.get()
    assert row.status == DeliveryStatus.IGNORED
    assert stranger in row.last_error
    assert len(recall_emulator.requests) == before


def test_a_redelivered_message_is_processed_once(recall_emulator, calendar):
    recall_emulator.connect_calendar(str(calendar.recall_id))
    original = recall_emulator.deliveries[-1]
    calendar_reads = len(recall_emulator.requests_for("GET", "/api/v2/calendars/"))

    again = recall_emulator.redeliver(original)

    assert again.status == 200
    assert WebhookDelivery.objects.count() == 1
    assert len(recall_emulator.requests_for("GET", "/api/v2/calendars/")) == calendar_reads


def test_a_failure_is_recorded_truthfully_then_retried_successfully(
    recall_emulator, calendar, settings
):
    """The ImmediateBackend swallows task exceptions; the row must say what happened anyway."""
    recall_emulator.inject_fault("500", count=100, path=EVENTS_PATH)
    event = recall_emulator.add_event(str(calendar.recall_id))

    assert recall_emulator.deliveries[-1].status == 200  # acknowledged: stored, not lost
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert "500" in delivery.last_error
    assert settings.RECALL_CALENDAR["API_KEY"] not in delivery.last_error
    delay = conf.get("WEBHOOK_RETRY_DELAYS")[0]
    assert delivery.next_attempt_at - delivery.claimed_at == timedelta(seconds=delay)
    assert not CalendarEvent.objects.exists()
    recall_emulator.clear_faults()

    call_command("recall_webhooks", "--retry-failed")  # not due yet: nothing happens
    assert WebhookDelivery.objects.get().attempts == 1

    WebhookDelivery.objects.update(next_attempt_at=timezone.now())  # the delay has passed
    call_command("recall_webhooks", "--retry-failed")

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED
    assert delivery.attempts == 2
    assert delivery.last_error == ""
    assert CalendarEvent.objects.get().recall_id == uuid.UUID(event["id"])


def test_a_deferring_backend_gets_the_retry_enqueued_for_later(recall_emulator, calendar, queued):
    recall_emulator.inject_fault("503", count=100, path=EVENTS_PATH)
    recall_emulator.add_event(str(calendar.recall_id))
    assert WebhookDelivery.objects.get().status == DeliveryStatus.RECEIVED  # queued, not run

    assert run_queued(queued) == [DeliveryStatus.FAILED]

    delivery = WebhookDelivery.objects.get()
    [retry] = queued.results
    assert retry.args == [delivery.pk]
    assert retry.task.run_after == delivery.next_attempt_at
    recall_emulator.clear_faults()
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert run_queued(queued) == [DeliveryStatus.PROCESSED]
    assert CalendarEvent.objects.count() == 1


def test_after_the_last_retry_delay_a_delivery_stays_failed(recall_emulator, calendar, settings):
    settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "WEBHOOK_RETRY_DELAYS": [1]}
    recall_emulator.inject_fault("500", count=100, path=EVENTS_PATH)
    recall_emulator.add_event(str(calendar.recall_id))
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())

    tasks.retry_due()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryStatus.FAILED,
        2,
        None,
    )
    assert not webhooks.due_deliveries().exists()


def test_a_burst_of_sync_events_is_coalesced_into_one_sync(recall_emulator, calendar, queued):
    for _ in range(5):
        recall_emulator.add_event(str(calendar.recall_id))
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.RECEIVED).count() == 5
    assert list_calls(recall_emulator) == 0

    statuses = run_queued(queued)

    assert list_calls(recall_emulator) == 1  # one page: one sync for five deliveries
    assert statuses == [DeliveryStatus.PROCESSED] * 5
    first, *others = WebhookDelivery.objects.order_by("received_at", "pk")
    assert first.processed_by is None
    assert all(other.processed_by == first for other in others)
    assert all(other.status == DeliveryStatus.PROCESSED for other in others)
    assert CalendarEvent.objects.count() == 5


def test_coalescing_syncs_from_the_earliest_last_updated_ts(recall_emulator, calendar, queued):
    recall_emulator.add_events(str(calendar.recall_id), 3, notify=False)
    early = recall_emulator.send_sync_events(str(calendar.recall_id))
    recall_emulator.add_event(str(calendar.recall_id))  # a later delivery, processed first
    run_queued_newest_first = list(reversed(queued.results))
    queued.results.clear()

    for result in run_queued_newest_first:
        result.task.call(*result.args)

    assert CalendarEvent.objects.count() == 4
    assert WebhookDelivery.objects.get(message_id=early.id).status == DeliveryStatus.PROCESSED


def test_a_delivery_claimed_by_a_live_worker_is_left_alone(recall_emulator, calendar, queued):
    recall_emulator.connect_calendar(str(calendar.recall_id))
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.update(status=DeliveryStatus.PROCESSING, claimed_at=timezone.now())
    before = len(recall_emulator.requests)

    assert webhooks.process_delivery(delivery.pk) == DeliveryStatus.PROCESSING
    assert tasks.retry_due() == {}

    assert len(recall_emulator.requests) == before
    assert WebhookDelivery.objects.get().attempts == 0


def test_only_one_of_two_claims_wins(recall_emulator, calendar, queued):
    recall_emulator.connect_calendar(str(calendar.recall_id))
    delivery = WebhookDelivery.objects.get()
    before = len(recall_emulator.requests)

    assert webhooks.process_delivery(delivery.pk) == DeliveryStatus.PROCESSED
    assert webhooks.process_delivery(delivery.pk) == DeliveryStatus.PROCESSED

    assert len(recall_emulator.requests) == before + 1
    assert WebhookDelivery.objects.get().attempts == 1


@pytest.mark.parametrize("timeout", [None, 60])
def test_a_crashed_workers_claim_is_taken_over(
    recall_emulator, calendar, queued, settings, timeout
):
    """Once older than WEBHOOK_CLAIM_TIMEOUT (default 15 minutes, or as set), not before."""
    if timeout is not None:
        settings.RECALL_CALENDAR = {**settings.RECALL_CALENDAR, "WEBHOOK_CLAIM_TIMEOUT": timeout}
    recall_emulator.connect_calendar(str(calendar.recall_id))
    expired = timezone.now() - conf.duration("WEBHOOK_CLAIM_TIMEOUT")
    claim = {"status": DeliveryStatus.PROCESSING, "attempts": 1}
    WebhookDelivery.objects.update(claimed_at=expired + timedelta(seconds=5), **claim)
    assert not webhooks.due_deliveries().exists()  # a live worker's claim
    WebhookDelivery.objects.update(claimed_at=expired - timedelta(seconds=1))

    call_command("recall_webhooks", "--retry-failed")

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PROCESSED
    assert delivery.attempts == 2
    calendar.refresh_from_db()
    assert calendar.status == CalendarStatus.CONNECTED


def test_a_delivery_whose_enqueue_was_lost_is_picked_up(recall_emulator, calendar, queued):
    recall_emulator.connect_calendar(str(calendar.recall_id))
    queued.results.clear()  # the task never reached a worker
    lost_at = timezone.now() - conf.duration("WEBHOOK_CLAIM_TIMEOUT") * 2
    WebhookDelivery.objects.update(received_at=lost_at)

    assert tasks.retry_due() == {DeliveryStatus.PROCESSED: 1}


def test_sync_calendar_task_refreshes_and_syncs(recall_emulator, calendar):
    recall_emulator.add_events(str(calendar.recall_id), 3, notify=False)

    tasks.enqueue(tasks.sync_calendar, calendar.pk, full=True)

    assert CalendarEvent.objects.filter(calendar=calendar).count() == 3
    assert calendar.events.count() == 3


def test_sync_calendar_task_schedules_bots_no_sync_would_revisit(recall_emulator, calendar):
    """Events synced while no bot was wanted (or whose bot Recall refused) are unchanged at
    Recall, so no later sync hands them to the policy: the task reconciles the whole calendar."""
    recall_emulator.connect_calendar(str(calendar.recall_id), email="ada@example.com")
    recall_emulator.add_events(str(calendar.recall_id), 3, notify=False)
    tasks.enqueue(tasks.sync_calendar, calendar.pk)
    assert recall_emulator.bots == {}  # the policy is "off"
    Calendar.objects.filter(pk=calendar.pk).update(recording_policy="all")  # applied by no one

    tasks.enqueue(tasks.sync_calendar, calendar.pk)

    scheduled = {event_id for bot in recall_emulator.bots.values() for event_id in bot["event_ids"]}
    assert scheduled == {str(event.recall_id) for event in calendar.events.all()}
    assert len(scheduled) == 3


def test_deliveries_that_beat_the_new_calendar_row_are_processed_when_it_is_saved(
    recall_emulator,
):
    """Recall may announce a calendar before the connect flow commits its row here."""
    remote = recall_emulator.create_calendar("google_calendar")
    recall_emulator.connect_calendar(remote["id"], email="early@example.com")
    early = WebhookDelivery.objects.get(event_type="calendar.update")
    assert early.status == DeliveryStatus.IGNORED

    calendar = builders.calendar(
        builders.user("late"),
        recall_id=remote["id"],
        status=CalendarStatus.CONNECTING,
        platform_email="",
    )

    early.refresh_from_db()
    assert early.status == DeliveryStatus.PROCESSED
    assert early.calendar == calendar
    calendar.refresh_from_db()
    assert calendar.status == CalendarStatus.CONNECTED
    assert calendar.platform_email == "early@example.com"


def test_a_worker_taken_over_overwrites_nothing_of_the_new_owner(recall_emulator, calendar):
    """A worker that ran past the claim timeout finishes after another one took its delivery."""
    taken_over_at = timezone.now() + timedelta(hours=1)

    def another_worker_takes_over(sender, **kwargs):
        WebhookDelivery.objects.update(claimed_at=taken_over_at)

    signals.events_synced.connect(another_worker_takes_over, dispatch_uid="takeover")
    try:
        recall_emulator.add_event(str(calendar.recall_id))
    finally:
        signals.events_synced.disconnect(dispatch_uid="takeover")

    delivery = WebhookDelivery.objects.get(event_type="calendar.sync_events")
    assert delivery.status == DeliveryStatus.PROCESSING  # still the new owner's
    assert delivery.claimed_at == taken_over_at
    assert delivery.processed_at is None
