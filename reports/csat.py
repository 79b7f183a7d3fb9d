"""CSAT: one satisfaction question, with three reply buttons, after a chat is resolved.

The flow, through the inbox's domain signals (see ``reports.receivers``):

1. ``chat_changed`` (status → resolved) queues ``csat_send``: if the organization asks, the
   24-hour window is open and the chat got no survey in the last day, a ``CsatSurvey`` row is
   created for that resolution (unique: one survey per resolution, even if the task runs twice)
   and the question goes out through ``inbox.services.message_send``.
2. The customer's tap arrives as an inbound interactive ``button_reply`` whose id is
   ``csat:<survey code>:<score>``; ``message_received`` queues ``csat_answer``, which stores the
   first answer given within ``REPLY_WINDOW`` as a ``CsatResponse`` and thanks the customer.
   Later taps, second taps and taps naming another chat's survey are logged and ignored.

The tap reopens the chat (every customer message does); when nothing else happened since the
survey, the chat quietly goes back to resolved so the team's inbox does not fill with ratings.
"""

import logging
from datetime import timedelta
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from inbox import services as inbox_services
from inbox.models import Chat, Message
from reports.models import CsatResponse, CsatSurvey, ReportSettings
from reports.stats import (
    CSAT_PREFIX,
    CSAT_TAP,
    HANDOFF,
    RESOLUTION_LOOKBACK,
    RESOLVED,
    assistant_refs,
)

logger = logging.getLogger(__name__)

REPLY_WINDOW = timedelta(hours=24)  # a tap later than this after the survey is stale
RESEND_COOLDOWN = timedelta(hours=24)  # at most one survey per chat per day
SKIPPED_REASONS = frozenset({"merge", "spam"})  # resolutions that were not a served customer
STATUS_ENTRY = Q(type=Message.Type.ACTIVITY, content__activity__kind="status")


def report_settings_for(organization) -> ReportSettings:
    config, _created = ReportSettings.objects.get_or_create(organization=organization)
    return config


def csat_enabled(organization) -> bool:
    return ReportSettings.objects.filter(organization=organization, csat_enabled=True).exists()


def default_question(language: str) -> str:
    with translation.override(language):
        return _("How would you rate our service?")


def question_for(config: ReportSettings) -> str:
    return config.csat_question.strip() or default_question(config.organization.language)


def survey_content(survey: CsatSurvey, question: str, language: str) -> dict:
    """The interactive reply-buttons message (titles in the organization's language)."""
    with translation.override(language):
        buttons = [
            {"type": "reply", "reply": {"id": f"{CSAT_PREFIX}{survey.code}:{score}", "title": str(label)}}
            for score, label in CsatResponse.SCORES.items()
        ]  # fmt: skip
    return {"type": "button", "body": {"text": question[:1024]}, "action": {"buttons": buttons}}


def reply_choice(message: Message) -> tuple[UUID, int] | None:
    """(survey code, score) when ``message`` is a tap on a CSAT button, else None."""
    if message.direction != Message.Direction.INBOUND or message.type != Message.Type.INTERACTIVE:
        return None
    interactive = (message.content or {}).get("interactive") or {}
    choice = interactive.get(interactive.get("type") or "") or {}
    reply_id = str(choice.get("id") or "") if isinstance(choice, dict) else ""
    if not reply_id.startswith(CSAT_PREFIX):
        return None
    try:
        code, score = reply_id.removeprefix(CSAT_PREFIX).rsplit(":", 1)
        code, score = UUID(code), int(score)
    except ValueError:
        return None
    return (code, score) if score in CsatResponse.SCORES else None


def resolution_credit(resolution: Message) -> tuple[int | None, int | None]:
    """(team member who resolved, assistant when the AI resolved the conversation alone), by
    the same rule as the daily statistics (``reports.stats``)."""
    chat_messages = Message.objects.filter(chat_id=resolution.chat_id)
    since = resolution.timestamp - RESOLUTION_LOOKBACK
    earlier = (
        chat_messages.filter(RESOLVED, timestamp__gt=since, timestamp__lt=resolution.timestamp)
        .order_by("-timestamp")
        .values_list("timestamp", flat=True)
        .first()
    )
    since = earlier or since
    window = chat_messages.filter(timestamp__gt=since, timestamp__lt=resolution.timestamp)
    replies = list(
        window.filter(
            direction=Message.Direction.OUTBOUND,
            author_type__in=(Message.Author.USER, Message.Author.ASSISTANT),
        )
        .order_by("timestamp", "id")
        .values_list("author_type", "author_ref")
    )
    assistant = None
    if (
        replies
        and {author for author, _ref in replies} == {Message.Author.ASSISTANT}
        and not window.filter(HANDOFF).exists()
    ):
        assistant = assistant_refs(resolution.chat.organization).get(replies[-1][1])
    return resolution.author_user_id, assistant


