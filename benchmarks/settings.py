"""Django settings for the benchmarks: the app with the admin and the REST API, no debug.

``BENCH_DATABASE`` picks the database: ``sqlite`` (a file, as a real deployment would use, not an
in-memory database that flatters every write) or ``postgres`` (127.0.0.1:5432, user postgres). The
harness creates the scratch database named by ``TEST["NAME"]`` and drops it afterwards. Connections
persist across requests (``CONN_MAX_AGE``), as a production deployment configures them.
"""

import os
import tempfile
from pathlib import Path

import django

SECRET_KEY = "benchmarks-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "benchmarks.urls"
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
    "django.contrib.messages.middleware.MessageMiddleware",
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

DATABASE = os.environ.get("BENCH_DATABASE", "sqlite")
if DATABASE == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "postgres",
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "CONN_MAX_AGE": 60,
            "TEST": {"NAME": "recall_bench"},
        }
    }
elif DATABASE == "sqlite":
    _FILE = Path(tempfile.gettempdir()) / f"recall_bench_{os.getpid()}.sqlite3"
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(_FILE),
            "CONN_MAX_AGE": 60,
            "TEST": {"NAME": str(_FILE)},
        }
    }
else:
    raise RuntimeError(f"BENCH_DATABASE must be 'sqlite' or 'postgres', not {DATABASE!r}.")

STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]

# Only enqueue: the webhook benchmark measures ingestion, not the processing a worker does later.
TASKS_MODULE = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
TASKS = {"default": {"BACKEND": f"{TASKS_MODULE}.backends.dummy.DummyBackend"}}

# The harness points BASE_URL at its emulator; short backoffs keep a retry from skewing a timing.
RECALL_CALENDAR = {
    "API_KEY": "bench-api-key",
    "WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "BASE_URL": "http://127.0.0.1:9",
    "TIMEOUT": 30.0,
    "BACKOFF_BASE": 0.01,
    "BACKOFF_CAP": 0.05,
}
