"""Subscriptions to the WhatsApp channel's domain events (see ``integrations.signals``)."""

from django.dispatch import receiver

from inbox import services
from integrations import signals


@receiver(signals.message_received, dispatch_uid="inbox-message-received")
def store_inbound_message(sender, *, number, message, **kwargs):
    services.message_receive(number=number, inbound=message)


@receiver(signals.statuses_received, dispatch_uid="inbox-statuses-received")
def apply_statuses(sender, *, number, statuses, **kwargs):
    services.message_statuses_apply(number=number, updates=statuses)


from inbox import outgoing_events  # noqa: F401,E402
