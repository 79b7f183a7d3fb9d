"""Flow domain events (outgoing webhooks and analytics subscribe; nothing below imports flows)."""

from django.db import transaction
from django.dispatch import Signal

run_ended = Signal()  # run_id, status (completed, handed_off, expired, failed, cancelled)


def send_on_commit(signal: Signal, **kwargs) -> None:
    transaction.on_commit(lambda: signal.send(sender=None, **kwargs))
