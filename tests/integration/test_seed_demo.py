import datetime as dt
import io
import json
import shutil
import stat
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.models import Account, Customer, GLSubHead, Product, StaffProfile
from accounts.seeding import SEED_DIR, SeedDataInvalid, bank_seed_static, demo_seed
from banksim.core.money import Money
from ledger.models import Entry, Journal
from ledger.selectors import balance_snapshot, ledger_violations

SEED_DATE = dt.date(2026, 11, 30)

# demo_seed commits its own (durable) transaction, then posts each deposit in another.
pytestmark = pytest.mark.django_db(transaction=True)


def seed(**kwargs):
    return demo_seed(
        business_date=SEED_DATE,
        now=timezone.now(),
        new_password=lambda username: f"pw-{username}-0123",
        **kwargs,
    )


def demo_account(national_id: str, product_code: str) -> Account:
    return Account.objects.get(customer__national_id=national_id, product__code=product_code)


def till(sol_code: str, currency: str) -> Account:
    return Account.objects.get(
        branch__sol_code=sol_code, office_role="teller_cash", currency=currency
    )


class TestBankSeedStatic:
    def test_loads_the_chart_of_accounts_branches_and_products_from_the_data_files(self):
        result = bank_seed_static(business_date=SEED_DATE, now=timezone.now())

        assert result.calendar.business_date == SEED_DATE
        assert sorted(result.branches) == ["0001", "0002"]
        assert result.branches["0001"].name == "Head Office"
        assert GLSubHead.objects.get(code="40100").category == GLSubHead.Category.INCOME
        savings = Product.objects.get(code="SBA-USD")
        assert savings.gl_subhead.code == "20100"
        assert savings.terms.get().min_balance_minor == 100_00

    def test_gives_the_current_product_an_overdraft_in_minor_units(self):
        bank_seed_static(business_date=SEED_DATE, now=timezone.now())

        terms = Product.objects.get(code="CAA-USD").terms.get()

        assert terms.overdraft_allowed is True
        assert terms.overdraft_limit_minor == 5_000_00

    def test_stores_kwd_amounts_with_three_decimals(self):
        bank_seed_static(business_date=SEED_DATE, now=timezone.now())

        terms = Product.objects.get(code="SBA-KWD").terms.get()

        assert terms.min_balance_minor == 25_000

    def test_opens_every_office_role_in_every_currency_at_every_branch(self):
        result = bank_seed_static(business_date=SEED_DATE, now=timezone.now())

        downtown_kwd_cash = result.office_account(
            sol_code="0002", role="teller_cash", currency="KWD"
        )
        assert downtown_kwd_cash.kind == Account.Kind.OFFICE
        assert downtown_kwd_cash.branch.sol_code == "0002"
        assert downtown_kwd_cash.product.code == "OAB-KWD"
        roles = set(
            Account.objects.filter(
                branch__sol_code="0001", currency="USD", kind="office"
            ).values_list("office_role", flat=True)
        )
        assert roles == {
            "teller_cash",
            "vault_cash",
            "fee_income",
            "tax_payable",
            "interest_expense",
            "interest_income",
            "suspense",
        }

    def test_running_twice_creates_nothing_new_and_keeps_the_calendar_date(self):
        first = bank_seed_static(business_date=SEED_DATE, now=timezone.now())

        second = bank_seed_static(
            business_date=SEED_DATE + dt.timedelta(days=5), now=timezone.now()
        )

        assert first.created > 0
        assert second.created == 0
        assert second.calendar.business_date == SEED_DATE
        assert second.office_accounts == first.office_accounts

    def test_refuses_a_product_whose_gl_sub_head_is_not_in_the_chart(self, tmp_path):
        seed_dir = tmp_path / "seed"
        shutil.copytree(SEED_DIR, seed_dir)
        products = json.loads((seed_dir / "products.json").read_text())
        products["products"][0]["gl_subhead"] = "99999"
        (seed_dir / "products.json").write_text(json.dumps(products))

        with pytest.raises(SeedDataInvalid, match="99999"):
            bank_seed_static(business_date=SEED_DATE, now=timezone.now(), seed_dir=seed_dir)

        assert not Product.objects.filter(code="SBA-USD").exists()

    def test_refuses_an_amount_with_more_decimals_than_the_currency_has(self, tmp_path):
        seed_dir = tmp_path / "seed"
        shutil.copytree(SEED_DIR, seed_dir)
        products = json.loads((seed_dir / "products.json").read_text())
        jpy = next(p for p in products["products"] if p["code"] == "SBA-JPY")
        jpy["terms"][0]["min_balance"] = "10000.50"
        (seed_dir / "products.json").write_text(json.dumps(products))

        with pytest.raises(SeedDataInvalid, match="SBA-JPY"):
            bank_seed_static(business_date=SEED_DATE, now=timezone.now(), seed_dir=seed_dir)


