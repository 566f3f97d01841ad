"""The double-entry ledger's tables.

Design overview: a *Journal* is one business transaction (a bank-unique ``txn_id``); its
*Entries* are the legs, each a positive amount in minor units on one side (D/C) of one account.
Per currency, a posted journal's credits equal its debits; a statement-level trigger refuses
any INSERT of entries that leaves a journal where they do not (so a journal's entries go in
with one statement), and another trigger refuses UPDATE/DELETE of entries
(corrections are reversals). *AccountBalance* is the ledger's running balance of one account
(sign convention: credits minus debits, so a customer deposit is positive and the cash GL
is negative); it is written only by the posting function in the same transaction as the
entries, and ``ledger_verify`` proves it equals the sum of entries. Each entry also stores the
account's balance after it (``balance_after_minor``), which makes statements and balance-as-of
a single indexed read. Office (GL) accounts are the exception: many postings touch the same
few of them, so their balance moves through *OfficeBalanceDelta* rows folded in later, and
their entries carry no running balance (readers sum entries instead).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from accounts.models import Account


class Journal(models.Model):
    class TxnType(models.TextChoices):
        TRANSFER = "transfer", "Transfer"
        CASH_DEPOSIT = "cash_deposit", "Cash deposit"
        CASH_WITHDRAWAL = "cash_withdrawal", "Cash withdrawal"
        FEE = "fee", "Fee"
        INTEREST = "interest", "Interest"
        REVERSAL = "reversal", "Reversal"
        ADJUSTMENT = "adjustment", "Adjustment"

    class Channel(models.TextChoices):
        TELLER = "teller", "Teller"
        API = "api", "API"
        BATCH = "batch", "Batch"

    class Status(models.TextChoices):
        ENTERED = "entered", "Entered (awaiting approval)"
        POSTED = "posted", "Posted"
        REJECTED = "rejected", "Rejected"

    # Unique through a constraint, not unique=True, which would add a second (LIKE) index
    # that every posting pays for and nothing queries.
    txn_id = models.CharField(max_length=20)
    txn_type = models.CharField(max_length=16, choices=TxnType.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=8, choices=Status.choices)
    business_date = models.DateField()
    entered_at = models.DateTimeField()
    posted_at = models.DateTimeField(null=True, blank=True)
    narration = models.CharField(max_length=200, blank=True)
    maker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    checker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A reversal points at what it reverses; the unique constraint makes "reverse twice"
    # impossible even under a race.
    reversal_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    # What the movement was asked to do (legs, fee and limit decisions) for entered items and
    # for explaining a posting; never used to compute balances.
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["business_date", "id"], name="journal_bdate_idx"),
            models.Index(
                fields=["status"], name="journal_entered_idx", condition=Q(status="entered")
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["txn_id"], name="journal_txn_id_unique"),
            models.CheckConstraint(
                condition=~Q(status="posted") | Q(posted_at__isnull=False),
                name="journal_posted_has_time",
            ),
            models.CheckConstraint(
                condition=Q(checker__isnull=True) | ~Q(checker=models.F("maker")),
                name="journal_checker_not_maker",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.txn_id} {self.txn_type} {self.status}"


class Entry(models.Model):
    class Side(models.TextChoices):
        DEBIT = "D", "Debit"
        CREDIT = "C", "Credit"

    # No single-column indexes: entry_journal_idx and entry_account_bdate_idx (account first)
    # serve every lookup, and each index is paid for on every posted leg.
    journal = models.ForeignKey(
        Journal, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    side = models.CharField(max_length=1, choices=Side.choices)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    business_date = models.DateField()
    # NULL on office (GL) accounts: their balance rows are moved by the fold, not by the
    # posting (see OfficeBalanceDelta), so no running balance exists at posting time.
    balance_after_minor = models.BigIntegerField(null=True)
    # Why this leg exists (principal, fee, tax, interest...), so a statement line can say so.
    purpose = models.CharField(max_length=16, default="principal")

    class Meta:
        verbose_name_plural = "entries"
        indexes = [
            models.Index(fields=["account", "business_date", "id"], name="entry_account_bdate_idx"),
            models.Index(fields=["journal"], name="entry_journal_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="entry_amount_positive"),
            models.CheckConstraint(condition=Q(side__in=["D", "C"]), name="entry_side_d_or_c"),
        ]


class AccountBalance(models.Model):
    """The ledger's balance of one account; only ledger services (the posting function) write it."""

    account = models.OneToOneField(
        Account, primary_key=True, on_delete=models.PROTECT, related_name="balance"
    )
    currency = models.CharField(max_length=3)
    ledger_minor = models.BigIntegerField(default=0)
    held_minor = models.BigIntegerField(default=0)
    # Snapshot of the product terms that bound debits, refreshed when terms change.
    min_balance_minor = models.BigIntegerField(default=0)
    overdraft_limit_minor = models.BigIntegerField(default=0)
    # Office (GL) accounts may run either way; customer accounts may not pass their overdraft.
    is_office = models.BooleanField(default=False)
    # Last customer-initiated movement (business date); EOD marks accounts dormant from it.
    last_activity_on = models.DateField()

    class Meta:
        db_table = "ledger_balance"
        constraints = [
            models.CheckConstraint(condition=Q(held_minor__gte=0), name="balance_held_gte_0"),
            models.CheckConstraint(
                condition=Q(overdraft_limit_minor__gte=0) & Q(min_balance_minor__gte=0),
                name="balance_terms_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(is_office=True)
                | Q(ledger_minor__gte=-models.F("overdraft_limit_minor")),
                name="balance_floor_overdraft",
            ),
        ]


