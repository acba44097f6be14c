"""System checks: catch a misconfigured integration at ``manage.py check``, not in production."""

from __future__ import annotations

import base64
import binascii

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from . import conf

PIPELINE_STEP = "django_recall_calendar.pipeline.connect_calendar"


def _user_settings() -> dict | None:
    """RECALL_CALENDAR, or None when it is not a dict (check_setting_values reports that)."""
    try:
        return conf.user_settings()
    except ImproperlyConfigured:
        return None


def _is_valid_webhook_secret(secret: object) -> bool:
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        return False
    encoded = secret.removeprefix("whsec_")
    try:
        return bool(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        return False


@register(Tags.security, "recall_calendar")
def check_credentials(app_configs=None, **kwargs) -> list:
    """API_KEY is required; WEBHOOK_SECRET is needed to accept any webhook."""
    messages = []
    user = _user_settings()
    if user is None:
        return []
    if not user.get("API_KEY"):
        messages.append(
            Error(
                "RECALL_CALENDAR['API_KEY'] is not set.",
                hint="Create an API key in the Recall dashboard and set it, e.g. from an "
                "environment variable.",
                id="recall_calendar.E001",
            )
        )
    secret = user.get("WEBHOOK_SECRET")
    if not secret:
        messages.append(
            Warning(
                "RECALL_CALENDAR['WEBHOOK_SECRET'] is not set; the webhook endpoint will refuse "
                "every delivery.",
                hint="Copy the verification secret (whsec_...) from the Recall dashboard.",
                id="recall_calendar.W002",
            )
        )
    else:
        rotation = isinstance(secret, list | tuple)
        secrets = list(secret) if rotation else [secret]
        for index, value in enumerate(secrets):
            if not _is_valid_webhook_secret(value):
                where = f"[{index}]" if rotation else ""
                messages.append(
                    Error(
                        f"RECALL_CALENDAR['WEBHOOK_SECRET']{where} is not of the form "
                        "whsec_<base64>.",
                        hint="Paste the secret exactly as the Recall dashboard shows it.",
                        id="recall_calendar.E003",
                    )
                )
    return messages


@register("recall_calendar")
def check_region(app_configs=None, **kwargs) -> list:
    """REGION must name one of Recall's regions (unless BASE_URL overrides it)."""
    user = _user_settings()
    if user is None:
        return []
    region = user.get("REGION", conf.DEFAULTS["REGION"])
    if user.get("BASE_URL") or region in conf.REGION_BASE_URLS:
        return []
    return [
        Error(
            f"RECALL_CALENDAR['REGION'] is {region!r}, which is not a Recall region.",
            hint="Use one of: " + ", ".join(conf.REGION_BASE_URLS) + ".",
            id="recall_calendar.E004",
        )
    ]


@register("recall_calendar")
def check_installed_apps(app_configs=None, **kwargs) -> list:
    """The webhook endpoint needs DRF and the connect flow needs social-auth."""
    required = {
        "rest_framework": "djangorestframework",
        "social_django": "social-auth-app-django",
    }
    return [
        Error(
            f"'{label}' is not in INSTALLED_APPS.",
            hint=f"django_recall_calendar needs {package}: add '{label}' to INSTALLED_APPS.",
            id="recall_calendar.E005",
        )
        for label, package in required.items()
        if not apps.is_installed(label)
    ]


@register("recall_calendar")
def check_pipeline(app_configs=None, **kwargs) -> list:
    """A customised SOCIAL_AUTH_PIPELINE needs our step, or connecting creates no calendar."""
    pipeline = getattr(settings, "SOCIAL_AUTH_PIPELINE", None)
    if pipeline is None or PIPELINE_STEP in pipeline:
        return []
    return [
        Warning(
            f"SOCIAL_AUTH_PIPELINE does not include {PIPELINE_STEP!r}; connecting a calendar will "
            "not create it at Recall.",
            hint="Add it right after 'social_core.pipeline.social_auth.load_extra_data'.",
            id="recall_calendar.W006",
        )
    ]


@register("recall_calendar")
def check_time_zone_support(app_configs=None, **kwargs) -> list:
    """Recall's times are aware UTC datetimes; without USE_TZ the database refuses them (SQLite
    raises on every upsert), so every sync and every webhook would fail."""
    if settings.USE_TZ:
        return []
    return [
        Error(
            "USE_TZ is False; django_recall_calendar stores Recall's times as aware datetimes.",
            hint="Set USE_TZ = True (Django's default).",
            id="recall_calendar.E007",
        )
    ]


def _check_default_policy() -> None:
    from .models import RecordingPolicy

    policy = conf.default_recording_policy()
    if policy not in RecordingPolicy.values:
        raise ImproperlyConfigured(
            f"RECALL_CALENDAR['DEFAULT_RECORDING_POLICY'] is {policy!r}; expected one of "
            f"{', '.join(RecordingPolicy.values)}."
        )


@register("recall_calendar")
def check_setting_values(app_configs=None, **kwargs) -> list:
    """Settings read only when first needed (the scheduling mode, the deduplication recipe, the
    default policy) are resolved here too, so a typo fails ``manage.py check``, not a sync."""
    from . import dedup
    from .backends import get_backend

    resolvers = [conf.user_settings, get_backend, dedup.key_function]
    resolvers.append(_check_default_policy)
    messages = []
    for resolve in resolvers:
        try:
            resolve()
        except ImproperlyConfigured as exc:
            messages.append(
                Error(
                    str(exc),
                    hint="See the settings reference in django-recall-calendar's README.",
                    id="recall_calendar.E008",
                )
            )
            if resolve is conf.user_settings:
                break  # nothing else can be read
    return messages