class TestDemoSeed:
    def test_creates_staff_in_their_role_groups_with_tokens(self):
        result = seed()

        logins = {login.username: login for login in result.logins}
        assert set(logins) == {"teller", "supervisor", "auditor", "admin"}
        teller = User.objects.get(username="teller")
        assert list(teller.groups.values_list("name", flat=True)) == ["teller"]
        assert teller.check_password("pw-teller-0123")
        assert Token.objects.get(user=teller).key == logins["teller"].token
        assert User.objects.get(username="auditor").groups.get().name == "auditor"
        admin = User.objects.get(username="admin")
        assert admin.is_superuser and admin.is_staff

    def test_gives_the_teller_the_head_office_tills(self):
        seed()

        profile = StaffProfile.objects.get(user__username="teller")

        assert profile.branch.sol_code == "0001"
        assert till("0001", "USD") in profile.cash_accounts.all()
        assert till("0002", "USD") not in profile.cash_accounts.all()

    def test_verifies_each_customer_by_the_supervisor(self):
        seed()

        customer = Customer.objects.get(national_id="DEMO-CR-0005")

        assert customer.kyc_status == Customer.KycStatus.VERIFIED
        assert customer.kyc_verified_on == SEED_DATE
        assert customer.kyc_verified_by.username == "supervisor"
        assert customer.created_by.username == "teller"
        assert customer.legal_name == "Evergreen Logistics Ltd"

    def test_funds_each_account_with_a_teller_cash_deposit_through_the_ledger(self):
        result = seed()

        savings = demo_account("DEMO-NID-0001", "SBA-USD")
        credit = Entry.objects.get(account=savings)
        assert result.funding_notice == ""
        assert balance_snapshot(account_id=savings.pk).ledger == Money(Decimal("2500.00"), "USD")
        assert credit.side == Entry.Side.CREDIT
        assert credit.journal.txn_type == Journal.TxnType.CASH_DEPOSIT
        assert credit.journal.channel == Journal.Channel.TELLER
        assert credit.journal.status == Journal.Status.POSTED
        assert credit.journal.maker.username == "teller"
        debit = credit.journal.entries.get(side=Entry.Side.DEBIT)
        assert debit.account == till("0001", "USD")

    def test_takes_the_cash_from_the_till_of_the_accounts_branch_and_currency(self):
        seed()

        jpy_savings = demo_account("DEMO-PP-0003", "SBA-JPY")

        assert balance_snapshot(account_id=jpy_savings.pk).ledger == Money(Decimal(500000), "JPY")
        # Credits minus debits: the till paid out every deposit taken at its branch.
        assert balance_snapshot(account_id=till("0002", "JPY").pk).ledger == Money(
            Decimal(-500000), "JPY"
        )
        assert balance_snapshot(account_id=till("0002", "KWD").pk).ledger == Money(
            Decimal("-1250.500"), "KWD"
        )

    def test_leaves_the_ledger_balanced(self):
        seed()

        assert ledger_violations() == []

    def test_running_again_creates_nothing_and_moves_no_money(self):
        first = seed()
        savings = demo_account("DEMO-PP-0002", "SBA-USD")

        second = seed()

        assert len(first.opened) == 6
        assert second.opened == []
        assert not second.created_anything
        assert all(login.password is None for login in second.logins)
        assert Entry.objects.filter(account=savings).count() == 1
        assert balance_snapshot(account_id=savings.pk).ledger == Money(Decimal("15000.00"), "USD")


class TestSeedDemoCommand:
    def test_writes_the_logins_to_a_private_credentials_file(self, settings, tmp_path):
        settings.VAR_DIR = tmp_path

        call_command("seed_demo", "--business-date", "2026-11-30", stdout=io.StringIO())

        path = tmp_path / "demo-credentials.json"
        logins = {row["username"]: row for row in json.loads(path.read_text())["logins"]}
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert set(logins) == {"teller", "supervisor", "auditor", "admin"}
        assert User.objects.get(username="supervisor").check_password(
            logins["supervisor"]["password"]
        )
        assert Token.objects.get(user__username="admin").key == logins["admin"]["token"]

    def test_a_second_run_keeps_the_stored_passwords_and_says_so(self, settings, tmp_path, capsys):
        settings.VAR_DIR = tmp_path
        call_command("seed_demo", "--business-date", "2026-11-30")
        path = tmp_path / "demo-credentials.json"
        before = json.loads(path.read_text())
        capsys.readouterr()

        call_command("seed_demo")

        assert "already seeded" in capsys.readouterr().out
        assert json.loads(path.read_text()) == before
