"""Messages out: stored first, sent by a task, failures and ambiguous answers held for an agent."""

import hashlib
import logging
import mimetypes
import random
import uuid
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from inbox import router, signals
from inbox.media import clean_filename, media_file_save
from inbox.models import Chat, Media, Message
from inbox.services.events import (
    message_insert_publishing,
    message_preview,
    publish_chat_event,
)
from inbox.services.media import MEDIA_TYPES
from inbox.services.statuses import message_orphans_apply, status_changes_on_commit
from integrations.errors import IntegrationError, ServerError
from integrations.events import StatusUpdate
from integrations.models import MessageTemplate, WhatsAppNumber
from integrations.providers import provider_for
from integrations.whatsapp import validation
from kernel import tasks

logger = logging.getLogger(__name__)

# A teammate's reply answers the customer's unclaimed messages of the day before it.
PERSON_REPLY_LOOKBACK = timedelta(hours=24)


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
    annotations: dict | None = None,
) -> Message:
    """Validate, store as pending, and queue the send. ``content`` is the Cloud API object for
    ``message_type`` (for text: ``{"body": ..., "preview_url": bool}``); ``annotations``: more
    keys stored beside it in the message's content, never sent (e.g. the assistant's version
    and sources), written with the message instead of by an UPDATE after it.

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
            annotations=annotations,
        )


def _message_store_outbound(
    *,
    chat,
    message_type,
    content,
    author_type,
    author_user,
    author_ref,
    reply_to,
    annotations=None,
) -> Message:
    message = Message(
        organization_id=chat.organization_id,
        chat=chat,
        number_id=chat.number_id,
        direction=Message.Direction.OUTBOUND,
        type=message_type,
        text=_outbound_text(message_type, content)[:4096],
        # The API object wins over an annotation of the same name.
        content={**(annotations or {}), "type": message_type, message_type: content},
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
            "last_message_preview": message_preview(message),
        }
    )
    if author_type == Message.Author.USER:
        changes["waiting_since"] = None  # a person answered: nobody is waiting any more
        chat.waiting_since = None
        router.person_answered(chat=chat, since=message.timestamp - PERSON_REPLY_LOOKBACK)
    # The message is inserted by the statement that numbers the live event and sets the
    # preview (as Message.objects.create, compiled once: the API's hot path).
    if reaction:  # the reacted message's own "message.changed" follows (message_react)
        message_insert_publishing(message, "message.changed", columns=changes)
    else:
        message_insert_publishing(
            message, "message.new", columns=changes, message=str(message.code)
        )
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
        status_changes_on_commit([(message, "sent", "pending")])
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
        status_changes_on_commit([(message, "failed", "pending")])


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


# A pending message whose delivery task has not claimed it by then was never queued, or its
# task was lost (the broker was down at the commit, Redis restarted, the process died between
# the commit and queueing it): ``lost_sends_requeue`` queues it again. Long enough that a queue
# merely running behind is rare; each sweep queues at most LOST_SENDS_PER_SWEEP, so while the
# queue is behind the sweep adds at most that many tasks (each a no-op claim) to it per run.
LOST_SEND_AFTER = timedelta(minutes=2)
LOST_SENDS_PER_SWEEP = 100


def lost_sends_requeue(*, now=None, limit: int = LOST_SENDS_PER_SWEEP) -> int:
    """Queue the delivery of outbound messages stored more than ``LOST_SEND_AFTER`` ago that no
    task has claimed, oldest first: every send's task is queued after its commit, outside the
    transaction, so a broker outage or a crash there would otherwise leave the message pending
    for good. Harmless when the task was only late: ``message_deliver`` claims a message once
    (a conditional UPDATE). Messages in a retry's backoff (``content.delivery``) have their own
    scheduled task. Reads only the ``message_unsent`` index. Returns how many were queued."""
    cutoff = (now or timezone.now()) - LOST_SEND_AFTER
    lost = list(
        Message.objects.filter(
            status=Message.Status.PENDING,
            created_at__lt=cutoff,
            direction=Message.Direction.OUTBOUND,
            wamid__isnull=True,
            error_title="",
        )
        .exclude(content__has_key="delivery")
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    for message_id in lost:
        tasks.dispatch("inbox.tasks.deliver_message", message_id)
    if lost:
        logger.warning("Queued %d outbound messages again: their delivery task was lost", len(lost))
    return len(lost)


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
