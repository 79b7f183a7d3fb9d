"""Domain events of the inbox, for the apps above it (assistants, campaigns, outgoing webhooks).

Sent after the change commits (``send_on_commit``), so receivers see committed rows and may
enqueue tasks. Receivers must be quick and idempotent: enqueue work, don't do it inline.
"""

from django.db import transaction
from django.dispatch import Signal

# message=Message (inbound, from a customer; reactions/edits/revokes excluded)
message_received = Signal()
# messages=[Message, ...] (inbound, from customers, in the order stored): sent INSIDE the
# transaction that stores them (a webhook batch's, or one), so receivers record their follow-up
# work in the same commit (``kernel.outbox``) and a broker outage cannot lose it. Receivers must
# be quick: a few INSERTs per batch, never work per message.
messages_stored = Signal()
# message=Message (outbound, just stored as pending: from a user, assistant, campaign...)
message_created = Signal()
# message=Message, status=str (sent, delivered, read, failed), previous=str
message_status_changed = Signal()
# changes=[(Message, status, previous), ...]: the same changes, all those of one commit at once
# (a webhook batch moves dozens of messages), for receivers that work in bulk
message_statuses_changed = Signal()
# chat=Chat, change=str ("created", "assigned", "status", "ai", "tags"), actor=User|None, data=dict
chat_changed = Signal()
# contact=Contact, change=str ("created", "updated", "opted_out", "opted_in", "analysis",
# "erased"), data=dict. Contact writes go through ``inbox.contacts``, which sends it.
contact_changed = Signal()
# contacts=[Contact, ...], change=str, data=dict: the same events, all those of one operation at
# once (an import creates thousands), for receivers that work in bulk (queue one task, not one
# per contact). Every ``contact_changed`` is also sent in one of these: subscribe to one only.
contacts_changed = Signal()
# contact=Contact (still holding its personal data), token=str, actor=User|None, request:
# sent synchronously INSIDE the erasure's transaction (``inbox.contacts.contact_erase``), so each
# app above the inbox clears what it holds about the contact, and an audit entry is written in
# the same commit. Receivers must not queue work that needs the personal data.
contact_erasing = Signal()


def send_on_commit(signal: Signal, **kwargs) -> None:
    transaction.on_commit(lambda: signal.send(sender=None, **kwargs))


def contacts_changed_on_commit(*, contacts: list, change: str, data: dict | None = None) -> None:
    """After commit: ``contact_changed`` for each contact, then one ``contacts_changed``."""
    data = data or {}
    contacts = list(contacts)
    if not contacts:
        return

    def send():
        for contact in contacts:
            contact_changed.send(sender=None, contact=contact, change=change, data=data)
        contacts_changed.send(sender=None, contacts=contacts, change=change, data=data)

    transaction.on_commit(send)


def contact_changed_on_commit(*, contact, change: str, data: dict | None = None) -> None:
    contacts_changed_on_commit(contacts=[contact], change=change, data=data)
