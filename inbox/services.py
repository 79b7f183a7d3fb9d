"""Changes to contacts, chats and messages. Every change publishes a live event after commit."""

import hashlib
import logging
import mimetypes

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from config import realtime, tasks
from inbox import signals
from inbox.consumers import organization_group, user_group
from inbox.models import SERVICE_WINDOW, Chat, Contact, Media, Message, OrphanStatus
from integrations.models import WhatsAppNumber
from integrations.whatsapp import validation
from integrations.whatsapp.errors import WhatsAppError
from integrations.whatsapp.payloads import InboundMessage, StatusUpdate

logger = logging.getLogger(__name__)

# A status only moves forward; "failed" is final unless the message was already delivered.
STATUS_RANK = {
    Message.Status.PENDING: 0,
    Message.Status.SENT: 1,
    Message.Status.DELIVERED: 2,
    Message.Status.READ: 3,
    Message.Status.FAILED: 4,
}
STATUS_TIMESTAMP = {
    "sent": "sent_at",
    "delivered": "delivered_at",
    "read": "read_at",
    "failed": "failed_at",
}
MEDIA_TYPES = {"image", "video", "audio", "document", "sticker"}


def e164(wa_id: str) -> str:
    """WhatsApp ids are digits without "+"; store phones as E.164 when they parse."""
    try:
        number = phonenumbers.parse("+" + wa_id.lstrip("+"))
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return "+" + wa_id.lstrip("+")


# --- Live events ------------------------------------------------------------------------------


def publish_chat_event(chat: Chat, event_type: str, **data) -> None:
    """Number the event in the chat's sequence and send it, after commit, to everyone who may
    see the chat: the organization's group and the assignee (agents see only their own)."""
    Chat.objects.filter(pk=chat.pk).update(seq=F("seq") + 1)
    seq = Chat.objects.filter(pk=chat.pk).values_list("seq", flat=True).get()
    payload = {"type": event_type, "chat": str(chat.code), "seq": seq, **data}
    event = {"type": "live.event", "data": payload}
    realtime.publish_on_commit(organization_group(chat.organization), event)
    if chat.assignee_id:
        realtime.publish_on_commit(user_group(chat.assignee), event)


# --- Inbound ----------------------------------------------------------------------------------


def contact_for_inbound(*, number: WhatsAppNumber, wa_id: str, profile_name: str) -> Contact:
    contact, created = Contact.objects.get_or_create(
        organization_id=number.organization_id,
        wa_id=wa_id,
        defaults={"phone": e164(wa_id), "profile_name": profile_name},
    )
    if created:
        signals.send_on_commit(signals.contact_changed, contact=contact, change="created", data={})
    elif profile_name and contact.profile_name != profile_name:
        Contact.objects.filter(pk=contact.pk).update(profile_name=profile_name)
        contact.profile_name = profile_name
    return contact


def chat_for_contact(*, number: WhatsAppNumber, contact: Contact) -> Chat:
    chat, created = Chat.objects.select_related("organization").get_or_create(
        organization_id=number.organization_id, contact=contact, number=number
    )
    if created:
        signals.send_on_commit(
            signals.chat_changed, chat=chat, change="created", actor=None, data={}
        )
    return chat


