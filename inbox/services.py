"""Changes to contacts, chats and messages. Every change publishes a live event after commit."""

import functools
import hashlib
import logging
import mimetypes
import random
import uuid
from collections import Counter
from datetime import datetime, timedelta

import phonenumbers
import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from inbox import router, signals
from inbox.consumers import organization_group, user_group
from inbox.media import clean_filename, media_file_save
from inbox.models import Chat, Contact, Media, Message, OrphanStatus
from integrations.errors import IntegrationError, MediaError, ServerError
from integrations.events import InboundMessage, StatusUpdate
from integrations.models import MessageTemplate, WhatsAppNumber
from integrations.providers import MediaInfo, capabilities_for, provider_for
from integrations.whatsapp import validation
from kernel import realtime, tasks

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
# A teammate's reply answers the customer's unclaimed messages of the day before it.
PERSON_REPLY_LOOKBACK = timedelta(hours=24)
MEDIA_TYPES = {"image", "video", "audio", "document", "sticker"}


def e164(wa_id: str) -> str:
    """WhatsApp ids are digits without "+"; store phones as E.164 when they parse.

    Clamped to the column: an id that is no phone number (a BSUID such as "US.1349...") may be
    longer, and one customer's odd id must not fail the webhook delivery it came in.
    """
    try:
        number = phonenumbers.parse("+" + wa_id.lstrip("+"))
        phone = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        phone = "+" + wa_id.lstrip("+")
    return phone[: Contact._meta.get_field("phone").max_length]


# --- Live events ------------------------------------------------------------------------------


def publish_chat_event(chat: Chat, event_type: str, **data) -> None:
    """Number the event in the chat's sequence and send it, after commit, to everyone who may
    see the chat: the organization's group and the assignee (agents see only their own)."""
    publish_chat_events([(chat, event_type, data)])


def publish_chat_events(events: list[tuple[Chat, str, dict]]) -> None:
    """``publish_chat_event`` for many events (a webhook batch's status changes): one statement
    numbers them all, each chat's in the order given. Several chats must already be locked in
    a fixed order (see ``chats_lock_for_batch``)."""
    if not events:
        return
    counts = Counter(chat.pk for chat, _type, _data in events)
    if max(counts.values()) == 1:
        increment, params = "1", []
    else:
        increment = "CASE id " + "WHEN %s THEN %s " * len(counts) + "END"
        params = [value for pk, count in counts.items() for value in (pk, count)]
    placeholders = ", ".join(["%s"] * len(counts))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Chat._meta.db_table} SET seq = seq + {increment} "  # noqa: S608
            f"WHERE id IN ({placeholders}) RETURNING id, seq",
            [*params, *counts],
        )
        seq = {pk: last - counts[pk] for pk, last in cursor.fetchall()}
    for chat, event_type, data in events:
        seq[chat.pk] += 1
        chat.seq = seq[chat.pk]
        _chat_event_publish(chat, event_type, data)


def _chat_event_publish(chat: Chat, event_type: str, data: dict) -> None:
    """Send, after commit, a chat's event already numbered ``chat.seq``."""
    payload = {"type": event_type, "chat": str(chat.code), "seq": chat.seq, **data}
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
        signals.contact_changed_on_commit(contact=contact, change="created", data={})
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


@transaction.atomic(savepoint=False)  # no savepoint when nested: hot path
def message_receive(*, number: WhatsAppNumber, inbound: InboundMessage) -> Message | None:
    """Store a customer's message once (the same wamid twice is one message) and update the chat.

    Reactions, edits and revokes change the message they point at rather than adding a bubble.
    """
    wa_id = inbound.wa_id or inbound.user_id or str(inbound.content.get("wa_id") or "")
    if not wa_id:
        logger.warning("Inbound %s %s names no customer; not stored", inbound.type, inbound.wamid)
        return None
    # A returning customer's chat and contact in one query; first contact creates them.
    chat = (
        Chat.objects.select_related("contact", "organization")
        .filter(number=number, contact__organization_id=number.organization_id)
        .filter(contact__wa_id=wa_id)
        .first()
    )
    new_chat = False
    if chat is not None and (
        not inbound.profile_name or chat.contact.profile_name == inbound.profile_name
    ):
        contact = chat.contact
    else:
        name = inbound.profile_name
        contact = contact_for_inbound(number=number, wa_id=wa_id, profile_name=name)
        if chat is None:
            chat = chat_for_contact(number=number, contact=contact)
            new_chat = True
        chat.contact = contact
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
    except IntegrityError:  # the same wamid again: a duplicate delivery, stored once already
        return None
    _chat_and_contact_record_inbound(chat, contact, message)
    if inbound.media_id:
        Media.objects.create(
            organization_id=number.organization_id,
            message=message,
            meta_media_id=inbound.media_id,
            mime_type=inbound.mime_type or "application/octet-stream",
            filename=clean_filename(inbound.filename or "", max_length=255),
        )
        tasks.enqueue("inbox.tasks.download_media", message.pk, queue="inbound")
    router.route(router.Inbound(message=message, chat=chat, contact=contact, new_chat=new_chat))
    _chat_event_publish(chat, "message.new", {"message": str(message.code)})
    signals.messages_stored.send(sender=None, messages=[message])
    signals.send_on_commit(signals.message_received, message=message)
    return message


CHANGE_TYPES = ("reaction", "edit", "revoke")  # change another message rather than add one


def _inbound_wa_id(inbound: InboundMessage) -> str:
    return inbound.wa_id or inbound.user_id or str(inbound.content.get("wa_id") or "")


