"""System checks: catch a misconfigured integration at ``manage.py check``, not in production."""

from __future__ import annotations

import base64
import binascii

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, Resolver404, reverse
from django.urls import resolve as resolve_path
from social_core.pipeline import DEFAULT_AUTH_PIPELINE

from . import conf

PIPELINE_STEP = "django_recall_calendar.pipeline.connect_calendar"
LOAD_EXTRA_DATA = "social_core.pipeline.social_auth.load_extra_data"
LOGIN_STEP = "django_recall_calendar.pipeline.require_logged_in_user"
#: social-auth's steps that pick, create or link the user a completion acts for.
USER_STEPS = (
    "social_core.pipeline.social_auth.social_user",
    "social_core.pipeline.user.get_username",
    "social_core.pipeline.user.create_user",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.social_auth.associate_by_email",
)


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


API_KEY_HINT = (
    "Create an API key in the Recall dashboard and set it, e.g. from an environment variable."
)


@register(Tags.security, "recall_calendar", deploy=True)
def check_api_key_for_deployment(app_configs=None, **kwargs) -> list:
    """A deployment without the key cannot reach Recall at all: strict under ``--deploy``.

    Without ``--deploy`` the same gap is only a warning (W001), so ``migrate`` and the other
    commands run before the key is set; the key is checked again where it is used.
    """
    user = _user_settings()
    if user is None or user.get("API_KEY"):
        return []
    return [
        Error(
            "RECALL_CALENDAR['API_KEY'] is not set.",
            hint=API_KEY_HINT,
            id="recall_calendar.E001",
        )
    ]


