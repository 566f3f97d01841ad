"""One reader of the environment for every setting (Healthchecks' rule: bad values fail loudly)."""

from __future__ import annotations

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()


def require(name: str) -> str:
    """Return a variable that has no safe default (secrets, production hosts)."""
    value = env.str(name, default="")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in the environment")
    return value
