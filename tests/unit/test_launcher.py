import subprocess
import sys
from pathlib import Path

import pytest

from banksim import launcher

ROOT = Path(__file__).resolve().parents[2]


class FakeRun:
    """Stands in for subprocess.run: records each command and answers with set exit codes."""

    def __init__(self, codes: dict[str, int]) -> None:
        self.codes = codes
        self.commands: list[list[str]] = []
        self.envs: list[dict[str, str]] = []

    def __call__(self, command, **kwargs):
        self.commands.append(list(command))
        self.envs.append(kwargs["env"])
        step = next((name for name in self.codes if name in command), None)
        return subprocess.CompletedProcess(command, self.codes.get(step, 0))


@pytest.fixture
def fake_run(monkeypatch):
    def install(**codes: int) -> FakeRun:
        fake = FakeRun({name.replace("_", "-"): code for name, code in codes.items()})
        monkeypatch.setattr(launcher.subprocess, "run", fake)
        monkeypatch.setattr(launcher, "_create_database", lambda url, name: False)
        return fake

    return install


class TestLauncherImport:
    def test_runs_as_a_script_without_importing_django(self):
        # bin/banksim runs the file with -P, so the banksim package (and Celery) stay unloaded.
        code = (
            "import runpy, sys; runpy.run_path('banksim/launcher.py', run_name='probe'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery')))"
        )

        result = subprocess.run(
            [sys.executable, "-P", "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )

        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[]"


class TestTestCommand:
    def test_runs_lint_format_migrations_check_then_pytest_with_the_extra_args(
        self, fake_run, monkeypatch
    ):
        monkeypatch.delenv("CI", raising=False)
        fake = fake_run()

        code = launcher.main(["test", "-k", "money"])

        assert code == 0
        assert [c[2:] for c in fake.commands] == [
            ["ruff", "check", "."],
            ["ruff", "format", "--check", "."],
            ["makemigrations", "--check", "--dry-run"],
            ["pytest", "-k", "money"],
        ]

    def test_counts_pytest_collecting_no_tests_as_a_failure(self, fake_run):
        fake_run(pytest=5)

        assert launcher.main(["test"]) == 1

    def test_stops_at_the_first_failing_step_with_its_exit_code(self, fake_run):
        fake = fake_run(makemigrations=1)

        code = launcher.main(["test"])

        assert code == 1
        assert not any("pytest" in c for c in fake.commands)

    def test_leaves_the_settings_module_of_pytest_to_pyproject(self, fake_run, monkeypatch):
        monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "banksim.settings.local")
        fake = fake_run()

        launcher.main(["test"])

        assert "DJANGO_SETTINGS_MODULE" not in fake.envs[-1]

    def test_recreates_the_test_database_under_ci(self, fake_run, monkeypatch):
        monkeypatch.setenv("CI", "true")
        fake = fake_run()

        launcher.main(["test"])

        assert fake.commands[-1][-1] == "--create-db"


class TestMain:
    def test_rejects_an_unknown_command(self, capsys):
        assert launcher.main(["deploy"]) == 2
        assert "usage" in capsys.readouterr().err


class TestAdminUrl:
    def test_points_at_the_maintenance_database_of_the_same_server(self):
        url = launcher._admin_url("postgresql://postgres:@/banksim?host=/srv/var/pgdata")

        assert "dbname=postgres" in url
        assert "host=/srv/var/pgdata" in url
        assert launcher._database_name("postgres://postgres@127.0.0.1:5432/banksim") == "banksim"
