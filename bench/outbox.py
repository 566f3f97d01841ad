"""Outbox benchmark: what the event write costs a transfer, how fast drainers publish, and
how long an event waits between its commit and RabbitMQ's confirm, under transfer load.

Usage (from the repository root, about 4 minutes with the defaults)::

    .venv/bin/python bench/outbox.py
    .venv/bin/python bench/outbox.py --accounts 200 --duration 3 --warmup 0.5   # toy run

It reuses the transfer benchmark's bank (``bench/transfers.py``: 10,000 funded accounts,
random transfers through ``ledger.services.movement_execute`` in worker processes) and a
throwaway exchange and queue on the local RabbitMQ (``BENCH_AMQP_URL``).

0. **Where the maximum is**: after one unmeasured phase (a fresh database's first phase runs
   slow), one phase without the event per ``--workers`` count (2, 4, 8). The fastest count
   is where the maximum is measured: on a 2-core machine eight workers and their eight
   backends spent 58 % more CPU per transfer than two (switching between sixteen
   processes), so the top of the list is not the top of the load.
1. **Price of the write**: at that count, the service phase without the transaction event
   (``OUTBOX_BENCH_SKIP_POSTING_EVENTS``, a switch only this script uses) and with it, in
   ABBA rounds, no drainer running. ``cost`` is the median over the rounds of each round's
   own 1 - tps(with) / tps(without), as in ``bench/transfers.py``.
2. **Drain under load**: transfers paced at ``--load`` (70 %) of the measured maximum (the
   tps with the event at the fastest count), spread over the largest count of workers so
   the load can hold its rate beside the drainers, while ``--drainers`` drain loops (the
   code the Celery task runs)
   publish with confirms. They start with the backlog phase 1 left behind, so their catch-up
   is a measure of drain capacity: ``drain_eps`` = events published per second until the
   backlog is gone, with the new events still arriving; ``insert_eps`` = events written per
   second by the paced load. Once caught up, every event's commit-to-confirm lag is
   ``published_at - enqueued_at`` (both the database clock; ``enqueued_at`` is written by the
   last statement before the commit).

The last line is ``RESULT drain_eps=... insert_eps=... lag_p50_ms=... lag_p99_ms=...
ratio_drain=...`` (targets: ratio_drain >= 1.5, lag p99 <= 1000 ms).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PhaseResult,
    close_db_connections,
    database_drop,
    database_recreate,
    django_migrate,
    django_setup,
    fmt_number,
    format_table,
    log,
    parse_worker_counts,
    percentile,
    run_phase,
)
from bench.transfers import (
    Comparison,
    SeededBank,
    office_fold,
    seed_bank,
    service_cpu_groups,
    service_factory,
)

AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def paced(factory: Any, *, per_worker_tps: float) -> Any:
    """Wrap an operation factory so each worker runs at most ``per_worker_tps`` operations/s."""

    def build(index: int) -> Any:
        operation = factory(index)
        interval = 1.0 / per_worker_tps
        state = {"next": 0.0}

        def op() -> str | None:
            now = time.monotonic()
            if state["next"] == 0.0:
                # Spread the workers' first calls over one interval.
                state["next"] = now + interval * index / 8
            if state["next"] > now:
                time.sleep(state["next"] - now)
            state["next"] = max(state["next"] + interval, time.monotonic() - interval)
            return operation()

        return op

    return build


def _drainer_main(exchange: str, stop: Any, batch_size: int, drainers: int) -> None:
    from django.utils import timezone

    from outbox.breaker import CircuitBreaker
    from outbox.publishers import AmqpPublisher
    from outbox.services import DrainConfig, outbox_drain

    outbox_drain(
        publisher=AmqpPublisher(url=AMQP_URL, exchange=exchange),
        breaker=CircuitBreaker(),
        config=DrainConfig.from_settings(
            batch_size=batch_size,
            slots=drainers,
            lanes_per_claim=max(1, 16 // drainers),
            linger_seconds=None,
            max_seconds=None,
        ),
        clock=timezone.now,
        should_stop=stop.is_set,
    )
    close_db_connections()


def start_drainers(*, exchange: str, count: int, batch_size: int) -> tuple[Any, list[Any]]:
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    procs = [
        ctx.Process(
            target=_drainer_main, args=(exchange, stop, batch_size, count), name=f"drainer-{i}"
        )
        for i in range(count)
    ]
    for proc in procs:
        proc.start()
    return stop, procs


def last_event_id() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM outbox_outboxevent")
        return int(cursor.fetchone()[0])


def drain_figures(*, backlog_upto: int, since: int) -> dict[str, Any]:
    """Catch-up rate and lag, from the rows' own timestamps (database clock)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(published_at), max(published_at) FILTER (WHERE id <= %s),"
            "       count(*) FILTER (WHERE status <> 'published')"
            "  FROM outbox_outboxevent WHERE id > %s OR id <= %s",
            [backlog_upto, since, backlog_upto],
        )
        first, caught_up, unpublished = cursor.fetchone()
        if first is None or caught_up is None:
            return {
                "drained": 0,
                "catch_up_seconds": 0.0,
                "drain_eps": None,
                "lags": [],
                "unpublished": unpublished,
                "arrival_eps": (None, None),
            }
        cursor.execute(
            "SELECT count(*) FROM outbox_outboxevent WHERE published_at BETWEEN %s AND %s",
            [first, caught_up],
        )
        drained = int(cursor.fetchone()[0])
        # Lag of the events that arrived after the catch-up (steady state).
        cursor.execute(
            "SELECT extract(epoch FROM published_at - enqueued_at) * 1000"
            "  FROM outbox_outboxevent WHERE id > %s AND enqueued_at > %s + interval '0.5 s'"
            "   AND status = 'published' ORDER BY 1",
            [since, caught_up],
        )
        lags = [float(r[0]) for r in cursor.fetchall()]
        # The load's own rate while the drainer caught up and after: the drainer takes CPU
        # from the load on a shared machine, so the paced rate may not hold during catch-up.
        cursor.execute(
            "SELECT count(*) FILTER (WHERE enqueued_at BETWEEN %s AND %s),"
            "       count(*) FILTER (WHERE enqueued_at > %s), max(enqueued_at)"
            "  FROM outbox_outboxevent WHERE id > %s",
            [first, caught_up, caught_up, since],
        )
        during, after, last = cursor.fetchone()
    seconds = (caught_up - first).total_seconds() if first and caught_up else 0.0
    after_seconds = (last - caught_up).total_seconds() if last and last > caught_up else 0.0
    return {
        "drained": drained,
        "catch_up_seconds": seconds,
        "drain_eps": drained / seconds if seconds > 0 else None,
        "lags": lags,
        "unpublished": unpublished,
        "arrival_eps": (
            during / seconds if seconds > 0 else None,
            after / after_seconds if after_seconds > 0 else None,
        ),
    }


