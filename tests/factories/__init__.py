"""factory-boy factories for static data and CIF. Accounts are opened through services and
funded through the ledger, never by setting a balance."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth.models import Group, User
from django.utils import timezone

from accounts.models import Branch, Calendar, Customer, GLSubHead, Product, ProductTerms

BUSINESS_DATE = dt.date(2026, 11, 30)


class CalendarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Calendar
        django_get_or_create = ("code",)

    code = "MAIN"
    name = "Main calendar"
    business_date = BUSINESS_DATE


class BranchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Branch
        django_get_or_create = ("sol_code",)

    sol_code = factory.Sequence(lambda n: f"{n + 1:04d}")
    name = factory.LazyAttribute(lambda o: f"Branch {o.sol_code}")
    calendar = factory.SubFactory(CalendarFactory)


class GLSubHeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GLSubHead
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"GL{n:04d}")
    name = factory.LazyAttribute(lambda o: f"Sub-head {o.code}")
    category = GLSubHead.Category.LIABILITY


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"SBA{n:03d}")
    name = factory.LazyAttribute(lambda o: f"Product {o.code}")
    scheme_type = Product.SchemeType.SAVINGS
    currency = "USD"
    gl_subhead = factory.SubFactory(GLSubHeadFactory)


class ProductTermsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProductTerms

    product = factory.SubFactory(ProductFactory)
    effective_from = dt.date(2020, 1, 1)
    min_balance_minor = 0
    overdraft_allowed = False
    overdraft_limit_minor = 0
    credit_interest_rate = Decimal("2.5000")
    accrual_basis = ProductTerms.AccrualBasis.ACT_365
    dormancy_days = 730


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    cif_id = factory.Sequence(lambda n: f"F{n:09d}")
    customer_type = Customer.CustomerType.INDIVIDUAL
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    birth_date = dt.date(1985, 5, 17)
    national_id_type = Customer.IdType.NATIONAL_ID
    national_id = factory.Sequence(lambda n: f"NID{n:08d}")
    kyc_status = Customer.KycStatus.VERIFIED
    kyc_verified_on = BUSINESS_DATE
    home_branch = factory.SubFactory(BranchFactory)
    created_at = factory.LazyFunction(timezone.now)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-not-secret-123")

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if not create or not extracted:
            return
        for role in extracted:
            group, _ = Group.objects.get_or_create(name=role)
            self.groups.add(group)
        self.save()
