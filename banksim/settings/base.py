"""Settings shared by every environment; each value comes from the environment via banksim.env."""

from __future__ import annotations

from pathlib import Path

from celery.schedules import crontab as _crontab

from banksim.env import env

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env.str("BANKSIM_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = False
APPEND_SLASH = False
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "simple_history",
    "accounts",
    "ledger",
    "fees",
    "limits",
    "outbox",
    "audit",
    "interest",
    "instructions",
    "eod",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outermost after security: it records the status the client really gets (docs/audit.md).
    "audit.middleware.AuditMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "banksim.urls"
WSGI_APPLICATION = "banksim.wsgi.application"

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
            ],
        },
    },
]

# PostgreSQL everywhere: triggers, row locks and deferred constraints are part of the design.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/banksim"),
}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Server-side binding lets psycopg prepare a statement after it has run a few times, so the
# posting path's SQL is parsed and planned once per connection instead of on every call
# (measured: about 40% less server CPU per statement). Needs PgBouncer >= 1.21 if pooled.
DATABASES["default"].setdefault("OPTIONS", {}).update(
    {
        "server_side_binding": env.bool("DB_SERVER_SIDE_BINDING", default=True),
        "prepare_threshold": env.int("DB_PREPARE_THRESHOLD", default=5),
    }
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["banksim.api.permissions.IsBankStaff"],
    "DEFAULT_PARSER_CLASSES": ["banksim.api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "banksim.api.exceptions.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "BankSim teller API",
    "DESCRIPTION": (
        "Finacle-style core banking simulator. Every error is RFC 9457 "
        "application/problem+json with a stable `code` (see docs/api-errors.md)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Several operations share a path (GET/POST /customers); show each one's own view.
    "PREPROCESSING_HOOKS": ["banksim.api.schema.expand_method_routes"],
}

# History is an audit trail: nothing is restored from it through the admin.
SIMPLE_HISTORY_REVERT_DISABLED = True

# Audit log (docs/audit.md): which paths get a row per request, how many reverse proxies in
# front of the app may be trusted to write X-Forwarded-For, and how often beat seals the chain.
AUDIT_REQUEST_PATH_PREFIXES = ("/api/", "/admin/")
AUDIT_TRUSTED_PROXIES = env.int("AUDIT_TRUSTED_PROXIES", default=0)
AUDIT_SEAL_INTERVAL_SECONDS = env.float("AUDIT_SEAL_INTERVAL_SECONDS", default=10.0)
AUDIT_BENCH_SKIP_DECISIONS = False  # only bench/transfers.py sets it, in its own process

# Celery: the broker is RabbitMQ or Redis in production, an on-disk transport in the embedded run.
CELERY_BROKER_URL = env.str("BROKER_URL", default="amqp://guest:guest@127.0.0.1:5672//")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
CELERY_TASK_ACKS_LATE = True
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Embedded run (bin/banksim up): producers and the worker share one on-disk queue folder,
    # which the launcher creates.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "broker" / "queue"),
        "data_folder_out": str(VAR_DIR / "broker" / "queue"),
        "processed_folder": str(VAR_DIR / "broker" / "processed"),
        "control_folder": str(VAR_DIR / "broker" / "control"),
    }
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# How often beat folds office (GL) balance deltas into their rows (docs/architecture.md).
LEDGER_OFFICE_FOLD_SECONDS = env.float("LEDGER_OFFICE_FOLD_SECONDS", default=5.0)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Expired Idempotency-Key records (see IDEMPOTENCY_KEY_TTL_HOURS); hourly keeps each purge
    # small, and an expired record is already ignored before it is purged.
    "ledger-idempotency-purge": {
        "task": "ledger.idempotency_purge",
        "schedule": 3600.0,
        "options": {"queue": "maintenance"},
    },
    # Moves office (GL) balance deltas into their rows, so readers add only a few seconds'
    # worth; postings never lock those rows (docs/architecture.md, "Office balances").
    "ledger-office-fold": {
        "task": "ledger.office_fold",
        "schedule": LEDGER_OFFICE_FOLD_SECONDS,
        "options": {"expires": LEDGER_OFFICE_FOLD_SECONDS},
    },
    # Links committed audit rows into the hash chain; the posting path never waits for it.
    "audit-seal": {
        "task": "audit.seal",
        "schedule": AUDIT_SEAL_INTERVAL_SECONDS,
        "options": {"queue": "maintenance"},
    },
}

