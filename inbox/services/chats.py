"""Conversation actions (assign, status, AI, tags, notes, read) — each recorded in the chat's timeline."""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from inbox import router, signals
from inbox.consumers import user_group
from inbox.models import Chat, Message
from inbox.services.events import publish_chat_event
from integrations.errors import IntegrationError
from integrations.providers import provider_for
from kernel import realtime, tasks

logger = logging.getLogger(__name__)


# --- Conversation actions (each recorded in the chat's timeline) -------------------------------


def _record_activity(chat: Chat, actor, text: str, data: dict) -> Message:
    return Message.objects.create(
        organization_id=chat.organization_id,
        chat=chat,
        number_id=chat.number_id,
        direction=Message.Direction.INTERNAL,
        type=Message.Type.ACTIVITY,
        text=text[:4096],
        content={"type": "activity", "activity": data},
        status=Message.Status.RECEIVED,
        author_type=Message.Author.USER if actor else Message.Author.SYSTEM,
        author_user=actor,
    )


def _actor_name(actor) -> str:
    return actor.display_name if actor else _("Porfin")


@transaction.atomic
def chat_assign(*, chat: Chat, assignee, actor=None) -> Chat:
    """Assign (or, with ``assignee=None``, unassign) a chat; the new assignee is notified live."""
    if chat.assignee_id == (assignee.pk if assignee else None):
        return chat
    previous = chat.assignee
    chat.assignee = assignee
    chat.save(update_fields=["assignee"])
    if assignee:
        text = _("%(actor)s assigned the chat to %(user)s") % {
            "actor": _actor_name(actor),
            "user": assignee.display_name,
        }
    else:
        text = _("%(actor)s unassigned the chat") % {"actor": _actor_name(actor)}
    entry = _record_activity(
        chat, actor, text, {"kind": "assigned", "assignee": assignee.pk if assignee else None}
    )
    if previous and previous != assignee:
        # The previous assignee (an agent may see nothing else) learns it left their list.
        realtime.publish_on_commit(
            user_group(previous),
            {"type": "live.event", "data": {"type": "chat.removed", "chat": str(chat.code)}},
        )
    publish_chat_event(chat, "chat.changed", change="assigned", message=str(entry.code))
    signals.send_on_commit(
        signals.chat_changed, chat=chat, change="assigned", actor=actor, data={"assignee": assignee}
    )
    return chat


@transaction.atomic
def chat_set_status(*, chat: Chat, status: str, actor=None) -> Chat:
    if status not in Chat.Status.values:
        raise ValidationError(_("Unknown status."))
    if chat.status == status:
        return chat
    chat.status = status
    fields = ["status"]
    if status == Chat.Status.RESOLVED and chat.waiting_since:
        chat.waiting_since = None
        fields.append("waiting_since")
    chat.save(update_fields=fields)
    text = _("%(actor)s marked the chat as %(status)s") % {
        "actor": _actor_name(actor),
        "status": chat.get_status_display().lower(),
    }
    entry = _record_activity(chat, actor, text, {"kind": "status", "status": status})
    publish_chat_event(chat, "chat.changed", change="status", message=str(entry.code))
    signals.send_on_commit(
        signals.chat_changed, chat=chat, change="status", actor=actor, data={"status": status}
    )
    return chat


@transaction.atomic
def chat_set_ai(*, chat: Chat, enabled: bool, actor=None, reason: str = "") -> Chat:
    if chat.ai_enabled == enabled:
        return chat
    chat.ai_enabled = enabled
    fields = ["ai_enabled"]
    if enabled and chat.waiting_since:  # handed back to the assistant: nobody waits for a person
        chat.waiting_since = None
        fields.append("waiting_since")
    chat.save(update_fields=fields)
    if not enabled:
        router.chat_release(chat=chat)  # "AI off": no automation keeps the chat
    if enabled:
        text = _("%(actor)s turned the AI assistant on") % {"actor": _actor_name(actor)}
    else:
        text = _("%(actor)s turned the AI assistant off") % {"actor": _actor_name(actor)}
    if reason:
        text = f"{text}: {reason}"
    entry = _record_activity(
        chat, actor, text, {"kind": "ai", "enabled": enabled, "reason": reason}
    )
    publish_chat_event(chat, "chat.changed", change="ai", message=str(entry.code))
    signals.send_on_commit(
        signals.chat_changed,
        chat=chat,
        change="ai",
        actor=actor,
        data={"enabled": enabled, "reason": reason},
    )
    return chat


