"""Audit plumbing on signals (the only use of signals in the project):

* every simple-history row gets the acting user and a change reason: a service's own reason
  is kept, a missing one becomes "<created|changed|deleted> by <request or job> [request id]",
  which ties the history row to the audit log; reasons longer than the column are cut;
* every Celery task runs in a batch audit context named after the task.
"""

from __future__ import annotations

from typing import Any

from celery.signals import task_postrun, task_prerun
from simple_history.signals import pre_create_historical_record

from audit import context

_VERBS = {"+": "created", "~": "changed", "-": "deleted"}
# Tokens of the task contexts in flight, by task id (a worker runs one task per thread).
_task_tokens: dict[str, Any] = {}


def history_defaults(
    sender: Any, history_instance: Any, history_user: Any = None, **kwargs: Any
) -> None:
    current = context.current()
    if history_instance.history_user_id is None and current.user() is not None:
        history_instance.history_user = current.user()
    reason = history_instance.history_change_reason
    if not reason:
        verb = _VERBS.get(history_instance.history_type, "changed")
        reason = f"{verb} by {current.describe()}"
    limit = sender._meta.get_field("history_change_reason").max_length
    history_instance.history_change_reason = reason[:limit] if limit else reason


def task_context_open(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task_id is None:
        return
    name = getattr(task, "name", None) or "task"
    token = context.bind(
        context.AuditContext(
            request_id=task_id,
            source_ip="",
            channel=context.Channel.BATCH,
            batch_actor=context.Actor(name=f"system:{name}"[:150], role=context.SYSTEM_ROLE),
        )
    )
    _task_tokens[task_id] = token


def task_context_close(task_id: str | None = None, **kwargs: Any) -> None:
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        context.unbind(token)


def connect() -> None:
    pre_create_historical_record.connect(history_defaults, dispatch_uid="audit.history_defaults")
    task_prerun.connect(task_context_open, dispatch_uid="audit.task_context_open", weak=False)
    task_postrun.connect(task_context_close, dispatch_uid="audit.task_context_close", weak=False)
