"""Reads of fee rules and waivers, and the one query the posting path makes.

``assessment_facts`` answers, in a single round trip, everything ``fee_assess`` needs: the
payer's currency, product and segment, the winning rule in force (most specific scope, then
priority, then age) with the payer's use count for its current period, and one applicable
waiver. It is on the hot path of every transfer, hence raw SQL and no ORM hydration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from accounts.models import Account, Customer, Product
from accounts.services import ProductNotFound
from fees.calculators import period_start
from fees.errors import FeeRuleNotFound
from fees.models import FeeRule, FeeUsage, FeeWaiver


def fee_rule_get(*, rule_id: int) -> FeeRule:
    """Return one rule.

    :raises FeeRuleNotFound: if there is none
    """
    rule = FeeRule.objects.select_related("product", "income_account", "tax_account").filter(
        pk=rule_id
    )
    found = rule.first()
    if found is None:
        raise FeeRuleNotFound(f"no fee rule {rule_id}")
    return found


def fee_rule_list(
    *, event: str = "", currency: str = "", in_force_on: date | None = None
) -> QuerySet[FeeRule]:
    """Filter rules by event, currency and the date they are in force on."""
    rules = FeeRule.objects.select_related("product", "income_account", "tax_account")
    if event:
        rules = rules.filter(event=event)
    if currency:
        rules = rules.filter(currency=currency)
    if in_force_on is not None:
        rules = rules.filter(effective_from__lte=in_force_on).filter(
            Q(effective_to__isnull=True) | Q(effective_to__gt=in_force_on)
        )
    return rules.order_by("event", "currency", "effective_from", "id")


def product_id_for_code(*, code: str) -> int:
    """Return the id of the product with this code.

    :raises ProductNotFound: if there is none
    """
    product_id = Product.objects.filter(code=code).values_list("pk", flat=True).first()
    if product_id is None:
        raise ProductNotFound(f"no product {code[:20]!r}")
    return product_id


@dataclass(frozen=True)
class AssessmentFacts:
    account_id: int
    currency: str
    customer_id: int | None
    product_id: int
    segment: str
    rule: dict[str, Any] | None  # stored columns of the winning rule, rates as text, plus "used"
    waiver_id: int | None


_RULE = FeeRule._meta.db_table
_WAIVER = FeeWaiver._meta.db_table
_USAGE = FeeUsage._meta.db_table
_ACCOUNT = Account._meta.db_table
_CUSTOMER = Customer._meta.db_table

# The winning rule's columns: the query selects them in this order, after the account's four.
_RULE_COLUMNS = (
    "id",
    "version",
    "calc_type",
    "flat_minor",
    "rate_percent",
    "tiers",
    "min_fee_minor",
    "max_fee_minor",
    "free_uses",
    "free_period",
    "tax_rate_percent",
    "income_account_id",
    "tax_account_id",
    "product_id",
    "channel",
    "segment",
    "priority",
    "used",
    # The GL accounts' numbers, so the posting's event can name every leg without ledger_post
    # reading them back.
    "income_account_number",
    "tax_account_number",
)

# Specificity = how many of product, channel, segment the rule pins. Rates come as text, so
# that Decimal gets them exactly. The rule is a LATERAL join (plain columns, no JSON to parse).
_FACTS_SQL = f"""
SELECT a.currency, a.customer_id, a.product_id, COALESCE(c.segment, ''),
       {", ".join(f"r.{column}" for column in _RULE_COLUMNS)},
  (SELECT w.id FROM {_WAIVER} w
    WHERE (w.account_id = a.id OR w.customer_id = a.customer_id)
      AND w.event IN ('', %(event)s)
      AND w.valid_from <= %(day)s AND w.expires_on > %(day)s
    ORDER BY w.id LIMIT 1) AS waiver_id
FROM {_ACCOUNT} a
LEFT JOIN {_CUSTOMER} c ON c.id = a.customer_id
LEFT JOIN LATERAL (
      SELECT f.id, f.version, f.calc_type, f.flat_minor, f.rate_percent::text AS rate_percent,
             f.tiers, f.min_fee_minor, f.max_fee_minor, f.free_uses, f.free_period,
             f.tax_rate_percent::text AS tax_rate_percent, f.income_account_id,
             f.tax_account_id, f.product_id, f.channel, f.segment, f.priority,
             (SELECT u.used FROM {_USAGE} u
               WHERE u.rule_id = f.id AND u.account_id = a.id
                 AND u.period_start = CASE f.free_period WHEN 'day' THEN %(day)s
                                      ELSE %(month)s END) AS used,
             (SELECT g.account_number FROM {_ACCOUNT} g WHERE g.id = f.income_account_id)
               AS income_account_number,
             (SELECT g.account_number FROM {_ACCOUNT} g WHERE g.id = f.tax_account_id)
               AS tax_account_number
        FROM {_RULE} f
       WHERE f.event = %(event)s AND f.currency = a.currency
         AND f.effective_from <= %(day)s
         AND (f.effective_to IS NULL OR f.effective_to > %(day)s)
         AND (f.product_id IS NULL OR f.product_id = a.product_id)
         AND f.channel IN ('', %(channel)s)
         AND f.segment IN ('', COALESCE(c.segment, ''))
       ORDER BY (f.product_id IS NOT NULL)::int + (f.channel <> '')::int
                + (f.segment <> '')::int DESC, f.priority, f.id
       LIMIT 1) r ON true
WHERE a.id = %(account)s
"""


def assessment_facts(
    *, event: str, account_id: int, channel: str, business_date: date
) -> AssessmentFacts | None:
    """Return what fee assessment needs to know, in one query (``None``: no such account)."""
    params = {
        "event": event,
        "account": account_id,
        "channel": channel,
        "day": business_date,
        "month": period_start("month", business_date),
    }
    with connection.cursor() as cursor:
        cursor.execute(_FACTS_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return None
    currency, customer_id, product_id, segment = row[:4]
    rule_values = row[4 : 4 + len(_RULE_COLUMNS)]
    rule = None
    if rule_values[0] is not None:  # the LATERAL join found a rule
        rule = dict(zip(_RULE_COLUMNS, rule_values, strict=True))
        if isinstance(rule["tiers"], str):  # a driver without a JSON loader
            rule["tiers"] = json.loads(rule["tiers"])
    return AssessmentFacts(
        account_id=account_id,
        currency=currency,
        customer_id=customer_id,
        product_id=product_id,
        segment=segment,
        rule=rule,
        waiver_id=row[-1],
    )


def fee_waiver_list(*, account_id: int) -> QuerySet[FeeWaiver]:
    """Waivers of one account and of its customer, newest first."""
    customer_id = Account.objects.filter(pk=account_id).values_list("customer_id", flat=True)
    return (
        FeeWaiver.objects.filter(Q(account_id=account_id) | Q(customer_id__in=customer_id))
        .select_related("account", "customer")
        .order_by("-id")
    )
