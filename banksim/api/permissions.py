"""Roles: teller, supervisor, auditor (Django groups). A supervisor can do what a teller can.

Views state the roles allowed per HTTP method class; object-level visibility is applied by
selectors, not here.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

TELLER = "teller"
SUPERVISOR = "supervisor"
AUDITOR = "auditor"
ROLES = (TELLER, SUPERVISOR, AUDITOR)


def user_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    if not user or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_banksim_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=ROLES).values_list("name", flat=True))  # type: ignore[union-attr]
        user._banksim_roles = cached  # type: ignore[union-attr]
    return cached


def primary_role(user: AbstractBaseUser | AnonymousUser) -> str:
    roles = user_roles(user)
    for role in (SUPERVISOR, TELLER, AUDITOR):
        if role in roles:
            return role
    return "none"


class IsBankStaff(BasePermission):
    """Any authenticated user holding at least one bank role."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(user_roles(request.user))


class RolePermission(BasePermission):
    """Read methods allow ``read_roles``, everything else ``write_roles``."""

    read_roles: ClassVar[frozenset[str]] = frozenset()
    write_roles: ClassVar[frozenset[str]] = frozenset()

    def has_permission(self, request: Request, view: Any) -> bool:
        roles = user_roles(request.user)
        allowed = self.read_roles if request.method in SAFE_METHODS else self.write_roles
        return bool(roles & allowed)


def roles(*, read: tuple[str, ...] = (), write: tuple[str, ...] = ()) -> type[RolePermission]:
    """Build a permission class: ``permission_classes = [roles(read=ALL, write=STAFF)]``."""
    return type(
        "Roles_" + "_".join(read) + "__" + "_".join(write),
        (RolePermission,),
        {"read_roles": frozenset(read), "write_roles": frozenset(write)},
    )


ALL_ROLES = (TELLER, SUPERVISOR, AUDITOR)
OPERATORS = (TELLER, SUPERVISOR)
SUPERVISORS = (SUPERVISOR,)