def csat_send(*, chat_id: int) -> CsatSurvey | None:
    """Send the survey for the chat's latest resolution, once; None when it is not sent."""
    chat = Chat.objects.select_related("contact", "organization").filter(pk=chat_id).first()
    if chat is None or chat.status != Chat.Status.RESOLVED:
        return None
    config = ReportSettings.objects.filter(organization_id=chat.organization_id).first()
    if config is None or not config.csat_enabled:
        return None
    resolution = Message.objects.filter(RESOLVED, chat=chat).order_by("-timestamp", "-id").first()
    if resolution is None:
        return None
    if not chat.window_is_open:
        logger.info("CSAT survey not sent to chat %s: the 24-hour window is closed", chat.code)
        return None
    if CsatSurvey.objects.filter(chat=chat, sent_at__gte=timezone.now() - RESEND_COOLDOWN).exists():
        logger.info("CSAT survey not sent to chat %s: it got one in the last day", chat.code)
        return None
    agent, assistant = resolution_credit(resolution)
    language = chat.organization.language
    try:
        with transaction.atomic():
            survey = CsatSurvey.objects.create(
                organization_id=chat.organization_id,
                chat=chat,
                contact=chat.contact,
                resolution=resolution,
                agent_id=agent,
                assistant_id=assistant,
            )
            survey.message = inbox_services.message_send(
                chat=chat,
                message_type=Message.Type.INTERACTIVE,
                content=survey_content(survey, question_for(config), language),
                author_type=Message.Author.AUTOMATION,
                author_ref=f"csat:{survey.code}",
            )
            survey.save(update_fields=["message"])
    except IntegrityError:  # this resolution has its survey already (a repeated task)
        return None
    except inbox_services.SendRefused as error:
        logger.warning("CSAT survey not sent to chat %s: %s", chat.code, error.message)
        return None
    return survey


@transaction.atomic
def csat_answer(*, message_id: int) -> CsatResponse | None:
    """Record a customer's tap on a survey button (the first one, if not stale) and thank them."""
    message = Message.objects.select_related("chat__organization").filter(pk=message_id).first()
    choice = reply_choice(message) if message is not None else None
    if choice is None:
        return None
    code, score = choice
    # The survey must belong to the very chat the tap came from (and so to its organization).
    survey = CsatSurvey.objects.filter(code=code, chat_id=message.chat_id).first()
    if survey is None:
        logger.warning("CSAT answer %s names no survey of its chat; ignored", message.code)
        return None
    if message.timestamp - survey.sent_at > REPLY_WINDOW:
        logger.info("CSAT answer %s came after the survey closed; ignored", message.code)
        return None
    try:
        with transaction.atomic():
            response = CsatResponse.objects.create(
                organization_id=survey.organization_id,
                survey=survey,
                chat_id=survey.chat_id,
                contact_id=survey.contact_id,
                agent_id=survey.agent_id,
                assistant_id=survey.assistant_id,
                score=score,
                message=message,
                responded_at=message.timestamp,
            )
    except IntegrityError:
        logger.info("CSAT survey %s was answered already; answer %s ignored", code, message.code)
        _restore_resolved(survey)
        return None
    _restore_resolved(survey)
    _thank(message.chat)
    return response


def _thank(chat: Chat) -> None:
    chat = Chat.objects.select_related("contact", "organization").get(pk=chat.pk)
    with translation.override(chat.organization.language):
        text = _("Thank you for your feedback!")
    try:
        inbox_services.message_send(
            chat=chat,
            message_type=Message.Type.TEXT,
            content={"body": text, "preview_url": False},
            author_type=Message.Author.AUTOMATION,
            author_ref="csat",
        )
    except inbox_services.SendRefused as error:
        logger.warning("CSAT thanks not sent to chat %s: %s", chat.code, error.message)


def _restore_resolved(survey: CsatSurvey) -> None:
    """Put the chat back to resolved when the tap is all that happened since the survey: its
    latest status change is still the surveyed resolution and no other customer message came."""
    chat_messages = Message.objects.filter(chat_id=survey.chat_id)
    latest_status = (
        chat_messages.filter(STATUS_ENTRY)
        .order_by("-timestamp", "-id")
        .values_list("pk", flat=True)
    ).first()
    if latest_status != survey.resolution_id:
        return
    others = chat_messages.filter(
        direction=Message.Direction.INBOUND, timestamp__gte=survey.sent_at
    ).exclude(CSAT_TAP)
    if others.exists():
        return
    restored = Chat.objects.filter(pk=survey.chat_id, status=Chat.Status.OPEN).update(
        status=Chat.Status.RESOLVED,
        unread_count=Case(When(unread_count__gt=0, then=F("unread_count") - 1), default=Value(0)),
    )
    if restored:
        chat = Chat.objects.select_related("organization", "assignee").get(pk=survey.chat_id)
        inbox_services.publish_chat_event(chat, "chat.changed", change="status")
