"""Messages the business sent outside Porfin (from the phone paired with a WhatsApp Web number),
recorded in the chat as outbound so the team sees the whole conversation."""

import logging

from django.db import IntegrityError, transaction

from inbox.media import clean_filename
from inbox.models import Chat, Media, Message
from inbox.services import (
    chat_for_contact,
    contact_for_inbound,
    message_preview,
    publish_chat_event,
)
from integrations.events import OwnMessage
from integrations.models import WhatsAppNumber
from kernel import tasks

logger = logging.getLogger(__name__)


@transaction.atomic
def message_echo_record(*, number: WhatsAppNumber, echo: OwnMessage) -> Message | None:
    """Store a message the business sent from its phone once (by wamid).

    Porfin's own sends come back the same way (Evolution's ``SEND_MESSAGE``): those are already
    in the chat under their wamid, or are being sent right now (their wamid not yet recorded),
    and are not stored twice.
    """
    inbound = echo.message
    if inbound.type in ("reaction", "edit", "revoke"):
        from inbox.services import message_receive  # changes apply to their target the same way

        return message_receive(number=number, inbound=inbound)
    if not inbound.wa_id or Message.objects.filter(number=number, wamid=inbound.wamid).exists():
        return None
    contact = contact_for_inbound(number=number, wa_id=inbound.wa_id, profile_name="")
    chat = chat_for_contact(number=number, contact=contact)
    in_flight = Message.objects.filter(
        chat=chat,
        direction=Message.Direction.OUTBOUND,
        wamid__isnull=True,
        status=Message.Status.PENDING,
        text=inbound.text[:4096],
    )
    if in_flight.exists():
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
