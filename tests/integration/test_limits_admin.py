"""The limits admin: rules written through the services (with history), usage read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from banksim.core.money import Money
from limits import services
from limits.models import LimitRule, LimitUsage
from limits.services import LimitRuleSpec
from tests.factories import BUSINESS_DATE

pytestmark = pytest.mark.django_db

ADD = reverse("admin:limits_limitrule_add")


def change_url(rule: LimitRule) -> str:
    return reverse("admin:limits_limitrule_change", args=[rule.pk])


def make_rule(**fields) -> LimitRule:
    fields.setdefault("currency", "USD")
    return services.limit_rule_create(spec=LimitRuleSpec(**fields), actor=None, now=timezone.now())


def form_data(**fields) -> dict[str, str]:
    """A complete add form; empty strings are the admin's 'not set'."""
    data = {
        "name": "",
        "account": "",
        "product": "",
        "customer": "",
        "channel": "",
        "txn_type": "",
        "currency": "USD",
        "max_amount": "1000.00",
        "max_count": "",
        "on_breach": "refuse",
        "is_active": "on",
    }
    data.update(fields)
    return data


@pytest.fixture
def superuser():
    return User.objects.create_superuser("root", "root@example.com", "pw-not-secret-123")


@pytest.fixture
def browser(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def payer(bank, open_account):
    return open_account("SBA-USD")


class TestLimitRuleAdminAdd:
    def test_a_rule_added_in_the_admin_goes_through_the_service(
        self, bank, payer, browser, superuser
    ):
        data = form_data(
            name="admin cap", account=str(payer.pk), max_amount="750.25", max_count="4"
        )

        response = browser.post(ADD, data)

        assert response.status_code == 302, response.content.decode()[:2000]
        rule = LimitRule.objects.get(account=payer)
        assert (rule.name, rule.max_amount_minor, rule.max_count) == ("admin cap", 75025, 4)
        assert rule.created_by == superuser and rule.created_at is not None
        assert rule.is_override is False
        assert rule.history.get().history_user == superuser

    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            ({"max_amount": "", "max_count": ""}, "max_amount", "limits.rule_without_limit"),
            ({"max_amount": "-1"}, "max_amount", "limits.rule_invalid"),
            ({"max_amount": "0"}, "max_amount", "limits.rule_invalid"),
            ({"max_amount": "10.001"}, "max_amount", "money.invalid_amount"),
            ({"max_amount": "1e3"}, "max_amount", "plain decimal"),
            ({"max_count": "0"}, "max_count", "limits.rule_invalid"),
            ({"currency": "usd"}, "currency", "money.unknown_currency"),
            (
                {"currency": "JPY", "max_amount": "1000", "product": "{SBA-USD}"},
                "currency",
                "limits.currency_mismatch",
            ),
            ({"product": "{OAB-USD}"}, None, "limits.office_scope"),
            ({"product": "{SBA-USD}", "customer": "{payer.customer}"}, "product", "scope"),
            ({"channel": "atm"}, "channel", "Select a valid choice"),
            ({"txn_type": "cash_deposit"}, "txn_type", "Select a valid choice"),
            ({"on_breach": "warn"}, "on_breach", "Select a valid choice"),
            ({"account": "999999999"}, "account", "Select a valid choice"),
        ],
    )
    def test_a_bad_rule_is_a_form_error_and_nothing_is_saved(
        self, bank, payer, browser, fields, field, message
    ):
        values = {
            "{SBA-USD}": str(bank.products["SBA-USD"].pk),
            "{OAB-USD}": str(bank.products["OAB-USD"].pk),
            "{payer.customer}": str(payer.customer_id),
        }
        data = form_data(**{k: values.get(v, v) for k, v in fields.items()})
        before = LimitRule.objects.count()

        response = browser.post(ADD, data)

        assert response.status_code == 200
        form = response.context["adminform"].form
        errors = form.errors.get(field or "__all__")
        assert errors, form.errors
        assert any(message in error for error in errors), errors
        assert LimitRule.objects.count() == before

    def test_an_office_account_cannot_be_limited(self, bank, browser):
        till = bank.office_account("teller_cash", "USD")

        response = browser.post(ADD, form_data(account=str(till.pk)))

        assert response.status_code == 200
        assert "limits.office_scope" in str(response.context["adminform"].form.errors)
        assert not LimitRule.objects.filter(account=till).exists()


