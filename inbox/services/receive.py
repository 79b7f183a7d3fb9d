"""Customer messages in: contacts and chats found or made, messages stored in batches, routed once."""

import logging
from collections import Counter

import phonenumbers
from django.db import IntegrityError, connection, transaction

from inbox import router, signals
from inbox.media import clean_filename
from inbox.models import Chat, Contact, Media, Message
from inbox.services.events import _chat_event_publish, message_preview, publish_chat_event
from integrations.events import InboundMessage
from integrations.models import WhatsAppNumber
from integrations.providers import capabilities_for
from kernel import sql, tasks

logger = logging.getLogger(__name__)


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
        missing_set = set(missing)
        own = [i for i in fresh if _inbound_wa_id(i) in missing_set]
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
        sql.insert_many(new_contacts)  # a race with another worker: IntegrityError
        for contact in new_contacts:
            contacts[contact.wa_id] = contact
        created = {contact.wa_id for contact in new_contacts}
        for wa_id in missing:
            contact, inbound = contacts[wa_id], latest[wa_id]
            if wa_id not in created:  # known to the organization, new to this number
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
        sql.insert_many(new_chats)
    replied = {i.reply_to_wamid for i in fresh if i.reply_to_wamid}
    targets = (
        dict(Message.objects.filter(number=number, wamid__in=replied).values_list("wamid", "pk"))
        if replied
        else {}
    )
    messages = sql.insert_many(
        [
            _inbound_message(number, chats[_inbound_wa_id(inbound)], inbound, targets)
            for inbound in fresh
        ]
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
        sql.insert_many(media)
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
                message_preview(message),
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
            chat.last_message_preview = message_preview(message)
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
    """``message_preview`` of the message ``inbound`` becomes, before it exists."""
    text = inbound.text[:4096]
    if text:
        return text[:200]
    message_type = inbound.type if inbound.type in Message.Type.values else Message.Type.UNSUPPORTED
    return f"[{Message.Type(message_type).label}]"


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
            f" WHERE chat.number_id = %s AND contact.organization_id = %s"
            f" AND contact.wa_id IN ({', '.join(['%s'] * len(wa_ids))})"
        )  # the organization leads to unique_contact_wa_id, not to every chat of the number
        params += [number.pk, number.organization_id, *wa_ids]
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
