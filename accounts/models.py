"""CIF, branches, the bank calendar, the chart of accounts, products and accounts.

Design overview: a *Customer* (CIF) owns many *Accounts*; every account belongs to a
*Branch* (SOL) and a *Product* (Finacle "scheme": SBA savings, CAA current, OAB office), and
every product maps to one *GL sub-head*, so the trial balance is a sum by sub-head. Office
(internal) accounts such as teller cash and fee income are ordinary accounts of an office
product with no customer. Product terms that a bank changes over time (rates, minimum
balance, overdraft, dormancy) live in effective-dated *ProductTerms* rows. Balances are not
here: the ledger app owns them (``ledger.AccountBalance``), and nothing in this app writes
money.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


class Calendar(models.Model):
    class DayState(models.TextChoices):
        OPEN = "open", "Open"
        EOD_RUNNING = "eod_running", "EOD running"
        CLOSED = "closed", "Closed"

    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=100)
    business_date = models.DateField()
    day_state = models.CharField(max_length=16, choices=DayState.choices, default=DayState.OPEN)
    # ISO weekday numbers (Mon=1 .. Sun=7) that are not business days.
    weekend_days = models.CharField(max_length=20, default="6,7")

    def __str__(self) -> str:
        return f"{self.code} ({self.business_date}, {self.day_state})"


class Holiday(models.Model):
    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["calendar", "date"], name="holiday_unique_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class Branch(models.Model):
    """A service outlet (Finacle SOL)."""

    sol_code = models.CharField(max_length=4, unique=True)
    name = models.CharField(max_length=100)
    calendar = models.ForeignKey(Calendar, on_delete=models.PROTECT, related_name="branches")

    class Meta:
        verbose_name_plural = "branches"
        constraints = [
            models.CheckConstraint(
                condition=Q(sol_code__regex=r"^[0-9]{4}$"), name="branch_sol_code_4_digits"
            )
        ]

    def __str__(self) -> str:
        return f"{self.sol_code} {self.name}"


class GLSubHead(models.Model):
    """One line of the chart of accounts; seeded as data, never hard-coded."""

    class Category(models.TextChoices):
        ASSET = "asset", "Asset"
        LIABILITY = "liability", "Liability"
        EQUITY = "equity", "Equity"
        INCOME = "income", "Income"
        EXPENSE = "expense", "Expense"

    code = models.CharField(max_length=10, unique=True)
    name = models.CharField(max_length=100)
    category = models.CharField(max_length=10, choices=Category.choices)

    class Meta:
        verbose_name = "GL sub-head"

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Product(models.Model):
    """A scheme: what kind of account, in which currency, booked under which GL sub-head."""

    class SchemeType(models.TextChoices):
        SAVINGS = "SBA", "Savings (SBA)"
        CURRENT = "CAA", "Current (CAA)"
        OFFICE = "OAB", "Office account (OAB)"

    code = models.CharField(max_length=12, unique=True)
    name = models.CharField(max_length=100)
    scheme_type = models.CharField(max_length=3, choices=SchemeType.choices)
    currency = models.CharField(max_length=3)
    gl_subhead = models.ForeignKey(GLSubHead, on_delete=models.PROTECT, related_name="products")
    is_active = models.BooleanField(default=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="product_currency_iso"
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name} ({self.currency})"


class ProductTerms(models.Model):
    """Terms of a product in force from ``effective_from`` until the next row's date."""

    class AccrualBasis(models.TextChoices):
        THIRTY_360 = "30/360", "30/360"
        ACT_365 = "ACT/365", "Actual/365 fixed"
        ACT_ACT = "ACT/ACT", "Actual/actual"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="terms")
    effective_from = models.DateField()
    # Amounts in the product currency's minor units.
    min_balance_minor = models.BigIntegerField(default=0)
    overdraft_allowed = models.BooleanField(default=False)
    overdraft_limit_minor = models.BigIntegerField(default=0)
    # Annual percentage rates, e.g. 3.5000 = 3.5 % a year.
    credit_interest_rate = models.DecimalField(max_digits=7, decimal_places=4, default=Decimal(0))
    debit_interest_rate = models.DecimalField(max_digits=7, decimal_places=4, default=Decimal(0))
    accrual_basis = models.CharField(
        max_length=8, choices=AccrualBasis.choices, default=AccrualBasis.ACT_365
    )
    dormancy_days = models.PositiveIntegerField(null=True, blank=True)
    # Percent of credit interest withheld as tax at capitalisation (0: none).
    withholding_tax_rate = models.DecimalField(max_digits=7, decimal_places=4, default=Decimal(0))
    history = HistoricalRecords()

    class Meta:
        verbose_name_plural = "product terms"
        ordering = ["product", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "effective_from"], name="product_terms_one_per_date"
            ),
            models.CheckConstraint(
                condition=Q(min_balance_minor__gte=0), name="product_terms_min_balance_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(overdraft_limit_minor__gte=0)
                & (Q(overdraft_allowed=True) | Q(overdraft_limit_minor=0)),
                name="product_terms_overdraft_consistent",
            ),
            models.CheckConstraint(
                condition=Q(credit_interest_rate__gte=0) & Q(debit_interest_rate__gte=0),
                name="product_terms_rates_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(withholding_tax_rate__gte=0),
                name="product_terms_withholding_tax_rate_gte_0",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.code} from {self.effective_from}"


