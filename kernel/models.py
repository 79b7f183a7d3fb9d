"""The outbox: follow-up work recorded in the same transaction as the change that needs it."""

from django.db import models
from django.utils import timezone


class OutboxEntry(models.Model):
    """Work that must happen after a committed change (``kernel.outbox``): run by a task queued
    after commit, or by the sweep when the queue lost that task. Deleted once done."""

    key = models.CharField(max_length=64)  # a handler registered with ``outbox.register``
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    run_after = models.DateTimeField(default=timezone.now)  # later after a failure (backoff)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # Whose work it is (an ``accounts.Organization`` id, no foreign key: the kernel sits below
    # accounts); the ops page names it beside an entry that stopped retrying.
    organization_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["run_after"], name="kernel_outbox_run_after")]

    def __str__(self):
        return f"{self.key} #{self.pk}"
