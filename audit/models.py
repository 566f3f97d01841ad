"""The audit log: one append-only, hash-chained table, and the head of its chain.

Design overview (docs/audit.md): a row is inserted with the hash of its own content
(``content_hash``) inside the transaction of the change it records: one INSERT, no lock.
Sealing links committed rows into the chain later, in the order it finds them: it gives each
row the next ``chain_seq``, the previous row's ``row_hash`` as ``prev_hash``, and
``row_hash = sha256(seq|id|content_hash|prev_hash)``. Only the ``audit_seal`` SQL function
writes those three columns, once per row, and moves the chain head. Triggers refuse every
other UPDATE, any DELETE and a TRUNCATE by the application; the application's database role
may only SELECT and INSERT here.
"""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.db import models


class AuditLog(models.Model):
    class Kind(models.TextChoices):
        REQUEST = "request", "API or admin request"
        DECISION = "decision", "Decision (state change)"

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        REFUSED = "refused"  # 4xx: the caller or a business rule was turned away
        ERROR = "error"  # 5xx: the server failed

    at = models.DateTimeField(help_text="When the row was written (wall clock, UTC).")
    # ``kind`` and ``outcome`` are of the domain types ``audit_kind`` and ``audit_outcome``
    # (migration 0005), which allow only these choices: a domain's check is planned once per
    # session, a table CHECK on every INSERT. An AlterField here would drop the domain.
    kind = models.CharField(max_length=10, choices=Kind.choices)
    channel = models.CharField(max_length=10, help_text="api, admin, batch or direct.")
    actor = models.CharField(max_length=150, blank=True, help_text="Username or system:<job>.")
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    role = models.CharField(max_length=20, blank=True)
    action = models.CharField(
        max_length=200, help_text="'METHOD /path' for requests, e.g. 'transaction.posted'."
    )
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    # Of the domain type audit_status_code (>= 0, migration 0007), for the reason kind's
    # comment gives; an AlterField here would drop the domain.
    status_code = models.SmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=100, blank=True)
    source_ip = models.CharField(max_length=45, blank=True)
    details = models.JSONField(default=dict, blank=True)
    content_hash = models.CharField(max_length=64)
    # Chain fields: NULL until the row is sealed, then never changed.
    chain_seq = models.BigIntegerField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64, null=True, blank=True)
    row_hash = models.CharField(max_length=64, null=True, blank=True)

    class Meta:
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"
        indexes = [
            BrinIndex(fields=["at"], name="audit_log_at_brin"),
            models.Index(fields=["object_type", "object_id"], name="audit_log_object"),
            models.Index(fields=["actor"], name="audit_log_actor"),
            models.Index(fields=["request_id"], name="audit_log_request_id"),
            # What the sealer looks for; a sealed row leaves this index.
            models.Index(
                fields=["id"], name="audit_log_unsealed", condition=models.Q(row_hash__isnull=True)
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["chain_seq"],
                name="audit_log_chain_seq_unique",
                condition=models.Q(chain_seq__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.outcome}"


class AuditChainHead(models.Model):
    """The last sealed row's position and hash (one row). Written only by ``audit_seal``.

    Without it, deleting the newest rows would leave a shorter chain that still verifies;
    publishing this pair (the end-of-day report does) anchors the chain outside the table.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="audit_chain_head_single_row")
        ]

    def __str__(self) -> str:
        return f"chain head #{self.last_seq}"
