"""Messages the business sent outside Porfin (from the phone paired with a WhatsApp Web number),
recorded in the chat as outbound so the team sees the whole conversation."""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from inbox.media import clean_filename
from inbox.models import Chat, Media, Message
from inbox.services import (
    chat_for_contact,
    contact_for_inbound,
    message_orphans_apply,
    message_preview,
    publish_chat_event,
)
from inbox.services.statuses import status_changes_on_commit
from integrations.events import OwnMessage
from integrations.models import WhatsAppNumber
from kernel import tasks

logger = logging.getLogger(__name__)


@transaction.atomic
def message_echo_record(*, number: WhatsAppNumber, echo: OwnMessage) -> Message | None:
    """Store a message the business sent from its phone once (by wamid).

    Porfin's own sends come back the same way (Evolution's ``SEND_MESSAGE``, or
    ``MESSAGES_UPSERT`` with ``fromMe``): those are already in the chat under their wamid, or
    are on their way with no wamid yet: being sent right now, or held as "unknown" after an
    ambiguous timeout. The echo is then the proof the send went out: its wamid is recorded on
    the oldest such message with the same text (``_in_flight_reconcile``), which is marked sent
    and never sent again. Evolution echoes no opaque data of ours, so the text in that chat is
    the match; identical texts in flight are interchangeable, one echo each.
    """
    inbound = echo.message
    if inbound.type in ("reaction", "edit", "revoke"):
        from inbox.services import message_receive  # changes apply to their target the same way

        return message_receive(number=number, inbound=inbound)
    if not inbound.wa_id or Message.objects.filter(number=number, wamid=inbound.wamid).exists():
        return None
    contact = contact_for_inbound(number=number, wa_id=inbound.wa_id, profile_name="")
    chat = chat_for_contact(number=number, contact=contact)
    in_flight = (
        Message.objects.filter(
            chat=chat,
            direction=Message.Direction.OUTBOUND,
            wamid__isnull=True,
            status=Message.Status.PENDING,
            text=inbound.text[:4096],
        )
        .order_by("pk")
        .first()
    )
    if in_flight is not None:
        _in_flight_reconcile(in_flight, wamid=inbound.wamid, number=number)
        return None
    try:
        with transaction.atomic():
            message = Message.objects.create(
                organization_id=number.organization_id,
                chat=chat,
                number=number,
                direction=Message.Direction.OUTBOUND,
                type=inbound.type if inbound.type in Message.Type.values else "unsupported",
                text=inbound.text[:4096],
                content={
                    "type": inbound.type,
                    inbound.type: inbound.content,
                    "context": inbound.context,
                    "from_phone": True,
                },
                wamid=inbound.wamid,
                reply_to_wamid=inbound.reply_to_wamid or "",
                status=Message.Status.SENT,
                author_type=Message.Author.USER,
                timestamp=inbound.timestamp,
                sent_at=inbound.timestamp,
            )
    except IntegrityError:  # the same wamid stored meanwhile
        return None
    Chat.objects.filter(pk=chat.pk, last_message_at__lte=message.timestamp).update(
        last_message_at=message.timestamp, last_message_preview=message_preview(message)
    )
    if inbound.media_id:
        Media.objects.create(
            organization_id=number.organization_id,
            message=message,
            meta_media_id=inbound.media_id,
            mime_type=inbound.mime_type or "application/octet-stream",
            filename=clean_filename(inbound.filename or "", max_length=255),
        )
        tasks.enqueue("inbox.tasks.download_media", message.pk, queue="inbound")
    publish_chat_event(chat, "message.new", message=str(message.code))
    return message


def _in_flight_reconcile(message: Message, *, wamid: str, number: WhatsAppNumber) -> None:
    """Our send came back: it went out with ``wamid``. Recorded unless its own answer (or an
    earlier echo) recorded one first; the sender then finds the wamid set and stops, and a send
    held as unknown is never retried (``message_deliver`` claims only messages without one)."""
    try:
        with transaction.atomic():
            recorded = Message.objects.filter(pk=message.pk, wamid__isnull=True).update(
                wamid=wamid,
                status=Message.Status.SENT,
                sent_at=timezone.now(),
                error_title="",
            )
    except IntegrityError:  # that wamid is already another message's
        return
    if not recorded:
        return
    logger.info("Message %s reconciled by its echo %s", message.pk, wamid)
    message.refresh_from_db()
    publish_chat_event(message.chat, "message.status", message=str(message.code), status="sent")
    status_changes_on_commit([(message, "sent", "pending")])
    transaction.on_commit(lambda: message_orphans_apply(number_id=number.pk, wamid=wamid))
