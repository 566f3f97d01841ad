import pytest

from ledger.selectors import trial_balance


@pytest.mark.django_db
class TestTrialBalance:
    def test_office_accounts_report_under_their_own_gl_subheads(
        self, bank, funded_account, post_movement
    ):
        saver = funded_account("100.00")
        post_movement(
            "adjustment", bank.office_account("suspense"), bank.office_account("fee_income"), "2.50"
        )

        (usd,) = trial_balance(currency="USD")

        lines = {line.gl_subhead: line for line in usd.lines}
        assert lines["10200"].debit.to_wire() == "100.00"  # teller cash took the deposit
        assert lines["40100"].credit.to_wire() == "2.50"  # fee income
        assert lines["19900"].debit.to_wire() == "2.50"  # suspense
        assert lines["20100"].credit.to_wire() == "100.00"  # savings deposits
        assert usd.net.is_zero()
        assert saver.gl_subhead is None
