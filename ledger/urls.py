"""Routes of the ledger's teller API under ``/api/v1/`` (no trailing slashes)."""

from django.urls import URLPattern, path

from banksim.api.routing import by_method
from ledger.api import holds, movements, reports, transactions

urlpatterns: list[URLPattern] = [
    path("transfers", movements.TransferCreateApi.as_view(), name="transfers"),
    path("deposits", movements.DepositCreateApi.as_view(), name="deposits"),
    path("withdrawals", movements.WithdrawalCreateApi.as_view(), name="withdrawals"),
    path("adjustments", movements.AdjustmentCreateApi.as_view(), name="adjustments"),
    path("transactions", transactions.TransactionListApi.as_view(), name="transactions"),
    path(
        "transactions/<str:txn_id>",
        transactions.TransactionDetailApi.as_view(),
        name="transaction",
    ),
    path(
        "transactions/<str:txn_id>/reverse",
        transactions.TransactionReverseApi.as_view(),
        name="transaction-reverse",
    ),
    path(
        "transactions/<str:txn_id>/approve",
        transactions.TransactionApproveApi.as_view(),
        name="transaction-approve",
    ),
    path(
        "transactions/<str:txn_id>/reject",
        transactions.TransactionRejectApi.as_view(),
        name="transaction-reject",
    ),
    path(
        "accounts/<str:account_number>/holds",
        by_method(get=holds.HoldListApi, post=holds.HoldPlaceApi),
        name="account-holds",
    ),
    path("holds/<int:hold_id>/release", holds.HoldReleaseApi.as_view(), name="hold-release"),
    path(
        "accounts/<str:account_number>/balance",
        reports.BalanceApi.as_view(),
        name="account-balance",
    ),
    path(
        "accounts/<str:account_number>/statement",
        reports.StatementApi.as_view(),
        name="account-statement",
    ),
    path("reports/trial-balance", reports.TrialBalanceApi.as_view(), name="trial-balance"),
]