class TestLimitRuleAdminChange:
    def test_a_change_goes_through_the_service_and_into_the_history(self, bank, browser, superuser):
        rule = make_rule(max_amount=Money.parse("100", "USD"))

        response = browser.post(
            change_url(rule),
            {"name": "raised", "max_amount": "300.00", "max_count": "", "on_breach": "refuse"},
        )

        assert response.status_code == 302, response.content.decode()[:2000]
        rule.refresh_from_db()
        assert (rule.name, rule.max_amount_minor, rule.is_active) == ("raised", 30000, False)
        assert rule.history.count() == 2
        assert rule.history.first().history_user == superuser

    def test_the_change_form_shows_the_amount_in_the_rules_currency(self, bank, browser):
        rule = make_rule(currency="KWD", max_amount=Money.parse("1.250", "KWD"))

        response = browser.get(change_url(rule))

        assert response.status_code == 200
        assert response.context["adminform"].form.initial["max_amount"] == "1.250"

    def test_a_change_that_leaves_no_limit_is_refused(self, bank, browser):
        rule = make_rule(max_amount=Money.parse("100", "USD"))

        response = browser.post(
            change_url(rule),
            {
                "name": "",
                "max_amount": "",
                "max_count": "",
                "on_breach": "refuse",
                "is_active": "on",
            },
        )

        assert response.status_code == 200
        assert "limits.rule_without_limit" in str(response.context["adminform"].form.errors)
        rule.refresh_from_db()
        assert rule.max_amount_minor == 10000
        assert rule.history.count() == 1

    def test_what_a_rule_covers_cannot_be_changed(self, bank, payer, browser):
        rule = make_rule(max_amount=Money.parse("100", "USD"))

        browser.post(
            change_url(rule),
            {
                "currency": "KWD",
                "account": str(payer.pk),
                "channel": "api",
                "max_amount": "100.00",
                "max_count": "",
                "on_breach": "refuse",
                "is_active": "on",
                "name": "",
            },
        )

        rule.refresh_from_db()
        assert (rule.currency, rule.account_id, rule.channel) == ("USD", None, "")

    def test_a_rule_cannot_be_deleted(self, bank, browser):
        rule = make_rule(max_count=1)

        response = browser.post(
            reverse("admin:limits_limitrule_delete", args=[rule.pk]), {"post": "yes"}
        )

        assert response.status_code == 403
        assert LimitRule.objects.filter(pk=rule.pk).exists()

    def test_the_history_page_shows_and_never_restores(self, bank, browser):
        rule = make_rule(max_count=1)
        version = rule.history.get()

        page = browser.get(reverse("admin:limits_limitrule_history", args=[rule.pk]))
        restore = browser.post(
            reverse("admin:limits_limitrule_simple_history", args=[rule.pk, version.history_id]),
            {"max_count": "99"},
        )

        assert page.status_code == 200
        assert restore.status_code == 403
        assert LimitRule.objects.get(pk=rule.pk).max_count == 1


class TestLimitUsageAdmin:
    def test_usage_is_listed_with_formatted_amounts_and_cannot_be_touched(
        self, bank, payer, browser
    ):
        rule = make_rule(max_amount=Money.parse("1000", "USD"))
        with transaction.atomic():
            services.limit_consume(
                account_id=payer.pk,
                amount=Money.parse("1234.5", "USD") - Money.parse("1000", "USD"),
                channel="teller",
                txn_type="transfer",
                business_date=BUSINESS_DATE,
            )
        usage = LimitUsage.objects.get(rule=rule)

        listing = browser.get(reverse("admin:limits_limitusage_changelist"))
        add = browser.get(reverse("admin:limits_limitusage_add"))
        change = browser.post(
            reverse("admin:limits_limitusage_change", args=[usage.pk]), {"used_count": "0"}
        )
        delete = browser.post(
            reverse("admin:limits_limitusage_delete", args=[usage.pk]), {"post": "yes"}
        )

        assert listing.status_code == 200
        assert "234.50 USD" in listing.content.decode()
        assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
        usage.refresh_from_db()
        assert (usage.used_amount_minor, usage.used_count) == (23450, 1)

    def test_the_rule_list_loads(self, bank, payer, browser):
        make_rule(account_id=payer.pk, max_amount=Money.parse("10", "USD"))
        make_rule(customer_id=payer.customer_id, max_count=3)

        response = browser.get(reverse("admin:limits_limitrule_changelist"))

        assert response.status_code == 200
        assert "10.00 USD" in response.content.decode()