class OfficeBalanceDelta(models.Model):
    """A committed movement of an office account's balance not yet folded into its row.

    Postings do not lock or update office (GL) balance rows: every transfer with a fee would
    otherwise queue on the one fee-income row until commit. ``ledger_post`` appends a delta
    here instead (an INSERT takes no lock others wait on) and ``ledger_office_fold()`` moves
    committed deltas into ``ledger_balance`` (Celery beat, EOD, and any reader that must see
    a folded row). An office account's balance is its row plus its deltas, always exact.
    No foreign key: a key check would share-lock the hot account row; ``ledger_post`` writes
    only ids it has just read from ``ledger_balance``.
    """

    account_id = models.BigIntegerField()
    delta_minor = models.BigIntegerField()

    class Meta:
        db_table = "ledger_balance_pending"


class Hold(models.Model):
    """A lien that reduces available balance until released, expired or consumed."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RELEASED = "released", "Released"
        EXPIRED = "expired", "Expired"
        CONSUMED = "consumed", "Consumed by posting"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=200)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    placed_on = models.DateField()
    expires_on = models.DateField(null=True, blank=True)
    placed_at = models.DateTimeField()
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Set when the hold secures a maker-checker item awaiting approval.
    journal = models.ForeignKey(
        Journal, null=True, blank=True, on_delete=models.PROTECT, related_name="holds"
    )
    history = HistoricalRecords()

    class Meta:
        indexes = [
            models.Index(fields=["account"], name="hold_active_idx", condition=Q(status="active")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="hold_amount_positive"),
        ]


class IdempotencyRecord(models.Model):
    """The first response to a money-moving POST, replayed byte for byte on a retry.

    Written in the same DB transaction as the posting, so a key is only ever "used" by a
    request whose effects committed.
    """

    client_id = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.BinaryField()
    response_content_type = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client_id", "key"], name="idempotency_client_key")
        ]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_expiry_idx")]


class ApprovalThreshold(models.Model):
    """Above this amount a movement is entered for a supervisor's approval, not posted.

    The most specific row wins: product and channel, then product, then channel, then the
    currency-wide row; with no row the ``MAKER_CHECKER_DEFAULT_THRESHOLD`` setting applies.
    """

    currency = models.CharField(max_length=3)
    product = models.ForeignKey(
        "accounts.Product", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    channel = models.CharField(max_length=8, choices=Journal.Channel.choices, blank=True)
    amount_minor = models.BigIntegerField()
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["currency", "product", "channel"],
                name="approval_threshold_one_per_scope",
                nulls_distinct=False,
            ),
            models.CheckConstraint(
                condition=Q(amount_minor__gt=0), name="approval_threshold_positive"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.currency} {self.product_id or '*'} {self.channel or '*'} > {self.amount_minor}"
        )
