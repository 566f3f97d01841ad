"""Writes for CIF, accounts and the bank's static data.

Use-case services (``customer_create``, ``account_open``...) own their transaction; building
blocks that need one say so. Balances are the ledger's: opening an account asks the ledger to
open its balance row, and closing asks the ledger whether anything is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, connection, transaction

from accounts.models import (
    Account,
    Branch,
    Calendar,
    Customer,
    GLSubHead,
    Holiday,
    Product,
    ProductTerms,
)
from audit.services import audit_record
from banksim.core.errors import BusinessRuleViolation, Conflict, InvalidInput, NotFound
from outbox import events as outbox_events
from outbox.nudge import nudge_on_commit
from outbox.services import outbox_enqueue


class DuplicateNationalId(Conflict):
    code = "customer.duplicate_national_id"
    title = "Duplicate national id"


class CustomerNotFound(NotFound):
    code = "customer.not_found"
    title = "Customer not found"


class AccountNotFound(NotFound):
    code = "account.not_found"
    title = "Account not found"


class ProductNotFound(NotFound):
    code = "product.not_found"
    title = "Product not found"


class GLSubHeadNotFound(NotFound):
    code = "gl_subhead.not_found"
    title = "GL sub-head not found"


class BranchNotFound(NotFound):
    code = "branch.not_found"
    title = "Branch not found"


class KycNotVerified(BusinessRuleViolation):
    code = "customer.kyc_not_verified"
    title = "Customer KYC is not verified"


class KycTransitionInvalid(BusinessRuleViolation):
    code = "customer.kyc_transition_invalid"
    title = "KYC status change not allowed"


class ProductNotOpenable(BusinessRuleViolation):
    code = "product.not_openable"
    title = "Product cannot be used for this account"


class AccountStatusInvalid(BusinessRuleViolation):
    code = "account.status_transition_invalid"
    title = "Account status change not allowed"


class AccountBalanceNotZero(BusinessRuleViolation):
    code = "account.balance_not_zero"
    title = "Account balance is not zero"


class CustomerNameMissing(InvalidInput):
    code = "customer.name_missing"
    title = "Customer name missing"


@dataclass(frozen=True)
class CustomerData:
    customer_type: str
    birth_date: date
    national_id_type: str
    national_id: str
    home_branch_id: int
    first_name: str = ""
    last_name: str = ""
    legal_name: str = ""
    email: str = ""
    phone: str = ""
    address: str = ""
    risk_grade: str = Customer.RiskGrade.LOW
    segment: str = Customer.Segment.RETAIL


def luhn_check_digit(digits: str) -> str:
    """Return the Luhn (mod 10) check digit for a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def account_number_is_valid(number: str) -> bool:
    return (
        len(number) == 12
        and number.isascii()
        and number.isdigit()
        and luhn_check_digit(number[:-1]) == number[-1]
    )