@transaction.atomic(savepoint=False)  # no savepoint when nested: hot path
def messages_receive(*, number: WhatsAppNumber, inbounds: list[InboundMessage]) -> None:
    """``message_receive`` for a webhook batch's messages of one number, in order, with the
    same effects (once per wamid, chats and contacts created or updated, routed, live events
    numbered, ``messages_stored`` and ``message_received``), in a few statements per batch
    instead of several per message: new customers' contacts, chats and all the messages are
    each one INSERT. Reactions, edits and revokes go through ``message_receive`` in their
    place in the order. The caller runs this in a savepoint and, if it fails, dispatches the
    messages one by one (a race with another worker on a new customer, a bad field)."""
    run: list[InboundMessage] = []
    for inbound in inbounds:
        if inbound.type in CHANGE_TYPES or not _inbound_wa_id(inbound):
            _messages_store(number, run)
            run = []
            message_receive(number=number, inbound=inbound)
        else:
            run.append(inbound)
    _messages_store(number, run)


def _messages_store(number: WhatsAppNumber, inbounds: list[InboundMessage]) -> None:
    if not inbounds:
        return
    organization_id = number.organization_id
    # Once per wamid: those already stored (a duplicate delivery) and repeats in the batch go.
    known = set(
        Message.objects.filter(number=number, wamid__in={i.wamid for i in inbounds}).values_list(
            "wamid", flat=True
        )
    )
    fresh = []
    for inbound in inbounds:
        if inbound.wamid not in known:
            known.add(inbound.wamid)
            fresh.append(inbound)
    if not fresh:
        return
    wa_ids = list(dict.fromkeys(_inbound_wa_id(i) for i in fresh))
    chats = {
        chat.contact.wa_id: chat
        for chat in Chat.objects.select_related("contact", "organization").filter(
            number=number, contact__organization_id=organization_id, contact__wa_id__in=wa_ids
        )
    }
    organization = next(iter(chats.values())).organization if chats else number.organization
    names = {_inbound_wa_id(i): i.profile_name for i in fresh if i.profile_name}
    for wa_id, chat in chats.items():  # a returning customer's new profile name (rare)
        name = names.get(wa_id)
        if name and chat.contact.profile_name != name:
            Contact.objects.filter(pk=chat.contact.pk).update(profile_name=name)
            chat.contact.profile_name = name
    # First messages of customers new to this number: their contacts (new to the organization
    # or not) and chats, already holding what their first messages make of them.
    first = {}  # wa_id → the customer's first message in the batch
    for inbound in fresh:
        first.setdefault(_inbound_wa_id(inbound), inbound)
    missing = [wa_id for wa_id in wa_ids if wa_id not in chats]
    length = capabilities_for(number).service_window  # None: the provider has none
    new_contacts: list[Contact] = []
    new_chats: list[Chat] = []
    if missing:
        # Customers new to this number: contacts (new to the organization, or not) and chats,
        # created already holding what their messages in this batch make of them.
        contacts = {
            contact.wa_id: contact
            for contact in Contact.objects.filter(
                organization_id=organization_id, wa_id__in=missing
            )
        }
        own = [i for i in fresh if _inbound_wa_id(i) in set(missing)]
        latest: dict[str, InboundMessage] = {}
        count: Counter = Counter()
        for inbound in own:
            wa_id = _inbound_wa_id(inbound)
            count[wa_id] += 1
            if wa_id not in latest or latest[wa_id].timestamp <= inbound.timestamp:
                latest[wa_id] = inbound
        new_contacts = [
            Contact(
                organization_id=organization_id,
                wa_id=wa_id,
                phone=e164(wa_id),
                profile_name=names.get(wa_id, ""),
                last_inbound_at=latest[wa_id].timestamp,
            )
            for wa_id in missing
            if wa_id not in contacts
        ]
        Contact.objects.bulk_create(new_contacts)  # a race with another worker: IntegrityError
        for contact in new_contacts:
            contacts[contact.wa_id] = contact
        for wa_id in missing:
            contact, inbound = contacts[wa_id], latest[wa_id]
            if contact not in new_contacts:  # known to the organization, new to this number
                _contact_record_inbound(contact, names.get(wa_id), inbound.timestamp)
            chat = Chat(
                organization=organization,
                contact=contact,
                number=number,
                status=Chat.Status.OPEN,
                last_message_preview=_inbound_preview(inbound),
                last_message_at=inbound.timestamp,
                window_expires_at=inbound.timestamp + length if length else None,
                unread_count=count[wa_id],
                seq=count[wa_id],  # one live event per message, numbered below
            )
            chats[wa_id] = chat
            new_chats.append(chat)
        Chat.objects.bulk_create(new_chats)
    replied = {i.reply_to_wamid for i in fresh if i.reply_to_wamid}
    targets = (
        dict(Message.objects.filter(number=number, wamid__in=replied).values_list("wamid", "pk"))
        if replied
        else {}
    )
    messages = Message.objects.bulk_create(
        _inbound_message(number, chats[_inbound_wa_id(inbound)], inbound, targets)
        for inbound in fresh
    )
    media = [
        Media(
            organization_id=organization_id,
            message=message,
            meta_media_id=inbound.media_id,
            mime_type=inbound.mime_type or "application/octet-stream",
            filename=clean_filename(inbound.filename or "", max_length=255),
        )
        for message, inbound in zip(messages, fresh, strict=True)
        if inbound.media_id
    ]
    if media:
        Media.objects.bulk_create(media)
    by_chat: dict[int, list[Message]] = {}
    for message in messages:
        by_chat.setdefault(message.chat_id, []).append(message)
    new_chat_ids = {chat.pk for chat in new_chats}
    for chat in {chat.pk: chat for chat in chats.values()}.values():
        if chat.pk not in by_chat:
            continue
        if chat.pk not in new_chat_ids:
            _chat_and_contact_record_inbound(chat, chat.contact, by_chat[chat.pk])
        last = chat.seq
        for offset, message in enumerate(by_chat[chat.pk]):  # each its own number, in order
            chat.seq = last - len(by_chat[chat.pk]) + 1 + offset
            _chat_event_publish(chat, "message.new", {"message": str(message.code)})
        chat.seq = last
    seen: set[int] = set()
    routed = []
    for message in messages:
        chat = message.chat
        routed.append(
            router.Inbound(
                message=message,
                chat=chat,
                contact=chat.contact,
                new_chat=chat.pk in new_chat_ids and chat.pk not in seen,
            )
        )
        seen.add(chat.pk)
    router.route_many(routed)
    if new_contacts:
        signals.contacts_changed_on_commit(contacts=new_contacts, change="created")
    for chat in new_chats:
        signals.send_on_commit(
            signals.chat_changed, chat=chat, change="created", actor=None, data={}
        )
    for item in media:
        tasks.enqueue("inbox.tasks.download_media", item.message_id, queue="inbound")
    signals.messages_stored.send(sender=None, messages=messages)

    def received():
        for message in messages:
            signals.message_received.send(sender=None, message=message)

    transaction.on_commit(received)


