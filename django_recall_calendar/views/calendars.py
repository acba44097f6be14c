"""The end user's "my calendars" pages: list, connect, reconnect, recording policy, disconnect.

Connecting and reconnecting are POST forms to social-auth's ``social:begin``; the pipeline step
does the work when the provider sends the user back. Every other action is a POST on a calendar the
requesting user owns (anyone else gets a 404: calendar ids are not even confirmed to exist).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from social_core.backends.utils import load_backends

from .. import conf, tasks
from ..calendars import disconnect_calendar
from ..exceptions import RecallError
from ..forms import RecordingPolicyForm
from ..models import Calendar, Platform

logger = logging.getLogger(__name__)

TEMPLATE = "recall_calendar/calendars.html"

CONNECT_LABELS = {
    Platform.GOOGLE_CALENDAR: gettext_lazy("Connect Google Calendar"),
    Platform.MICROSOFT_OUTLOOK: gettext_lazy("Connect Outlook"),
}


def connect_backends() -> dict[str, str]:
    """Platform -> the first enabled social-auth backend that connects it (setting PLATFORMS)."""
    enabled = load_backends(settings.AUTHENTICATION_BACKENDS)
    result: dict[str, str] = {}
    for backend_name, platform in conf.get("PLATFORMS").items():
        if backend_name in enabled:
            result.setdefault(platform, backend_name)
    return result


def _policy_form(calendar: Calendar, data=None) -> RecordingPolicyForm:
    return RecordingPolicyForm(data, instance=calendar, prefix=f"calendar-{calendar.pk}")


def _render_list(
    request: HttpRequest, bound: RecordingPolicyForm | None = None, status: int = 200
) -> HttpResponse:
    backends = connect_backends()
    bound_pk = bound.instance.pk if bound is not None else None
    rows = [
        {
            "calendar": calendar,
            "form": bound if calendar.pk == bound_pk else _policy_form(calendar),
            "reconnect_backend": backends.get(calendar.platform),
        }
        for calendar in Calendar.objects.filter(user=request.user).order_by("platform", "pk")
    ]
    connect = [
        {"backend": backend, "label": CONNECT_LABELS.get(platform, platform)}
        for platform, backend in backends.items()
    ]
    context = {"rows": rows, "connect": connect}
    return render(request, TEMPLATE, context, status=status)


@login_required
@require_GET
def calendar_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request)


@login_required
@require_POST
def calendar_settings(request: HttpRequest, pk: int) -> HttpResponse:
    calendar = get_object_or_404(Calendar, pk=pk, user=request.user)
    form = _policy_form(calendar, request.POST)
    if not form.is_valid():
        messages.error(request, _("Please correct the recording settings below."))
        return _render_list(request, bound=form, status=400)
    form.save()
    messages.success(
        request, _("Recording settings of %(calendar)s saved.") % {"calendar": calendar}
    )
    if form.has_changed():
        # Applied by a task, as the REST API does (the admin applies it in its request): one
        # Recall call per upcoming meeting may be needed, and the page must not wait for them.
        tasks.apply_recording_policy_later(calendar.pk)
    return redirect("recall_calendar:calendars")


@login_required
@require_POST
def calendar_disconnect(request: HttpRequest, pk: int) -> HttpResponse:
    calendar = get_object_or_404(Calendar, pk=pk, user=request.user)
    name = str(calendar)
    try:
        disconnect_calendar(calendar, by_user=True)
    except RecallError as exc:
        exc.log(logger, f"Disconnecting calendar {calendar.recall_id}")
        messages.error(
            request,
            _("%(calendar)s could not be disconnected. %(reason)s")
            % {"calendar": name, "reason": exc.for_user()},
        )
    else:
        messages.success(request, _("%(calendar)s was disconnected.") % {"calendar": name})
    return redirect("recall_calendar:calendars")