def cpu_per_transfer(phases: list[PhaseResult]) -> float | None:
    """CPU ms per transfer of the workers and their PostgreSQL backends, over all rounds."""
    used = ok = 0.0
    for phase in phases:
        if phase.cpu is None or not phase.ok:
            return None
        rate = phase.ok / phase.seconds  # transfers per second in the measured window
        cpu = sum(phase.cpu.by_role.get(role, 0.0) for role in ("client", "postgres"))
        used += cpu / phase.cpu.seconds  # CPU seconds per second
        ok += rate
    return used / ok * 1000.0 if ok else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", default="banksim_bench_outbox", help="throwaway database")
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument("--accounts", type=int, default=10_000)
    p.add_argument(
        "--workers",
        default="2,4,8",
        help="service worker counts, comma separated: phase 1 runs at the fastest of them "
        "(measured without the event), phase 2's paced load uses the largest",
    )
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per phase")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3, help="without/with pairs in phase 1")
    p.add_argument("--load", type=float, default=0.7, help="share of max tps in phase 2")
    p.add_argument(
        "--load-duration",
        type=float,
        default=75.0,
        help="measured seconds of phase 2: long enough to clear phase 1's backlog and then "
        "sample the steady-state lag (45 s left none on a machine running ~1,300 tps: its "
        "backlog of ~60,000 events took ~65 s at ~1,800 published against ~840 arriving)",
    )
    p.add_argument("--drainers", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    args.worker_counts = parse_worker_counts(args.workers)
    if not args.worker_counts or args.worker_counts[0] < 1:
        p.error("--workers needs at least one count of 1 or more")
    return args


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    # No Celery worker listens here; the drain loops below are started by this script.
    os.environ["OUTBOX_NUDGE"] = "0"
    log(f"bank: create {args.db}, migrate, seed {args.accounts:,} funded accounts")
    database_recreate(args.db)
    try:
        django_setup(args.db)
        django_migrate()
        bank: SeededBank = seed_bank(
            accounts=args.accounts, funding_minor=10_000_00, hot_funding_minor=100_000_000_00
        )
        from django.conf import settings

        from outbox.services import outbox_lanes_ensure
        from outbox.testing import rabbit_stream

        outbox_lanes_ensure()
        close_db_connections()

        with rabbit_stream(url=AMQP_URL, prefix="banksim.bench") as stream:
            # Phase 1: the price of the event write. A fresh database's first phase runs
            # slow (seen: 917 tps, then 1,300-1,390 with or without the event), so one
            # unmeasured phase goes first; then ABBA rounds, each costed on its own pair.
            def phase(label: str, workers: int, round_no: int, duration: float) -> PhaseResult:
                log(f"service c{workers} {label} (round {round_no})")
                return run_phase(
                    name=label,
                    workers=workers,
                    factory=service_factory(bank, hot=False, seed=args.seed + round_no),
                    warmup=args.warmup,
                    duration=duration,
                    cpu_groups=service_cpu_groups(args.db),
                    housekeeping=office_fold,
                )

            # Without the event, so the warm-up adds nothing to phase 2's backlog.
            settings.OUTBOX_BENCH_SKIP_POSTING_EVENTS = True
            largest = args.worker_counts[-1]
            phase("warm-up, not counted", largest, 0, min(args.duration, 5.0))
            sweep = (
                [
                    phase(f"sweep without event, {n} worker(s)", n, 0, args.duration)
                    for n in args.worker_counts
                ]
                if len(args.worker_counts) > 1
                else []
            )
            fastest = max(sweep, key=lambda result: result.tps).workers if sweep else largest
            if sweep:
                log(
                    "  tps by workers: "
                    + ", ".join(f"c{p.workers} {p.tps:.1f}" for p in sweep)
                    + f"; phase 1 runs at c{fastest}"
                )
            comparison = Comparison(label="outbox event", without=[], with_=[])
            for round_no in range(args.rounds):
                order = (True, False) if round_no % 2 == 0 else (False, True)
                for skip in order:
                    settings.OUTBOX_BENCH_SKIP_POSTING_EVENTS = skip
                    label = "without event" if skip else "with event"
                    bucket = comparison.without if skip else comparison.with_
                    bucket.append(phase(label, fastest, round_no + 1, args.duration))
            settings.OUTBOX_BENCH_SKIP_POSTING_EVENTS = False
            off, on = comparison.without, comparison.with_
            tps_off, tps_on = comparison.tps_without or 0.0, comparison.tps_with or 0.0
            backlog_upto = last_event_id()
            close_db_connections()

            # Phase 2: paced load with drainers, starting from phase 1's backlog.
            target = tps_on * args.load
            log(
                f"paced load {target:.0f} tps ({args.load:.0%} of {tps_on:.0f}) over {largest}"
                f" workers with {args.drainers} drainer(s), backlog of {backlog_upto:,} events"
            )
            stop, drainers = start_drainers(
                exchange=stream.exchange, count=args.drainers, batch_size=args.batch_size
            )
            try:
                load = run_phase(
                    name="paced load",
                    workers=largest,
                    factory=paced(
                        service_factory(bank, hot=False, seed=args.seed + 100),
                        per_worker_tps=target / largest,
                    ),
                    warmup=args.warmup,
                    duration=args.load_duration,
                    cpu_groups=service_cpu_groups(args.db),
                    housekeeping=office_fold,
                )
                time.sleep(2.0)  # the last events of the load get out
            finally:
                stop.set()
                for proc in drainers:
                    proc.join(timeout=30)
            figures = drain_figures(backlog_upto=backlog_upto, since=backlog_upto)
            close_db_connections()
    finally:
        if not args.keep:
            database_drop(args.db)

    cost = comparison.cost
    cpu_off, cpu_on = cpu_per_transfer(off), cpu_per_transfer(on)
    cpu_cost = cpu_on / cpu_off - 1 if cpu_off and cpu_on else None
    insert_eps = load.tps  # every transfer writes exactly one event
    drain_eps = figures["drain_eps"]
    lags = figures["lags"]
    during_eps, after_eps = figures["arrival_eps"]
    # No lag sample means the drainers never caught up: say so rather than print 0 ms.
    p50 = f"{percentile(lags, 50):.1f}" if lags else "n/a"
    p99 = f"{percentile(lags, 99):.1f}" if lags else "n/a"
    rows: list[list[object]] = []
    for phase in [*sweep, *off, *on, load]:
        rows.append(
            [
                phase.name,
                phase.workers,
                round(phase.tps, 1),
                f"{phase.p(50):.2f}" if phase is not load else "(paced)",
                f"{phase.p(99):.2f}" if phase is not load else "",
                phase.errors_text(),
            ]
        )
    log("")
    log(format_table(["phase", "conc", "tps", "p50 ms", "p99 ms", "errors"], rows))
    log("")
    rounds = ", ".join(f"{c * 100:.1f}" for c in comparison.round_costs)
    log(
        f"service c{fastest}: {tps_off:.1f} tps without the event, {tps_on:.1f} with it"
        f" (medians; the rounds' costs: {rounds} %)"
    )
    log(f"  cost of the outbox write: {fmt_number(cost * 100 if cost is not None else None)} %")
    log(
        f"  CPU per transfer (workers + PostgreSQL): {fmt_number(cpu_off, 3)} ms without,"
        f" {fmt_number(cpu_on, 3)} ms with the event"
        f" (+{fmt_number(cpu_cost * 100 if cpu_cost is not None else None)} %; less sensitive"
        " than tps to other load on the machine)"
    )
    log(
        f"drain: {figures['drained']:,} events in {figures['catch_up_seconds']:.2f}s of catch-up"
        f" ({fmt_number(drain_eps)} events/s) while {insert_eps:.1f} events/s arrived over the"
        f" load's window (paced at {target:.1f}; {fmt_number(during_eps)} during the catch-up,"
        f" {fmt_number(after_eps)} after it)"
    )
    log(
        f"lag after catch-up ({len(lags):,} events): p50 {p50} ms, p99 {p99} ms,"
        f" max {max(lags) if lags else 0:.1f} ms; unpublished at the end: {figures['unpublished']}"
    )
    log(
        f"SUMMARY service_c{fastest}_tps_without_outbox={fmt_number(tps_off)}"
        f" service_c{fastest}_tps_with_outbox={fmt_number(tps_on)}"
        f" outbox_cost_pct={fmt_number(cost * 100 if cost is not None else None)}"
    )
    log(f"total wall time {time.monotonic() - started:.0f}s")
    ratio = drain_eps / insert_eps if drain_eps and insert_eps else None
    log(
        f"RESULT drain_eps={fmt_number(drain_eps)} insert_eps={fmt_number(insert_eps)}"
        f" lag_p50_ms={p50} lag_p99_ms={p99}"
        f" ratio_drain={fmt_number(ratio, 2)}"
    )
    return 0 if figures["unpublished"] == 0 else 1


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
