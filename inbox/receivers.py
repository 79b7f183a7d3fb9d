"""Subscriptions to the WhatsApp channel's domain events (see ``integrations.signals``)."""

from django.dispatch import receiver

from inbox import services
from integrations import signals


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