@transaction.atomic
def message_receive(*, number: WhatsAppNumber, inbound: InboundMessage) -> Message | None:
    """Store a customer's message once (the same wamid twice is one message) and update the chat.

    Reactions, edits and revokes change the message they point at rather than adding a bubble.
    """
    if Message.objects.filter(number=number, wamid=inbound.wamid).exists():
        return None
    contact = contact_for_inbound(
        number=number, wa_id=inbound.wa_id or inbound.user_id, profile_name=inbound.profile_name
    )
    chat = chat_for_contact(number=number, contact=contact)
    if inbound.type in ("reaction", "edit", "revoke"):
        return _apply_change_to_target(chat, number, inbound)
    message_type = inbound.type if inbound.type in Message.Type.values else Message.Type.UNSUPPORTED
    reply_to = None
    if inbound.reply_to_wamid:
        reply_to = Message.objects.filter(number=number, wamid=inbound.reply_to_wamid).first()
    try:
        with transaction.atomic():
            message = Message.objects.create(
                organization_id=number.organization_id,
                chat=chat,
                number=number,
                direction=Message.Direction.INBOUND,
                type=message_type,
                text=inbound.text[:4096],
                content={
                    "type": inbound.type,
                    inbound.type: inbound.content,
                    "context": inbound.context,
                    "referral": inbound.referral,
                    "errors": [e.__dict__ for e in inbound.errors],
                },
                wamid=inbound.wamid,
                reply_to=reply_to,
                reply_to_wamid=inbound.reply_to_wamid or "",
                status=Message.Status.RECEIVED,
                author_type=Message.Author.CUSTOMER,
                timestamp=inbound.timestamp,
            )
    except IntegrityError:  # a concurrent worker stored the same wamid first
        return None
    now = timezone.now()
    window = max(inbound.timestamp, now - SERVICE_WINDOW) + SERVICE_WINDOW
    Chat.objects.filter(pk=chat.pk).update(
        last_message_at=inbound.timestamp,
        last_message_preview=_preview(message),
        unread_count=F("unread_count") + 1,
        window_expires_at=window,
        status=Chat.Status.OPEN,
    )
    Contact.objects.filter(pk=contact.pk).update(last_inbound_at=inbound.timestamp)
    if inbound.media_id:
        Media.objects.create(
            organization_id=number.organization_id,
            message=message,
            meta_media_id=inbound.media_id,
            mime_type=inbound.mime_type or "application/octet-stream",
            filename=inbound.filename or "",
        )
        tasks.enqueue("inbox.tasks.download_media", message.pk, queue="inbound")
    publish_chat_event(chat, "message.new", message=str(message.code))
    signals.send_on_commit(signals.message_received, message=message)
    return message


def _apply_change_to_target(chat: Chat, number: WhatsAppNumber, inbound: InboundMessage):
    target_wamid = inbound.reaction_wamid or inbound.original_wamid
    target = Message.objects.select_for_update().filter(number=number, wamid=target_wamid).first()
    if target is None:
        logger.info(
            "%s for unknown message %s kept only in the webhook log", inbound.type, target_wamid
        )
        return None
    content = dict(target.content)
    if inbound.type == "reaction":
        reactions = dict(content.get("reactions") or {})
        emoji = inbound.content.get("emoji") or ""
        if emoji:
            reactions["customer"] = emoji
        else:
            reactions.pop("customer", None)
        content["reactions"] = reactions
    elif inbound.type == "edit":
        edited = inbound.content.get("message") or {}
        content["edited"] = edited
        target.text = (edited.get("text") or {}).get("body", target.text)
    else:
        content["revoked"] = True
        target.text = ""
    target.content = content
    target.save(update_fields=["content", "text"])
    publish_chat_event(chat, "message.changed", message=str(target.code))
    return target


def _preview(message: Message) -> str:
    if message.text:
        return message.text[:200]
    return f"[{message.get_type_display()}]"


@transaction.atomic
def message_status_apply(*, number: WhatsAppNumber, update: StatusUpdate) -> Message | None:
    """Move an outbound message's status forward; keep a status for an unknown wamid to apply
    when the message appears (the webhook can beat the send call's response)."""
    message = Message.objects.select_for_update().filter(number=number, wamid=update.wamid).first()
    if message is None:
        OrphanStatus.objects.get_or_create(
            number=number,
            wamid=update.wamid,
            status=update.status,
            defaults={
                "organization_id": number.organization_id,
                "timestamp": update.timestamp,
                "error": update.error.__dict__ if update.error else {},
            },
        )
        return None
    _apply_status(
        message, update.status, update.timestamp, update.error.__dict__ if update.error else {}
    )
    return message