def _inbound_message(
    number: WhatsAppNumber, chat: Chat | None, inbound: InboundMessage, targets=None
) -> Message:
    message_type = inbound.type if inbound.type in Message.Type.values else Message.Type.UNSUPPORTED
    return Message(
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
        reply_to_id=(targets or {}).get(inbound.reply_to_wamid),
        reply_to_wamid=inbound.reply_to_wamid or "",
        status=Message.Status.RECEIVED,
        author_type=Message.Author.CUSTOMER,
        timestamp=inbound.timestamp,
    )


def _contact_record_inbound(contact: Contact, profile_name: str | None, when) -> None:
    """A known contact's first message on another number: its name and last inbound time."""
    if profile_name and contact.profile_name != profile_name:
        Contact.objects.filter(pk=contact.pk).update(profile_name=profile_name)
        contact.profile_name = profile_name
    with connection.cursor() as cursor:
        adapted = connection.ops.adapt_datetimefield_value(when)
        cursor.execute(
            f"UPDATE {Contact._meta.db_table} SET last_inbound_at = CASE"  # noqa: S608
            " WHEN last_inbound_at IS NULL OR last_inbound_at < %s THEN %s"
            " ELSE last_inbound_at END WHERE id = %s",
            [adapted, adapted, contact.pk],
        )


def _chat_and_contact_record_inbound(chat: Chat, contact: Contact, messages) -> None:
    """Record a customer's messages (one, or a batch's for this chat) on its chat (latest
    message, unread count, service window, reopened, and the numbers of their live events:
    ``chat.seq`` becomes the last) and contact, in two statements. A late delivery of an older
    message never moves the clocks backwards."""
    if isinstance(messages, Message):
        messages = [messages]
    message = max(messages, key=lambda m: m.timestamp)
    sent_at = message.timestamp
    adapt = connection.ops.adapt_datetimefield_value
    length = capabilities_for(message.number).service_window  # None: the provider has none
    when, window = adapt(sent_at), adapt(sent_at + length) if length else None
    count = len(messages)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Chat._meta.db_table} SET"  # noqa: S608
            " last_message_preview = CASE WHEN last_message_at IS NULL OR last_message_at <= %s"
            " THEN %s ELSE last_message_preview END,"
            " last_message_at = CASE WHEN last_message_at IS NULL OR last_message_at < %s"
            " THEN %s ELSE last_message_at END,"
            " window_expires_at = CASE WHEN window_expires_at IS NULL OR window_expires_at < %s"
            " THEN %s ELSE window_expires_at END,"
            " unread_count = unread_count + %s, status = %s, seq = seq + %s"
            " WHERE id = %s RETURNING seq",
            [
                when,
                _preview(message),
                when,
                when,
                window,
                window,
                count,
                Chat.Status.OPEN,
                count,
                chat.pk,
            ],
        )
        chat.seq = cursor.fetchone()[0]
        # The same change in memory: the router's handlers get this chat next and may answer
        # at once (a new chat's window is open now).
        chat.status, chat.unread_count = Chat.Status.OPEN, (chat.unread_count or 0) + count
        if chat.last_message_at is None or chat.last_message_at <= sent_at:
            chat.last_message_preview = _preview(message)
            chat.last_message_at = sent_at
        if length and (chat.window_expires_at is None or chat.window_expires_at < sent_at + length):
            chat.window_expires_at = sent_at + length
        cursor.execute(
            f"UPDATE {Contact._meta.db_table} SET last_inbound_at = CASE"  # noqa: S608
            " WHEN last_inbound_at IS NULL OR last_inbound_at < %s THEN %s"
            " ELSE last_inbound_at END WHERE id = %s",
            [when, when, contact.pk],
        )


def _inbound_preview(inbound: InboundMessage) -> str:
    """``_preview`` of the message ``inbound`` becomes, before it exists."""
    text = inbound.text[:4096]
    if text:
        return text[:200]
    message_type = inbound.type if inbound.type in Message.Type.values else Message.Type.UNSUPPORTED
    return f"[{Message.Type(message_type).label}]"


def _preview(message: Message) -> str:
    if message.text:
        return message.text[:200]
    return f"[{message.get_type_display()}]"


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
    if content == target.content and inbound.type != "edit":
        return target  # a duplicate delivery: nothing changes
    target.content = content
    target.save(update_fields=["content", "text"])
    publish_chat_event(chat, "message.changed", message=str(target.code))
    return target