class Customer(models.Model):
    """A CIF record."""

    class CustomerType(models.TextChoices):
        INDIVIDUAL = "individual", "Individual"
        CORPORATE = "corporate", "Corporate"

    class IdType(models.TextChoices):
        NATIONAL_ID = "national_id", "National ID"
        PASSPORT = "passport", "Passport"
        DRIVERS_LICENSE = "drivers_license", "Driver's licence"
        TAX_ID = "tax_id", "Tax ID"
        COMPANY_REGISTRATION = "company_registration", "Company registration"

    class KycStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        VERIFIED = "verified", "Verified"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    class RiskGrade(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"

    class Segment(models.TextChoices):
        RETAIL = "retail", "Retail"
        PREMIUM = "premium", "Premium"
        SME = "sme", "SME"
        CORPORATE = "corporate", "Corporate"
        STAFF = "staff", "Staff"

    cif_id = models.CharField(max_length=12, unique=True, editable=False)
    customer_type = models.CharField(max_length=12, choices=CustomerType.choices)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    legal_name = models.CharField(max_length=200, blank=True)
    # Date of birth (individual) or of incorporation (corporate).
    birth_date = models.DateField()
    national_id_type = models.CharField(max_length=24, choices=IdType.choices)
    national_id = models.CharField(max_length=40)
    email = models.EmailField(max_length=200, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    address = models.CharField(max_length=300, blank=True)
    kyc_status = models.CharField(
        max_length=10, choices=KycStatus.choices, default=KycStatus.PENDING
    )
    kyc_verified_on = models.DateField(null=True, blank=True)
    kyc_verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    risk_grade = models.CharField(max_length=8, choices=RiskGrade.choices, default=RiskGrade.LOW)
    segment = models.CharField(max_length=12, choices=Segment.choices, default=Segment.RETAIL)
    home_branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="customers")
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["national_id_type", "national_id"], name="customer_national_id_unique"
            ),
            models.CheckConstraint(
                condition=(Q(customer_type="individual") & ~Q(first_name="") & ~Q(last_name=""))
                | (Q(customer_type="corporate") & ~Q(legal_name="")),
                name="customer_has_names_for_type",
            ),
            models.CheckConstraint(
                condition=~Q(kyc_status="verified") | Q(kyc_verified_on__isnull=False),
                name="customer_verified_has_date",
            ),
        ]
        indexes = [
            models.Index(fields=["last_name", "first_name"], name="customer_name_idx"),
            models.Index(fields=["legal_name"], name="customer_legal_name_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.cif_id} {self.display_name}"

    @property
    def display_name(self) -> str:
        if self.customer_type == self.CustomerType.CORPORATE:
            return self.legal_name
        return f"{self.first_name} {self.last_name}"


class Account(models.Model):
    class Kind(models.TextChoices):
        CUSTOMER = "customer", "Customer account"
        OFFICE = "office", "Office (GL) account"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FROZEN = "frozen", "Frozen"
        DORMANT = "dormant", "Dormant"
        CLOSED = "closed", "Closed"

    class FreezeType(models.TextChoices):
        DEBIT = "debit", "Debit freeze"
        CREDIT = "credit", "Credit freeze"
        TOTAL = "total", "Total freeze"

    class OfficeRole(models.TextChoices):
        """What an office account is for, so services can find e.g. a branch's fee income."""

        TELLER_CASH = "teller_cash", "Teller cash"
        VAULT_CASH = "vault_cash", "Cash in vault"
        FEE_INCOME = "fee_income", "Fee income"
        TAX_PAYABLE = "tax_payable", "Tax payable"
        INTEREST_EXPENSE = "interest_expense", "Interest expense"
        INTEREST_INCOME = "interest_income", "Interest income"
        SUSPENSE = "suspense", "Suspense"
        OTHER = "other", "Other"

    account_number = models.CharField(max_length=12, unique=True, editable=False)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    office_role = models.CharField(max_length=20, choices=OfficeRole.choices, blank=True)
    title = models.CharField(max_length=200)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts"
    )
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="accounts")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="accounts")
    # Office accounts book under their own sub-head (teller cash, fee income...); customer
    # accounts under their product's. ``booking_subhead`` resolves it.
    gl_subhead = models.ForeignKey(
        GLSubHead, null=True, blank=True, on_delete=models.PROTECT, related_name="office_accounts"
    )
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    freeze_type = models.CharField(max_length=8, choices=FreezeType.choices, blank=True)
    status_reason = models.CharField(max_length=200, blank=True)
    status_changed_at = models.DateTimeField()
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    opened_on = models.DateField()
    closed_on = models.DateField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind="customer") & Q(customer__isnull=False) & Q(office_role=""))
                | (Q(kind="office") & Q(customer__isnull=True) & ~Q(office_role="")),
                name="account_kind_consistent",
            ),
            models.CheckConstraint(
                condition=(Q(status="frozen") & ~Q(freeze_type=""))
                | (~Q(status="frozen") & Q(freeze_type="")),
                name="account_freeze_type_iff_frozen",
            ),
            models.CheckConstraint(
                condition=~Q(status="closed") | Q(closed_on__isnull=False),
                name="account_closed_has_date",
            ),
            models.CheckConstraint(
                condition=Q(account_number__regex=r"^[0-9]{12}$"), name="account_number_12_digits"
            ),
            models.CheckConstraint(
                condition=(Q(kind="office") & Q(gl_subhead__isnull=False))
                | (Q(kind="customer") & Q(gl_subhead__isnull=True)),
                name="account_office_has_own_subhead",
            ),
        ]
        indexes = [
            models.Index(
                fields=["branch", "office_role", "currency"], name="account_office_role_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_number} {self.title}"

    @property
    def booking_subhead(self) -> GLSubHead:
        return self.gl_subhead if self.gl_subhead_id else self.product.gl_subhead


class StaffProfile(models.Model):
    """Which branch a staff user works at and, for tellers, their cash (till) account."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile"
    )
    branch = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="staff")
    cash_accounts = models.ManyToManyField(Account, blank=True, related_name="tellers")

    def __str__(self) -> str:
        return f"{self.user} @ {self.branch.sol_code}"
