"""The app's URLs; include them with ``path("recall/", include("django_recall_calendar.urls"))``."""

from django.urls import path

from .views import webhook

app_name = "recall_calendar"

urlpatterns: list = [
    path("webhooks/", webhook.WebhookView.as_view(), name="webhook"),
]
