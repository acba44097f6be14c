"""The app's URLs; include them with ``path("recall/", include("django_recall_calendar.urls"))``."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from .views import api, calendars, webhook

app_name = "recall_calendar"

urlpatterns: list = [
    path("webhooks/", webhook.WebhookView.as_view(), name="webhook"),
    path("calendars/", calendars.calendar_list, name="calendars"),
    path("calendars/<int:pk>/settings/", calendars.calendar_settings, name="calendar_settings"),
    path(
        "calendars/<int:pk>/disconnect/", calendars.calendar_disconnect, name="calendar_disconnect"
    ),
]

# The REST API (views/api.py): api/calendars/, api/events/, api/events/<id>/bot/, api/schema/.
api_router = SimpleRouter()
api_router.register("api/calendars", api.CalendarViewSet, basename="api-calendar")
api_router.register("api/events", api.EventViewSet, basename="api-event")
urlpatterns += [
    path("api/schema/", api.SchemaView.as_view(), name="api-schema"),
    *api_router.urls,
    re_path(r"^api/(?P<path>.*)$", api.not_found),  # last: what no route above matched
]
