import pytest
from django.utils import timezone

from accounts import services
from accounts.models import Account, Customer
from ledger.models import AccountBalance
from tests.factories import CustomerFactory


@pytest.mark.django_db
class TestAccountOpen:
    def test_opens_a_zero_balance_account_with_a_valid_check_digit(self, bank, open_account):
        account = open_account("SBA-USD")

        assert services.account_number_is_valid(account.account_number)
        assert account.account_number.startswith(bank.branch.sol_code)
        assert AccountBalance.objects.get(account=account).ledger_minor == 0

    def test_refuses_a_customer_whose_kyc_is_pending(self, bank):
        pending = CustomerFactory(
            home_branch=bank.branch, kyc_status=Customer.KycStatus.PENDING, kyc_verified_on=None
        )

        with pytest.raises(services.KycNotVerified):
            services.account_open(
                customer_id=pending.pk,
                product_code="SBA-USD",
                branch_id=bank.branch.pk,
                actor=None,
                business_date=bank.business_date,
                now=timezone.now(),
            )

        assert not Account.objects.filter(customer=pending).exists()
