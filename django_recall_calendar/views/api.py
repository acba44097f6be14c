"""The REST API for the host's front end: the user's own calendars, their meetings and the bots.

Views stay thin: every change goes through the domain functions the admin and the HTML pages use
(``scheduling``, ``calendars``), so each entry point behaves the same. Authentication is whatever
the host configured for DRF; querysets are the requesting user's, so another user's object is 404.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from drf_spectacular.views import SpectacularAPIView
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from .. import __version__, calendars, scheduling, tasks, throttles
from ..exceptions import RecallError, RecallInvalidRequestError
from ..models import Calendar, CalendarEvent, RecordOverride
from ..policies import POLICY_FIELDS
from ..serializers import (
    BotRequestSerializer,
    CalendarEventSerializer,
    CalendarSerializer,
    EventFilterSerializer,
)

logger = logging.getLogger(__name__)


class SchedulingNotPossible(APIException):
    """400 for a meeting no bot can join (ended, cancelled, no link): the reason is the detail."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "scheduling_refused"


class BotAlreadyDispatched(APIException):
    """409: the bot is already joining the meeting; Recall can no longer change or remove it."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "bot_already_dispatched"


class RecallRefused(APIException):
    """400: Recall refused the request as invalid; its reason says what to change."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "recall_refused"


class RecallUnavailable(APIException):
    """502: Recall refused or failed a call made on the user's behalf; nothing of ours broke."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = "recall_error"


class ApiViewSet(viewsets.GenericViewSet):
    """Common ground of the viewsets: authenticated users only, Recall failures as API errors."""

    permission_classes = [IsAuthenticated]
    # Declared here so the schema generates whatever DEFAULT_SCHEMA_CLASS the host has.
    schema = AutoSchema()

    def get_throttles(self) -> list:
        """The host's throttles, plus this API's per-user limit on writes."""
        return [*super().get_throttles(), throttles.WriteRateThrottle()]

    def handle_exception(self, exc: Exception) -> Response:
        return super().handle_exception(as_api_exception(exc))


def as_api_exception(exc: Exception) -> Exception:
    """Scheduling refusals and Recall failures in DRF's error shape; anything else unchanged."""
    if isinstance(exc, scheduling.SchedulingRefused):
        return SchedulingNotPossible(str(exc))
    if isinstance(exc, scheduling.InvalidBotConfig):
        return ValidationError({"bot_config": [str(exc)]})
    if isinstance(exc, scheduling.BotAlreadyDispatched):
        return BotAlreadyDispatched(str(exc))
    if isinstance(exc, RecallInvalidRequestError):
        # Recall judged the request itself (e.g. the meeting ended meanwhile, or a bot_config
        # field it refuses): the caller can act on that, so it is theirs to read, as a 400.
        return RecallRefused(_("Recall refused the request: %s") % exc.message)
    if isinstance(exc, RecallError):
        # The user is told whether to retry or wait for staff; staff read the cause in the log.
        exc.log(logger, "A REST API request")
        return RecallUnavailable(_("Recall did not complete the request: %s") % exc.for_user())
    if isinstance(exc, scheduling.SchedulingError):
        return RecallUnavailable(str(exc))
    return exc


RECALL_FAILED = OpenApiResponse(description="Recall refused or failed the call (502).")
BOT_DISPATCHED = OpenApiResponse(description="The bot is already in the meeting (409).")


class CalendarSchema(AutoSchema):
    """``DELETE calendars/{id}/`` calls Recall: its failure is a 502."""

    def get_response_serializers(self) -> Any:
        if self.view.action == "destroy":
            return {204: None, 502: RECALL_FAILED}
        return super().get_response_serializers()


class CalendarViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    ApiViewSet,
):
    """The user's connected calendars: read them, change the recording policy (PATCH), disconnect
    (DELETE: removes the calendar at Recall, its bots and its local copy)."""

    serializer_class = CalendarSerializer
    schema = CalendarSchema()
    throttle_scope = throttles.CALENDAR_WRITES
    pagination_class = None  # a user has a handful of calendars
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Calendar]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Calendar.objects.none()
        return Calendar.objects.filter(user=self.request.user)

    def perform_update(self, serializer: CalendarSerializer) -> None:
        calendar = serializer.instance
        before = [getattr(calendar, field) for field in POLICY_FIELDS]
        calendar = serializer.save()
        if before != [getattr(calendar, field) for field in POLICY_FIELDS]:
            tasks.apply_recording_policy_later(calendar.pk)

    def perform_destroy(self, instance: Calendar) -> None:
        calendars.disconnect_calendar(instance)


class EventPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        """DRF's, but a ``page_size`` that is not a positive integer is a 400, not the default."""
        value = request.query_params.get(self.page_size_query_param)
        if value is not None and not (value.isascii() and value.isdigit() and int(value) > 0):
            raise ValidationError({self.page_size_query_param: [_("A positive integer.")]})
        return super().get_page_size(request)


