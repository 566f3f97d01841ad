"""Who is acting, from where, under which request id: the audit context of the current work.

Services record decisions with ``audit.services.audit_record`` and stay free of request
objects: the request's identity travels in a context variable instead. The audit middleware
opens a *request* context around every audited HTTP request; Celery tasks (through a
``task_prerun`` hook) and management commands open a *batch* context with a ``system:<name>``
actor. Work outside any context (a shell, a test calling a service) is recorded with an empty
actor and the role ``system``.

The acting user of a request is read lazily, when a row is written: DRF authenticates inside
the view, after the middleware has opened the context, and stores the user on the Django
request, which the context holds.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest

from banksim.api.permissions import primary_role

REQUEST_ID_HEADER = "X-Request-ID"
# What a client may send as its request id; anything else is replaced by a generated one.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}", re.ASCII)

SYSTEM_ROLE = "system"


class Channel:
    API = "api"
    ADMIN = "admin"
    BATCH = "batch"
    DIRECT = "direct"


@dataclass(frozen=True, slots=True)
class Actor:
    """The acting identity as the audit log stores it."""

    name: str  # username, ``system:<job>`` for batch work, "" for anonymous
    role: str  # teller, supervisor, auditor, superuser, none, system
    user_id: int | None = None


def actor_of(user: AbstractBaseUser | AnonymousUser | None) -> Actor:
    """Describe a user: its username and its strongest bank role."""
    if user is None or not user.is_authenticated:
        return Actor(name="", role="none")
    role = primary_role(user)
    if role == "none" and getattr(user, "is_superuser", False):
        role = "superuser"
    return Actor(name=user.get_username(), role=role, user_id=user.pk)


@dataclass(slots=True)
class AuditContext:
    request_id: str
    source_ip: str
    channel: str
    request: HttpRequest | None = None
    batch_actor: Actor | None = None
    # The first object a decision of this request named: the request's row shows it when
    # the URL does not (e.g. the transaction a POST /transfers created).
    first_object: tuple[str, str] | None = field(default=None)

    def actor(self) -> Actor:
        if self.request is not None:
            return actor_of(getattr(self.request, "user", None))
        if self.batch_actor is not None:
            return self.batch_actor
        return Actor(name="", role=SYSTEM_ROLE)

    def user(self) -> AbstractBaseUser | None:
        user = getattr(self.request, "user", None) if self.request is not None else None
        return user if user is not None and user.is_authenticated else None

    def describe(self) -> str:
        """A short label for history change reasons: what ran, under which request id."""
        if self.request is not None:
            what = f"{self.request.method} {self.request.path}"
        elif self.batch_actor is not None:
            what = self.batch_actor.name
        else:
            what = "direct call" if self.channel == Channel.DIRECT else self.channel
        return f"{what} [request {self.request_id}]" if self.request_id else what


_DIRECT = AuditContext(request_id="", source_ip="", channel=Channel.DIRECT)
_current: ContextVar[AuditContext] = ContextVar("banksim_audit_context", default=_DIRECT)


def current() -> AuditContext:
    """The audit context of the running code (a direct, anonymous one outside any)."""
    return _current.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from(value: str | None) -> str:
    """The client's ``X-Request-ID`` if it is a sane token, otherwise a new id."""
    if value and _CLIENT_REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()


@contextmanager
def request_context(
    request: HttpRequest, *, request_id: str, source_ip: str, channel: str
) -> Iterator[AuditContext]:
    """Make ``request`` the acting request for the code run inside the block."""
    context = AuditContext(
        request_id=request_id, source_ip=source_ip, channel=channel, request=request
    )
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


@contextmanager
def batch_context(name: str, *, request_id: str | None = None) -> Iterator[AuditContext]:
    """Run a block as the system job ``name`` (Celery task, command, end of day).

    Decisions made inside are recorded with the actor ``system:<name>`` and role ``system``.
    """
    context = AuditContext(
        request_id=request_id or new_request_id(),
        source_ip="",
        channel=Channel.BATCH,
        batch_actor=Actor(name=f"system:{name}"[:150], role=SYSTEM_ROLE),
    )
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def bind(context: AuditContext) -> Any:
    """Set ``context`` until ``unbind`` is called with the returned token (Celery hooks)."""
    return _current.set(context)


def unbind(token: Any) -> None:
    _current.reset(token)