@transaction.atomic
def chat_wait_for_person(*, chat: Chat, reason: str = "") -> Chat:
    """Mark the chat as waiting for a person (an assistant handed it over): the chat list shows
    it until a person replies or resolves it."""
    if chat.waiting_since is not None:
        return chat
    chat.waiting_since = timezone.now()
    chat.save(update_fields=["waiting_since"])
    publish_chat_event(chat, "chat.changed", change="waiting")
    signals.send_on_commit(
        signals.chat_changed, chat=chat, change="waiting", actor=None, data={"reason": reason}
    )
    return chat


def _clean_tags(tags) -> list[str]:
    seen = []
    for tag in tags:
        tag = str(tag).strip().lower()[:40]
        if tag and tag not in seen:
            seen.append(tag)
    return seen[:30]


@transaction.atomic
def chat_set_tags(*, chat: Chat, tags: list[str], actor=None) -> Chat:
    tags = _clean_tags(tags)
    if tags == chat.tags:
        return chat
    added = [t for t in tags if t not in chat.tags]
    chat.tags = tags
    chat.save(update_fields=["tags"])
    text = _("%(actor)s set the tags: %(tags)s") % {
        "actor": _actor_name(actor),
        "tags": ", ".join(tags) or "—",
    }
    entry = _record_activity(chat, actor, text, {"kind": "tags", "tags": tags})
    publish_chat_event(chat, "chat.changed", change="tags", message=str(entry.code))
    signals.send_on_commit(
        signals.chat_changed,
        chat=chat,
        change="tags",
        actor=actor,
        data={"tags": tags, "added": added},
    )
    return chat


@transaction.atomic
def note_add(*, chat: Chat, author, body: str) -> Message:
    """A private note, visible only to the team; ``@name`` mentions notify those members."""
    from inbox import teamwork

    body = body.strip()
    if not body:
        raise ValidationError(_("Write something in the note."))
    note = Message.objects.create(
        organization_id=chat.organization_id,
        chat=chat,
        number_id=chat.number_id,
        direction=Message.Direction.INTERNAL,
        type=Message.Type.NOTE,
        text=body[:4096],
        content={"type": "note", "note": {"body": body}},
        status=Message.Status.RECEIVED,
        author_type=Message.Author.USER,
        author_user=author,
    )
    publish_chat_event(chat, "message.new", message=str(note.code))
    teamwork.mentions_notify(note=note, chat=chat, author=author, body=body)
    return note


def chat_mark_read(*, chat: Chat, user) -> None:
    """Opening a chat clears its unread count and (per number setting, where the provider has
    them) sends a read receipt."""
    if chat.unread_count == 0:
        return
    Chat.objects.filter(pk=chat.pk).update(unread_count=0)
    chat.unread_count = 0
    last_inbound = (
        chat.messages.filter(direction=Message.Direction.INBOUND, wamid__isnull=False)
        .order_by("-timestamp", "-id")
        .values_list("pk", flat=True)
        .first()
    )
    if last_inbound and chat.number.send_read_receipts and chat.capabilities.read_receipts:
        tasks.enqueue("inbox.tasks.send_read_receipt", last_inbound)
    publish_chat_event(chat, "chat.changed", change="read")


def read_receipt_send(message_id: int) -> None:
    message = Message.objects.select_related("number", "chat__contact").get(pk=message_id)
    try:
        provider_for(message.number).mark_read(message.wamid, to=message.chat.contact.wa_id)
    except IntegrationError as error:
        logger.info("Read receipt for %s not sent: %s", message.wamid, error)


def quick_reply_save(*, organization, author, shortcut: str, text: str, owner=None):
    from inbox.models import QuickReply

    return QuickReply.objects.create(
        organization=organization, shortcut=shortcut, text=text, created_by=author, owner=owner
    )
