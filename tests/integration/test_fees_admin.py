"""The fee admin writes through the fee services: valid input creates or versions a rule,
bad input is a form error with nothing saved."""

import pytest

from fees.models import FeeRule, FeeUsage, FeeWaiver

pytestmark = pytest.mark.django_db

ADD = "/admin/fees/feerule/add/"


def change_url(rule) -> str:
    return f"/admin/fees/feerule/{rule.pk}/change/"


def form_data(bank, **overrides):
    data = {
        "name": "Teller withdrawal fee",
        "event": "cash_withdrawal",
        "currency": "USD",
        "product": "",
        "channel": "teller",
        "segment": "",
        "priority": "100",
        "calc_type": "percent",
        "flat_fee": "0",
        "rate": "0.25",
        "tier_table": "[]",
        "min_fee": "1.00",
        "max_fee": "",
        "free_uses": "0",
        "free_period": "month",
        "income_account": str(bank.office_account("fee_income").pk),
        "tax_rate": "10",
        "tax_account": str(bank.office_account("tax_payable").pk),
        "effective_from": "2026-11-30",
        "effective_to": "",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def form_errors(response) -> dict:
    assert response.status_code == 200, response.status_code
    form = response.context["adminform"].form
    return {field: " ".join(messages) for field, messages in form.errors.items()}


class TestFeeRuleAdd:
    def test_a_valid_rule_is_created_through_the_service(self, bank, admin_client, admin_user):
        response = admin_client.post(ADD, form_data(bank))

        assert response.status_code == 302, form_errors(response)
        rule = FeeRule.objects.get()
        assert (rule.version, rule.rate_percent, rule.min_fee_minor) == (1, 0.25, 100)
        assert rule.history.get().history_user == admin_user

    def test_a_tiered_rule_takes_tiers_as_the_api_spells_them(self, bank, admin_client):
        tiers = (
            '[{"up_to": "500.00", "flat_fee": "1.00"}, '
            '{"up_to": null, "flat_fee": "0", "rate_percent": "0.2"}]'
        )

        response = admin_client.post(
            ADD, form_data(bank, calc_type="tiered", rate="0", tier_table=tiers)
        )

        assert response.status_code == 302, form_errors(response)
        assert FeeRule.objects.get().tiers[0] == {
            "up_to_minor": 50000,
            "flat_minor": 100,
            "rate_percent": "0",
        }

    @pytest.mark.parametrize(
        ("overrides", "field", "text"),
        [
            ({"rate": "-0.25"}, "rate", "fees.negative_rate"),
            ({"tax_rate": "-5"}, "tax_rate", "fees.negative_rate"),
            ({"min_fee": "9.00", "max_fee": "2.00"}, "min_fee", "fees.invalid_caps"),
            ({"event": "teleport"}, "event", "valid choice"),
            ({"calc_type": "tiered", "rate": "0"}, "tier_table", "fees.invalid_tiers"),
            ({"tier_table": '{"up_to": 1}'}, "tier_table", "fees.invalid_tiers"),
            ({"tier_table": "[not json"}, "tier_table", "JSON"),
            ({"min_fee": "1.005"}, "min_fee", "money.invalid_amount"),
            ({"effective_to": "2026-11-01"}, "effective_to", "fees.invalid_period"),
            ({"tax_account": ""}, "tax_account", "fees.tax_account_required"),
            ({"currency": "JPY", "min_fee": "1"}, "income_account", "fees.invalid_gl_account"),
        ],
    )
    def test_bad_input_is_a_form_error_and_saves_nothing(
        self, bank, admin_client, overrides, field, text
    ):
        response = admin_client.post(ADD, form_data(bank, **overrides))

        errors = form_errors(response)
        assert text in errors.get(field, ""), errors
        assert not FeeRule.objects.exists()

    def test_an_overlapping_period_is_a_form_error(self, bank, admin_client, fee_rule):
        fee_rule(event="cash_withdrawal", channel="teller")

        response = admin_client.post(ADD, form_data(bank, effective_from="2026-12-10"))

        errors = form_errors(response)
        assert "fees.overlapping_rule" in errors["effective_from"]
        assert FeeRule.objects.count() == 1


class TestFeeRuleChange:
    def test_a_change_bumps_the_version_and_keeps_history(self, bank, admin_client, fee_rule):
        rule = fee_rule(event="cash_withdrawal", channel="teller")
        data = form_data(bank, calc_type="flat", flat_fee="3.00", rate="0", min_fee="")

        response = admin_client.post(change_url(rule), data)

        assert response.status_code == 302, form_errors(response)
        rule.refresh_from_db()
        assert (rule.version, rule.flat_minor, rule.calc_type) == (2, 300, "flat")
        assert rule.history.count() == 2

    def test_the_change_form_shows_amounts_as_strings(self, bank, admin_client, fee_rule):
        rule = fee_rule(calc_type="percent", rate_percent="0.5", max_fee="7.50")

        response = admin_client.get(change_url(rule))

        form = response.context["adminform"].form
        assert (form.initial["rate"], form.initial["max_fee"]) == ("0.5", "7.50")

    def test_event_and_currency_cannot_be_changed_here(self, bank, admin_client, fee_rule):
        rule = fee_rule()

        admin_client.post(
            change_url(rule), form_data(bank, event="dormancy", currency="JPY", min_fee="")
        )

        rule.refresh_from_db()
        assert (rule.event, rule.currency) == ("transfer_out", "USD")

    def test_a_bad_change_saves_nothing(self, bank, admin_client, fee_rule):
        rule = fee_rule()

        response = admin_client.post(
            change_url(rule), form_data(bank, calc_type="flat", rate="0", flat_fee="-1.00")
        )

        assert "fees.negative_amount" in form_errors(response)["flat_fee"]
        rule.refresh_from_db()
        assert (rule.version, rule.flat_minor) == (1, 100)

    def test_history_can_be_read(self, bank, admin_client, fee_rule):
        rule = fee_rule()

        response = admin_client.get(f"/admin/fees/feerule/{rule.pk}/history/")

        assert response.status_code == 200

    def test_rules_cannot_be_deleted(self, bank, admin_client, fee_rule):
        rule = fee_rule()

        response = admin_client.post(f"/admin/fees/feerule/{rule.pk}/delete/", {"post": "yes"})

        assert response.status_code == 403
        assert FeeRule.objects.filter(pk=rule.pk).exists()


class TestFeeWaiverAdmin:
    ADD = "/admin/fees/feewaiver/add/"

    def data(self, **overrides):
        data = {
            "account": "",
            "customer": "",
            "event": "",
            "reason": "goodwill",
            "valid_from": "2026-11-30",
            "expires_on": "2027-01-01",
            "_save": "Save",
        }
        data.update(overrides)
        return data

    def test_a_waiver_is_created_through_the_service(self, bank, admin_client, open_account):
        account = open_account()

        response = admin_client.post(self.ADD, self.data(account=str(account.pk)))

        assert response.status_code == 302, form_errors(response)
        waiver = FeeWaiver.objects.get()
        assert waiver.account_id == account.pk and waiver.created_at is not None

    def test_a_waiver_for_both_account_and_customer_is_a_form_error(
        self, bank, admin_client, open_account
    ):
        account = open_account()

        response = admin_client.post(
            self.ADD, self.data(account=str(account.pk), customer=str(account.customer_id))
        )

        assert "fees.invalid_waiver" in form_errors(response)["account"]
        assert not FeeWaiver.objects.exists()

    def test_an_expiry_before_the_start_is_a_form_error(self, bank, admin_client, open_account):
        account = open_account()

        response = admin_client.post(
            self.ADD, self.data(account=str(account.pk), expires_on="2026-11-30")
        )

        assert "fees.invalid_period" in form_errors(response)["expires_on"]
        assert not FeeWaiver.objects.exists()


class TestFeeUsageAdmin:
    def test_counters_are_listed_but_cannot_be_added(self, bank, admin_client):
        listed = admin_client.get("/admin/fees/feeusage/")
        add = admin_client.get("/admin/fees/feeusage/add/")

        assert listed.status_code == 200
        assert add.status_code == 403
        assert not FeeUsage.objects.exists()
