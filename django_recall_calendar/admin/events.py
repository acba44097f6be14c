"""Admin for calendar events: find any meeting, see whether a bot goes to it, add or remove bots."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import bot_retries, bot_status, conf, scheduling
from ..exceptions import RecallError
from ..models import CalendarEvent
from .actions import Skipped, WithoutBulkDelete, intermediate_page, report, run_each
from .display import human_duration, pretty_json
from .filters import (
    MEETING_PLATFORMS,
    BotOutcomeFilter,
    HasBotFilter,
    HasMeetingUrlFilter,
    MeetingPlatformFilter,
    WhenFilter,
)

User = get_user_model()
#: Set on the request when save_model rolled a change back (Recall refused it).
NOT_SAVED = "_recall_calendar_not_saved"
OWNER_SEARCH = [
    f"calendar__user__{User.USERNAME_FIELD}",
    f"calendar__user__{User.get_email_field_name()}",
]
PLATFORM_NAMES = dict(MEETING_PLATFORMS)
BOT_STATE_LABELS = {
    "scheduled": _("Scheduled"),
    "none": _("None"),
    "not_possible": _("Not possible"),
    "retrying": _("Refused by Recall"),
    "missed": _("Refused by Recall"),  # its reason says "missed: ..."
}


def json_object(value: object) -> dict:
    """``value`` if it is a JSON object ({} for nothing): bot configs are merged key by key."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise forms.ValidationError(_("Enter a JSON object ({...}), not a list or a single value."))
    problem = scheduling.bot_config_problem(value)
    if problem:
        raise forms.ValidationError(problem)
    return value


class CalendarEventForm(forms.ModelForm):
    def clean_bot_config(self) -> dict:
        return json_object(self.cleaned_data.get("bot_config"))


