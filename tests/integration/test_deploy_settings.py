"""banksim.settings.production, loaded the way a deployment loads it: a fresh process whose
environment holds only what an operator would set."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/banksim"


def production_env(**overrides: str | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # Nothing of the test run's own configuration may leak into the deployment.
        if key
        not in {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG", "DATABASE_URL"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="banksim.settings.production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="bank.example.com",
        DATABASE_URL=os.environ.get("DATABASE_URL", LOCAL_DATABASE_URL),
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestProductionSettings:
    def test_pass_the_deploy_check_with_a_production_environment(self):
        result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())

        assert result.returncode == 0, result.stdout + result.stderr
        assert "no issues" in result.stdout

    def test_fail_the_deploy_check_with_a_weak_secret_key(self):
        env = production_env(SECRET_KEY="short-key")

        result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)

        assert result.returncode != 0
        assert "security.W009" in result.stderr

    def test_refuse_to_load_without_a_secret_key(self):
        result = manage("check", env=production_env(SECRET_KEY=None))

        assert result.returncode != 0
        assert "ImproperlyConfigured: SECRET_KEY must be set in the environment" in result.stderr

    def test_refuse_to_load_without_allowed_hosts(self):
        result = manage("check", env=production_env(ALLOWED_HOSTS=None))

        assert result.returncode != 0
        assert "ImproperlyConfigured" in result.stderr
        assert "ALLOWED_HOSTS" in result.stderr

    def test_keep_debug_off_even_when_the_environment_asks_for_it(self):
        env = production_env(DEBUG="true")

        result = manage(
            "shell", "-c", "from django.conf import settings; print(settings.DEBUG)", env=env
        )

        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "False"
