"""Writes to the ledger: balance rows, postings, holds."""

from __future__ import annotations

from django.db import connection

from accounts.models import Account
from ledger.models import AccountBalance


def balance_open(
    *, account: Account, min_balance_minor: int, overdraft_limit_minor: int
) -> AccountBalance:
    """Create the zero balance row of a newly opened account. Caller holds a transaction."""
    assert connection.in_atomic_block, "balance_open must run inside the opening transaction"
    return AccountBalance.objects.create(
        account=account,
        currency=account.currency,
        min_balance_minor=min_balance_minor,
        overdraft_limit_minor=overdraft_limit_minor,
        is_office=account.kind == Account.Kind.OFFICE,
    )


def balance_lock(*, account_id: int) -> None:
    """Take the posting lock of one account (its balance row) until the transaction ends."""
    assert connection.in_atomic_block, "balance_lock needs a transaction"
    list(
        AccountBalance.objects.select_for_update()
        .filter(account_id=account_id)
        .values_list("account_id", flat=True)
    )
