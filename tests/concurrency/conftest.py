"""Helpers for races: run workers together on their own database connections.

Django connections are per thread, so each worker thread talks to PostgreSQL on its own
session and the database does the waiting (row locks), which is what these tests are about.
Threads are released together by a barrier so the contention is real, and each closes its
connection when done so the test database can be flushed afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg.errors
from django.db import connection


@dataclass
class Outcome:
    """What one worker returned, or the exception it ended with."""

    value: Any = None
    error: BaseException | None = None


def run_together(
    worker: Callable[[int], Any], count: int, *, timeout: float = 60.0
) -> list[Outcome]:
    """Start ``count`` threads at the same instant, each running ``worker(index)``.

    Returns one ``Outcome`` per worker, in index order. A worker that is still running after
    ``timeout`` seconds fails the test (a lock that is never released looks like this).
    """
    barrier = threading.Barrier(count)
    outcomes = [Outcome() for _ in range(count)]

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=timeout)
            outcomes[index].value = worker(index)
        except BaseException as exc:  # kept for the test to inspect; a thread would lose it
            outcomes[index].error = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(i,), name=f"race-{i}", daemon=True) for i in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"workers still running after {timeout}s: {stuck}"
    return outcomes


def is_deadlock(exc: BaseException) -> bool:
    """Whether PostgreSQL chose this transaction as a deadlock victim (SQLSTATE 40P01).

    Django wraps the driver's error, so the whole cause/context chain is searched.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, psycopg.errors.DeadlockDetected):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
