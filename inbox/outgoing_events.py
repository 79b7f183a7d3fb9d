"""The inbox's domain events, as outgoing webhook events for integrators.

Connected from ``inbox/receivers.py``. Receivers run after the change commits and only queue
deliveries (``integrations.outgoing.event_publish``); the payloads carry public ids (UUIDs),
E.164 phones and ISO-8601 UTC times, and every chat event carries the chat's own ``sequence``
so a receiver can order one chat's events even when deliveries overtake each other.
"""

from datetime import UTC

from django.dispatch import receiver

from inbox import signals
from inbox.models import Chat, Message
from integrations import outgoing


def _time(value) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _chat_ref(chat_id: int) -> dict:
    chat = Chat.objects.select_related("contact", "number", "assignee").get(pk=chat_id)
    return {
        "id": str(chat.code),
        "status": chat.status,
        "sequence": chat.seq,
        "number": {
            "id": str(chat.number.code),
            "display_phone_number": chat.number.display_phone_number,
        },
        "contact": {
            "id": str(chat.contact.code),
            "phone": chat.contact.phone,
            "name": chat.contact.display_name,
        },
        "assignee": {"email": chat.assignee.email, "name": chat.assignee.display_name}
        if chat.assignee
        else None,
        "tags": chat.tags,
        "ai_enabled": chat.ai_enabled,
    }


def _message(message: Message) -> dict:
    return {
        "id": str(message.code),
        "direction": message.direction,
        "type": message.type,
        "text": message.text,
        "content": message.content,
        "status": message.status,
        "wamid": message.wamid,
        "author_type": message.author_type,
        "timestamp": _time(message.timestamp),
        "error": {
            "code": message.error_code,
            "title": message.error_title,
            "details": message.error_details,
        }
        if message.status == Message.Status.FAILED
        else None,
    }


def _contact(contact) -> dict:
    return {
        "id": str(contact.code),
        "phone": contact.phone,
        "name": contact.display_name,
        "email": contact.email,
        "tags": contact.tags,
        "opt_in": contact.opt_in,
        "opt_in_at": _time(contact.opt_in_at),
    }


def _publish(organization_id: int, event_type: str, data) -> None:
    """``data`` is a function: payloads are built only when someone subscribes."""
    outgoing.event_publish(organization_id=organization_id, event_type=event_type, data=data)


@receiver(signals.messages_stored, dispatch_uid="outgoing-messages-stored")
def messages_stored(sender, *, messages, **kwargs):
    """Inside the storing transaction: the deliveries commit with the messages (a broker
    outage delays their sending, ``deliveries_retry_due``, and never loses them), and a batch
    of messages is one INSERT per subscription."""
    by_organization: dict[int, list] = {}
    for message in messages:
        by_organization.setdefault(message.organization_id, []).append(message)
    for organization_id, group in by_organization.items():
        outgoing.events_publish(
            organization_id=organization_id,
            event_type="message.received",
            items=lambda group=group: [
                {"message": _message(message), "chat": _chat_ref(message.chat_id)}
                for message in group
            ],
        )


@receiver(signals.message_status_changed, dispatch_uid="outgoing-message-status")
def message_status_changed(sender, *, message, status, previous, **kwargs):
    def data():
        return {
            "message": _message(message),
            "previous_status": previous,
            "chat": _chat_ref(message.chat_id),
        }

    if status == Message.Status.SENT:
        _publish(message.organization_id, "message.sent", data)
    _publish(message.organization_id, "message.status", data)


@receiver(signals.chat_changed, dispatch_uid="outgoing-chat-changed")
def chat_changed(sender, *, chat, change, actor=None, data=None, **kwargs):
    data = data or {}
    event = None
    if change == "created":
        event = "chat.created"
    elif change == "assigned":
        event = "chat.assigned"
    elif change == "status" and data.get("status") == Chat.Status.RESOLVED:
        event = "chat.resolved"
    if event:
        actor_ref = {"email": actor.email, "name": actor.display_name} if actor else None
        _publish(
            chat.organization_id, event, lambda: {"chat": _chat_ref(chat.pk), "actor": actor_ref}
        )


@receiver(signals.contacts_changed, dispatch_uid="outgoing-contacts-changed")
def contacts_changed(sender, *, contacts, change, data=None, **kwargs):
    """One delivery per contact, queued in bulk (an import creates thousands at once)."""
    event = {"created": "contact.created", "opted_out": "contact.opted_out"}.get(change)
    if not event:
        return
    by_organization: dict[int, list] = {}
    for contact in contacts:
        by_organization.setdefault(contact.organization_id, []).append(contact)
    for organization_id, group in by_organization.items():
        outgoing.events_publish(
            organization_id=organization_id,
            event_type=event,
            items=lambda group=group: [{"contact": _contact(contact)} for contact in group],
        )
