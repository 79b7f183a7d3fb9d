"""Subscriptions: consent keywords and reply attribution on inbound messages, recipient status
from the inbox's status changes, and send reconciliation from the status webhook's callback data.
"""

from django.dispatch import receiver

from campaigns import dispatch, services
from inbox import signals as inbox_signals
from integrations import signals as channel_signals


@receiver(inbox_signals.message_received, dispatch_uid="campaigns-message-received")
def on_message_received(sender, *, message, **kwargs):
    services.inbound_consent_apply(message=message)
    services.reply_attribute(message=message)


@receiver(inbox_signals.message_status_changed, dispatch_uid="campaigns-status-changed")
def on_message_status_changed(sender, *, message, status, **kwargs):
    services.recipient_status_apply(message=message, status=status)


@receiver(channel_signals.status_received, dispatch_uid="campaigns-status-callback")
def on_status_received(sender, *, number, status, **kwargs):
    # Runs inside the webhook's processing transaction, after the inbox stored the status (as an
    # orphan when the send's own record has not landed yet).
    if status.biz_opaque_callback_data.startswith(dispatch.CALLBACK_PREFIX):
        dispatch.reconcile_callback(
            callback_data=status.biz_opaque_callback_data, wamid=status.wamid
        )