def _apply_status(message: Message, status: str, when, error: dict) -> None:
    if status not in STATUS_TIMESTAMP:
        return
    fields = []
    stamp = STATUS_TIMESTAMP[status]
    if getattr(message, stamp) is None:
        setattr(message, stamp, when)
        fields.append(stamp)
    current = STATUS_RANK.get(message.status, 0)
    moves_forward = STATUS_RANK[status] > current
    if status == Message.Status.FAILED and current >= STATUS_RANK[Message.Status.DELIVERED]:
        moves_forward = False
    if moves_forward:
        previous, message.status = message.status, status
        signals.send_on_commit(
            signals.message_status_changed, message=message, status=status, previous=previous
        )
        fields.append("status")
        if status == Message.Status.FAILED:
            message.error_code = error.get("code")
            message.error_title = error.get("title") or ""
            message.error_details = error.get("details") or error.get("message") or ""
            fields += ["error_code", "error_title", "error_details"]
    if fields:
        message.save(update_fields=fields)
        publish_chat_event(
            message.chat, "message.status", message=str(message.code), status=message.status
        )


def _apply_orphan_statuses(message: Message) -> None:
    orphans = OrphanStatus.objects.filter(number_id=message.number_id, wamid=message.wamid)
    for orphan in sorted(orphans, key=lambda o: STATUS_RANK.get(o.status, 0)):
        _apply_status(message, orphan.status, orphan.timestamp, orphan.error)
    orphans.delete()


# --- Outbound ---------------------------------------------------------------------------------


class SendRefused(ValidationError):
    """The message cannot be sent as asked (closed window, invalid content); says why."""


@transaction.atomic
def message_send(
    *,
    chat: Chat,
    message_type: str,
    content: dict,
    author_type: str = Message.Author.USER,
    author_user=None,
    author_ref: str = "",
    reply_to: Message | None = None,
) -> Message:
    """Validate, store as pending, and queue the send. ``content`` is the Cloud API object for
    ``message_type`` (for text: ``{"body": ..., "preview_url": bool}``)."""
    if message_type != Message.Type.TEMPLATE and not chat.window_is_open:
        raise SendRefused(
            _(
                "The 24-hour customer service window is closed: the customer has not written in "
                "the last 24 hours, so WhatsApp only allows an approved template message."
            )
        )
    problem = validation.check_message(
        {
            "messaging_product": "whatsapp",
            "to": chat.contact.wa_id,
            "type": message_type,
            message_type: content,
        }
    )
    if problem is not None:
        raise SendRefused(str(problem))
    message = Message.objects.create(
        organization_id=chat.organization_id,
        chat=chat,
        number_id=chat.number_id,
        direction=Message.Direction.OUTBOUND,
        type=message_type,
        text=_outbound_text(message_type, content)[:4096],
        content={"type": message_type, message_type: content},
        reply_to=reply_to,
        reply_to_wamid=(reply_to.wamid or "") if reply_to else "",
        status=Message.Status.PENDING,
        author_type=author_type,
        author_user=author_user,
        author_ref=author_ref,
    )
    Chat.objects.filter(pk=chat.pk).update(
        last_message_at=message.timestamp, last_message_preview=_preview(message)
    )
    publish_chat_event(chat, "message.new", message=str(message.code))
    signals.send_on_commit(signals.message_created, message=message)
    tasks.enqueue("inbox.tasks.deliver_message", message.pk)
    return message


def _outbound_text(message_type: str, content: dict) -> str:
    if message_type == "text":
        return content.get("body", "")
    if message_type in MEDIA_TYPES:
        return content.get("caption", "")
    if message_type == "interactive":
        return (content.get("body") or {}).get("text", "")
    if message_type == "template":
        return content.get("name", "")
    return ""


