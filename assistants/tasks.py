"""Thin tasks: take ids, call services."""

import logging

from assistants import services
from inbox.models import Chat, Message
from integrations.errors import IntegrationError

logger = logging.getLogger(__name__)


def reply_to_chat(chat_id: int, due=None, organization_id=None, number_id=None) -> None:
    services.reply_run(chat_id, due, organization_id, number_id)


def pause_for_human_reply(message_id: int) -> None:
    message = Message.objects.select_related("chat", "author_user").filter(pk=message_id).first()
    if message is not None:
        services.human_reply_pause(message=message)


def analyze_chat(chat_id: int) -> None:
    chat = Chat.objects.filter(pk=chat_id).first()
    if chat is not None:
        services.chat_analyze(chat=chat)


def transcribe_voice_note(message_id: int) -> None:
    """Transcribe, then let the assistant answer with the transcript as the customer's text."""
    message = Message.objects.select_related("chat").filter(pk=message_id).first()
    if message is None:
        return
    try:
        services.message_transcribe(message=message)
    except IntegrationError as error:  # the assistant still answers (and may hand off)
        logger.warning("Voice note %s not transcribed: %s", message_id, error)
    services.reply_schedule(message=message)


def reply_sweep() -> None:
    services.reply_jobs_sweep()


def followups_tick() -> dict:
    """Act on the analyses whose follow-up day has come (``assistants.followups``)."""
    from assistants import followups

    return followups.followups_due()
