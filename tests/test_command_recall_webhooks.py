"""``manage.py recall_webhooks``: the list with its filters, --replay and --retry-failed."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_recall_calendar.models import DeliveryStatus, WebhookDelivery
from tests import builders

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("recall_webhooks", *args, stdout=out)
    return out.getvalue()


def test_lists_recent_deliveries_newest_first():
    now = timezone.now()
    for index in range(3):
        builders.delivery(
            message_id=f"msg_{index}", received_at=now - timedelta(minutes=10 - index)
        )

    lines = run().splitlines()

    assert "STATUS" in lines[0]
    assert [line.split()[-1] for line in lines[1:]] == ["msg_2", "msg_1", "msg_0"]


def test_filters_by_status_and_limits():
    builders.delivery(message_id="msg_ok")
    builders.delivery(
        message_id="msg_bad",
        status=DeliveryStatus.FAILED,
        last_error="RecallServerError: [500] boom\nmore",
    )
    builders.delivery(
        message_id="msg_bad2",
        status=DeliveryStatus.FAILED,
        last_error="RecallServerError: [502] down",
    )

    failed = run("--status", "failed")
    one = run("--limit", "1")

    assert "msg_ok" not in failed
    assert "msg_bad " in failed and "[500] boom" in failed and "more" not in failed
    assert len(one.splitlines()) == 2


def test_empty_list_and_bad_arguments():
    assert run() == "No webhook deliveries.\n"
    with pytest.raises(CommandError):
        run("--limit", "0")
    with pytest.raises(CommandError):
        run("--status", "bogus")
    with pytest.raises(CommandError):
        run("--replay", "1", "--retry-failed")


def test_replay_of_an_unknown_delivery_is_an_error():
    with pytest.raises(CommandError, match="msg_nope"):
        run("--replay", "msg_nope")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("by", ["pk", "message_id"])
@pytest.mark.recall_emulator(unruly=False)
def test_replay_processes_a_processed_delivery_again(recall_emulator, by):
    calendar = builders.recall_calendar(recall_emulator, "ada@example.com", connect=False)
    recall_emulator.connect_calendar(str(calendar.recall_id), email="ada@example.com")
    row = WebhookDelivery.objects.get()
    assert row.status == DeliveryStatus.PROCESSED
    reads = len(recall_emulator.requests_for("GET", "/api/v2/calendars/"))

    output = run("--replay", str(getattr(row, by)))

    assert f"{row.message_id} replayed: processed" in output
    assert len(recall_emulator.requests_for("GET", "/api/v2/calendars/")) == reads + 1
    row.refresh_from_db()
    assert row.attempts == 2
    calendar.refresh_from_db()
    assert calendar.platform_email == "ada@example.com"


@pytest.mark.django_db(transaction=True)
@pytest.mark.recall_emulator(unruly=False)
def test_replay_that_fails_again_exits_non_zero(recall_emulator):
    calendar = builders.recall_calendar(recall_emulator, "ada@example.com", connect=False)
    recall_emulator.connect_calendar(str(calendar.recall_id))
    recall_emulator.inject_fault("500", count=100)

    with pytest.raises(CommandError, match="failed again"):
        run("--replay", WebhookDelivery.objects.get().message_id)

    assert WebhookDelivery.objects.get().status == DeliveryStatus.FAILED


def test_retry_failed_with_nothing_due():
    builders.delivery(
        message_id="msg_later",
        status=DeliveryStatus.FAILED,
        next_attempt_at=timezone.now() + timedelta(hours=1),
    )
    builders.delivery(message_id="msg_gave_up", status=DeliveryStatus.FAILED, next_attempt_at=None)

    assert run("--retry-failed") == "No delivery is due.\n"


def test_retry_failed_reports_what_happened_to_each():
    """A due delivery of an unknown calendar ends ignored; the summary says so."""
    builders.delivery(
        message_id="msg_due",
        status=DeliveryStatus.FAILED,
        event_type="calendar.sync_events",
        calendar_recall_id="0b5d7c4e-0000-4000-8000-000000000000",
        next_attempt_at=timezone.now() - timedelta(seconds=1),
    )

    assert run("--retry-failed") == "Retried 1 deliveries: 1 ignored.\n"
    assert WebhookDelivery.objects.get().status == DeliveryStatus.IGNORED


def test_prune_deletes_only_old_processed_and_ignored_deliveries():
    old = timezone.now() - timedelta(days=31)
    for status in DeliveryStatus.values:
        builders.delivery(message_id=f"old-{status}", status=status, received_at=old)
        builders.delivery(message_id=f"new-{status}", status=status)

    output = run("--prune", "30")

    assert "Deleted 2 processed or ignored deliveries" in output
    kept = set(WebhookDelivery.objects.values_list("message_id", flat=True))
    assert kept == {f"new-{status}" for status in DeliveryStatus.values} | {
        "old-received",
        "old-processing",
        "old-failed",
    }
    assert "Deleted 0 " in run("--prune", "30")  # nothing left to prune: safe to run again


def test_prune_keeps_deliveries_recall_may_still_redeliver():
    """A redelivered message whose row is gone would be processed again: two days at least."""
    builders.delivery(message_id="recent", received_at=timezone.now() - timedelta(days=1, hours=12))

    with pytest.raises(CommandError, match="at least 2 days"):
        run("--prune", "1")
    assert "Deleted 0 " in run("--prune", "2")
    assert WebhookDelivery.objects.filter(message_id="recent").exists()


def test_prune_deletes_more_than_one_batch():
    from django_recall_calendar.retention import BATCH

    old = timezone.now() - timedelta(days=10)
    builders.deliveries(None, BATCH + 1, received_at=old)
    builders.delivery(message_id="failed", status=DeliveryStatus.FAILED, received_at=old)

    assert f"Deleted {BATCH + 1} " in run("--prune", "7")
    assert list(WebhookDelivery.objects.values_list("message_id", flat=True)) == ["failed"]
