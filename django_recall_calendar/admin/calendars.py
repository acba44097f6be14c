"""Admin for connected calendars: owner, health, upcoming meetings and bots, and their actions."""

from __future__ import annotations

from collections import Counter

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.templatetags.admin_urls import admin_urlname
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import calendars, scheduling, sync
from ..client import RecallClient
from ..exceptions import RecallError
from ..forms import KeywordsField
from ..models import Calendar, CalendarStatus, RecordOverride
from ..policies import POLICY_FIELDS
from ..scheduling import has_bot_condition
from .actions import Skipped, WithoutBulkDelete, intermediate_page, report, run_each
from .display import pretty_json

User = get_user_model()
OWNER_SEARCH = [f"user__{User.USERNAME_FIELD}", f"user__{User.get_email_field_name()}"]


def annotate_counts(queryset: QuerySet[Calendar]) -> QuerySet[Calendar]:
    """Upcoming events and their scheduled bots per calendar, counted in the list's one query."""
    upcoming = Q(events__is_deleted=False, events__end_time__gt=timezone.now())
    return queryset.annotate(
        upcoming_count=Count("events", filter=upcoming, distinct=True),
        scheduled_bot_count=Count(
            "events", filter=upcoming & has_bot_condition("events__"), distinct=True
        ),
    )


class CalendarForm(forms.ModelForm):
    """Checks the free-form fields staff edit: the policy reads them on every sync."""

    class Meta:
        field_classes = {"skip_title_keywords": KeywordsField}

    def clean_series_overrides(self) -> dict:
        value = self.cleaned_data["series_overrides"] or {}
        allowed = (RecordOverride.ALWAYS, RecordOverride.NEVER)
        if not isinstance(value, dict) or any(v not in allowed for v in value.values()):
            raise forms.ValidationError(
                _('Enter an object mapping recurring series ids to "always" or "never".')
            )
        return value


