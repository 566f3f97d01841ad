"""Reads of the limits app: rules, and an account's limits with today's usage and headroom."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from django.db.models import Q, QuerySet

from accounts import selectors as account_selectors
from accounts.models import Account, Product
from accounts.services import ProductNotFound
from banksim.core.money import Money
from limits.errors import LimitRuleNotFound, LimitScopeAmbiguous
from limits.models import LimitRule, LimitUsage

_PRODUCT_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{0,11}", re.ASCII)


def _rules() -> QuerySet[LimitRule]:
    return LimitRule.objects.select_related("account", "product", "customer")


def limit_rule_get(*, rule_id: int) -> LimitRule:
    """Return one rule with its scope objects.

    :raises LimitRuleNotFound: if there is none
    """
    # A path id beyond bigint cannot exist; keep it away from SQL.
    rule = _rules().filter(pk=rule_id).first() if 0 < rule_id < 2**63 else None
    if rule is None:
        raise LimitRuleNotFound(f"no limit rule {rule_id}")
    return rule


def limit_rule_list(
    *, currency: str = "", is_active: bool | None = None, account_id: int | None = None
) -> QuerySet[LimitRule]:
    """Filter rules; ``account_id`` keeps the rules scoped to that one account."""
    rules = _rules()
    if currency:
        rules = rules.filter(currency=currency)
    if is_active is not None:
        rules = rules.filter(is_active=is_active)
    if account_id is not None:
        rules = rules.filter(account_id=account_id)
    return rules.order_by("id")


def limit_scope_product_get(*, code: str) -> Product:
    """Return the product a rule is scoped to, by its code.

    :raises ProductNotFound: if there is none
    """
    product = Product.objects.filter(code=code).first() if _PRODUCT_CODE.fullmatch(code) else None
    if product is None:
        raise ProductNotFound(f"no product {code[:20]!r}")
    return product


@dataclass(frozen=True)
class LimitScope:
    account_id: int | None = None
    product_id: int | None = None
    customer_id: int | None = None


def limit_scope_get(
    *, account_number: str | None, product_code: str | None, cif_id: str | None
) -> LimitScope:
    """Resolve the public identifiers of a rule's scope (none set: the whole bank).

    :raises LimitScopeAmbiguous: if more than one is set (checked before any lookup)
    :raises AccountNotFound: / :raises ProductNotFound: / :raises CustomerNotFound:
    """
    given = {
        name: value
        for name, value in (
            ("account", account_number),
            ("product", product_code),
            ("customer", cif_id),
        )
        if value is not None
    }
    if len(given) > 1:
        raise LimitScopeAmbiguous(
            f"set one of account, product or customer, not {', '.join(given)}",
            errors={name: ["only one scope may be set"] for name in given},
        )
    if account_number is not None:
        return LimitScope(
            account_id=account_selectors.account_get(account_number=account_number).pk
        )
    if product_code is not None:
        return LimitScope(product_id=limit_scope_product_get(code=product_code).pk)
    if cif_id is not None:
        return LimitScope(customer_id=account_selectors.customer_get(cif_id=cif_id).pk)
    return LimitScope()


@dataclass(frozen=True)
class LimitView:
    """One rule as it stands for one account today."""

    rule: LimitRule
    # False when the account's override covers everything this rule covers.
    in_force: bool
    limit_amount: Money | None
    used_amount: Money
    remaining_amount: Money | None
    limit_count: int | None
    used_count: int
    remaining_count: int | None


def _covers(override: LimitRule, rule: LimitRule) -> bool:
    return override.channel in ("", rule.channel) and override.txn_type in ("", rule.txn_type)


def limit_usage_today(*, account_id: int, business_date: date) -> list[LimitView]:
    """Return every active rule that can apply to the account, with usage on ``business_date``.

    A rule with a channel or transaction type filter is listed too (it applies to some
    debits). Office accounts have no limits. Three queries.
    """
    account = (
        Account.objects.filter(pk=account_id)
        .values("kind", "product_id", "customer_id", "currency")
        .first()
    )
    if account is None or account["kind"] != Account.Kind.CUSTOMER:
        return []
    rules = list(
        _rules()
        .filter(is_active=True, currency=account["currency"])
        .filter(
            Q(account_id=account_id)
            | Q(product_id=account["product_id"])
            | Q(customer_id=account["customer_id"])
            | Q(account__isnull=True, product__isnull=True, customer__isnull=True)
        )
        .order_by("-is_override", "id")
    )
    if not rules:
        return []

    def subject(rule: LimitRule) -> int:
        return account["customer_id"] if rule.customer_id is not None else account_id

    wanted = Q()
    for rule in rules:
        wanted |= Q(rule_id=rule.pk, subject_id=subject(rule))
    usage = {
        row["rule_id"]: row
        for row in LimitUsage.objects.filter(wanted, business_date=business_date).values(
            "rule_id", "used_amount_minor", "used_count"
        )
    }
    overrides = [rule for rule in rules if rule.is_override]
    currency = account["currency"]
    views = []
    for rule in rules:
        used = usage.get(rule.pk, {"used_amount_minor": 0, "used_count": 0})
        limit_minor = rule.max_amount_minor
        limit = None if limit_minor is None else Money.from_minor(limit_minor, currency)
        views.append(
            LimitView(
                rule=rule,
                in_force=rule.is_override or not any(_covers(o, rule) for o in overrides),
                limit_amount=limit,
                used_amount=Money.from_minor(used["used_amount_minor"], currency),
                remaining_amount=(
                    None
                    if limit_minor is None
                    else Money.from_minor(max(limit_minor - used["used_amount_minor"], 0), currency)
                ),
                limit_count=rule.max_count,
                used_count=used["used_count"],
                remaining_count=(
                    None if rule.max_count is None else max(rule.max_count - used["used_count"], 0)
                ),
            )
        )
    return views
