"""Admin for webhook deliveries: a read-only record of what Recall sent, with a Replay action."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import tasks
from ..models import DeliveryStatus, WebhookDelivery
from .actions import Skipped, report, run_each
from .budget import budget_context
from .display import pretty_json

#: What a replay ending in one of these statuses means for the admin's message.
SKIPPED_STATUSES = {
    DeliveryStatus.PROCESSING: _("a worker is processing it right now"),
    DeliveryStatus.RECEIVED: _("deferred until Recall's rate limit budget has room (queued)"),
}


class ReplayFailed(Exception):
    """A replay that ended with the delivery failed; the text is the stored error."""


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "message_id",
        "event_type",
        "status",
        "calendar",
        "attempts",
        "received_at",
        "processed_at",
        "short_error",
    ]
    list_filter = ["status", "event_type"]
    list_select_related = ["calendar"]
    search_fields = [
        "message_id",
        "calendar_recall_id",
        "calendar__platform_email",
        "calendar__oauth_email",
    ]
    date_hierarchy = "received_at"
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = [
        "message_id",
        "event_type",
        "status",
        "calendar",
        "calendar_recall_id",
        "attempts",
        "last_error",
        "received_at",
        "claimed_at",
        "next_attempt_at",
        "processed_at",
        "processed_by",
        "formatted_payload",
    ]
    readonly_fields = fields
    actions = ["replay"]
    change_list_template = "admin/recall_calendar/webhookdelivery/change_list.html"

    def changelist_view(self, request: HttpRequest, extra_context=None):
        """The list, below the state of the shared Recall budget (what paces the processing)."""
        return super().changelist_view(request, {**budget_context(), **(extra_context or {})})

    # The record of what Recall sent is evidence: nobody adds, edits or deletes it by hand.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        """Replaying changes data, so it takes the model's change permission (not view only)."""
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.display(description=_("last error"))
    def short_error(self, obj: WebhookDelivery) -> str:
        return Truncator(obj.last_error).chars(80)

    @admin.display(description=_("payload"))
    def formatted_payload(self, obj: WebhookDelivery):
        return pretty_json(obj.payload)

    @admin.action(description=_("Replay (process again now)"), permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        outcome = run_each(
            queryset.order_by("received_at", "pk"), _replay_one, shown_errors=(ReplayFailed,)
        )
        report(
            self,
            request,
            outcome,
            lambda n: ngettext("Replayed %d delivery.", "Replayed %d deliveries.", n) % n,
        )


def _replay_one(delivery: WebhookDelivery) -> None:
    """Process the delivery again inline; its final status makes a success, a skip or a failure."""
    status = tasks.run_delivery(delivery.pk, force=True)
    delivery.refresh_from_db(fields=["status", "last_error"])
    if status in SKIPPED_STATUSES:
        raise Skipped(SKIPPED_STATUSES[status])
    if status == DeliveryStatus.FAILED:
        raise ReplayFailed(delivery.last_error or _("processing failed"))
    if status == DeliveryStatus.IGNORED:
        raise Skipped(_("ignored: %(reason)s") % {"reason": delivery.last_error})
