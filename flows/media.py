"""Files uploaded in the flow editor for message steps (an image, a document, an audio), kept
in the organization's media storage (``inbox.media``) as ``Media`` rows without a message.

At send time the step uploads the file to the chat's number's provider (WhatsApp keeps it for
30 days; the id is remembered per number and file for a week) and sends it by id, and the
sent message gets its own copy of the file so the chat shows it."""

from __future__ import annotations

import hashlib
import mimetypes
import uuid
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from inbox.media import clean_filename, media_file_save
from inbox.models import Media
from integrations.errors import IntegrationError
from integrations.providers import provider_for
from kernel.memo import ProcessMemo

MB = 1024 * 1024
# WhatsApp's limits for media sent by the Cloud API.
KINDS = {
    "image": ({"image/jpeg", "image/png"}, 5 * MB),
    "audio": ({"audio/ogg", "audio/mpeg", "audio/aac", "audio/mp4", "audio/amr"}, 16 * MB),
    "document": (
        {
            "application/pdf", "text/plain", "application/msword",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.ms-excel",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        },
        100 * MB,
    ),
}  # fmt: skip
_provider_ids = ProcessMemo(ttl=timedelta(days=7).total_seconds())


def kind_of(mime_type: str) -> str:
    return next((kind for kind, (types, _limit) in KINDS.items() if mime_type in types), "")


def flow_media_add(*, organization, upload) -> Media:
    """Store an uploaded file for a message step; refused with the reason (type, size)."""
    mime_type = (upload.content_type or mimetypes.guess_type(upload.name)[0] or "").split(";")[0]
    kind = kind_of(mime_type)
    if not kind:
        raise ValidationError(
            _("WhatsApp cannot send %(type)s files: use a JPEG or PNG image, a PDF or office "
              "document, or an OGG, MP3, AAC or M4A audio.") % {"type": mime_type or "?"}
        )  # fmt: skip
    limit = KINDS[kind][1]
    if upload.size > limit:
        raise ValidationError(
            _("The file is too large: WhatsApp takes %(kind)s files up to %(mb)d MB.")
            % {"kind": kind, "mb": limit // MB}
        )
    data = upload.read()
    media = Media(
        organization=organization,
        mime_type=mime_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        filename=clean_filename(upload.name) or "file",
    )
    media_file_save(media, data)
    media.save()
    return media


def stored_media(organization_id: int, code) -> Media | None:
    try:
        code = uuid.UUID(str(code))
    except ValueError:
        return None
    return Media.objects.filter(
        organization_id=organization_id, code=code, message__isnull=True
    ).first()


def send_stored(context, media: Media, caption: str):
    """Send ``media`` in the step's chat (by the provider's id) with its own copy attached."""
    from inbox.services import SendRefused

    kind = kind_of(media.mime_type)
    with media.file.open("rb") as handle:
        data = handle.read()
    number = context.chat.number

    def upload():
        try:
            return provider_for(number).upload_media(
                data=data, mime_type=media.mime_type, filename=media.filename
            )
        except IntegrationError as error:
            raise SendRefused(error.message) from error

    media_id = _provider_ids.get((number.pk, media.pk), upload)
    content = {"id": media_id}
    if caption and kind != "audio":
        content["caption"] = caption
    if kind == "document":
        content["filename"] = media.filename
    message = context.send(kind, content)
    copy = Media(
        organization_id=media.organization_id,
        message=message,
        meta_media_id=media_id,
        mime_type=media.mime_type,
        size=media.size,
        sha256=media.sha256,
        filename=media.filename,
    )
    media_file_save(copy, data)
    copy.save()
    return message
