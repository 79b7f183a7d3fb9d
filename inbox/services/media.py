"""Inbound media: downloaded from the provider, checked and stored, retried on transient errors."""

import functools
import hashlib
import logging

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from inbox.media import media_file_save
from inbox.models import Media, Message
from inbox.services.events import publish_chat_event
from integrations.errors import IntegrationError, MediaError
from integrations.providers import MediaInfo, provider_for
from integrations.whatsapp import validation
from kernel import tasks

logger = logging.getLogger(__name__)

MEDIA_TYPES = {"image", "video", "audio", "document", "sticker"}


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
