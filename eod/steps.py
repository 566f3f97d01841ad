"""The end-of-day step interface shared by every app that contributes a step.

A step is a function ``(StepContext) -> StepOutcome``. The orchestrator (``eod.services``)
runs the steps of ``STEP_ORDER`` one after another, checkpointing each one, and resumes a
failed or killed run at the first step not marked done. Every step must therefore be
idempotent per business date: running it twice, or again after a kill mid-step, must
produce each of its effects exactly once (a deterministic marker per effect, checked by a
unique index or a per-step record of what was done).

Steps are resolved lazily by dotted path so that ``eod`` imports no other app at load
time and an app that is not installed simply has no step (``load_step`` returns None).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.apps import apps


@dataclass(frozen=True)
class StepContext:
    business_date: date  # the day being closed
    calendar_code: str  # "MAIN"
    now: datetime
    # progress(rows_done, rows_total): persisted in its own transaction, printed, evented.
    # Call it once per batch, not per row.
    progress: Callable[[int, int], None]


@dataclass(frozen=True)
class StepOutcome:
    rows: int  # rows processed
    summary: dict[str, Any]  # JSON-serialisable, shown in reports and the admin


StepFn = Callable[[StepContext], StepOutcome]

STEP_ORDER: list[str] = [
    "preconditions",
    "interest",
    "periodic_fees",
    "standing_instructions",
    "holds_and_dormancy",
    "integrity_gate",
    "close_day",
]

STEP_PATHS: dict[str, str] = {
    "preconditions": "eod.steps_core.preconditions",
    "interest": "interest.steps.accrue_and_capitalise",
    "periodic_fees": "interest.steps.periodic_fees",
    "standing_instructions": "instructions.steps.run_due",
    "holds_and_dormancy": "eod.steps_core.holds_and_dormancy",
    "integrity_gate": "eod.steps_core.integrity_gate",
    "close_day": "eod.steps_core.close_day",
}


def load_step(name: str) -> StepFn | None:
    """Return the step function registered under ``name``, or None if its app is absent.

    Absent: the app is not in INSTALLED_APPS, or has no such module or function yet.

    Only a missing module or attribute of the step's own app counts as absent; an import
    error raised from inside that module (a real bug) propagates.

    :raises KeyError: if ``name`` is not a known step
    """
    module_path, _, attr = STEP_PATHS[name].rpartition(".")
    if not apps.is_installed(module_path.partition(".")[0]):
        return None
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_path + ".").startswith(exc.name + "."):
            return None
        raise
    fn: StepFn | None = getattr(module, attr, None)
    return fn
