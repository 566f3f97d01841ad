"""The admin shows every accounts and ledger model, and no admin page can touch money."""

import datetime as dt

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import Account, Branch, Customer, Holiday, Product, StaffProfile
from banksim.core.money import Money
from ledger import services as ledger_services
from ledger.models import (
    AccountBalance,
    ApprovalThreshold,
    Entry,
    Hold,
    IdempotencyRecord,
    Journal,
)

pytestmark = pytest.mark.django_db

APPS = ("accounts", "ledger")
READ_ONLY = ("journal", "entry", "accountbalance", "idempotencyrecord", "hold")
SERVICE_WRITTEN = ("customer", "account", "productterms")
NAME_FIELD = {Customer: "last_name", Product: "name"}


@pytest.fixture
def superuser():
    return User.objects.create_superuser("root", "root@example.com", "pw-not-secret-123")


@pytest.fixture
def browser(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def every_row(bank, funded_account, teller):
    """At least one row of every registered model, money moved only through the ledger."""
    depositor = funded_account("100.00")
    hold = ledger_services.hold_place(
        account_id=depositor.pk,
        amount=Money.parse("25.00", "USD"),
        reason="cheque clearing",
        expires_on=bank.business_date + dt.timedelta(days=3),
        actor=None,
        business_date=bank.business_date,
        now=timezone.now(),
    )
    Holiday.objects.create(
        calendar=bank.branch.calendar, date=dt.date(2026, 12, 25), name="Christmas"
    )
    profile = StaffProfile.objects.create(user=teller, branch=bank.branch)
    profile.cash_accounts.add(bank.office_account("teller_cash", "USD"))
    now = timezone.now()
    IdempotencyRecord.objects.create(
        client_id="teller1",
        key="k-1",
        request_hash="0" * 64,
        method="POST",
        path="/api/v1/transfers",
        response_status=201,
        response_body=b"{}",
        response_content_type="application/json",
        created_at=now,
        expires_at=now + dt.timedelta(hours=48),
    )
    ApprovalThreshold.objects.create(currency="USD", amount_minor=1_000_000)
    return {"depositor": depositor, "hold": hold}


def _registered():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in APPS
    ]


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _ids(pairs):
    return [f"{m._meta.app_label}.{m._meta.model_name}" for m, _ in pairs]


class TestEveryModelIsInTheAdmin:
    def test_every_model_of_accounts_and_ledger_is_registered(self):
        models = {
            model
            for label in APPS
            for model in apps.get_app_config(label).get_models()
            if not model.__name__.startswith("Historical")
        }

        assert models - set(admin.site._registry) == set()

    def test_every_changelist_search_change_and_history_page_loads(self, browser, every_row):
        failures = []
        for model, model_admin in _registered():
            obj = model.objects.order_by("pk").first()
            assert obj is not None, f"the fixture made no {model.__name__}"
            pages = {
                "changelist": browser.get(_url(model, "changelist")),
                "search": browser.get(_url(model, "changelist"), {"q": "1"}),
                "change": browser.get(_url(model, "change", obj.pk)),
            }
            if hasattr(model_admin, "history_view"):
                pages["history"] = browser.get(_url(model, "history", obj.pk))

            failures += [
                f"{model.__name__} {page}: {response.status_code}"
                for page, response in pages.items()
                if response.status_code != 200
            ]

        assert failures == []


class TestMoneyIsShownAsMoney:
    def test_balances_are_formatted_with_their_currency(self, browser, every_row):
        response = browser.get(
            _url(AccountBalance, "changelist"), {"q": every_row["depositor"].account_number}
        )

        assert response.status_code == 200
        text = response.content.decode()
        assert "100.00 USD" in text  # ledger
        assert "25.00 USD" in text  # held
        assert "75.00 USD" in text  # available


