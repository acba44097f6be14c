"""Settings of the example project: offline against the Recall emulator unless keys are given.

Everything comes from environment variables, so the same file runs the offline demo (no variables),
a real integration (``RECALL_API_KEY``, ``RECALL_WEBHOOK_SECRET``, the OAuth keys) and PostgreSQL
(``DATABASE_URL``). Never use the default SECRET_KEY outside a laptop.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
import django
from social_core.pipeline import DEFAULT_AUTH_PIPELINE

BASE_DIR = Path(__file__).resolve().parent


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.lower() in ("1", "true", "yes", "on")


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-not-secret")
# Off unless asked for: the debug page shows every local of a failing request, secrets included
# (Django hides marked ones only with DEBUG off). ``make demo`` turns it on for itself.
DEBUG = env_flag("DJANGO_DEBUG", False)
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
ROOT_URLCONF = "example_project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "social_django",
    "django_recall_calendar",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Times on the pages in the viewer's time zone, as their browser reports it.
    "django_recall_calendar.middleware.ViewerTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Turns an OAuth failure (denied consent, no refresh token) into a message, never a 500.
    "social_django.middleware.SocialAuthExceptionMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Before the app's templates: recall_calendar/base.html here puts its pages in our layout.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# SQLite beside this file unless DATABASE_URL names another database (e.g. postgres://...).
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=60
    ),
}

STATIC_URL = "/static/"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "meetings"

# The demo runs webhook processing in the web process. In production choose a real engine
# (django-tasks-db's db_worker, RQ, Celery): see the README's "Production" section.
if django.VERSION >= (6, 0):
    TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
else:  # the django-tasks backport (pip install "django-recall-calendar[tasks]")
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

# --- Recall: the real API when RECALL_API_KEY is given, the local emulator otherwise (the demo).
DEMO_API_KEY = "demo-api-key"
DEMO_WEBHOOK_SECRET = "whsec_ZGVtby13ZWJob29rLXNlY3JldC0xMjM0NTY3OA=="
RECALL_DEMO = not os.environ.get("RECALL_API_KEY")
if RECALL_DEMO:
    RECALL_CALENDAR = {
        "API_KEY": DEMO_API_KEY,
        "WEBHOOK_SECRET": DEMO_WEBHOOK_SECRET,
        "BASE_URL": os.environ.get("RECALL_EMULATOR_URL", "http://127.0.0.1:8001"),
    }
else:
    RECALL_CALENDAR = {
        "API_KEY": os.environ["RECALL_API_KEY"],
        "REGION": os.environ.get("RECALL_REGION", "us-east-1"),
        "WEBHOOK_SECRET": os.environ.get("RECALL_WEBHOOK_SECRET"),
    }
RECALL_CALENDAR["DEFAULT_RECORDING_POLICY"] = os.environ.get("RECALL_DEFAULT_POLICY", "off")
RECALL_CALENDAR["BOT_CONFIG"] = {"bot_name": os.environ.get("RECALL_BOT_NAME", "Notetaker")}

# --- OAuth: each provider is real when its keys are given, else the emulator's consent pages.
if os.environ.get("GOOGLE_OAUTH2_KEY"):
    GOOGLE_BACKEND = "social_core.backends.google.GoogleOAuth2"
    SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = os.environ["GOOGLE_OAUTH2_KEY"]
    SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = os.environ.get("GOOGLE_OAUTH2_SECRET", "")
else:
    GOOGLE_BACKEND = "django_recall_calendar.testing.backends.EmulatedGoogleOAuth2"
    SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = "demo-google-client-id"
    SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = "demo-google-client-secret"
if os.environ.get("MICROSOFT_GRAPH_KEY"):
    MICROSOFT_BACKEND = "social_core.backends.microsoft.MicrosoftOAuth2"
    SOCIAL_AUTH_MICROSOFT_GRAPH_KEY = os.environ["MICROSOFT_GRAPH_KEY"]
    SOCIAL_AUTH_MICROSOFT_GRAPH_SECRET = os.environ.get("MICROSOFT_GRAPH_SECRET", "")
else:
    MICROSOFT_BACKEND = "django_recall_calendar.testing.backends.EmulatedMicrosoftOAuth2"
    SOCIAL_AUTH_MICROSOFT_GRAPH_KEY = "demo-microsoft-client-id"
    SOCIAL_AUTH_MICROSOFT_GRAPH_SECRET = "demo-microsoft-client-secret"

AUTHENTICATION_BACKENDS = [
    GOOGLE_BACKEND,
    MICROSOFT_BACKEND,
    "django.contrib.auth.backends.ModelBackend",
]

# Offline access is what gives Recall a refresh token; prompt=consent makes Google send it again on
# a reconnect. The scopes are the read-only calendar ones Recall needs.
SOCIAL_AUTH_GOOGLE_OAUTH2_SCOPE = ["https://www.googleapis.com/auth/calendar.events.readonly"]
SOCIAL_AUTH_GOOGLE_OAUTH2_AUTH_EXTRA_ARGUMENTS = {"access_type": "offline", "prompt": "consent"}
SOCIAL_AUTH_MICROSOFT_GRAPH_SCOPE = ["offline_access", "Calendars.Read", "User.Read"]
# social-auth's default pipeline with the app's two steps: connecting needs a signed-in user
# (checked before social_user could log anyone in or create_user sign anyone up), and the
# calendar is created right after load_extra_data.
_user = DEFAULT_AUTH_PIPELINE.index("social_core.pipeline.social_auth.social_user")
_after = DEFAULT_AUTH_PIPELINE.index("social_core.pipeline.social_auth.load_extra_data") + 1
SOCIAL_AUTH_PIPELINE = (
    *DEFAULT_AUTH_PIPELINE[:_user],
    "django_recall_calendar.pipeline.require_logged_in_user",
    *DEFAULT_AUTH_PIPELINE[_user:_after],
    "django_recall_calendar.pipeline.connect_calendar",
    *DEFAULT_AUTH_PIPELINE[_after:],
)
# Connecting a calendar must not rename the signed-in account after the OAuth profile.
SOCIAL_AUTH_PROTECTED_USER_FIELDS = ["first_name", "last_name"]
SOCIAL_AUTH_URL_NAMESPACE = "social"
SOCIAL_AUTH_LOGIN_REDIRECT_URL = "/recall/calendars/"
SOCIAL_AUTH_LOGIN_ERROR_URL = "/recall/calendars/"

# Error reports (the admins' email, an error tracker's Django integration) also hide social-auth's
# frames, which hold the provider's tokens and the OAuth client secret during a connect.
DEFAULT_EXCEPTION_REPORTER_FILTER = "django_recall_calendar.debug.RecallExceptionReporterFilter"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_recall_calendar": {"handlers": ["console"], "level": "INFO"}},
}