def message_deliver(message_id: int) -> None:
    """Send a pending outbound message once: claim it, call the API, record wamid or failure."""
    from integrations.services import client_for

    claimed = Message.objects.filter(
        pk=message_id, status=Message.Status.PENDING, wamid__isnull=True, error_title=""
    ).update(error_title="sending")
    if not claimed:
        return
    message = Message.objects.select_related("chat__contact", "number", "chat__organization").get(
        pk=message_id
    )
    content = message.content[message.type]
    try:
        wamid = client_for(message.number).send_message(
            message.chat.contact.wa_id,
            message.type,
            content,
            reply_to=message.reply_to_wamid or None,
        )
    except WhatsAppError as error:
        with transaction.atomic():
            Message.objects.filter(pk=message_id).update(
                status=Message.Status.FAILED,
                failed_at=timezone.now(),
                error_code=error.code,
                error_title=(error.title or "Send failed")[:255],
                error_details=error.message,
            )
            publish_chat_event(
                message.chat, "message.status", message=str(message.code), status="failed"
            )
        return
    with transaction.atomic():
        Message.objects.filter(pk=message_id).update(
            wamid=wamid, status=Message.Status.SENT, sent_at=timezone.now(), error_title=""
        )
        message.refresh_from_db()
        publish_chat_event(message.chat, "message.status", message=str(message.code), status="sent")
        signals.send_on_commit(
            signals.message_status_changed, message=message, status="sent", previous="pending"
        )
        _apply_orphan_statuses(message)


# --- Media ------------------------------------------------------------------------------------


def media_download(message_id: int) -> None:
    """Fetch inbound media from Meta (its URLs expire) into our storage, with its sha256."""
    from integrations.services import client_for

    for media in Media.objects.select_related("message__number").filter(
        message_id=message_id, file=""
    ):
        client = client_for(media.message.number)
        data, info = client.fetch_media(
            media.meta_media_id, max_bytes=settings.INBOUND_MEDIA_MAX_BYTES
        )
        extension = mimetypes.guess_extension((info.mime_type or "").split(";")[0]) or ""
        name = media.filename or f"{media.meta_media_id}{extension}"
        media.sha256 = hashlib.sha256(data).hexdigest()
        media.size = len(data)
        media.mime_type = info.mime_type or media.mime_type
        media.file.save(name, ContentFile(data), save=False)
        media.save(update_fields=["sha256", "size", "mime_type", "file"])
        publish_chat_event(media.message.chat, "message.changed", message=str(media.message.code))


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
    chat.save(update_fields=["status"])
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
    chat.save(update_fields=["ai_enabled"])
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
    from accounts.models import Membership

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
    lowered = body.lower()
    members = Membership.objects.select_related("user").filter(organization_id=chat.organization_id)
    mentioned = [
        m.user
        for m in members
        if m.user != author
        and any(
            f"@{handle}" in lowered
            for handle in {
                m.user.email.split("@")[0].lower(),
                m.user.display_name.split()[0].lower(),
            }
        )
    ]
    note.mentions.set(mentioned)
    publish_chat_event(chat, "message.new", message=str(note.code))
    for user in mentioned:
        realtime.publish_on_commit(
            user_group(user),
            {
                "type": "live.event",
                "data": {
                    "type": "notification",
                    "chat": str(chat.code),
                    "text": _("%(author)s mentioned you: %(body)s")
                    % {"author": author.display_name, "body": body[:120]},
                },
            },
        )
    return note


def chat_mark_read(*, chat: Chat, user) -> None:
    """Opening a chat clears its unread count and (per number setting) sends a read receipt."""
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
    if last_inbound and chat.number.send_read_receipts:
        tasks.enqueue("inbox.tasks.send_read_receipt", last_inbound)
    publish_chat_event(chat, "chat.changed", change="read")


def read_receipt_send(message_id: int) -> None:
    from integrations.services import client_for

    message = Message.objects.select_related("number").get(pk=message_id)
    try:
        client_for(message.number).mark_read(message.wamid)
    except WhatsAppError as error:
        logger.info("Read receipt for %s not sent: %s", message.wamid, error)
