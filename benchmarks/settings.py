"""Django settings for the benchmarks: the app with the admin and the REST API, no debug.

``BENCH_DATABASE`` picks the database: ``sqlite`` (a file, as a real deployment would use, not an
in-memory database that flatters every write) or ``postgres`` (127.0.0.1:5432, user postgres). The
harness creates the scratch database named by ``TEST["NAME"]`` (one per process, so runs never
share one) and drops it afterwards. Connections persist across requests (``CONN_MAX_AGE``), as a
production deployment configures them.

``BENCH_DATABASE_NAME`` names a scratch database that already exists: the HTTP servers the webhook
benchmark starts in their own processes use the one their parent created.
"""

import os
import tempfile
from pathlib import Path

import django

from tests import settings as test_settings

SECRET_KEY = "benchmarks-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "benchmarks.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The same apps and templates as the test suite; no social-auth middleware (nothing here logs in).
INSTALLED_APPS = test_settings.INSTALLED_APPS
MIDDLEWARE = [name for name in test_settings.MIDDLEWARE if not name.startswith("social_django")]
TEMPLATES = test_settings.TEMPLATES

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
            # Prepared statements, as psycopg's own default (and the floor's connection) has them;
            # Django leaves them off only for transaction-pooling proxies (PgBouncer < 1.21).
            "OPTIONS": {"prepare_threshold": 5},
            "TEST": {"NAME": f"recall_bench_{os.getpid()}"},
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
if os.environ.get("BENCH_DATABASE_NAME"):
    DATABASES["default"]["NAME"] = os.environ["BENCH_DATABASE_NAME"]

STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]

# Only enqueue: the webhook benchmark measures ingestion, not the processing a worker does later.
# The backend appends each enqueued task to a file, so the parent can check every delivery was
# enqueued once, whichever server process took it.
TASKS_MODULE = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
TASKS = {"default": {"BACKEND": "benchmarks.task_log.TaskLogBackend"}}

# The harness points BASE_URL at its emulator; short backoffs keep a retry from skewing a timing.
RECALL_CALENDAR = {
    "API_KEY": "bench-api-key",
    "WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "BASE_URL": "http://127.0.0.1:9",
    "TIMEOUT": 30.0,
    "BACKOFF_BASE": 0.01,
    "BACKOFF_CAP": 0.05,
    # The hand-off recommended for volume (docs/production.md): one push to the task queue per
    # 5 ms per process, not one per delivery. The floor enqueues nothing at all, so the endpoint
    # is compared with it as a busy site would run it.
    "WEBHOOK_HANDOFF_DELAY": 0.005,
    # These benchmarks time our code against the emulator, not Recall's limits (the burst
    # benchmark measures those): a budget per process, in memory, never the bottleneck.
    "RATE_LIMIT_STORAGE": "memory://",
    "RATE_LIMITS": {
        name: "1000000/min"
        for name in ("event_listings", "calendar_listings", "bot_scheduling", "bot_v1", "other")
    },
}
