"""``manage.py recall_sync``: sync calendars with Recall (``calendars.sync_calendar``).

The safety net a host runs on a schedule against missed webhooks: for each calendar it re-reads the
calendar, syncs its events from the watermark (``--full``: all of them), then applies the recording
policy to every upcoming event: a bot Recall refused after an earlier sync belongs to an event no
later sync sees changed, so nothing else would retry it. One failing calendar does not stop the
others; the exit status says whether any failed, and which.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q, QuerySet

from ... import budget
from ...calendars import sync_calendar
from ...client import RecallClient
from ...exceptions import RecallError
from ...models import Calendar, CalendarStatus
from ...sync import SyncResult
from ...utils import parse_uuid


class Command(BaseCommand):
    help = (
        "Sync calendars with Recall: re-read each calendar, sync its events, then apply its "
        "recording policy to its upcoming meetings (all calendars, or the ones named)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--calendar",
            action="append",
            dest="calendars",
            metavar="ID",
            default=[],
            help="A calendar's local id or Recall id; repeat for several. Default: every calendar.",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=3600.0,
            metavar="SECONDS",
            help="Longest wait for Recall's rate limit budget before a call fails (default 3600): "
            "the command shares the budget with the site's workers and waits its turn.",
        )
        parser.add_argument(
            "--full",
            action="store_true",
            help="Read every event Recall holds, ignoring the sync watermark.",
        )

    def handle(self, *args, calendars: list[str], full: bool, wait: float, **options) -> None:
        selected = list(select_calendars(calendars))
        failures: list[str] = []
        totals = SyncResult()
        with (
            RecallClient.from_settings() as client,
            budget.waiting_at_most(wait),
            budget.counting() as calls,
        ):
            for calendar in selected:
                try:
                    result = self.sync_one(calendar, client=client, full=full)
                except Exception as exc:  # one failing calendar must not stop the others
                    reason = str(exc) if isinstance(exc, RecallError) else repr(exc)
                    failures.append(f"{calendar} ({calendar.recall_id}): {reason}")
                    self.stderr.write(self.style.ERROR(f"  failed: {reason}"))
                    continue
                for name in ("created", "updated", "deleted", "pages", "received"):
                    setattr(totals, name, getattr(totals, name) + getattr(result, name))
        self.stdout.write(
            f"Recall calls: {sum(calls.values())}"
            + "".join(f", {count} {name}" for name, count in sorted(calls.items()))
            + "."
        )
        self.stdout.write(
            f"Synced {len(selected) - len(failures)} of {len(selected)} calendar(s): "
            f"{totals.pages} page(s), {totals.received} event(s) read, {totals.created} created, "
            f"{totals.updated} updated, {totals.deleted} deleted."
        )
        if failures:
            raise CommandError(f"{len(failures)} calendar(s) failed: " + "; ".join(failures))

    def sync_one(self, calendar: Calendar, *, client: RecallClient, full: bool) -> SyncResult:
        """Sync one calendar (refresh, events, bots), printing progress as pages arrive."""
        self.stdout.write(f"Calendar {calendar} ({calendar.recall_id}):")

        def progress(result: SyncResult, changed: list) -> None:
            self.stdout.write(f"  page {result.pages}: {result.received} event(s) read")

        done = sync_calendar(calendar, full=full, client=client, on_page=progress)
        self.stdout.write(f"  status: {done.status}")
        if done.status == CalendarStatus.MISSING:
            self.stdout.write("  skipped: Recall no longer knows this calendar.")
            return SyncResult()
        result, bots = done.events, done.bots
        self.stdout.write(
            self.style.SUCCESS(
                f"  done: {result.pages} page(s), {result.created} created, "
                f"{result.updated} updated, {result.deleted} deleted"
            )
        )
        if bots.scheduled or bots.rescheduled or bots.unscheduled or bots.failed:
            self.stdout.write(
                f"  bots: {bots.scheduled} scheduled, {bots.rescheduled} rescheduled, "
                f"{bots.unscheduled} unscheduled, {bots.failed} failed"
            )
        for recall_id, error in bots.errors.items():
            self.stderr.write(self.style.WARNING(f"  bot of event {recall_id} failed: {error}"))
        return result


def select_calendars(identifiers: list[str]) -> QuerySet[Calendar]:
    """The calendars named by local pk or Recall id (every calendar when none are named)."""
    calendars = Calendar.objects.order_by("pk")
    if not identifiers:
        return calendars
    pks = {value for value in identifiers if value.isascii() and value.isdigit()}
    recall_ids = {parse_uuid(value) for value in identifiers} - {None}
    found = calendars.filter(Q(pk__in=pks) | Q(recall_id__in=recall_ids))
    known = {str(c.pk) for c in found} | {str(c.recall_id) for c in found}
    unknown = [v for v in identifiers if v not in known and str(parse_uuid(v)) not in known]
    if unknown:
        raise CommandError("No such calendar: " + ", ".join(unknown))
    return found