class ScheduleBotForm(forms.Form):
    """The page between "Schedule bot" and the Recall calls: the bot's name and extra config."""

    bot_name = forms.CharField(
        label=_("Bot name"),
        max_length=100,
        required=False,
        help_text=_("The name participants see. Empty: the BOT_CONFIG setting's name."),
    )
    bot_config = forms.JSONField(
        label=_("Bot config (JSON)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80, "spellcheck": "false"}),
        help_text=_(
            'A JSON object merged over the BOT_CONFIG setting, e.g. {"recording_config": '
            '{"transcript": {"provider": {"meeting_captions": {}}}}}. The bot name above wins over '
            "a bot_name here. meeting_url and join_at are always the meeting's own."
        ),
    )

    def clean_bot_config(self) -> dict:
        return json_object(self.cleaned_data.get("bot_config"))

    def per_call_config(self) -> dict:
        """The config for scheduling.schedule_bot (it merges it over BOT_CONFIG and the event's)."""
        config = dict(self.cleaned_data["bot_config"])
        if self.cleaned_data["bot_name"]:
            config["bot_name"] = self.cleaned_data["bot_name"]
        return config


@admin.register(CalendarEvent)
class CalendarEventAdmin(WithoutBulkDelete, admin.ModelAdmin):
    form = CalendarEventForm
    list_display = [
        "title_or_placeholder",
        "owner",
        "start",
        "duration",
        "meeting_platform_name",
        "bot_state",
        "bot_outcome_text",
    ]
    list_filter = [
        BotOutcomeFilter,
        WhenFilter,
        MeetingPlatformFilter,
        HasMeetingUrlFilter,
        HasBotFilter,
        "is_deleted",
        "calendar",
    ]
    list_select_related = ["calendar__user", "bot_outcome"]
    date_hierarchy = "start_time"
    search_fields = ["title", "meeting_url", "ical_uid", *OWNER_SEARCH]
    # COUNT(*) over 100k events on every page load (and per filter choice) buys staff nothing.
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    readonly_fields = [
        "calendar",
        "recall_id",
        "title",
        "start_time",
        "end_time",
        "is_all_day",
        "meeting_url",
        "meeting_platform",
        "platform",
        "platform_id",
        "ical_uid",
        "organizer_email",
        "is_organizer",
        "formatted_attendees",
        "is_cancelled",
        "is_deleted",
        "recurring_event_id",
        "bot_state",
        "bot_outcome_text",
        "bot_history",
        "formatted_bots",
        "sensitivity",
        "kind",
        "recall_created_at",
        "recall_updated_at",
        "formatted_raw",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "calendar",
                    "title",
                    "start_time",
                    "end_time",
                    "is_all_day",
                    "sensitivity",
                    "kind",
                    "meeting_url",
                    "meeting_platform",
                    "organizer_email",
                    "is_organizer",
                    "formatted_attendees",
                    "is_cancelled",
                    "is_deleted",
                    "recurring_event_id",
                ]
            },
        ),
        (
            _("Bot"),
            {
                "fields": [
                    "bot_state",
                    "bot_outcome_text",
                    "bot_history",
                    "formatted_bots",
                    "record_override",
                    "bot_config",
                ]
            },
        ),
        (
            _("At Recall"),
            {
                "fields": [
                    "recall_id",
                    "platform",
                    "platform_id",
                    "ical_uid",
                    "recall_created_at",
                    "recall_updated_at",
                    "formatted_raw",
                ]
            },
        ),
    ]
    actions = ["schedule_bot", "remove_bot", "send_new_bot"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CalendarEvent]:
        return scheduling.with_bot_records(super().get_queryset(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Events come from the calendars themselves, through sync."""
        return False

    def save_model(self, request: HttpRequest, obj: CalendarEvent, form, change: bool) -> None:
        """A changed override or config goes to Recall now (a sync reconciles only the events
        that changed at Recall, so the next one may never look at this meeting), in one unit
        with the save: when Recall refuses, nothing is saved and the page says so."""
        if not (change and {"record_override", "bot_config"}.intersection(form.changed_data)):
            super().save_model(request, obj, form, change)
            return
        try:
            with transaction.atomic():
                super().save_model(request, obj, form, change)
                scheduling.set_record_override(obj, obj.record_override)
        except (scheduling.SchedulingError, RecallError) as exc:
            setattr(request, NOT_SAVED, True)
            error = exc.for_staff() if isinstance(exc, RecallError) else exc
            self.message_user(
                request,
                _("Not saved: Recall was not updated, so the meeting keeps its choice: %(error)s")
                % {"error": error},
                messages.ERROR,
            )

    def log_change(self, request: HttpRequest, obj: CalendarEvent, message):
        """No history entry for a change that was not saved."""
        if not getattr(request, NOT_SAVED, False):
            return super().log_change(request, obj, message)
        return None

    def response_change(self, request: HttpRequest, obj: CalendarEvent):
        """Back to the page after a refused change, without Django's "changed successfully"."""
        if getattr(request, NOT_SAVED, False):
            return redirect(request.path)
        return super().response_change(request, obj)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None
    ):
        extra_context = {**(extra_context or {}), "show_delete": False}
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context=None):
        """Refused: a local delete leaves the meeting (and its bot) at Recall.

        Deleting a calendar or a user still removes its events, through the cascade (which checks
        the delete permission, kept for that reason), not through this page.
        """
        self.message_user(
            request,
            _(
                "Meetings mirror the user's calendar and cannot be deleted here: remove its bot "
                "with “Remove bot”, or disconnect the calendar."
            ),
            messages.ERROR,
        )
        return redirect("admin:recall_calendar_calendarevent_change", object_id)

    @admin.display(description=_("title"), ordering="title")
    def title_or_placeholder(self, obj: CalendarEvent) -> str:
        return obj.title or str(_("(no title)"))

    @admin.display(description=_("owner"), ordering=f"calendar__user__{User.USERNAME_FIELD}")
    def owner(self, obj: CalendarEvent) -> str:
        return str(obj.calendar.user)

    @admin.display(description=_("start"), ordering="start_time")
    def start(self, obj: CalendarEvent) -> str:
        """In the current time zone (the admin user's, when the host activates one), zone named."""
        local = timezone.localtime(obj.start_time)
        return f"{formats.date_format(local, 'D j M Y, H:i')} {local.tzname()}"

    @admin.display(description=_("duration"))
    def duration(self, obj: CalendarEvent) -> str:
        return str(_("all day")) if obj.is_all_day else human_duration(obj.duration)

    @admin.display(description=_("meeting platform"), ordering="meeting_platform")
    def meeting_platform_name(self, obj: CalendarEvent) -> str:
        return PLATFORM_NAMES.get(obj.meeting_platform, obj.meeting_platform or "-")

    @admin.display(description=_("bot"))
    def bot_state(self, obj: CalendarEvent) -> str:
        """The state, and for a meeting without a bot the reason (the rule that skipped it)."""
        summary = scheduling.bot_summary(obj)
        label = str(BOT_STATE_LABELS.get(summary.state, summary.state))
        # A scheduled bot's reason only says when it joins, unless Recall changed it late.
        quiet = summary.state == "scheduled" and not bot_retries.changed_late(obj)
        return f"{label}: {summary.reason}" if summary.reason and not quiet else label

    @admin.display(description=_("bot outcome"), ordering="bot_outcome__result")
    def bot_outcome_text(self, obj: CalendarEvent) -> str:
        """What the bot did, in words, with the time of its last status (admin's time zone)."""
        if obj.bot_outcome is None:
            return "-"
        return bot_status.describe(obj.bot_outcome, with_time=True)

    @admin.display(description=_("bot history"))
    def bot_history(self, obj: CalendarEvent):
        return pretty_json(obj.bot_outcome.history if obj.bot_outcome else [])

    @admin.display(description=_("attendees"))
    def formatted_attendees(self, obj: CalendarEvent):
        return pretty_json(obj.attendees)

    @admin.display(description=_("bots"))
    def formatted_bots(self, obj: CalendarEvent):
        return pretty_json(obj.bots)

    @admin.display(description=_("provider payload"))
    def formatted_raw(self, obj: CalendarEvent):
        return pretty_json(obj.raw)

    @admin.action(description=_("Schedule bot…"), permissions=["change"])
    def schedule_bot(
        self, request: HttpRequest, queryset: QuerySet[CalendarEvent]
    ) -> TemplateResponse | None:
        form = ScheduleBotForm(
            request.POST if request.POST.get("post") else None,
            initial={"bot_name": (conf.get("BOT_CONFIG") or {}).get("bot_name", "")},
        )
        if not form.is_valid():
            return intermediate_page(
                self,
                request,
                queryset,
                template="admin/recall_calendar/schedule_bot.html",
                title=_("Schedule a bot"),
                action="schedule_bot",
                form=form,
                count=queryset.count(),
                preview=queryset.select_related("calendar__user")[:20],
            )
        config = form.per_call_config()
        self.run_on_events(
            request,
            queryset,
            lambda event: scheduling.schedule_bot(event, bot_config=config),
            lambda n: (
                ngettext("Scheduled a bot for %d event.", "Scheduled a bot for %d events.", n) % n
            ),
        )
        return None

    @admin.action(description=_("Remove bot"), permissions=["change"])
    def remove_bot(self, request: HttpRequest, queryset: QuerySet[CalendarEvent]) -> None:
        def remove(event: CalendarEvent) -> None:
            if scheduling.bot_state(event)[0] != "scheduled":
                raise Skipped(_("no bot to remove"))
            scheduling.unschedule_bot(event)

        self.run_on_events(
            request,
            queryset,
            remove,
            lambda n: (
                ngettext("Removed the bot of %d event.", "Removed the bots of %d events.", n) % n
            ),
        )

    @admin.action(
        description=_("Send a new bot (meetings still on whose bot failed)"),
        permissions=["change"],
    )
    def send_new_bot(self, request: HttpRequest, queryset: QuerySet[CalendarEvent]) -> None:
        self.run_on_events(
            request,
            queryset.select_related("bot_outcome"),
            scheduling.send_new_bot,
            lambda n: (
                ngettext("Sent a new bot to %d meeting.", "Sent a new bot to %d meetings.", n) % n
            ),
        )

    def run_on_events(
        self,
        request: HttpRequest,
        queryset: QuerySet[CalendarEvent],
        operation: Callable[[CalendarEvent], object],
        done: Callable[[int], str],
    ) -> None:
        """Apply a bot operation to each event and report: a meeting no bot can join is a skip,
        scheduling's own errors are failures shown with their text."""
        outcome = run_each(
            queryset.select_related("calendar"),
            operation,
            skip_errors=(scheduling.SchedulingRefused,),
            shown_errors=(scheduling.SchedulingError,),
        )
        report(self, request, outcome, done)