@admin.register(Calendar)
class CalendarAdmin(WithoutBulkDelete, admin.ModelAdmin):
    form = CalendarForm
    list_display = [
        "__str__",
        "user",
        "platform",
        "email",
        "status",
        "upcoming_events",
        "scheduled_bots",
        "last_synced_at",
        "recording_policy",
    ]
    list_filter = ["platform", "status", "recording_policy"]
    list_select_related = ["user"]
    search_fields = [*OWNER_SEARCH, "platform_email", "oauth_email"]
    readonly_fields = [
        "user",
        "social_account",
        "recall_id",
        "platform",
        "oauth_email",
        "platform_email",
        "status",
        "disconnect_reason",
        "formatted_status_changes",
        "formatted_raw",
        "events_synced_until",
        "last_synced_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["user", "social_account", "platform", "oauth_email", "platform_email"]}),
        (_("Recording policy"), {"fields": list(POLICY_FIELDS)}),
        (
            _("At Recall"),
            {
                "fields": [
                    "recall_id",
                    "status",
                    "disconnect_reason",
                    "formatted_status_changes",
                    "events_synced_until",
                    "last_synced_at",
                    "created_at",
                    "updated_at",
                    "formatted_raw",
                ]
            },
        ),
    ]
    actions = ["refresh_status", "sync_now", "apply_recording_policy", "disconnect"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Calendar]:
        return annotate_counts(super().get_queryset(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Calendars are created by their owners connecting an account, never typed in."""
        return False

    def delete_model(self, request: HttpRequest, obj: Calendar) -> None:
        """Deleting disconnects: the calendar and its bots go at Recall first, then here."""
        calendars.disconnect_calendar(obj, by_user=False)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Calendar]) -> None:
        """As :meth:`delete_model`, for each calendar (a Recall failure stops at that calendar)."""
        client = RecallClient.from_settings()
        for calendar in queryset:
            calendars.disconnect_calendar(calendar, by_user=False, client=client)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        """A Recall failure keeps the calendar, here and at Recall, and says why (not a 500).

        Django runs the deletion in a transaction, so the failure also undoes its log entry.
        """
        try:
            return super().delete_view(request, object_id, extra_context)
        except RecallError as exc:
            self.message_user(
                request,
                _("The calendar was not deleted: Recall did not delete it (%(error)s).")
                % {"error": exc.for_staff()},
                messages.ERROR,
            )
            change = admin_urlname(self.opts, "change")
            url = reverse(change, args=[quote(object_id)], current_app=self.admin_site.name)
            return HttpResponseRedirect(url)

    @admin.display(description=_("email"), ordering="platform_email")
    def email(self, obj: Calendar) -> str:
        return obj.email

    @admin.display(description=_("upcoming events"), ordering="upcoming_count")
    def upcoming_events(self, obj: Calendar) -> int:
        return obj.upcoming_count

    @admin.display(description=_("scheduled bots"), ordering="scheduled_bot_count")
    def scheduled_bots(self, obj: Calendar) -> int:
        return obj.scheduled_bot_count

    @admin.display(description=_("social-auth account"))
    def social_account(self, obj: Calendar) -> str:
        """Provider and uid only: social-auth's own admin page shows the account's tokens."""
        account = obj.social_auth
        return f"{account.provider}: {account.uid}" if account else "-"

    @admin.display(description=_("status changes"))
    def formatted_status_changes(self, obj: Calendar):
        return pretty_json(obj.status_changes)

    @admin.display(description=_("Recall object"))
    def formatted_raw(self, obj: Calendar):
        return pretty_json(obj.raw)

    @admin.action(description=_("Refresh status from Recall"), permissions=["change"])
    def refresh_status(self, request: HttpRequest, queryset: QuerySet[Calendar]) -> None:
        client = RecallClient.from_settings()

        def refresh(calendar: Calendar) -> str:
            return str(sync.refresh_calendar(calendar, client=client).get_status_display())

        outcome = run_each(queryset, refresh)
        report(self, request, outcome, _refreshed)

    @admin.action(
        description=_("Sync now (status, events, bots), as recall_sync does"),
        permissions=["change"],
    )
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Calendar]) -> None:
        client = RecallClient.from_settings()

        def sync_one(calendar: Calendar) -> str:
            done = calendars.sync_calendar(calendar, client=client)
            if done.status == CalendarStatus.MISSING:
                raise Skipped(_("Recall no longer knows this calendar"))
            events, bots = done.events, done.bots
            return str(
                _(
                    "%(created)d new, %(updated)d updated, %(deleted)d deleted; bots: "
                    "%(scheduled)d scheduled, %(unscheduled)d removed, %(failed)d failed."
                )
                % {
                    "created": events.created,
                    "updated": events.updated,
                    "deleted": events.deleted,
                    "scheduled": bots.scheduled + bots.rescheduled,
                    "unscheduled": bots.unscheduled,
                    "failed": bots.failed,
                }
            )

        outcome = run_each(queryset, sync_one)
        report(self, request, outcome, _synced)

    @admin.action(
        description=_("Apply recording policy (schedule / remove bots)"), permissions=["change"]
    )
    def apply_recording_policy(self, request: HttpRequest, queryset: QuerySet[Calendar]) -> None:
        self.reconcile(request, queryset)

    def save_model(self, request: HttpRequest, obj: Calendar, form, change: bool) -> None:
        """A changed policy is applied in this request, not at the next sync, so staff read what
        Recall answered in the message (the REST API and the calendars page queue it as a task)."""
        super().save_model(request, obj, form, change)
        if change and set(POLICY_FIELDS).intersection(form.changed_data):
            self.reconcile(request, [obj])

    def reconcile(self, request: HttpRequest, selected) -> None:
        """Schedule or remove the bots of the calendars' upcoming events; say what changed."""
        client = RecallClient.from_settings()
        event_failures: Counter[str] = Counter()

        def apply(calendar: Calendar) -> str:
            result = scheduling.reconcile_calendar(calendar, client=client)
            event_failures.update(result.errors.values())
            return str(
                _(
                    "%(scheduled)d scheduled, %(rescheduled)d rescheduled, "
                    "%(unscheduled)d removed, %(unchanged)d unchanged, %(failed)d failed."
                )
                % vars(result)
            )

        outcome = run_each(selected, apply)
        outcome.failed.update(event_failures)
        report(self, request, outcome, _policy_applied)

    @admin.action(description=_("Disconnect…"), permissions=["change"])
    def disconnect(self, request: HttpRequest, queryset: QuerySet[Calendar]):
        if not request.POST.get("post"):
            return intermediate_page(
                self,
                request,
                queryset,
                template="admin/recall_calendar/disconnect_calendars.html",
                title=_("Disconnect calendars"),
                action="disconnect",
                count=queryset.count(),
                preview=queryset[:20],
            )
        client = RecallClient.from_settings()
        outcome = run_each(
            list(queryset),
            lambda calendar: calendars.disconnect_calendar(calendar, by_user=False, client=client),
        )
        report(self, request, outcome, _disconnected)
        return None


def _refreshed(count: int) -> str:
    return ngettext("Refreshed %d calendar.", "Refreshed %d calendars.", count) % count


def _synced(count: int) -> str:
    return ngettext("Synced %d calendar.", "Synced %d calendars.", count) % count


def _policy_applied(count: int) -> str:
    return (
        ngettext(
            "Applied the recording policy of %d calendar.",
            "Applied the recording policies of %d calendars.",
            count,
        )
        % count
    )


def _disconnected(count: int) -> str:
    return ngettext("Disconnected %d calendar.", "Disconnected %d calendars.", count) % count