def _next(sequence: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(%s)", [sequence])
        return int(cursor.fetchone()[0])


def customer_create(
    *, data: CustomerData, actor: AbstractBaseUser | None, now: datetime
) -> Customer:
    """Create a CIF record in KYC status *pending*.

    :raises DuplicateNationalId: if a customer already has this national id and type
    :raises BranchNotFound: if the home branch does not exist
    :raises CustomerNameMissing: if the names required by the customer type are blank
    """
    if data.customer_type == Customer.CustomerType.INDIVIDUAL:
        if not (data.first_name.strip() and data.last_name.strip()):
            raise CustomerNameMissing(
                "individuals need first_name and last_name",
                errors={"first_name": ["required for individuals"]},
            )
    elif not data.legal_name.strip():
        raise CustomerNameMissing(
            "corporates need legal_name", errors={"legal_name": ["required for corporates"]}
        )
    with transaction.atomic():
        if not Branch.objects.filter(pk=data.home_branch_id).exists():
            raise BranchNotFound(f"no branch with id {data.home_branch_id}")
        if Customer.objects.filter(
            national_id_type=data.national_id_type, national_id=data.national_id
        ).exists():
            raise DuplicateNationalId(
                "a customer with this national id already exists",
                errors={"national_id": ["already registered to another customer"]},
            )
        customer = Customer(
            cif_id=f"C{_next('accounts_cif_seq'):09d}",
            customer_type=data.customer_type,
            first_name=data.first_name.strip(),
            last_name=data.last_name.strip(),
            legal_name=data.legal_name.strip(),
            birth_date=data.birth_date,
            national_id_type=data.national_id_type,
            national_id=data.national_id.strip(),
            email=data.email,
            phone=data.phone,
            address=data.address,
            risk_grade=data.risk_grade,
            segment=data.segment,
            home_branch_id=data.home_branch_id,
            created_at=now,
            created_by=actor,
        )
        customer._change_reason = "customer created"  # type: ignore[attr-defined]
        try:
            # A savepoint so a lost race on the unique index reads as a domain error.
            with transaction.atomic():
                customer.save()
        except IntegrityError as exc:
            raise DuplicateNationalId(
                "a customer with this national id already exists",
                errors={"national_id": ["already registered to another customer"]},
            ) from exc
        outbox_enqueue(event=outbox_events.customer_created(customer, actor=actor))
        audit_record(
            action="customer.created",
            object_type="customer",
            object_id=customer.cif_id,
            actor=actor,
        )
    return customer


def customer_update(
    *, customer_id: int, changes: dict[str, Any], actor: AbstractBaseUser | None
) -> Customer:
    """Change a customer's contact details, risk grade or segment (not identity or KYC).

    :raises CustomerNotFound: if there is no such customer
    """
    allowed = {"email", "phone", "address", "risk_grade", "segment"}
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidInput(
            "only contact details, risk grade and segment can be changed",
            errors={k: ["cannot be changed here"] for k in sorted(unknown)},
        )
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
        if customer is None:
            raise CustomerNotFound(f"no customer with id {customer_id}")
        for field, value in changes.items():
            setattr(customer, field, value)
        customer._change_reason = "customer details changed"  # type: ignore[attr-defined]
        customer.save(update_fields=sorted(changes))
        outbox_enqueue(
            event=outbox_events.customer_updated(customer, changed=list(changes), actor=actor)
        )
        audit_record(
            action="customer.updated",
            object_type="customer",
            object_id=customer.cif_id,
            details={"fields": sorted(changes)},
            actor=actor,
        )
    return customer


def customer_kyc_set(
    *,
    customer_id: int,
    status: str,
    actor: AbstractBaseUser,
    business_date: date,
    reason: str = "",
) -> Customer:
    """Record a KYC decision (verified, rejected, expired) by a supervisor.

    :raises CustomerNotFound: if there is no such customer
    :raises KycTransitionInvalid: for a move a bank does not allow (e.g. verified → pending)
    """
    allowed: dict[str, set[str]] = {
        Customer.KycStatus.PENDING: {"verified", "rejected"},
        Customer.KycStatus.VERIFIED: {"expired", "rejected"},
        Customer.KycStatus.REJECTED: {"verified"},
        Customer.KycStatus.EXPIRED: {"verified", "rejected"},
    }
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
        if customer is None:
            raise CustomerNotFound(f"no customer with id {customer_id}")
        if status not in allowed[customer.kyc_status]:
            raise KycTransitionInvalid(f"KYC cannot go from {customer.kyc_status} to {status}")
        previous_kyc_status = customer.kyc_status
        customer.kyc_status = status
        if status == Customer.KycStatus.VERIFIED:
            customer.kyc_verified_on = business_date
            customer.kyc_verified_by = actor
        customer._change_reason = reason or f"KYC {status}"  # type: ignore[attr-defined]
        customer.save(update_fields=["kyc_status", "kyc_verified_on", "kyc_verified_by"])
        outbox_enqueue(
            event=outbox_events.customer_kyc_changed(
                customer,
                previous=previous_kyc_status,
                reason=reason,
                actor=actor,
                business_date=business_date,
            )
        )
        audit_record(
            action="customer.kyc_decided",
            object_type="customer",
            object_id=customer.cif_id,
            details={"status": status, "reason": reason},
            actor=actor,
        )
    return customer


def _open(
    *,
    kind: str,
    product: Product,
    branch: Branch,
    title: str,
    customer: Customer | None,
    office_role: str,
    actor: AbstractBaseUser | None,
    business_date: date,
    now: datetime,
    gl_subhead: GLSubHead | None = None,
) -> Account:
    from ledger.services import balance_open

    serial = _next("accounts_account_serial_seq")
    base = f"{branch.sol_code}{serial:07d}"
    account = Account(
        account_number=base + luhn_check_digit(base),
        kind=kind,
        office_role=office_role,
        title=title,
        customer=customer,
        branch=branch,
        product=product,
        gl_subhead=gl_subhead,
        currency=product.currency,
        status=Account.Status.ACTIVE,
        status_changed_at=now,
        status_changed_by=actor,
        opened_on=business_date,
    )
    account._change_reason = "account opened"  # type: ignore[attr-defined]
    account.save()
    terms = product_terms_on(product_id=product.pk, on=business_date)
    balance_open(
        account=account,
        business_date=business_date,
        min_balance_minor=terms.min_balance_minor if terms else 0,
        overdraft_limit_minor=terms.overdraft_limit_minor if terms else 0,
    )
    outbox_enqueue(
        event=outbox_events.account_opened(
            account,
            product_code=product.code,
            cif_id=customer.cif_id if customer is not None else None,
            actor=actor,
            business_date=business_date,
            now=now,
        )
    )
    audit_record(
        action="account.opened",
        object_type="account",
        object_id=account.account_number,
        details={
            "kind": kind,
            "product": product.code,
            "customer": getattr(customer, "cif_id", None),
        },
        actor=actor,
    )
    return account


def product_terms_on(*, product_id: int, on: date) -> ProductTerms | None:
    """Return the terms of a product in force on a date (latest effective_from <= on)."""
    return (
        ProductTerms.objects.filter(product_id=product_id, effective_from__lte=on)
        .order_by("-effective_from")
        .first()
    )


def account_open(
    *,
    customer_id: int,
    product_code: str,
    branch_id: int,
    actor: AbstractBaseUser | None,
    business_date: date,
    now: datetime,
    title: str = "",
) -> Account:
    """Open a customer account with a zero balance.

    :raises CustomerNotFound: / :raises ProductNotFound: / :raises BranchNotFound:
    :raises KycNotVerified: if the customer's KYC is not verified
    :raises ProductNotOpenable: for an office or inactive product
    """
    with transaction.atomic():
        customer = Customer.objects.filter(pk=customer_id).first()
        if customer is None:
            raise CustomerNotFound(f"no customer with id {customer_id}")
        if customer.kyc_status != Customer.KycStatus.VERIFIED:
            raise KycNotVerified(
                f"customer {customer.cif_id} has KYC status {customer.kyc_status}; "
                "only verified customers can open accounts"
            )
        product = Product.objects.filter(code=product_code).first()
        if product is None:
            raise ProductNotFound(f"no product {product_code!r}")
        if product.scheme_type == Product.SchemeType.OFFICE or not product.is_active:
            raise ProductNotOpenable(f"product {product.code} cannot hold customer accounts")
        branch = Branch.objects.filter(pk=branch_id).first()
        if branch is None:
            raise BranchNotFound(f"no branch with id {branch_id}")
        return _open(
            kind=Account.Kind.CUSTOMER,
            product=product,
            branch=branch,
            title=title or customer.display_name,
            customer=customer,
            office_role="",
            actor=actor,
            business_date=business_date,
            now=now,
        )


def office_account_open(
    *,
    product_code: str,
    branch_id: int,
    office_role: str,
    title: str,
    business_date: date,
    now: datetime,
    gl_subhead_code: str = "",
    actor: AbstractBaseUser | None = None,
) -> Account:
    """Open an internal (GL) account of an office product, e.g. a branch's fee income.

    It books under ``gl_subhead_code`` (the product's sub-head when blank), so the trial
    balance shows teller cash, fee income or tax payable each on its own line.

    :raises ProductNotOpenable: if the product is not an office product
    :raises GLSubHeadNotFound: for an unknown sub-head code
    """
    with transaction.atomic():
        product = Product.objects.filter(code=product_code).first()
        if product is None:
            raise ProductNotFound(f"no product {product_code!r}")
        if product.scheme_type != Product.SchemeType.OFFICE:
            raise ProductNotOpenable(f"{product.code} is not an office product")
        branch = Branch.objects.filter(pk=branch_id).first()
        if branch is None:
            raise BranchNotFound(f"no branch with id {branch_id}")
        subhead = product.gl_subhead
        if gl_subhead_code:
            found = GLSubHead.objects.filter(code=gl_subhead_code).first()
            if found is None:
                raise GLSubHeadNotFound(f"no GL sub-head {gl_subhead_code!r}")
            subhead = found
        return _open(
            kind=Account.Kind.OFFICE,
            product=product,
            branch=branch,
            title=title,
            customer=None,
            office_role=office_role,
            gl_subhead=subhead,
            actor=actor,
            business_date=business_date,
            now=now,
        )


def _locked_account(account_id: int) -> Account:
    from ledger.services import balance_lock

    # The ledger's balance row is the account's posting lock: taking it first serialises a
    # status change with any posting in flight on the same account.
    balance_lock(account_id=account_id)
    # FOR NO KEY UPDATE: does not conflict with the KEY SHARE lock that inserting a row
    # referencing the account (an entry, a hold) takes, so a freeze cannot deadlock with one.
    account = (
        Account.objects.select_for_update(of=("self",), no_key=True).filter(pk=account_id).first()
    )
    if account is None:
        raise AccountNotFound(f"no account with id {account_id}")
    return account


def account_freeze(
    *, account_id: int, freeze_type: str, reason: str, actor: AbstractBaseUser, now: datetime
) -> Account:
    """Freeze an account for debits, credits or both.

    :raises AccountStatusInvalid: if the account is closed or already frozen
    """
    with transaction.atomic():
        account = _locked_account(account_id)
        if account.status not in (Account.Status.ACTIVE, Account.Status.DORMANT):
            raise AccountStatusInvalid(f"a {account.status} account cannot be frozen")
        account.status = Account.Status.FROZEN
        account.freeze_type = freeze_type
        account.status_reason = reason
        account.status_changed_at = now
        account.status_changed_by = actor
        account._change_reason = f"frozen ({freeze_type}): {reason}"  # type: ignore[attr-defined]
        account.save()
        outbox_enqueue(
            event=outbox_events.account_status_changed(
                outbox_events.EventType.ACCOUNT_FROZEN,
                account,
                reason=reason,
                actor=actor,
                now=now,
            )
        )
        audit_record(
            action="account.frozen",
            object_type="account",
            object_id=account.account_number,
            details={"freeze_type": freeze_type, "reason": reason},
            actor=actor,
        )
    return account


def account_unfreeze(
    *, account_id: int, reason: str, actor: AbstractBaseUser, now: datetime
) -> Account:
    """Lift a freeze.

    :raises AccountStatusInvalid: if the account is not frozen
    """
    with transaction.atomic():
        account = _locked_account(account_id)
        if account.status != Account.Status.FROZEN:
            raise AccountStatusInvalid(f"a {account.status} account is not frozen")
        account.status = Account.Status.ACTIVE
        account.freeze_type = ""
        account.status_reason = reason
        account.status_changed_at = now
        account.status_changed_by = actor
        account._change_reason = f"unfrozen: {reason}"  # type: ignore[attr-defined]
        account.save()
        outbox_enqueue(
            event=outbox_events.account_status_changed(
                outbox_events.EventType.ACCOUNT_UNFROZEN,
                account,
                reason=reason,
                actor=actor,
                now=now,
            )
        )
        audit_record(
            action="account.unfrozen",
            object_type="account",
            object_id=account.account_number,
            details={"reason": reason},
            actor=actor,
        )
    return account


def account_close(
    *,
    account_id: int,
    reason: str,
    actor: AbstractBaseUser,
    business_date: date,
    now: datetime,
) -> Account:
    """Close an account whose ledger balance is zero and which has no active hold.

    :raises AccountStatusInvalid: if already closed or frozen
    :raises AccountBalanceNotZero: if money or holds remain
    """
    from ledger.selectors import balance_snapshot

    with transaction.atomic():
        account = _locked_account(account_id)
        if account.status in (Account.Status.CLOSED, Account.Status.FROZEN):
            raise AccountStatusInvalid(f"a {account.status} account cannot be closed")
        snapshot = balance_snapshot(account_id=account.pk)
        if snapshot.ledger.minor != 0 or snapshot.held.minor != 0:
            raise AccountBalanceNotZero(
                f"balance is {snapshot.ledger} with {snapshot.held} held; "
                "move the money out and release holds first"
            )
        account.status = Account.Status.CLOSED
        account.status_reason = reason
        account.closed_on = business_date
        account.status_changed_at = now
        account.status_changed_by = actor
        account._change_reason = f"closed: {reason}"  # type: ignore[attr-defined]
        account.save()
        outbox_enqueue(
            event=outbox_events.account_status_changed(
                outbox_events.EventType.ACCOUNT_CLOSED,
                account,
                reason=reason,
                actor=actor,
                now=now,
                business_date=business_date,
            )
        )
        audit_record(
            action="account.closed",
            object_type="account",
            object_id=account.account_number,
            details={"reason": reason},
            actor=actor,
        )
    return account


# --- bank calendar and end-of-day account changes (issue 6: EOD) -----------------------------


class CalendarNotFound(NotFound):
    code = "calendar.not_found"
    title = "Calendar not found"


class DayNotClosable(Conflict):
    code = "eod.day_not_current"
    title = "Not the calendar's business date"


def calendar_next_business_date(*, calendar: Calendar, after: date) -> date:
    """Return the first day after ``after`` that is neither a weekend day nor a holiday."""
    weekend = {int(d) for d in calendar.weekend_days.split(",") if d.strip()}
    if len(weekend) >= 7:
        raise ImproperlyConfigured(f"calendar {calendar.code} has no business days")
    holidays = set(
        Holiday.objects.filter(calendar=calendar, date__gt=after).values_list("date", flat=True)
    )
    day = after + timedelta(days=1)
    while day.isoweekday() in weekend or day in holidays:
        day += timedelta(days=1)
    return day


def _locked_calendar(code: str) -> Calendar:
    calendar = Calendar.objects.select_for_update().filter(code=code).first()
    if calendar is None:
        raise CalendarNotFound(f"no calendar {code!r}; seed the bank first")
    return calendar


def calendar_eod_begin(*, code: str, business_date: date) -> Calendar:
    """Put the calendar's day into ``eod_running``: teller postings are refused from now on.

    Requires the caller's transaction (the EOD run's start). Calling it again on the same day
    changes nothing.

    :raises CalendarNotFound: / :raises DayNotClosable: if ``business_date`` is not the
        calendar's current business date
    """
    assert connection.in_atomic_block, "calendar_eod_begin requires the caller's transaction"
    calendar = _locked_calendar(code)
    if calendar.business_date != business_date:
        raise DayNotClosable(f"calendar {code} is at {calendar.business_date}, not {business_date}")
    if calendar.day_state != Calendar.DayState.EOD_RUNNING:
        calendar.day_state = Calendar.DayState.EOD_RUNNING
        calendar.save(update_fields=["day_state"])
    return calendar


def calendar_close_and_advance(*, code: str, business_date: date, now: datetime) -> date:
    """Close ``business_date`` and open the next business day; return the new business date.

    Idempotent: if the calendar has already moved past ``business_date`` nothing changes and
    the current business date is returned. Requires the caller's transaction, so closing and
    opening are one commit (the ``closed`` state is never seen outside it).

    :raises CalendarNotFound: / :raises DayNotClosable: if the calendar is behind the date
    """
    assert connection.in_atomic_block, "calendar_close_and_advance requires a transaction"
    calendar = _locked_calendar(code)
    if calendar.business_date > business_date:
        return calendar.business_date
    if calendar.business_date < business_date:
        raise DayNotClosable(f"calendar {code} is at {calendar.business_date}, behind the run")
    calendar.day_state = Calendar.DayState.CLOSED
    calendar.save(update_fields=["day_state"])
    next_date = calendar_next_business_date(calendar=calendar, after=business_date)
    calendar.business_date = next_date
    calendar.day_state = Calendar.DayState.OPEN
    calendar.save(update_fields=["business_date", "day_state"])
    audit_record(
        action="calendar.day_closed",
        object_type="calendar",
        object_id=code,
        details={"closed": business_date.isoformat(), "opened": next_date.isoformat()},
    )
    return next_date


def _history_columns() -> list[str]:
    history = Account.history.model  # type: ignore[attr-defined]
    own = {"history_id", "history_date", "history_change_reason", "history_type", "history_user"}
    return [f.column for f in history._meta.concrete_fields if f.name not in own]


def accounts_mark_dormant(*, business_date: date, now: datetime) -> list[int]:
    """Mark dormant every active customer account idle for its product's dormancy period.

    Idle means ``ledger_balance.last_activity_on`` (the last customer-initiated movement) plus
    the product terms' ``dormancy_days`` in force on ``business_date`` is on or before it.
    One statement updates the accounts, writes their simple-history rows (the ORM's signals
    never see a bulk UPDATE) and returns the ids; one audit row records the batch. Requires
    the caller's transaction. Running it twice marks nothing the second time.
    """
    assert connection.in_atomic_block, "accounts_mark_dormant requires the caller's transaction"
    columns = _history_columns()
    reason = f"dormant: no customer activity (EOD {business_date.isoformat()})"
    select_list = ", ".join(f"u.{c}" for c in columns)
    # ``account.dormant`` per account, in this statement: the event commits with the change,
    # and a re-run that marks nothing announces nothing. Counters are taken in account id order.
    dormant_event = outbox_events.enqueue_sql(
        outbox_events.EventType.ACCOUNT_DORMANT,
        aggregate_id="s.account_number",
        time="%(now)s",
        business_date="%(day)s",
        data="""jsonb_build_object(
            'account_number', s.account_number, 'account_id', s.id, 'kind', s.kind,
            'currency', s.currency, 'status', s.status, 'freeze_type', s.freeze_type,
            'reason', %(reason)s::text, 'actor', NULL)""",
    )
    sql = f"""
WITH terms AS (
    SELECT DISTINCT ON (product_id) product_id, dormancy_days
      FROM accounts_productterms
     WHERE effective_from <= %(day)s
     ORDER BY product_id, effective_from DESC
), due AS (
    SELECT a.id
      FROM accounts_account a
      JOIN ledger_balance b ON b.account_id = a.id
      JOIN terms t ON t.product_id = a.product_id
     WHERE a.kind = 'customer' AND a.status = 'active' AND t.dormancy_days IS NOT NULL
       AND b.last_activity_on + t.dormancy_days <= %(day)s
), u AS (
    UPDATE accounts_account a
       SET status = 'dormant', status_reason = %(reason)s, status_changed_at = %(now)s,
           status_changed_by_id = NULL
      FROM due
     WHERE a.id = due.id AND a.status = 'active'
 RETURNING a.*
), h AS (
    INSERT INTO accounts_historicalaccount
           ({", ".join(columns)}, history_date, history_change_reason, history_type,
            history_user_id)
    SELECT {select_list}, %(now)s, %(short_reason)s, '~', NULL FROM u
)
SELECT s.id, s.account_number, {dormant_event}
  FROM (SELECT * FROM u ORDER BY id) s
 ORDER BY s.id
"""
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {"day": business_date, "reason": reason, "now": now, "short_reason": reason[:100]},
        )
        rows = cursor.fetchall()
    if rows:
        nudge_on_commit()
        audit_record(
            action="account.dormancy_marked",
            object_type="eod",
            object_id=business_date.isoformat(),
            details={"count": len(rows), "accounts": [number for _, number, _ in rows[:100]]},
        )
    return [pk for pk, _, _ in rows]