def chats_lock_for_batch(*, number: WhatsAppNumber, wa_ids: set, wamids: set) -> None:
    """Lock, in id order, the chats a batch of webhook deliveries will update: those of the
    customers writing in and those of the messages whose status changes. Without this, two
    workers whose batches share chats lock them in delivery order and can deadlock."""
    if not connection.features.has_select_for_update or not (wa_ids or wamids):
        return
    # Plain SQL: this runs once per batch, and the ORM took longer to build it than the
    # database to run it.
    touched, params = [], []
    if wa_ids:
        touched.append(
            f"SELECT chat.id FROM {Chat._meta.db_table} chat"  # noqa: S608
            f" JOIN {Contact._meta.db_table} contact ON contact.id = chat.contact_id"
            f" WHERE chat.number_id = %s AND contact.wa_id IN ({', '.join(['%s'] * len(wa_ids))})"
        )
        params += [number.pk, *wa_ids]
    if wamids:
        touched.append(
            f"SELECT chat_id FROM {Message._meta.db_table}"  # noqa: S608
            f" WHERE number_id = %s AND wamid IN ({', '.join(['%s'] * len(wamids))})"
        )
        params += [number.pk, *wamids]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Chat._meta.db_table} WHERE id IN ({' UNION '.join(touched)})"  # noqa: S608
            f" ORDER BY id FOR UPDATE OF {Chat._meta.db_table}",
            params,
        )


@transaction.atomic(savepoint=False)  # no savepoint when nested: hot path
def message_statuses_apply(*, number: WhatsAppNumber, updates: list[StatusUpdate]) -> None:
    """Move outbound messages' statuses forward, in the order the updates came; keep a status
    for an unknown wamid to apply when the message appears (the webhook can beat the send
    call's response).

    A webhook batch carries dozens of updates, so the work is done in bulk: one query finds
    (and locks, in id order, the same order every worker uses) every message they name, one
    UPDATE saves the changes, and one more numbers their live events; a repeated or stale
    status costs nothing more.
    """
    wamids = {update.wamid for update in updates}
    messages = {
        message.wamid: message
        for message in Message.objects.select_for_update(of=("self",))
        .select_related("chat", "chat__organization")
        .filter(number=number, wamid__in=wamids)
        .order_by("pk")
    }
    applied = []
    for update in updates:
        message = messages.get(update.wamid)
        if message is None:
            _orphan_status_keep(number, update)
        else:
            error = update.error.__dict__ if update.error else {}
            applied.append((message, update.status, update.timestamp, error))
    _statuses_record(applied)


def _orphan_status_keep(number: WhatsAppNumber, update: StatusUpdate) -> None:
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
    # The send may be recording this wamid right now, in a transaction we cannot see yet.
    # Each side writes, commits, then looks for the other: whichever looks last finds it.
    number_id, wamid = number.pk, update.wamid
    transaction.on_commit(lambda: message_orphans_apply(number_id=number_id, wamid=wamid))


def _statuses_record(applied: list[tuple[Message, str, object, dict]]) -> None:
    """Apply (message, status, when, error) in order to messages locked by the caller, then save
    every change with one UPDATE, send one live event per changed message (with its final
    status) and, after commit, the domain events: one per status change."""
    changed: dict[int, tuple[Message, set]] = {}
    changes = []
    for message, status, when, error in applied:
        fields, previous = _status_move(message, status, when, error)
        if fields:
            changed.setdefault(message.pk, (message, set()))[1].update(fields)
        if previous is not None:
            changes.append((message, message.status, previous))
    if not changed:
        return
    _rows_update(
        Message,
        {
            pk: {name: getattr(message, name) for name in fields}
            for pk, (message, fields) in changed.items()
        },
    )
    publish_chat_events(
        [
            (
                message.chat,
                "message.status",
                {"message": str(message.code), "status": message.status},
            )
            for message, _fields in changed.values()
        ]
    )
    if changes:
        _status_changes_on_commit(changes)


def _status_move(message: Message, status: str, when, error: dict) -> tuple[list[str], str | None]:
    """Apply one status to ``message`` in memory; returns (fields changed, the previous status if
    the status moved). Moves only forward: sent < delivered < read; "failed" is final, and
    ignored once the message was delivered."""
    if status == "played":  # a voice note was played: it was read
        status = Message.Status.READ
    if status not in STATUS_TIMESTAMP:
        return [], None
    current = STATUS_RANK.get(message.status, 0)
    if status == Message.Status.FAILED and current >= STATUS_RANK[Message.Status.DELIVERED]:
        logger.info("Late failure of delivered message %s ignored", message.wamid)
        return [], None
    fields, previous = [], None
    stamp = STATUS_TIMESTAMP[status]
    if getattr(message, stamp) is None:
        setattr(message, stamp, when)
        fields.append(stamp)
    if STATUS_RANK[status] > current:
        previous, message.status = message.status, status
        fields.append("status")
        if status == Message.Status.FAILED:
            message.error_code = error.get("code")
            message.error_title = (error.get("title") or "")[:255]
            message.error_details = error.get("details") or error.get("message") or ""
            fields += ["error_code", "error_title", "error_details"]
    return fields, previous


def _status_changes_on_commit(changes: list[tuple[Message, str, str]]) -> None:
    """After commit, announce (message, status, previous) changes: one ``message_status_changed``
    each (outgoing webhooks send one event per status), then all at once for bulk receivers."""

    def send():
        for message, status, previous in changes:
            signals.message_status_changed.send(
                sender=None, message=message, status=status, previous=previous
            )
        signals.message_statuses_changed.send(sender=None, changes=changes)

    transaction.on_commit(send)