class TestServiceOwnedModelsAreReadOnly:
    """Ledger rows, and CIF/account rows that only services write, even for a superuser."""

    def _models(self):
        return [apps.get_model("ledger", name) for name in READ_ONLY] + [
            apps.get_model("accounts", name) for name in SERVICE_WRITTEN
        ]

    def test_add_is_refused(self, browser, every_row):
        failures = []
        for model in self._models():
            before = model.objects.count()

            get = browser.get(_url(model, "add"))
            post = browser.post(_url(model, "add"), {})

            if (get.status_code, post.status_code) != (403, 403):
                failures.append(f"{model.__name__}: {get.status_code}, {post.status_code}")
            if model.objects.count() != before:
                failures.append(f"{model.__name__}: a row was added")
        assert failures == []

    def test_change_is_refused_and_the_page_is_view_only(self, browser, every_row):
        failures = []
        for model in self._models():
            obj = model.objects.order_by("pk").first()

            page = browser.get(_url(model, "change", obj.pk))
            post = browser.post(_url(model, "change", obj.pk), {})

            if page.status_code != 200 or b'name="_save"' in page.content:
                failures.append(f"{model.__name__}: change page is editable")
            if post.status_code != 403:
                failures.append(f"{model.__name__}: change POST answered {post.status_code}")
        assert failures == []

    def test_delete_is_refused_one_by_one_and_in_bulk(self, browser, every_row):
        failures = []
        for model in self._models():
            obj = model.objects.order_by("pk").first()

            page = browser.get(_url(model, "delete", obj.pk))
            browser.post(
                _url(model, "changelist"),
                {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
            )

            if page.status_code != 403:
                failures.append(f"{model.__name__}: delete page answered {page.status_code}")
            if not model.objects.filter(pk=obj.pk).exists():
                failures.append(f"{model.__name__}: row deleted in bulk")
        assert failures == []


class TestNoAdminPathEditsABalanceOrPostsMoney:
    def test_a_balance_row_cannot_be_changed_by_post(self, browser, every_row):
        depositor = every_row["depositor"]

        response = browser.post(
            _url(AccountBalance, "change", depositor.pk),
            {"ledger_minor": "999999999", "held_minor": "0", "currency": "USD"},
        )

        assert response.status_code == 403
        assert AccountBalance.objects.get(pk=depositor.pk).ledger_minor == 10_000

    def test_entries_and_journals_cannot_be_added(self, browser, every_row):
        journals, entries = Journal.objects.count(), Entry.objects.count()

        journal = browser.post(_url(Journal, "add"), {"txn_id": "X1", "txn_type": "adjustment"})
        entry = browser.post(_url(Entry, "add"), {"amount_minor": "100", "side": "C"})

        assert (journal.status_code, entry.status_code) == (403, 403)
        assert (Journal.objects.count(), Entry.objects.count()) == (journals, entries)

    @pytest.mark.parametrize("model", [Customer, Product], ids=["read-only", "editable"])
    def test_history_cannot_be_reverted_even_by_a_direct_post(self, browser, every_row, model):
        obj = model.objects.order_by("pk").first()
        first_version = obj.history.earliest()
        model.objects.filter(pk=obj.pk).update(**{NAME_FIELD[model]: "Changed since"})
        url = _url(model, "simple_history", obj.pk, first_version.history_id)

        page = browser.get(url)
        revert = browser.post(url, {NAME_FIELD[model]: "Reverted"})

        assert page.status_code == 200
        assert b"Revert" not in page.content
        assert revert.status_code == 403
        obj.refresh_from_db()
        assert getattr(obj, NAME_FIELD[model]) == "Changed since"

    def test_a_hold_cannot_be_released_from_the_admin(self, browser, every_row):
        hold = every_row["hold"]

        response = browser.post(_url(Hold, "change", hold.pk), {"status": "released"})

        assert response.status_code == 403
        hold.refresh_from_db()
        assert hold.status == Hold.Status.ACTIVE


class TestStaticDataStaysConsistent:
    def test_a_branch_can_be_renamed_but_its_sol_code_is_fixed(self, browser, bank):
        branch = bank.branch

        response = browser.post(
            _url(Branch, "change", branch.pk),
            {"sol_code": "0999", "name": "Head office (Marina)", "calendar": branch.calendar_id},
        )

        assert response.status_code == 302, response.content[:2000]
        branch.refresh_from_db()
        assert branch.name == "Head office (Marina)"
        assert branch.sol_code == "0001"

    def test_customers_cannot_be_created_in_the_admin(self, browser):
        response = browser.get(_url(Customer, "add"))

        assert response.status_code == 403

    def test_an_approval_threshold_needs_an_iso_currency(self, browser):
        response = browser.post(
            _url(ApprovalThreshold, "add"), {"currency": "usd", "amount_minor": "100"}
        )

        assert response.status_code == 200  # the form again, with the error
        assert not ApprovalThreshold.objects.filter(currency="usd").exists()

    def test_a_till_can_only_be_a_teller_cash_account(self, browser, bank, open_account):
        open_account("SBA-USD")

        response = browser.get(_url(StaffProfile, "add"))

        choices = response.context["adminform"].form.fields["cash_accounts"].queryset
        assert {(a.kind, a.office_role) for a in choices} == {("office", "teller_cash")}
        assert choices.count() == 3  # one till per currency in the test bank


class TestFreezeActions:
    def _act(self, browser, action, accounts, **form):
        return browser.post(
            _url(Account, "changelist"),
            {
                "action": action,
                "_selected_action": [a.pk for a in accounts],
                "apply": "yes",
                **form,
            },
            follow=True,
        )

    def test_a_supervisor_freezes_through_the_service_after_giving_a_reason(
        self, browser, bank, open_account, superuser
    ):
        account = open_account()

        asked = browser.post(
            _url(Account, "changelist"),
            {"action": "freeze", "_selected_action": [account.pk], "index": "0"},
        )
        done = self._act(browser, "freeze", [account], freeze_type="debit", reason="court order")

        assert asked.status_code == 200
        assert b'name="reason"' in asked.content
        assert done.status_code == 200
        account.refresh_from_db()
        assert (account.status, account.freeze_type) == ("frozen", "debit")
        assert account.status_changed_by == superuser
        assert account.history.first().history_change_reason == "frozen (debit): court order"

    def test_without_a_reason_nothing_is_frozen(self, browser, bank, open_account):
        account = open_account()

        response = self._act(browser, "freeze", [account], freeze_type="total", reason="")

        assert response.status_code == 200
        account.refresh_from_db()
        assert account.status == "active"

    def test_refusals_are_reported_per_account_and_the_rest_go_through(
        self, browser, bank, open_account, supervisor
    ):
        frozen, active = open_account(), open_account()
        services.account_freeze(
            account_id=frozen.pk,
            freeze_type="total",
            reason="earlier",
            actor=supervisor,
            now=timezone.now(),
        )
        till = bank.office_account("teller_cash", "USD")

        response = self._act(browser, "unfreeze", [frozen, active, till], reason="order lifted")

        text = response.content.decode()
        assert f"done for {frozen.account_number}" in text
        assert f"{active.account_number}: a active account is not frozen" in text
        assert f"{till.account_number}: office accounts are run by operations" in text
        frozen.refresh_from_db()
        assert frozen.status == "active"

    def test_staff_without_the_supervisor_role_cannot_freeze(self, client, bank, open_account):
        clerk = User.objects.create_user("clerk", password="pw-not-secret-123", is_staff=True)
        clerk.user_permissions.add(Permission.objects.get(codename="view_account"))
        clerk.groups.add(Group.objects.get_or_create(name="teller")[0])
        client.force_login(clerk)
        account = open_account()

        page = client.get(_url(Account, "changelist"))
        response = self._act(client, "freeze", [account], freeze_type="total", reason="x")

        assert page.status_code == 200
        assert b'value="freeze"' not in page.content
        assert response.status_code == 200
        account.refresh_from_db()
        assert account.status == "active"
