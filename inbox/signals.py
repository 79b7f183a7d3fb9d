"""Domain events of the inbox, for the apps above it (assistants, campaigns, outgoing webhooks).

Sent after the change commits (``send_on_commit``), so receivers see committed rows and may
enqueue tasks. Receivers must be quick and idempotent: enqueue work, don't do it inline.
"""

from django.db import transaction
from django.dispatch import Signal

# message=Message (inbound, from a customer; reactions/edits/revokes excluded)
message_received = Signal()
# message=Message (outbound, just stored as pending: from a user, assistant, campaign...)
message_created = Signal()
# message=Message, status=str (sent, delivered, read, failed), previous=str
message_status_changed = Signal()
# changes=[(Message, status, previous), ...]: the same changes, all those of one commit at once
# (a webhook batch moves dozens of messages), for receivers that work in bulk
message_statuses_changed = Signal()
# chat=Chat, change=str ("created", "assigned", "status", "ai", "tags"), actor=User|None, data=dict
chat_changed = Signal()
# contact=Contact, change=str ("created", "opted_out", "opted_in"), data=dict
contact_changed = Signal()


def send_on_commit(signal: Signal, **kwargs) -> None:
    transaction.on_commit(lambda: signal.send(sender=None, **kwargs))
