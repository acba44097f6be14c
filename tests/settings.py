"""Settings for the test suite: SQLite by default, PostgreSQL when DATABASE_URL is set."""

import dj_database_url
import django

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
    "django_recall_calendar.middleware.ViewerTimezoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "social_django.middleware.SocialAuthExceptionMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": dj_database_url.config(default="sqlite:///:memory:", conn_max_age=0),
}

STATIC_URL = "/static/"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The two social-auth backends, pointed at the emulator's OAuth providers (same backend names).
AUTHENTICATION_BACKENDS = [
    "django_recall_calendar.testing.backends.EmulatedGoogleOAuth2",
    "django_recall_calendar.testing.backends.EmulatedMicrosoftOAuth2",
    "django.contrib.auth.backends.ModelBackend",
]
SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = "google-client-id.apps.googleusercontent.com"
SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = "google-client-secret"
SOCIAL_AUTH_MICROSOFT_GRAPH_KEY = "microsoft-client-id"
SOCIAL_AUTH_MICROSOFT_GRAPH_SECRET = "microsoft-client-secret"

# social-auth: the default pipeline with the app's step after load_extra_data; auth errors become
# messages on the "my calendars" page (SocialAuthExceptionMiddleware above).
SOCIAL_AUTH_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_names",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "django_recall_calendar.pipeline.require_logged_in_user",
    "social_core.pipeline.social_auth.social_user",
    "social_core.pipeline.user.get_username",
    "social_core.pipeline.user.create_user",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.social_auth.load_extra_data",
    "django_recall_calendar.pipeline.connect_calendar",
    "social_core.pipeline.user.user_details",
)
SOCIAL_AUTH_GOOGLE_OAUTH2_SCOPE = ["https://www.googleapis.com/auth/calendar.events.readonly"]
SOCIAL_AUTH_GOOGLE_OAUTH2_AUTH_EXTRA_ARGUMENTS = {"access_type": "offline", "prompt": "consent"}
SOCIAL_AUTH_MICROSOFT_GRAPH_SCOPE = ["offline_access", "Calendars.Read"]  # + User.Read (default)
# Error reports hide social-auth's frames too (they hold the provider's tokens), as the README says.
DEFAULT_EXCEPTION_REPORTER_FILTER = "django_recall_calendar.debug.RecallExceptionReporterFilter"
SOCIAL_AUTH_LOGIN_ERROR_URL = "/recall/calendars/"
SOCIAL_AUTH_LOGIN_REDIRECT_URL = "/recall/calendars/"
LOGIN_URL = "/admin/login/"

# Django 6 ships django.tasks; on 5.2 the django-tasks backport provides the same backends.
TASKS_MODULE = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
TASKS = {"default": {"BACKEND": f"{TASKS_MODULE}.backends.immediate.ImmediateBackend"}}

# The recall_emulator fixture points BASE_URL at a local emulator; these are the static parts.
RECALL_CALENDAR = {
    "API_KEY": "test-api-key",
    "WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "BASE_URL": "http://127.0.0.1:9",
    "TIMEOUT": 2.0,
    "BACKOFF_BASE": 0.01,
    "BACKOFF_CAP": 0.05,
    "RETRY_AFTER_CAP": 0.2,
    # One process runs the suite: its budget in memory, emptied for every test by the
    # recall_emulator fixture, and roomy enough for a property test's hundred syncs; the tests of
    # the budget set their own rates and stores (Redis, the database).
    "RATE_LIMIT_STORAGE": "memory://",
    "RATE_LIMITS": {
        name: "100000/min"
        for name in ("event_listings", "calendar_listings", "bot_scheduling", "bot_v1", "other")
    },
}
