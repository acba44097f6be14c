"""The admin's "bots at a glance" page: the last and the next two weeks of meetings, per day.

For each day (in the admin user's time zone): meetings with a bot, recorded, failed (and why),
skipped by a rule (and which). Drawn as stacked bars in inline SVG, rendered here, so the page needs
no JavaScript, no build and no CDN; a table below gives the numbers and the reasons.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import bot_status, scheduling
from ..models import BotResult, CalendarEvent, MeetingOverview
from ..policies import Rule, skip_rule

#: Days shown before and after today.
SPAN = 14
#: The SVG chart's geometry, in its own units (it scales to the page's width).
BAR_WIDTH, BAR_GAP, CHART_HEIGHT, LABEL_HEIGHT = 18, 6, 120, 16
#: Segments of a day's bar, bottom up: (attribute, label, colour).
SEGMENTS = (
    ("recorded", _("recorded"), "#16a34a"),
    ("failed", _("failed"), "#dc2626"),
    ("pending", _("bot to come or in the meeting"), "#2563eb"),
    ("skipped", _("skipped by a rule"), "#9ca3af"),
)


@dataclass
class Day:
    """One day's meetings, counted."""

    day: date
    recorded: int = 0
    failed: int = 0
    pending: int = 0
    skipped: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)

    @property
    def failure_counts(self) -> list[tuple[str, int]]:
        """(reason, count), most frequent first (a template cannot iterate a Counter's items)."""
        return self.failures.most_common()

    @property
    def rule_counts(self) -> list[tuple[str, int]]:
        return self.rules.most_common()

    @property
    def with_bot(self) -> int:
        return self.recorded + self.failed + self.pending

    @property
    def total(self) -> int:
        return self.with_bot + self.skipped


def _window(today: date) -> tuple[datetime, datetime]:
    zone = timezone.get_current_timezone()
    first = timezone.make_aware(datetime.combine(today - timedelta(days=SPAN), time.min), zone)
    last = timezone.make_aware(datetime.combine(today + timedelta(days=SPAN + 1), time.min), zone)
    return first, last


def _meetings(first: datetime, last: datetime) -> QuerySet[CalendarEvent]:
    events = CalendarEvent.objects.filter(
        is_deleted=False, start_time__gte=first, start_time__lt=last
    ).select_related("calendar", "bot_outcome")
    # The payloads are most of a row's bytes and nothing here reads them.
    return scheduling.with_bot_records(events.defer("raw", "calendar__raw"))


def count_days(today: date | None = None) -> list[Day]:
    """The days from two weeks ago to two weeks ahead, each with its meetings counted."""
    now = timezone.now()
    today = today or timezone.localdate(now)
    first, last = _window(today)
    days = {
        today + timedelta(days=offset): Day(today + timedelta(days=offset))
        for offset in range(-SPAN, SPAN + 1)
    }
    labels = dict(Rule.choices)
    for event in _meetings(first, last):
        day = days.get(timezone.localdate(event.start_time))
        if day is None:
            continue
        outcome = event.bot_outcome
        if outcome is not None and outcome.result == BotResult.RECORDED:
            day.recorded += 1
        elif outcome is not None and outcome.result == BotResult.FAILED:
            day.failed += 1
            day.failures[bot_status.describe(outcome).removeprefix("Failed to record: ")] += 1
        elif outcome is not None or scheduling.has_bot(event, now):
            day.pending += 1
        else:
            decision = skip_rule(event)
            if not decision.record:
                day.skipped += 1
                day.rules[str(labels.get(decision.rule, decision.rule))] += 1
    return list(days.values())


def chart(days: list[Day], today: date) -> dict:
    """The bars of the SVG: one stacked column per day, heights scaled to the busiest day."""
    tallest = max((day.total for day in days), default=0) or 1
    columns = []
    for index, day in enumerate(days):
        x = index * (BAR_WIDTH + BAR_GAP)
        y = CHART_HEIGHT
        parts = []
        for attribute, label, colour in SEGMENTS:
            count = getattr(day, attribute)
            if not count:
                continue
            height = count * CHART_HEIGHT / tallest
            y -= height
            tip = f"{day.day:%a %d %b}: {count} {label}"
            parts.append(
                {"y": round(y, 2), "height": round(height, 2), "colour": colour, "tip": tip}
            )
        columns.append(
            {"x": x, "day": day, "parts": parts, "label": day.day.day, "today": day.day == today}
        )
    return {
        "columns": columns,
        "width": len(days) * (BAR_WIDTH + BAR_GAP),
        "height": CHART_HEIGHT + LABEL_HEIGHT,
        "bar_width": BAR_WIDTH,
        "label_y": CHART_HEIGHT + LABEL_HEIGHT - 3,
        "half": BAR_WIDTH / 2,
    }


@admin.register(MeetingOverview)
class MeetingOverviewAdmin(admin.ModelAdmin):
    """Shown to staff who may view meetings; a page, not a list: nothing to add or change."""

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("recall_calendar.view_calendarevent") or request.user.has_perm(
            "recall_calendar.change_calendarevent"
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def changelist_view(self, request: HttpRequest, extra_context=None) -> TemplateResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = timezone.localdate()
        days = count_days(today)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Bots at a glance: the last and the next two weeks"),
            "opts": self.model._meta,
            "days": days,
            "chart": chart(days, today),
            "segments": [{"label": label, "colour": colour} for _, label, colour in SEGMENTS],
            "zone": timezone.get_current_timezone_name(),
            "totals": {
                name: sum(getattr(day, name) for day in days)
                for name in ("with_bot", "recorded", "failed", "skipped")
            },
        }
        return TemplateResponse(request, "admin/recall_calendar/overview.html", context)