class EventSchema(AutoSchema):
    """The OpenAPI details of ``events/``: its filters and the ``bot/`` action.

    Declared on a schema class rather than with ``@extend_schema`` on methods, which builds on the
    host's DEFAULT_SCHEMA_CLASS and so breaks when that is not drf-spectacular's.
    """

    def get_override_parameters(self) -> list:
        if self.view.action == "list":
            return [EventFilterSerializer]
        return super().get_override_parameters()

    def get_request_serializer(self) -> Any:
        if self.view.action == "bot":
            return BotRequestSerializer if self.method == "POST" else None
        return super().get_request_serializer()

    def get_response_serializers(self) -> Any:
        if self.view.action != "bot":
            return super().get_response_serializers()
        refused = (
            "Invalid body, or no bot can join this meeting (ended, cancelled, no link)."
            if self.method == "POST"
            else "The meeting has ended."
        )
        return {
            200: CalendarEventSerializer,
            400: OpenApiResponse(description=refused),
            409: BOT_DISPATCHED,
            502: RECALL_FAILED,
        }

    def get_description(self) -> str:
        if self.view.action == "bot":
            return BOT_DESCRIPTIONS[self.method]
        return super().get_description()


BOT_DESCRIPTIONS = {
    "POST": (
        'Send a bot to this meeting (override "always", the default, with an optional bot_config), '
        'keep bots away ("never"), or follow the calendar\'s recording policy again ("").'
    ),
    "DELETE": (
        'Remove the bot and set the override to "never", so the next sync does not send one back; '
        'POST with override "" to follow the calendar\'s policy again.'
    ),
}


class EventViewSet(viewsets.ReadOnlyModelViewSet, ApiViewSet):
    """The user's meetings (not deleted ones in the list), with whether a bot joins them and why."""

    serializer_class = CalendarEventSerializer
    throttle_scope = throttles.BOT_WRITES
    pagination_class = EventPagination
    schema = EventSchema()

    def get_queryset(self) -> QuerySet[CalendarEvent]:
        if getattr(self, "swagger_fake_view", False):
            return CalendarEvent.objects.none()
        events = CalendarEvent.objects.for_user(self.request.user).select_related(
            "calendar", "bot_outcome"
        )
        return scheduling.with_bot_records(events)

    def filter_queryset(self, queryset: QuerySet[CalendarEvent]) -> QuerySet[CalendarEvent]:
        if self.action != "list":
            return queryset
        params = EventFilterSerializer(data=self.request.query_params, user=self.request.user)
        params.is_valid(raise_exception=True)
        return filter_events(queryset.filter(is_deleted=False), **params.validated_data)

    @action(detail=True, methods=["post", "delete"], url_path="bot", url_name="bot")
    def bot(self, request: Request, pk: str | None = None) -> Response:
        event = self.get_object()
        if request.method == "DELETE":
            event = scheduling.set_record_override(event, RecordOverride.NEVER)
        else:
            body = BotRequestSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            event = scheduling.set_record_override(event, **body.validated_data)
        event.refresh_from_db()
        return Response(self.get_serializer(event).data)


def filter_events(
    events: QuerySet[CalendarEvent],
    *,
    upcoming: bool | None = None,
    calendar: Calendar | None = None,
    has_bot: bool | None = None,
    start_after=None,
    start_before=None,
) -> QuerySet[CalendarEvent]:
    """Apply the validated ``events/`` query parameters."""
    if upcoming is True:
        events = events.upcoming()
    elif upcoming is False:
        events = events.filter(end_time__lte=timezone.now())
    if calendar is not None:
        events = events.filter(calendar=calendar)
    if has_bot is not None:
        events = scheduling.with_bot(events, has_bot)
    if start_after is not None:
        events = events.filter(start_time__gte=start_after)
    if start_before is not None:
        events = events.filter(start_time__lt=start_before)
    return events


def only_this_api(endpoints: list[tuple], **kwargs: Any) -> list[tuple]:
    """drf-spectacular preprocessing hook: describe this app's API, not the host's other URLs."""
    ours = (CalendarViewSet, EventViewSet)
    return [endpoint for endpoint in endpoints if getattr(endpoint[3], "cls", None) in ours]


@csrf_exempt  # it changes nothing; the API's own views are exempt too (DRF checks sessions)
def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any other path under ``api/`` (a malformed id, say): the API's JSON 404 in DRF's shape, not
    the site's HTML page, which a client of the API could not read."""
    return JsonResponse({"detail": str(_("Not found."))}, status=404)


class SchemaView(SpectacularAPIView):
    """The OpenAPI 3 document of this API (YAML, or JSON with ``?format=json``)."""

    custom_settings = {
        "TITLE": "django-recall-calendar API",
        "DESCRIPTION": "The signed-in user's calendars, meetings and Recall bots.",
        "VERSION": __version__,
        "PREPROCESSING_HOOKS": ["django_recall_calendar.views.api.only_this_api"],
        "POSTPROCESSING_HOOKS": [
            "drf_spectacular.hooks.postprocess_schema_enums",
            "django_recall_calendar.openapi.document_error_statuses",
        ],
        # The override is read on events and written to bot/: one enum, one name.
        "ENUM_NAME_OVERRIDES": {
            "RecordOverrideEnum": "django_recall_calendar.models.RecordOverride",
            "BotStatusEnum": "django_recall_calendar.models.BotStatus",
            "SkipRuleEnum": "django_recall_calendar.policies.Rule",
        },
    }