# Outbox and domain events (docs/events.md). Events go to EVENTS_URL: a RabbitMQ topic
# exchange (amqp://, amqps://) or JSON lines in a folder (file:///path). By default that is the
# Celery broker when it is RabbitMQ, else var/events (the embedded run).
_AMQP = ("amqp://", "amqps://", "pyamqp://")
_EMBEDDED_EVENTS_URL = f"file://{VAR_DIR}/events"
OUTBOX_PUBLISH_URL = env.str(
    "EVENTS_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(_AMQP) else _EMBEDDED_EVENTS_URL,
)
OUTBOX_EXCHANGE = env.str("EVENTS_EXCHANGE", default="banksim.events")
OUTBOX_QUEUE = "outbox"
# Nudges are Celery messages; off where no worker listens (tests), the sweep still runs.
OUTBOX_NUDGE = env.bool("OUTBOX_NUDGE", default=True)
OUTBOX_NUDGE_INTERVAL_SECONDS = 0.5
OUTBOX_NUDGE_EXPIRES_SECONDS = 30
OUTBOX_SWEEP_SECONDS = env.float("OUTBOX_SWEEP_SECONDS", default=5.0)
OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", default=500)
OUTBOX_LANES_PER_CLAIM = 8
OUTBOX_DRAINER_SLOTS = env.int("OUTBOX_DRAINERS", default=1)
OUTBOX_DRAIN_LINGER_SECONDS = 2.0
OUTBOX_DRAIN_POLL_SECONDS = 0.02
OUTBOX_DRAIN_MAX_SECONDS = 60.0
OUTBOX_CONFIRM_TIMEOUT_SECONDS = 15.0
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=10)
OUTBOX_BACKOFF_BASE_SECONDS = 1.0
OUTBOX_BACKOFF_MAX_SECONDS = 300.0
OUTBOX_BREAKER_THRESHOLD = 3
OUTBOX_BREAKER_COOLDOWN_SECONDS = 1.0
OUTBOX_BREAKER_MAX_COOLDOWN_SECONDS = 30.0
OUTBOX_RETENTION_DAYS = env.int("OUTBOX_RETENTION_DAYS", default=7)
# bench/outbox.py only: post without writing the transaction event, to price the outbox.
OUTBOX_BENCH_SKIP_POSTING_EVENTS = env.bool("BENCH_SKIP_OUTBOX", default=False)
# Queues are routed here, in one place (Celery 5.7 deprecates a task's own ``queue=``).
CELERY_TASK_ROUTES = {
    "outbox.drain": {"queue": OUTBOX_QUEUE},
    "outbox.purge": {"queue": "maintenance"},
    "ledger.idempotency_purge": {"queue": "maintenance"},
    "ledger.office_fold": {"queue": "maintenance"},
    "audit.seal": {"queue": "maintenance"},
}
CELERY_BEAT_SCHEDULE["outbox-sweep"] = {
    # Starts a drain in case a nudge was lost; a drain that finds all slots busy just ends.
    "task": "outbox.drain",
    "schedule": OUTBOX_SWEEP_SECONDS,
    "options": {
        "queue": OUTBOX_QUEUE,
        "expires": OUTBOX_SWEEP_SECONDS,
        "expiration": OUTBOX_SWEEP_SECONDS,
    },
}
CELERY_BEAT_SCHEDULE["outbox-purge"] = {
    "task": "outbox.purge",
    "schedule": 3600.0,
    "options": {"queue": "maintenance"},
}

# End of day (docs/eod.md): beat starts it daily at EOD_HOUR_UTC:EOD_MINUTE_UTC on its own
# queue, so a long run never delays maintenance or outbox work; the worker must consume "eod".
# The supervisor API and the admin enqueue the same task; the simulator and the tests call
# ``eod.services.eod_run`` directly.
EOD_HOUR_UTC = env.int("EOD_HOUR_UTC", default=22)
EOD_MINUTE_UTC = env.int("EOD_MINUTE_UTC", default=0)
CELERY_TASK_ROUTES["eod.*"] = {"queue": "eod"}
CELERY_BEAT_SCHEDULE["eod-run"] = {
    "task": "eod.run",
    "schedule": _crontab(hour=EOD_HOUR_UTC, minute=EOD_MINUTE_UTC),
    "kwargs": {"calendar_code": "MAIN"},
    "options": {"queue": "eod"},
}

REDIS_URL = env.str("REDIS_URL", default="")

# Maker-checker: movements above this many major units are entered, not posted (per currency
# default; products and channels may override).
MAKER_CHECKER_DEFAULT_THRESHOLD = env.str("MAKER_CHECKER_DEFAULT_THRESHOLD", default="1000000")
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=48)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
