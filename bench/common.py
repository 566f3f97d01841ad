"""Plumbing every benchmark shares: a throwaway database, Django against it, pgbench as the
yardstick, timed worker processes, latency percentiles and a readable results table.

Design overview: a benchmark never touches a developer's data. It creates its own database on
the local server, migrates it, seeds it, measures, and drops it (unless asked to keep it).
Load comes from *processes*, not threads: Python threads would measure the GIL, not the bank.
Workers are forked from a parent that has already run ``django.setup()``, after it closed its
own connections, so every worker opens its own PostgreSQL session. Each phase is timed the same
way: all workers meet at a barrier, run a warm-up, then count only the operations that started
and finished inside the measured window.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import os
import re
import socket
import subprocess
import sys
import time
import traceback
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# The server every benchmark runs against; trust auth on the local machine by default.
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
PGBENCH = os.environ.get("BENCH_PGBENCH", "/usr/bin/pgbench")

# An operation returns None on success or a short error label (e.g. a domain error code).
Operation = Callable[[], str | None]
# Runs in the worker process after the fork; builds that worker's operation.
OperationFactory = Callable[[int], Operation]


def log(message: str) -> None:
    print(message, flush=True)


# --- throwaway databases ---------------------------------------------------------------------


def db_url(name: str) -> str:
    return f"{PG_SERVER}/{name}"


def _pg_parts() -> dict[str, str]:
    match = re.fullmatch(
        r"postgres(?:ql)?://(?P<user>[^@:/]+)@(?P<host>[^:/]+):(?P<port>\d+)", PG_SERVER
    )
    if match is None:
        raise SystemExit(
            f"BENCH_PG_SERVER must look like postgres://user@host:port, not {PG_SERVER}"
        )
    return match.groupdict()


def _admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(db_url("postgres"), autocommit=True) as conn:
        conn.execute(sql)


def _check_db_name(name: str) -> str:
    # The name goes into DDL unquoted-by-driver; refuse anything but a plain identifier.
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise SystemExit(f"refusing database name {name!r}: use [a-z0-9_] only")
    return name


def database_recreate(name: str) -> None:
    """Drop (forcing out stale sessions) and create an empty database."""
    name = _check_db_name(name)
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin_execute(f'CREATE DATABASE "{name}"')


def database_drop(name: str) -> None:
    _admin_execute(f'DROP DATABASE IF EXISTS "{_check_db_name(name)}" WITH (FORCE)')


# --- Django against the bench database -------------------------------------------------------


def django_env(db_name: str, settings_module: str = "banksim.settings.local") -> dict[str, str]:
    """Environment that points Django (this process, gunicorn) at the bench database."""
    return {
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DATABASE_URL": db_url(db_name),
        "DEBUG": "0",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        # Persistent connections, as a deployed server would run.
        "DB_CONN_MAX_AGE": "600",
    }


def django_setup(db_name: str, settings_module: str = "banksim.settings.local") -> None:
    """Point this process at the bench database and set Django up (call once, before forks)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    # Settings read the environment at import time, so this must come first.
    os.environ.update(django_env(db_name, settings_module))
    import django

    django.setup()


def django_migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False, skip_checks=True)


def close_db_connections() -> None:
    """Close this process's connections so a fork does not share a socket with its parent."""
    from django.db import connections

    connections.close_all()


# --- pgbench: the reference on the same server -----------------------------------------------


class PgbenchFailed(RuntimeError):
    """pgbench exited non-zero or printed no tps."""


@dataclass(frozen=True)
class PgbenchResult:
    tps: float
    latency_ms: float | None
    clients: int
    output: str
    # CPU per transaction (ms) of the server backends and of pgbench itself, sampled mid-run.
    postgres_cpu_ms: float | None = None
    client_cpu_ms: float | None = None
    machine_busy: float | None = None


