"""The teller API of the ledger: one plain ``APIView`` per operation.

Money-moving POSTs (transfers, deposits, withdrawals, adjustments, reversal, approval, hold
placement) require an ``Idempotency-Key`` header and answer through
``ledger.idempotency.idempotent_execute``; see docs/idempotency.md.
"""
