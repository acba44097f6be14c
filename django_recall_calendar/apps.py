from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecallCalendarConfig(AppConfig):
    """Registers the system checks and signal receivers once the app registry is ready."""

    name = "django_recall_calendar"
    label = "recall_calendar"
    verbose_name = _("Recall calendars")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, receivers  # noqa: F401  (registration happens on import)
