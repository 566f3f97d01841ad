"""Reads of balances, journals and statements."""

from __future__ import annotations

from dataclasses import dataclass

from banksim.core.errors import NotFound
from banksim.core.money import Money
from ledger.models import AccountBalance


class BalanceNotFound(NotFound):
    code = "account.not_found"
    title = "Account not found"


@dataclass(frozen=True)
class BalanceSnapshot:
    account_id: int
    ledger: Money
    held: Money
    available: Money  # ledger - held + overdraft headroom
    min_balance: Money
    overdraft_limit: Money


def balance_snapshot(*, account_id: int) -> BalanceSnapshot:
    """Return an account's balances as of the last committed posting.

    :raises BalanceNotFound: if the account has no balance row
    """
    row = AccountBalance.objects.filter(account_id=account_id).first()
    if row is None:
        raise BalanceNotFound(f"no account with id {account_id}")
    cur = row.currency
    return BalanceSnapshot(
        account_id=account_id,
        ledger=Money.from_minor(row.ledger_minor, cur),
        held=Money.from_minor(row.held_minor, cur),
        available=Money.from_minor(
            row.ledger_minor - row.held_minor + row.overdraft_limit_minor, cur
        ),
        min_balance=Money.from_minor(row.min_balance_minor, cur),
        overdraft_limit=Money.from_minor(row.overdraft_limit_minor, cur),
    )