def _rows_update(model, rows: dict[int, dict[str, object]]) -> None:
    """Save rows that each change their own fields to their own values, in one UPDATE
    (``SET field = CASE id WHEN … THEN … ELSE field END``) instead of one per row. Django's
    ``bulk_update`` does the same, but building its expressions cost the webhook drain 12%."""
    columns: dict[str, list] = {}
    for row_id, values in rows.items():
        for name, value in values.items():
            columns.setdefault(name, []).append((row_id, value))
    quote = connection.ops.quote_name
    id_column = quote(model._meta.pk.column)
    assignments, params = [], []
    for name, values in columns.items():
        field = model._meta.get_field(name)
        column = quote(field.column)
        assignments.append(
            f"{column} = CASE {id_column} {'WHEN %s THEN %s ' * len(values)}ELSE {column} END"
        )
        for row_id, value in values:
            params += [row_id, field.get_db_prep_save(value, connection)]
    placeholders = ", ".join(["%s"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(model._meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608
            f"WHERE {id_column} IN ({placeholders})",
            [*params, *rows],
        )


def _apply_orphan_statuses(message: Message) -> None:
    orphans = list(OrphanStatus.objects.filter(number_id=message.number_id, wamid=message.wamid))
    orphans.sort(key=lambda orphan: STATUS_RANK.get(orphan.status, 0))
    _statuses_record([(message, o.status, o.timestamp, o.error) for o in orphans])
    if orphans:
        OrphanStatus.objects.filter(pk__in=[o.pk for o in orphans]).delete()


def message_orphans_apply(*, number_id: int, wamid: str) -> None:
    """Apply the statuses kept for ``wamid`` if its message is known now (else they stay)."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(of=("self",))
            .select_related("chat")
            .filter(number_id=number_id, wamid=wamid)
            .first()
        )
        if message is not None:
            _apply_orphan_statuses(message)


# --- Outbound ---------------------------------------------------------------------------------

SENDING = "sending"  # error_title of a claimed pending message while its send call runs
# error_title of a pending message whose send may have reached WhatsApp (a 5xx or a lost answer):
# held until a status webhook echoing its callback data proves it went out, or the reconcile
# window passes with no evidence and it is sent again.
UNKNOWN = "unknown"
CALLBACK_PREFIX = "m:"  # biz_opaque_callback_data of an inbox send: "m:<message code>"
SEND_MAX_ATTEMPTS = 6
SEND_BACKOFF_BASE = 15.0  # seconds; doubles per attempt (with jitter), capped below
SEND_BACKOFF_MAX = 15 * 60.0


class SendRefused(ValidationError):
    """The message cannot be sent as asked (closed window, invalid content); says why."""


def _template_for_send(chat: Chat, content: dict) -> MessageTemplate:
    """The stored template a send names, approved, with parameters that match its components."""
    name = str(content.get("name") or "")
    language = str((content.get("language") or {}).get("code") or "")
    template = MessageTemplate.objects.filter(
        number_id=chat.number_id, name=name, language=language
    ).first()
    names = {"name": name, "language": language}
    if template is None:
        raise SendRefused(
            _(
                'This number has no template "%(name)s" in %(language)s. Sync the templates in '
                "Settings › WhatsApp numbers, or pick another one."
            )
            % names
        )
    if template.status != "APPROVED":
        raise SendRefused(
            _(
                'The template "%(name)s" (%(language)s) is %(status)s; only approved templates '
                "can be sent."
            )
            % {**names, "status": template.status.lower() or _("not reviewed")}
        )
    problem = validation.check_template_parameters(
        {"components": template.components}, content.get("components")
    )
    if problem is not None:
        raise SendRefused(
            _('The parameters do not fit the template "%(name)s": %(details)s')
            % {**names, "details": problem.details}
        )
    return template


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
    ``message_type`` (for text: ``{"body": ..., "preview_url": bool}``).

    What may be sent is the number's provider's to say (``Chat.capabilities``): a message type
    it cannot carry is refused; where it has a customer service window (the Cloud API's 24
    hours), outside it only an approved template may be sent; a template's parameters are
    checked against its stored components before anything is queued.
    """
    if not chat.capabilities.can_send(message_type):
        raise SendRefused(_unsupported_type_reason(message_type))
    if message_type == Message.Type.TEMPLATE:
        _template_for_send(chat, content)
    elif not chat.window_is_open:
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
        raise SendRefused(str(problem.details))
    # Refusals are raised above, before anything is written; the writes need no savepoint of
    # their own inside a caller's transaction (a flow step, an inbound message): two round
    # trips fewer per send, and a failing write fails the caller's transaction as it would.
    with transaction.atomic(savepoint=False):
        return _message_store_outbound(
            chat=chat,
            message_type=message_type,
            content=content,
            author_type=author_type,
            author_user=author_user,
            author_ref=author_ref,
            reply_to=reply_to,
        )


def _message_store_outbound(
    *, chat, message_type, content, author_type, author_user, author_ref, reply_to
) -> Message:
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
    # A reaction shows on the message it reacts to: the chat's preview and order stay.
    reaction = message_type == Message.Type.REACTION
    changes = (
        {}
        if reaction
        else {
            "last_message_at": message.timestamp,
            "last_message_preview": _preview(message),
        }
    )
    if author_type == Message.Author.USER:
        changes["waiting_since"] = None  # a person answered: nobody is waiting any more
        chat.waiting_since = None
    if changes:
        Chat.objects.filter(pk=chat.pk).update(**changes)
    if author_type == Message.Author.USER:
        router.person_answered(chat=chat, since=message.timestamp - PERSON_REPLY_LOOKBACK)
    if reaction:  # the reacted message's own "message.changed" follows (message_react)
        publish_chat_event(chat, "message.changed")
    else:
        publish_chat_event(chat, "message.new", message=str(message.code))
    signals.send_on_commit(signals.message_created, message=message)
    tasks.enqueue("inbox.tasks.deliver_message", message.pk)
    return message


def _unsupported_type_reason(message_type: str) -> str:
    if message_type == Message.Type.TEMPLATE:
        return _(
            "This number's WhatsApp connection has no message templates: send a normal message."
        )
    return _("This number's WhatsApp connection cannot send %(type)s messages.") % {
        "type": message_type
    }


def _outbound_text(message_type: str, content: dict) -> str:
    if message_type == "text":
        return content.get("body", "")
    if message_type in MEDIA_TYPES:
        return content.get("caption", "")
    if message_type == "interactive":
        return (content.get("body") or {}).get("text", "")
    if message_type == "template":
        return content.get("name", "")
    if message_type == "location":
        return ", ".join(str(content[k]) for k in ("name", "address") if content.get(k))
    if message_type == "reaction":
        return content.get("emoji", "")
    return ""


def message_deliver(message_id: int) -> None:
    """Send a pending outbound message once: claim it, call the API, record wamid or failure.

    Retryable failures (throttling, WhatsApp or network trouble that certainly did not send)
    put the message back to pending and queue another attempt with backoff; final ones mark it
    failed with the provider's code, title and details for the agent.
    """
    unknown = Message.objects.filter(
        pk=message_id, status=Message.Status.PENDING, wamid__isnull=True, error_title=UNKNOWN
    ).values_list("content", flat=True)
    for content in unknown:
        if not _unknown_window_over(content):
            return  # still waiting for a status webhook to say whether it went out
    claimed = Message.objects.filter(
        pk=message_id,
        status=Message.Status.PENDING,
        wamid__isnull=True,
        error_title=UNKNOWN if unknown else "",
    ).update(error_title=SENDING)
    if not claimed:
        return
    message = Message.objects.select_related("chat__contact", "number", "chat__organization").get(
        pk=message_id
    )
    try:
        wamid = provider_for(message.number).send(
            to=message.chat.contact.wa_id,
            message_type=message.type,
            content=message.content[message.type],
            reply_to=message.reply_to_wamid or None,
            # Echoed by the status webhooks: the proof an ambiguous send went out.
            callback_data=f"{CALLBACK_PREFIX}{message.code}",
        )
    except IntegrationError as error:
        _send_failed(message, error)
        return
    except requests.RequestException as exc:  # a provider's own HTTP call, not classified
        _send_failed(
            message,
            ServerError(
                _("Could not reach WhatsApp. Try again in a few minutes."),
                title="Connection error",
                details=type(exc).__name__,
                permanent=False,
            ),
        )
        return
    except Exception as exc:
        logger.exception("Sending message %s failed", message_id)
        _send_failed(message, IntegrationError(str(exc), title="Send failed", details=str(exc)))
        return
    with transaction.atomic():
        recorded = Message.objects.filter(pk=message_id, wamid__isnull=True).update(
            wamid=wamid, status=Message.Status.SENT, sent_at=timezone.now(), error_title=""
        )
        if not recorded:
            return  # a status webhook's callback data recorded it first
        message.refresh_from_db()
        publish_chat_event(message.chat, "message.status", message=str(message.code), status="sent")
        _status_changes_on_commit([(message, "sent", "pending")])
    # Statuses that arrived before we knew the wamid (see message_statuses_apply).
    message_orphans_apply(number_id=message.number_id, wamid=wamid)


def _send_failed(message: Message, error: IntegrationError) -> None:
    delivery = dict(message.content.get("delivery") or {})
    attempts = int(delivery.get("attempts") or 0) + 1
    delivery.update(attempts=attempts, last_error=error.to_dict())
    content = {**message.content, "delivery": delivery}
    if error.ambiguous and attempts < SEND_MAX_ATTEMPTS:
        _send_unknown_hold(message, error, content)
        return
    if error.retryable and not error.ambiguous and attempts < SEND_MAX_ATTEMPTS:
        backoff = min(SEND_BACKOFF_MAX, SEND_BACKOFF_BASE * 2 ** (attempts - 1))
        delay = max(error.retry_after or 0.0, backoff / 2 + random.uniform(0, backoff / 2))
        delivery["retry_in"] = round(delay, 1)
        logger.warning(
            "Message %s not sent (%r, attempt %d); retrying in %.0f s",
            message.pk,
            error,
            attempts,
            delay,
        )
        with transaction.atomic():
            Message.objects.filter(pk=message.pk, wamid__isnull=True).update(
                error_title="", content=content
            )
            tasks.enqueue_in(delay, "inbox.tasks.deliver_message", message.pk)
        return
    logger.warning("Message %s failed: %r %s", message.pk, error, error.details)
    details = error.details if error.code is not None else f"{error.message} {error.details}"
    with transaction.atomic():
        # Never over a send a status webhook's callback data already proved.
        Message.objects.filter(pk=message.pk, wamid__isnull=True).update(
            status=Message.Status.FAILED,
            failed_at=timezone.now(),
            error_code=error.code,
            error_title=(error.title or "Send failed")[:255],
            error_details=details.strip() or error.message,
            content=content,
        )
        message.refresh_from_db()
        publish_chat_event(
            message.chat, "message.status", message=str(message.code), status="failed"
        )
        _status_changes_on_commit([(message, "failed", "pending")])


def _send_unknown_hold(message: Message, error: IntegrationError, content: dict) -> None:
    """The send may have gone out: wait for the status webhook's evidence, then (with none)
    send again; never re-send blindly."""
    window = settings.INBOX_SEND_RECONCILE_SECONDS
    content["delivery"]["unknown_since"] = timezone.now().isoformat()
    logger.warning(
        "Message %s may or may not have been sent (%r); waiting %.0f s for its status webhook",
        message.pk,
        error,
        window,
    )
    with transaction.atomic():
        held = Message.objects.filter(
            pk=message.pk, wamid__isnull=True, error_title=SENDING
        ).update(error_title=UNKNOWN, content=content)
        if held:
            tasks.enqueue_in(window, "inbox.tasks.deliver_message", message.pk)


def _unknown_window_over(content: dict) -> bool:
    since = (content.get("delivery") or {}).get("unknown_since")
    if not since:
        return True
    try:
        held = datetime.fromisoformat(since)
    except ValueError:
        return True
    return timezone.now() >= held + timedelta(seconds=settings.INBOX_SEND_RECONCILE_SECONDS)


def unknown_sends_reconcile(*, number: WhatsAppNumber, updates: list[StatusUpdate]) -> int:
    """Status webhooks echo an inbox send's callback data: a send we could not confirm (or whose
    answer is still on its way) went out with that wamid. Record the wamid so the statuses apply
    to the message and it is never sent again. Returns how many were recorded."""
    by_code: dict[str, str] = {}
    for update in updates:
        data = update.biz_opaque_callback_data
        if data.startswith(CALLBACK_PREFIX) and update.wamid:
            by_code.setdefault(data[len(CALLBACK_PREFIX) :], update.wamid)
    if not by_code:
        return 0
    codes = []
    for code in by_code:
        try:
            codes.append(uuid.UUID(code))
        except ValueError:
            logger.info("Status with unreadable callback data m:%s ignored", code[:64])
    recorded = 0
    pending = Message.objects.filter(
        number=number,
        code__in=codes,
        direction=Message.Direction.OUTBOUND,
        status=Message.Status.PENDING,
        wamid__isnull=True,
    ).values_list("pk", "code")
    for pk, code in pending:
        # Left pending: the statuses about to be applied move it to sent (and beyond).
        recorded += Message.objects.filter(pk=pk, wamid__isnull=True).update(
            wamid=by_code[str(code)], error_title=""
        )
    return recorded


# --- Media ------------------------------------------------------------------------------------

MEDIA_DOWNLOAD_ATTEMPTS = 4


def media_download(message_id: int) -> None:
    """Fetch inbound media from the number's provider (Meta's URLs expire) into our storage,
    with its sha256.

    Only the MIME types WhatsApp accepts for the message's kind, up to that kind's size (and
    ``INBOUND_MEDIA_MAX_BYTES``), are stored; anything else is refused with the reason recorded
    on the message for the agent, before its bytes are fetched when the provider says its type
    and size first. Temporary failures are retried with backoff.
    """
    pending = Media.objects.select_related(
        "organization", "message__number", "message__chat"
    ).filter(message_id=message_id, file="")
    for media in pending:
        message = media.message
        kind = message.type if message.type in validation.MEDIA_LIMITS else None
        kind = kind or validation.media_kind_for_mime(media.mime_type)
        try:
            if kind is None:
                raise MediaError(
                    _("Files of type %(type)s are not accepted.") % {"type": media.mime_type},
                    title="Media type not accepted",
                )
            accepted, limit = validation.MEDIA_LIMITS[kind]
            limit = min(limit, settings.INBOUND_MEDIA_MAX_BYTES)
            _check_media_type(kind, media.mime_type, accepted)
            check = functools.partial(
                _media_check, kind=kind, accepted=accepted, limit=limit, mime_type=media.mime_type
            )
            info, data = provider_for(message.number).download_media(
                media.meta_media_id, max_bytes=limit, check=check
            )
            digest = hashlib.sha256(data).hexdigest()
            if info.sha256 and info.sha256.lower() != digest:
                raise MediaError(
                    _("The downloaded file does not match its checksum."),
                    title="Media checksum mismatch",
                    permanent=False,
                )
        except IntegrationError as error:
            _media_failed(media, error)
            continue
        _media_store(media, info, data, digest)


def _media_check(info: MediaInfo, *, kind: str, accepted, limit: int, mime_type: str) -> None:
    """Refuse a file by what the provider says of it, before its bytes are fetched."""
    _check_media_type(kind, info.mime_type or mime_type, accepted)
    if info.file_size > limit:
        raise _media_too_large(info.file_size, limit)


def _check_media_type(kind: str, mime_type: str, accepted) -> None:
    if validation.base_mime(mime_type) not in accepted:
        raise MediaError(
            _("Files of type %(type)s are not accepted for %(kind)s messages.")
            % {"type": validation.base_mime(mime_type) or "?", "kind": kind},
            title="Media type not accepted",
        )


def _media_too_large(size: int, limit: int) -> MediaError:
    return MediaError(
        _("The file is too large (%(size)d bytes; the limit is %(limit)d).")
        % {"size": size, "limit": limit},
        title="Media too large",
    )


def _media_store(media: Media, info, data: bytes, digest: str) -> None:
    media.mime_type = info.mime_type or media.mime_type  # the key's extension follows it
    stored = media_file_save(media, data)
    with transaction.atomic():
        updated = Media.objects.filter(pk=media.pk, file="").update(
            file=stored,
            sha256=digest,
            size=len(data),
            mime_type=media.mime_type,
        )
        if not updated:  # another worker stored it first
            storage = media.file.storage
            transaction.on_commit(lambda: storage.delete(stored))
            return
        Message.objects.filter(pk=media.message_id, error_title__startswith="Media").update(
            error_title="", error_details=""
        )
        publish_chat_event(media.message.chat, "message.changed", message=str(media.message.code))


def _media_failed(media: Media, error: IntegrationError) -> None:
    message = media.message
    content = dict(message.content)
    download = dict(content.get("media_download") or {})
    attempts = int(download.get("attempts") or 0) + 1
    download.update(attempts=attempts, last_error=error.to_dict())
    content["media_download"] = download
    if error.retryable and attempts < MEDIA_DOWNLOAD_ATTEMPTS:
        delay = max(error.retry_after or 0.0, 5.0 * 3 ** (attempts - 1))
        logger.warning(
            "Media %s of message %s not downloaded (%r); retrying in %.0f s",
            media.meta_media_id,
            message.pk,
            error,
            delay,
        )
        with transaction.atomic():
            Message.objects.filter(pk=message.pk).update(content=content)
            tasks.enqueue_in(delay, "inbox.tasks.download_media", message.pk, queue="inbound")
        return
    logger.warning(
        "Media %s of message %s rejected: %s (%s)",
        media.meta_media_id,
        message.pk,
        error.title,
        error.message,
    )
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(
            content=content,
            error_code=error.code,
            error_title=f"Media not stored: {error.title}"[:255],
            error_details=error.message,
        )
        publish_chat_event(message.chat, "message.changed", message=str(message.code))


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


# --- Composer extras -------------------------------------------------------------------------


def message_send_attachment(
    *, chat: Chat, upload, caption: str, author_user, reply_to=None
) -> Message:
    """Upload a file to the number's provider (it keeps it for the send), then send it by media
    id.

    The upload happens in the request so the agent sees a refusal (type, size) at once; the
    file is also kept in our storage so the chat shows it.
    """
    if not chat.capabilities.media:
        raise SendRefused(_("This number's WhatsApp connection cannot send files."))
    if not chat.window_is_open:
        raise SendRefused(
            _("The 24-hour customer service window is closed: send a template instead.")
        )
    mime_type = (
        upload.content_type or mimetypes.guess_type(upload.name)[0] or "application/octet-stream"
    )
    kind = _media_kind(mime_type)
    data = upload.read()
    filename = clean_filename(upload.name) or "file"
    try:
        media_id = provider_for(chat.number).upload_media(
            data=data, mime_type=mime_type, filename=filename
        )
    except IntegrationError as error:
        raise SendRefused(error.message) from error
    content = {"id": media_id}
    if caption and kind != "audio" and kind != "sticker":
        content["caption"] = caption
    if kind == "document":
        content["filename"] = filename
    message = message_send(
        chat=chat, message_type=kind, content=content, author_user=author_user, reply_to=reply_to
    )
    media = Media(
        organization_id=chat.organization_id,
        message=message,
        meta_media_id=media_id,
        mime_type=mime_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        filename=filename,
    )
    media_file_save(media, data)
    media.save()
    return message


def _media_kind(mime_type: str) -> str:
    if mime_type in ("image/jpeg", "image/png"):
        return "image"
    if mime_type == "image/webp":
        return "sticker"
    if mime_type.startswith("video/"):
        return "video"
    if mime_type.startswith("audio/"):
        return "audio"
    return "document"


@transaction.atomic
def message_react(*, chat: Chat, target: Message, emoji: str, author_user) -> Message:
    """React to a message (empty emoji removes the reaction); shown on the target message."""
    if not target.wamid:
        raise SendRefused(_("This message has not reached WhatsApp yet; try again in a moment."))
    reaction = message_send(
        chat=chat,
        message_type=Message.Type.REACTION,
        content={"message_id": target.wamid, "emoji": emoji},
        author_user=author_user,
    )
    content = dict(target.content)
    reactions = dict(content.get("reactions") or {})
    if emoji:
        reactions["business"] = emoji
    else:
        reactions.pop("business", None)
    content["reactions"] = reactions
    target.content = content
    target.save(update_fields=["content"])
    publish_chat_event(chat, "message.changed", message=str(target.code))
    return reaction


def quick_reply_save(*, organization, author, shortcut: str, text: str, owner=None):
    from inbox.models import QuickReply

    return QuickReply.objects.create(
        organization=organization, shortcut=shortcut, text=text, created_by=author, owner=owner
    )


def orphan_statuses_apply(*, message: Message) -> None:
    """Apply statuses that arrived before ``message``'s wamid was stored (public entry point for
    apps that store outbound messages themselves, e.g. campaign sends)."""
    _apply_orphan_statuses(message)


def interrupted_sends_sweep(*, older_than_minutes: int = 10) -> int:
    """Messages whose sending worker died between claiming and recording the answer.

    They are never re-sent blindly (WhatsApp may have delivered them): they are marked failed
    with an explanation, so the agent decides. Returns how many were found.
    """
    cutoff = timezone.now() - timedelta(minutes=older_than_minutes)
    # Held sends whose window passed: their retry was scheduled, but a lost queue would strand
    # them (message_deliver sends only those still without evidence).
    for message_id, content in Message.objects.filter(
        status=Message.Status.PENDING, wamid__isnull=True, error_title=UNKNOWN
    ).values_list("pk", "content")[:500]:
        if _unknown_window_over(content):
            tasks.enqueue("inbox.tasks.deliver_message", message_id)
    stuck = Message.objects.filter(
        status=Message.Status.PENDING,
        wamid__isnull=True,
        error_title=SENDING,
        created_at__lt=cutoff,
    ).select_related("chat")
    count = 0
    for message in stuck:
        with transaction.atomic():
            updated = Message.objects.filter(
                pk=message.pk, error_title=SENDING, wamid__isnull=True
            ).update(
                status=Message.Status.FAILED,
                failed_at=timezone.now(),
                error_title="Interrupted",
                error_details=_(
                    "Sending was interrupted before WhatsApp answered; the customer may or may not "
                    "have received it. Check the conversation before sending it again."
                ),
            )
            if updated:
                count += 1
                publish_chat_event(
                    message.chat, "message.status", message=str(message.code), status="failed"
                )
    return count
