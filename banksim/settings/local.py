"""Developer and embedded-demo settings: DEBUG on, a fixed non-secret key that only works here."""

from banksim.env import env
from banksim.settings.base import *  # noqa: F403

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="banksim-local-insecure-key-do-not-use-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"])
