"""The app's URLs; include them with ``path("recall/", include("django_recall_calendar.urls"))``."""

app_name = "recall_calendar"

urlpatterns: list = []
