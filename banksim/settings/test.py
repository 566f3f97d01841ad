"""Test settings: the machine's real PostgreSQL (pytest-django makes test_<name>)."""

from banksim.env import env
from banksim.settings.base import *  # noqa: F403
from banksim.settings.base import DATABASES

SECRET_KEY = "banksim-test-key"  # noqa: S105 - tests only
DEBUG = False
ALLOWED_HOSTS = ["*"]
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="test_banksim")}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = False
# No worker consumes nudges in tests; drains are run by the tests themselves.
OUTBOX_NUDGE = False
