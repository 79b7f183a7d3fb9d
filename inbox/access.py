from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404

from inbox import selectors
from inbox.models import Chat, Message


def get_chat_for_member(membership, code) -> Chat:
    """The chat with ``code`` if this member may see it; 404 otherwise (never a hint it exists)."""
    try:
        return get_object_or_404(
            selectors.chats_visible_to(membership).select_related(
                "contact", "number", "assignee", "organization"
            ),
            code=code,
        )
    except ValidationError as error:  # a malformed code
        raise Http404 from error


def get_message_in_chat(chat: Chat, code) -> Message:
    try:
        return get_object_or_404(Message, chat=chat, code=code)
    except ValidationError as error:
        raise Http404 from error
