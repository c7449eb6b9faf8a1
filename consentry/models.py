"""Project-wide records that belong to no domain app: idempotent responses and the outbox."""

from __future__ import annotations

from django.db import models


class IdempotencyRecord(models.Model):
    """The first response to a write made with an ``Idempotency-Key`` (API.md, Conventions).

    The row is inserted in the same transaction as the write it guards and
    holds that write's response when it commits, so a retry either waits for
    the first attempt (the unique index blocks it) and replays its answer, or,
    if the first attempt rolled back, runs as if it were the first.
    """

    # Whose key: "user:<id>" for people (session or user token), "token:<id>" for machine tokens.
    caller = models.CharField(max_length=80)
    key = models.CharField(max_length=255)
    # SHA-256 over method, path and the canonical JSON body: "the same request".
    fingerprint = models.CharField(max_length=64)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    # Null only inside the guarding transaction, before the write answered.
    status_code = models.PositiveSmallIntegerField(null=True)
    body = models.JSONField(null=True)
    content_type = models.CharField(max_length=100, blank=True, default="")
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            # One first response per caller and key: the lock concurrent retries queue on.
            models.UniqueConstraint(fields=["caller", "key"], name="idempotency_unique_caller_key"),
        ]
        indexes = [
            # The purge task deletes by age.
            models.Index(fields=["created_at"], name="idempotency_created"),
        ]

    def __str__(self) -> str:
        return f"{self.caller} {self.key} → {self.status_code}"


class OutboxMessage(models.Model):
    """A side effect to carry out after its transaction commits (the transactional outbox).

    Services write it with ``consentry.outbox.publish`` in the same transaction
    as the state change, so a crash or a broker outage between commit and
    delivery loses nothing: a relay delivers pending messages, at least once,
    in ``id`` order, and consumers are idempotent.
    """

    topic = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set once every consumer has handled the message.
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ("id",)
        indexes = [
            # The relay's scan: undelivered messages in commit order.
            models.Index(fields=["id"], condition=models.Q(delivered_at__isnull=True), name="outbox_pending"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.topic}"
