"""Subscriptions to the WhatsApp channel's domain events (see ``integrations.signals``)."""

from django.dispatch import receiver

from inbox import services
from inbox import signals as inbox_signals
from inbox.models import Chat
from inbox.tasks import chat_auto_assign
from integrations import signals
from kernel import outbox


@receiver(signals.message_received, dispatch_uid="inbox-message-received")
def store_inbound_message(sender, *, number, message, **kwargs):
    services.message_receive(number=number, inbound=message)


@receiver(signals.message_echoed, dispatch_uid="inbox-message-echoed")
def store_own_message(sender, *, number, message, **kwargs):
    from inbox import echoes

    echoes.message_echo_record(number=number, echo=message)


@receiver(signals.messages_batch_received, dispatch_uid="inbox-messages-batch-received")
def store_inbound_messages(sender, *, number, messages, **kwargs):
    services.messages_receive(number=number, inbounds=messages)


@receiver(signals.batch_starting, dispatch_uid="inbox-batch-starting")
def lock_chats_of_batch(sender, *, number, wa_ids, wamids, **kwargs):
    services.chats_lock_for_batch(number=number, wa_ids=wa_ids, wamids=wamids)


@receiver(signals.statuses_received, dispatch_uid="inbox-statuses-received")
def apply_statuses(sender, *, number, statuses, **kwargs):
    services.unknown_sends_reconcile(number=number, updates=statuses)
    services.message_statuses_apply(number=number, updates=statuses)


from inbox import outgoing_events  # noqa: F401,E402

AUTO_ASSIGN = "inbox.chat_auto_assign"
outbox.register(AUTO_ASSIGN, lambda payload: chat_auto_assign(payload["chat"]))


@receiver(inbox_signals.chat_changed, dispatch_uid="inbox-chat-auto-assign")
def auto_assign_new_chat(sender, *, chat, change, **kwargs):
    """A new chat goes to a team's round robin (``inbox.teamwork.chat_auto_assign``), through
    the outbox: a broker outage delays the assignment, never drops it."""
    if change == "created" and chat.assignee_id is None:
        outbox.add(AUTO_ASSIGN, {"chat": chat.pk}, organization_id=chat.organization_id)


@receiver(inbox_signals.message_received, dispatch_uid="inbox-snooze-ends-on-reply")
def end_snooze_on_customer_message(sender, *, message, **kwargs):
    """A customer writing ends the chat's snooze: it is back in the open list."""
    Chat.objects.filter(pk=message.chat_id, snoozed_until__isnull=False).update(
        snoozed_until=None, status=Chat.Status.OPEN
    )
