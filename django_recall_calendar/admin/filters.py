"""Changelist filters. None queries the database to build its choices (fixed query counts)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..models import BotResult
from ..scheduling import has_bot_condition

#: Recall's ``meeting_platform`` enum (openapi MeetingPlatformEnum): fixed choices cost no query,
#: where a DISTINCT over every event would scan the table on each page load.
MEETING_PLATFORMS = [
    ("zoom", "Zoom"),
    ("google_meet", "Google Meet"),
    ("microsoft_teams", "Microsoft Teams"),
    ("microsoft_teams_live", "Microsoft Teams Live"),
    ("webex", "Webex"),
    ("goto_meeting", "GoTo Meeting"),
    ("chime_sdk", "Chime SDK"),
    ("webrtc", "WebRTC"),
    ("zoom_rtms", "Zoom RTMS"),
    ("google_meet_media_api", "Google Meet Media API"),
    ("slack_authenticator", "Slack Authenticator"),
    ("slack_huddle_observer", "Slack Huddle Observer"),
]


def local_day_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    """Start and end of today in the current (the admin user's) time zone, as aware datetimes."""
    today = timezone.localdate(now or timezone.now())
    zone = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(today, time.min), zone)
    end = timezone.make_aware(datetime.combine(today + timedelta(days=1), time.min), zone)
    return start, end


class WhenFilter(admin.SimpleListFilter):
    """Upcoming (not deleted, not ended), today (overlapping the admin's today) or past (ended)."""

    title = _("when")
    parameter_name = "when"

    def lookups(self, request, model_admin):
        return [("upcoming", _("Upcoming")), ("today", _("Today")), ("past", _("Past"))]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "upcoming":
            return queryset.upcoming(now)
        if self.value() == "today":
            start, end = local_day_bounds(now)
            return queryset.filter(start_time__lt=end, end_time__gt=start)
        if self.value() == "past":
            return queryset.filter(end_time__lte=now)
        return queryset


class MeetingPlatformFilter(admin.SimpleListFilter):
    title = _("meeting platform")
    parameter_name = "meeting_platform"

    def lookups(self, request, model_admin):
        return [*MEETING_PLATFORMS, ("none", _("None"))]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        if self.value() == "none":
            return queryset.filter(Q(meeting_platform__isnull=True) | Q(meeting_platform=""))
        if self.value():
            return queryset.filter(meeting_platform=self.value())
        return queryset


class YesNoFilter(admin.SimpleListFilter):
    """A yes/no filter defined by one condition, built per request (settings may change)."""

    def condition(self) -> Q:
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(self.condition()).distinct()
        if self.value() == "no":
            return queryset.exclude(self.condition())
        return queryset


class HasMeetingUrlFilter(YesNoFilter):
    title = _("has meeting link")
    parameter_name = "has_meeting_url"

    def condition(self) -> Q:
        return Q(meeting_url__isnull=False) & ~Q(meeting_url="")


class HasBotFilter(YesNoFilter):
    title = _("has bot")
    parameter_name = "has_bot"

    def condition(self) -> Q:
        return has_bot_condition()


class BotOutcomeFilter(admin.SimpleListFilter):
    """What the meeting's bot did: recorded, failed to record, in the meeting now, or still to
    come (a bot is scheduled and has not reported)."""

    title = _("bot outcome")
    parameter_name = "bot_outcome"

    def lookups(self, request, model_admin):
        return [
            ("failed", _("Failed to record")),
            ("recorded", _("Recorded")),
            ("in_progress", _("In the meeting")),
            ("upcoming", _("Upcoming")),
        ]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value in (BotResult.FAILED, BotResult.RECORDED, BotResult.IN_PROGRESS):
            return queryset.filter(bot_outcome__result=value)
        if value == "upcoming":
            upcoming = queryset.upcoming().filter(bot_outcome__isnull=True)
            return upcoming.filter(has_bot_condition()).distinct()
        return queryset