@register(Tags.security, "recall_calendar")
def check_credentials(app_configs=None, **kwargs) -> list:
    """API_KEY is needed for any call to Recall; WEBHOOK_SECRET to accept any webhook."""
    messages = []
    user = _user_settings()
    if user is None:
        return []
    if not user.get("API_KEY"):
        messages.append(
            Warning(
                "RECALL_CALENDAR['API_KEY'] is not set; every call to Recall will fail until it "
                "is (manage.py check --deploy treats this as an error).",
                hint=API_KEY_HINT,
                id="recall_calendar.W001",
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


def effective_pipeline() -> tuple[str, ...]:
    """The pipeline social-auth runs: SOCIAL_AUTH_PIPELINE, else social-auth's own default."""
    return tuple(getattr(settings, "SOCIAL_AUTH_PIPELINE", None) or DEFAULT_AUTH_PIPELINE)


@register("recall_calendar")
def check_pipeline(app_configs=None, **kwargs) -> list:
    """Without our step (social-auth's default pipeline lacks it) connecting creates no calendar,
    silently; before load_extra_data, that step would store the refresh token again after we
    dropped it."""
    pipeline = effective_pipeline()
    where = "SOCIAL_AUTH_PIPELINE"
    if not getattr(settings, "SOCIAL_AUTH_PIPELINE", None):
        where = "social-auth's default pipeline (SOCIAL_AUTH_PIPELINE is not set)"
    if PIPELINE_STEP not in pipeline:
        return [
            Warning(
                f"{where} does not include {PIPELINE_STEP!r}; connecting a calendar will not "
                "create it at Recall.",
                hint=f"Set SOCIAL_AUTH_PIPELINE with it right after {LOAD_EXTRA_DATA!r} (step 3 "
                "of the README's install has the whole setting).",
                id="recall_calendar.W006",
            )
        ]
    if LOAD_EXTRA_DATA in pipeline and pipeline.index(PIPELINE_STEP) < pipeline.index(
        LOAD_EXTRA_DATA
    ):
        return [
            Warning(
                f"{PIPELINE_STEP!r} comes before {LOAD_EXTRA_DATA!r} in SOCIAL_AUTH_PIPELINE; "
                "load_extra_data would store the refresh token in your database again after "
                "Recall took it.",
                hint=f"Move it right after {LOAD_EXTRA_DATA!r}.",
                id="recall_calendar.W010",
            )
        ]
    return []


def _resolves(url: str) -> bool:
    """Whether a site-relative URL is served by this project's URLconf."""
    try:
        resolve_path(url.split("?", 1)[0])
    except Resolver404:
        return False
    return True


@register(Tags.urls, "recall_calendar")
def check_urls(app_configs=None, **kwargs) -> list:
    """The webhook endpoint must be routed (Recall's deliveries 404 otherwise), and LOGIN_URL
    must lead somewhere: "My calendars" sends signed-out visitors there."""
    messages = []
    try:
        reverse("recall_calendar:webhook")
    except NoReverseMatch:
        messages.append(
            Error(
                "The URL 'recall_calendar:webhook' is not routed; Recall's webhooks cannot reach "
                "this site.",
                hint='Add path("recall/", include("django_recall_calendar.urls")) to your '
                "urlpatterns.",
                id="recall_calendar.E012",
            )
        )
    try:
        login_url = resolve_url(settings.LOGIN_URL)
    except NoReverseMatch:  # a URL name that names nothing
        login_url = str(settings.LOGIN_URL)
        served = False
    else:  # an absolute URL points at another site: nothing to check here
        served = not login_url.startswith("/") or login_url.startswith("//")
        served = served or _resolves(login_url)
    if not served:
        messages.append(
            Warning(
                f"LOGIN_URL {login_url!r} is not served by this site; signed-out visitors of "
                "'My calendars' are sent to a 404.",
                hint="Set LOGIN_URL to your sign-in page (a path or a URL name), e.g. "
                '"/admin/login/" or "login" with django.contrib.auth.urls included.',
                id="recall_calendar.W011",
            )
        )
    return messages


@register(Tags.security, "recall_calendar")
def check_login_required(app_configs=None, **kwargs) -> list:
    """Connecting must need a signed-in user: without ``require_logged_in_user`` before
    social-auth's user steps, an anonymous consent signs a stranger up (or logs them in as the user
    the provider account is linked to) and gives them a Recall calendar."""
    pipeline = effective_pipeline()
    if PIPELINE_STEP not in pipeline:
        return []  # W006 says so; without our step a connect makes no calendar
    user_steps = [pipeline.index(step) for step in USER_STEPS if step in pipeline]
    if not user_steps or LOGIN_STEP in pipeline[: min(user_steps)]:
        return []
    return [
        Warning(
            "SOCIAL_AUTH_PIPELINE lets a calendar connection create or log in a user: "
            f"{LOGIN_STEP!r} is missing or comes after social-auth's user steps.",
            hint="Add it right before 'social_core.pipeline.social_auth.social_user'.",
            id="recall_calendar.W009",
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


def _check_handoff_delay() -> None:
    conf.duration("WEBHOOK_HANDOFF_DELAY")


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
    default policy, the hand-off's delay) are resolved here too, so a typo fails ``manage.py
    check``, not a sync or every webhook's hand-off."""
    from . import dedup
    from .backends import get_backend

    resolvers = [conf.user_settings, get_backend, dedup.key_function]
    resolvers += [_check_default_policy, _check_handoff_delay]
    messages = []
    for resolve in resolvers:
        try:
            resolve()
        except ImproperlyConfigured as exc:
            messages.append(
                Error(
                    str(exc),
                    hint="See the settings reference in django-recall-calendar's documentation "
                    "(docs/settings.md).",
                    id="recall_calendar.E008",
                )
            )
            if resolve is conf.user_settings:
                break  # nothing else can be read
    return messages


def _check_rate_limit_waits() -> None:
    for key in ("RATE_LIMIT_WAIT", "RATE_LIMIT_TASK_WAIT"):
        conf.duration(key)


@register("recall_calendar")
def check_rate_limits(app_configs=None, **kwargs) -> list:
    """A malformed ``RATE_LIMITS`` entry (``"60/minute"`` is fine, ``"60 a minute"`` is not) would
    otherwise fail the first Recall call of every process."""
    from . import budget

    if _user_settings() is None:
        return []
    messages = []
    for resolve in (budget.rates, _check_rate_limit_waits):
        try:
            resolve()
        except ImproperlyConfigured as exc:
            messages.append(
                Error(
                    str(exc),
                    hint="Rates read like '60/min' or '5/10s' (calls / period in s, min or h), "
                    f"for the endpoint classes {', '.join(budget.CLASSES)}.",
                    id="recall_calendar.E020",
                )
            )
    return messages


@register("recall_calendar")
def check_user_bot_config_keys(app_configs=None, **kwargs) -> list:
    """An end user allowed to set where a bot goes or where its data flows could send the host's
    paid bots to any meeting, or stream a meeting to their own server."""
    from . import bot_configs

    if _user_settings() is None:
        return []
    keys = conf.get("USER_BOT_CONFIG_KEYS")
    if isinstance(keys, str) or not all(isinstance(key, str) and key for key in keys or ()):
        return [
            Error(
                f"RECALL_CALENDAR['USER_BOT_CONFIG_KEYS'] is {keys!r}; expected a list or tuple "
                "of bot config keys, e.g. ('bot_name',).",
                id="recall_calendar.E021",
            )
        ]
    return [
        Error(
            f"RECALL_CALENDAR['USER_BOT_CONFIG_KEYS'] lets end users set {key!r}, which decides "
            "where a bot goes or where its data flows.",
            hint="Set it in BOT_CONFIG (the host's) instead; staff may still set it per meeting "
            "in the admin.",
            id="recall_calendar.E021",
        )
        for key in bot_configs.steering_keys(keys)
    ]
