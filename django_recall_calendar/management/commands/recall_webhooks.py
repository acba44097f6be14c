"""``manage.py recall_webhooks``: list recent deliveries, replay one, retry the due ones, or
delete old finished ones.

``--retry-failed`` is how retries happen when the task backend cannot defer tasks (the default
ImmediateBackend cannot): run it from cron every few minutes. ``--prune DAYS`` keeps the table
from growing forever: run it from cron daily.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from ... import retention, tasks
from ...models import DeliveryStatus, WebhookDelivery


class Command(BaseCommand):
    help = "List Recall webhook deliveries, replay one (--replay ID), or retry due ones."

    def add_arguments(self, parser: CommandParser) -> None:
        action = parser.add_mutually_exclusive_group()
        action.add_argument(
            "--replay",
            metavar="ID",
            help="Process this delivery again (message id or primary key), even if processed.",
        )
        action.add_argument(
            "--retry-failed",
            action="store_true",
            help="Process every failed delivery that is due, and any claimed by a crashed worker.",
        )
        action.add_argument(
            "--prune",
            type=int,
            metavar="DAYS",
            help="Delete processed and ignored deliveries received more than DAYS days ago "
            f"(at least {retention.MIN_AGE.days}); never an unprocessed or failed one.",
        )
        parser.add_argument(
            "--status", choices=DeliveryStatus.values, help="List only this status."
        )
        parser.add_argument("--limit", type=int, default=20, help="How many to list (default 20).")

    def handle(
        self,
        *args: Any,
        replay: str | None,
        retry_failed: bool,
        prune: int | None,
        **options: Any,
    ) -> None:
        if prune is not None:
            self._prune(prune)
        elif replay:
            self._replay(replay)
        elif retry_failed:
            self._retry_failed()
        else:
            self._list(options["status"], options["limit"])

    def _list(self, status: str | None, limit: int) -> None:
        if limit < 1:
            raise CommandError("--limit must be at least 1.")
        deliveries = WebhookDelivery.objects.all()
        if status:
            deliveries = deliveries.filter(status=status)
        rows = list(deliveries.order_by("-received_at", "-pk")[:limit])
        if not rows:
            self.stdout.write("No webhook deliveries.")
            return
        self.stdout.write(
            f"{'ID':>6}  {'RECEIVED':<19}  {'STATUS':<10}  {'TRIES':>5}  {'EVENT':<20}  "
            "MESSAGE ID / NOTE"
        )
        for delivery in rows:
            note = delivery.last_error.splitlines()[0][:80] if delivery.last_error else ""
            self.stdout.write(
                f"{delivery.pk:>6}  {delivery.received_at:%Y-%m-%d %H:%M:%S}  "
                f"{delivery.status:<10}  {delivery.attempts:>5}  {delivery.event_type[:20]:<20}  "
                f"{delivery.message_id}" + (f"  {note}" if note else "")
            )

    def _replay(self, identifier: str) -> None:
        match = Q(message_id=identifier)
        if identifier.isdigit():
            match |= Q(pk=int(identifier))
        delivery = WebhookDelivery.objects.filter(match).first()
        if delivery is None:
            raise CommandError(f"No webhook delivery with message id or id {identifier!r}.")
        status = tasks.run_delivery(delivery.pk, force=True)
        delivery.refresh_from_db()
        if status == DeliveryStatus.PROCESSING:
            raise CommandError(
                f"Delivery {delivery.message_id} is being processed by a worker now."
            )
        if status == DeliveryStatus.FAILED:
            raise CommandError(
                f"Delivery {delivery.message_id} failed again: {delivery.last_error}"
            )
        self.stdout.write(f"Delivery {delivery.message_id} replayed: {status}.")

    def _retry_failed(self) -> None:
        counts = tasks.retry_due()
        if not counts:
            self.stdout.write("No delivery is due.")
            return
        summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
        if counts.get(DeliveryStatus.FAILED):
            raise CommandError(f"Retried {sum(counts.values())} deliveries: {summary}.")
        self.stdout.write(f"Retried {sum(counts.values())} deliveries: {summary}.")

    def _prune(self, days: int) -> None:
        try:
            deleted = retention.prune_deliveries(timedelta(days=days))
        except ValueError as exc:
            raise CommandError(f"--prune {days}: {exc}") from None
        self.stdout.write(
            f"Deleted {deleted} processed or ignored deliveries received more than {days} days ago."
        )