def pgbench_run(
    *, db_name: str, scale: int, clients: int, threads: int, seconds: int, keep: bool = False
) -> PgbenchResult:
    """Run pgbench's built-in TPC-B-like script in its own throwaway database."""
    database_recreate(db_name)
    try:
        parts = _pg_parts()
        init = [PGBENCH, "-h", parts["host"], "-p", parts["port"], "-U", parts["user"]]
        init += ["-i", "-q", "-s", str(scale), db_name]
        done = subprocess.run(init, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PgbenchFailed(f"pgbench -i failed: {done.stderr or done.stdout}")
        return pgbench_measure(
            db_name=db_name, clients=clients, threads=threads, seconds=seconds, extra=[]
        )
    finally:
        if not keep:
            database_drop(db_name)


def pgbench_measure(
    *, db_name: str, clients: int, threads: int, seconds: int, extra: list[str]
) -> PgbenchResult:
    """Run pgbench (``extra``: e.g. ``["-n", "-f", script]``) and sample CPU mid-run."""
    parts = _pg_parts()
    command = [PGBENCH, "-h", parts["host"], "-p", parts["port"], "-U", parts["user"]]
    command += ["-c", str(clients), "-j", str(threads), "-T", str(seconds), "-M", "prepared"]
    command += [*extra, db_name]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Sample CPU over the middle of the run, once every client is connected.
    margin = min(1.0, seconds / 4)
    time.sleep(margin)
    groups = {"postgres": pg_backend_pids(db_name), "client": [proc.pid]}
    before, busy0, t0 = _cpu_snapshot(groups), machine_cpu(), time.monotonic()
    time.sleep(max(0.0, seconds - 2 * margin))
    after, busy1, t1 = _cpu_snapshot(groups), machine_cpu(), time.monotonic()
    stdout, stderr = proc.communicate(timeout=seconds + 120)
    if proc.returncode != 0:
        raise PgbenchFailed(f"pgbench failed: {stderr or stdout}")
    found = re.search(r"^tps = ([0-9.]+)", stdout, re.MULTILINE)
    latency = re.search(r"^latency average = ([0-9.]+) ms", stdout, re.MULTILINE)
    if found is None:
        raise PgbenchFailed(f"could not read tps from pgbench output:\n{stdout}")
    tps = float(found.group(1))

    def per_txn(role: str) -> float | None:
        used = sum(after[role][p] - before[role][p] for p in after[role] if p in before[role])
        return used / (t1 - t0) * 1000.0 / tps if tps and t1 > t0 else None

    return PgbenchResult(
        tps=tps,
        latency_ms=float(latency.group(1)) if latency else None,
        clients=clients,
        output=stdout,
        postgres_cpu_ms=per_txn("postgres"),
        client_cpu_ms=per_txn("client"),
        machine_busy=(busy1[0] - busy0[0]) / max(1e-9, busy1[1] - busy0[1]),
    )


# --- timed phases in worker processes --------------------------------------------------------


def parse_worker_counts(text: str) -> list[int]:
    """``--workers``' comma-separated counts, each once, smallest first."""
    return sorted({int(w) for w in text.split(",") if w.strip()})


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(pct / 100.0 * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class PhaseResult:
    name: str
    workers: int
    seconds: float
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    # Set when the phase could not run (e.g. the endpoint does not exist yet).
    skipped: str = ""
    cpu: CpuSample | None = None

    def cpu_ms_per_op(self, role: str) -> float | None:
        if self.cpu is None or role not in self.cpu.by_role or not self.ok:
            return None
        # CPU rate over the sampled window divided by the operation rate of the phase.
        return self.cpu.by_role[role] / self.cpu.seconds * 1000.0 / self.tps

    @property
    def tps(self) -> float:
        return self.ok / self.seconds if self.seconds and not self.skipped else 0.0

    def p(self, pct: float) -> float:
        return percentile(self.latencies_ms, pct)

    def errors_text(self) -> str:
        if self.skipped:
            return self.skipped
        if not self.errors:
            return "-"
        return ", ".join(f"{label} x{count}" for label, count in self.errors.most_common())


def _worker_main(
    index: int,
    factory: OperationFactory,
    barrier: Any,
    sampled: Any,
    warmup: float,
    duration: float,
    results: Any,
) -> None:
    latencies = array("d")
    errors: Counter[str] = Counter()
    ok = 0
    try:
        operation = factory(index)
        barrier.wait(timeout=120)
        # CLOCK_MONOTONIC is system-wide on Linux, and all workers leave the barrier together.
        start = time.monotonic() + warmup
        end = start + duration
        while True:
            t0 = time.monotonic()
            try:
                label = operation()
            except Exception as exc:  # a crash is a measured error, not the end of the phase
                label = type(exc).__name__
            t1 = time.monotonic()
            if t0 >= start and t1 <= end:
                if label is None:
                    ok += 1
                    latencies.append((t1 - t0) * 1000.0)
                else:
                    errors[label] += 1
            if t1 >= end:
                break
        # Stay alive (and keep the DB session open) until the parent has read our CPU use.
        sampled.wait(timeout=60)
        results.put((index, ok, dict(errors), latencies.tobytes(), ""))
    except BaseException:
        results.put((index, ok, dict(errors), latencies.tobytes(), traceback.format_exc()))


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU a process has used so far (Linux /proc), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name may hold spaces; fields after the closing paren are space separated.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (Linux /proc/stat)."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / _CLK_TCK, total / _CLK_TCK


def pg_backend_pids(db_name: str) -> list[int]:
    import psycopg

    with psycopg.connect(db_url("postgres"), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = %s AND backend_type = 'client backend'",
            [db_name],
        ).fetchall()
    return [int(r[0]) for r in rows]


def descendant_pids(root: int) -> list[int]:
    """A process and all its descendants (e.g. gunicorn's master and workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds used during the measured window, by role, and the machine's busy share."""

    seconds: float  # length of the sampled window (close to, not exactly, the phase's)
    by_role: dict[str, float]
    machine_busy: float  # 0..1 of all cores
    cores: int


def _cpu_snapshot(groups: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    snap: dict[str, dict[int, float]] = {}
    for role, pids in groups.items():
        snap[role] = {}
        for pid in pids:
            cpu = process_cpu_seconds(pid)
            if cpu is not None:
                snap[role][pid] = cpu
    return snap


def _housekeeping_main(job: Callable[[], object], every: float, stop: Any) -> None:
    while not stop.wait(every):
        job()


def run_phase(
    *,
    name: str,
    workers: int,
    factory: OperationFactory,
    warmup: float,
    duration: float,
    cpu_groups: Callable[[list[int]], dict[str, list[int]]] | None = None,
    housekeeping: Callable[[], object] | None = None,
    housekeeping_every: float = 5.0,
) -> PhaseResult:
    """Run ``workers`` forked processes doing ``factory(i)()`` in a loop; merge their figures.

    ``cpu_groups(worker_pids)`` names the processes whose CPU use during the measured window is
    reported per role (e.g. {"client": workers, "postgres": backends}).
    ``housekeeping()``, if given, runs every ``housekeeping_every`` seconds in a process of its
    own for the whole phase: the periodic work Celery beat does beside real traffic.
    The caller must have closed its DB connections (``close_db_connections``) before this.
    """
    ctx = mp.get_context("fork")
    # The parent is a party too, so it knows when the warm-up starts and can sample CPU.
    barrier = ctx.Barrier(workers + 1)
    sampled = ctx.Event()
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(i, factory, barrier, sampled, warmup, duration, results),
            name=f"{name}-{i}",
        )
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    keeper = None
    if housekeeping is not None:
        keeper = ctx.Process(
            target=_housekeeping_main,
            args=(housekeeping, housekeeping_every, sampled),
            name=f"{name}-housekeeping",
        )
        keeper.start()
    phase = PhaseResult(name=name, workers=workers, seconds=duration)
    try:
        barrier.wait(timeout=120)
    except Exception:  # a worker failed while starting; its own report says why
        sampled.set()
    else:
        measured_from = time.monotonic() + warmup
        time.sleep(warmup)
        groups = cpu_groups([p.pid for p in procs if p.pid]) if cpu_groups else {}
        before, busy0, t0 = _cpu_snapshot(groups), machine_cpu(), time.monotonic()
        time.sleep(max(0.0, measured_from + duration - time.monotonic()))
        after, busy1, t1 = _cpu_snapshot(groups), machine_cpu(), time.monotonic()
        sampled.set()
        phase.cpu = CpuSample(
            seconds=t1 - t0,
            by_role={
                role: sum(
                    after[role][pid] - before[role][pid]
                    for pid in after[role]
                    if pid in before[role]
                )
                for role in groups
            },
            machine_busy=(busy1[0] - busy0[0]) / max(1e-9, busy1[1] - busy0[1]),
            cores=os.cpu_count() or 1,
        )
    failures: list[str] = []
    deadline = time.monotonic() + 120 + warmup + duration
    for _ in procs:
        _, ok, errors, raw, failure = results.get(timeout=max(1.0, deadline - time.monotonic()))
        phase.ok += ok
        phase.errors.update(errors)
        lat = array("d")
        lat.frombytes(raw)
        phase.latencies_ms.extend(lat)
        if failure:
            failures.append(failure)
    for proc in procs:
        proc.join(timeout=30)
    if keeper is not None:
        keeper.join(timeout=30)
    if failures:
        raise RuntimeError(f"{len(failures)} worker(s) of {name} crashed:\n" + failures[0])
    phase.latencies_ms.sort()
    return phase


def _forked_results(
    what: str,
    workers: int,
    target: Callable[..., None],
    args_of: Callable[[Any, Any], tuple[Any, ...]],
    *,
    timeout: float,
) -> list[tuple[Any, ...]]:
    """Fork ``workers`` processes ``target(index, *args_of(barrier, out))``, each putting one
    tuple on ``out`` whose last item is a traceback or ""; return the tuples, or raise the
    first traceback."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(workers)
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(i, *args_of(barrier, out))) for i in range(workers)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=timeout) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    failures = [failure for *_, failure in results if failure]
    if failures:
        raise RuntimeError(f"{len(failures)} {what} worker(s) crashed:\n" + failures[0])
    return results


@dataclass(frozen=True)
class WorkerFigures:
    """One worker of a split phase: its transfers and the CPU it and its own backend used."""

    index: int
    ok: int
    cpu_seconds: float  # the worker process plus its PostgreSQL backend, measured window only


def _own_backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _split_worker_main(
    index: int, factory: OperationFactory, barrier: Any, warmup: float, duration: float, out: Any
) -> None:
    try:
        operation = factory(index)
        barrier.wait(timeout=120)
        start = time.monotonic() + warmup
        end = start + duration

        def attempt() -> bool:
            try:
                return operation() is None
            except Exception:  # counted as not done, as run_phase counts it as an error
                return False

        while time.monotonic() < start:
            attempt()
        backend = _own_backend_pid()  # a persistent connection: the same backend throughout

        def used() -> float:
            return (process_cpu_seconds(os.getpid()) or 0.0) + (process_cpu_seconds(backend) or 0.0)

        ok, cpu0 = 0, used()
        while time.monotonic() < end:
            ok += attempt()
        out.put((index, ok, used() - cpu0, ""))
    except BaseException:
        out.put((index, 0, 0.0, traceback.format_exc()))


def run_split_phase(
    *, workers: int, factory: OperationFactory, warmup: float, duration: float
) -> list[WorkerFigures]:
    """Run ``workers`` forked processes at once, each reporting its own figures.

    For comparing two variants *inside* one phase (``factory`` gives some workers one, the
    rest the other): the machine's drift then weighs on both at every instant, which
    back-to-back phases cannot promise. Each worker counts its successful operations and the
    CPU that it and its own database backend used (an operation that fails or raises is not
    counted, its CPU is); work done elsewhere on behalf of all (WAL writer, checkpointer, the
    kernel's writeback) is not in any worker's figure.
    Requires Django with a persistent connection (``django_setup``), closed in the parent.
    """
    results = _forked_results(
        "split-phase",
        workers,
        _split_worker_main,
        lambda barrier, out: (factory, barrier, warmup, duration, out),
        timeout=180 + warmup + duration,
    )
    return sorted(
        (WorkerFigures(index=i, ok=ok, cpu_seconds=cpu) for i, ok, cpu, _ in results),
        key=lambda figures: figures.index,
    )


@dataclass(frozen=True)
class InterleavedFigures:
    """One interleaved phase: operations done in the slots with the thing on, and without.

    Both sides had the same measured time (half the slots each, less each slot's guard), so
    their counts compare as throughputs.
    """

    ok_on: int
    ok_off: int
    failed: int
    seconds_per_side: float
    # The longest a controller's switch took after its slot began (0.0 without a controller):
    # longer than the guard means operations were counted on the wrong side.
    switch_lag: float = 0.0

    @property
    def cost(self) -> float | None:
        """1 - throughput on / throughput off."""
        return 1 - self.ok_on / self.ok_off if self.ok_off else None


@dataclass(frozen=True)
class _Slots:
    warmup: float
    slot: float
    slots: int
    flip: bool
    guard: float

    def window(self) -> tuple[float, float]:
        # Slots are numbered on the system-wide CLOCK_MONOTONIC, so every process switches at
        # the same instants whenever it left the barrier; the window starts on a slot's edge.
        first = math.ceil((time.monotonic() + self.warmup) / self.slot)
        return first * self.slot, (first + self.slots) * self.slot

    def on(self, number: int) -> bool:
        return (number + self.flip) % 2 == 1


def _interleaved_main(
    index: int,
    workers: int,
    factory: OperationFactory,
    switch: Callable[[bool], None] | None,
    controller: Callable[[bool], None] | None,
    barrier: Any,
    slots: _Slots,
    out: Any,
) -> None:
    try:
        if index == workers:
            assert controller is not None
            barrier.wait(timeout=120)
            out.put((index, 0, 0, 0, _control(controller, slots), ""))
            return
        operation = factory(index)
        barrier.wait(timeout=120)
        start, end = slots.window()
        done = [0, 0]
        failed = 0
        state: bool | None = None
        while (now := time.monotonic()) < end:
            number = int(now // slots.slot)
            on = slots.on(number)
            if switch is not None and on is not state:
                switch(on)
                state = on
            try:
                ok = operation() is None
            except Exception:  # counted as not done, as run_phase counts it as an error
                ok = False
            if now >= start and now - number * slots.slot >= slots.guard:
                if ok:
                    done[on] += 1
                else:
                    failed += 1
        out.put((index, done[True], done[False], failed, 0.0, ""))
    except BaseException:
        out.put((index, 0, 0, 0, 0.0, traceback.format_exc()))


def _control(controller: Callable[[bool], None], slots: _Slots) -> float:
    """Switch at every slot's edge until the window ends; the longest switch inside it."""
    start, end = slots.window()
    # A worker that left the barrier across a slot's edge from here has its window one slot
    # later: keep switching through that slot too.
    end += slots.slot
    number = int(time.monotonic() // slots.slot)
    controller(slots.on(number))  # opens this process's database session
    # Instrument, not load: ahead of the workers in the run queue, its switch commits in
    # milliseconds instead of waiting behind sixteen busy processes (needs root; else as is).
    for pid in (os.getpid(), _own_backend_pid()):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, -10)
    lag = 0.0
    while (edge := (number + 1) * slots.slot) < end:
        number += 1
        time.sleep(max(0.0, edge - time.monotonic()))
        controller(slots.on(number))
        if edge >= start:
            lag = max(lag, time.monotonic() - edge)
    return lag


def run_interleaved_phase(
    *,
    workers: int,
    factory: OperationFactory,
    warmup: float,
    duration: float,
    slot: float,
    switch: Callable[[bool], None] | None = None,
    controller: Callable[[bool], None] | None = None,
    guard: float = 0.0,
    flip: bool = False,
) -> InterleavedFigures:
    """Run ``workers`` forked processes while a variant is switched on and off every ``slot``
    seconds, at the same instants for all, and count what they did in each side's slots.

    For comparing two variants' *throughput* on a machine whose speed drifts from second to
    second: back-to-back phases put a slow stretch on one side, while slots of half a second
    spread it over both. Unlike ``run_split_phase``, the whole load is one variant at any
    instant, so what the variant costs everyone (contention on shared pages and locks, WAL,
    background processes) falls in its own slots. An operation counts in the slot it started
    in, unless it started within ``guard`` seconds of the slot's start.

    The switch is either ``switch(on)``, run in every worker process before its first
    operation of each slot (a process's own settings), or ``controller(on)``, run in one
    more process at each slot's edge (a change in the database, which takes a while to
    commit: give it a ``guard``). ``flip`` swaps which slots are on. Requires Django with a
    persistent connection (``django_setup``), closed in the parent.
    """
    assert (switch is None) != (controller is None), "one switch or one controller"
    count = max(2, 2 * round(duration / slot / 2))
    slots = _Slots(warmup=warmup, slot=slot, slots=count, flip=flip, guard=guard)
    results = _forked_results(
        "interleaved",
        workers + (controller is not None),
        _interleaved_main,
        lambda barrier, out: (workers, factory, switch, controller, barrier, slots, out),
        timeout=180 + warmup + duration,
    )
    return InterleavedFigures(
        ok_on=sum(r[1] for r in results),
        ok_off=sum(r[2] for r in results),
        failed=sum(r[3] for r in results),
        seconds_per_side=count / 2 * (slot - guard),
        switch_lag=max(r[4] for r in results),
    )


# --- HTTP helpers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


def problem_code(status: int, body: bytes) -> str:
    """Label an HTTP failure by its problem+json ``code`` when there is one."""
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        code = None
    return f"http_{status}:{code}" if code else f"http_{status}"


# --- reporting -------------------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-align text, right-align numbers; one header rule."""
    cells = [[str(c) for c in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [
        all(isinstance(row[i], int | float) for row in rows) if rows else False
        for i in range(len(headers))
    ]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if num else cell.ljust(w)
            for cell, w, num in zip(row, widths, numeric, strict=True)
        ).rstrip()

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells[1:])
    return "\n".join(out)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def fmt_number(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "n/a"
    return f"{value / reference:.3f}"
