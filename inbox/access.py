from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts.access import Level, level_for
from inbox import selectors
from inbox.models import Chat, Media, Message


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


def get_media_for_member(membership, code) -> Media:
    """A file in a chat this member may see (agents: their own chats); 404 otherwise.

    A file uploaded through the API but not yet sent in any message belongs to no chat: only
    members who see every chat may fetch it.
    """
    visible = Q(message__chat__in=selectors.chats_visible_to(membership))
    if level_for(membership, "chats") > Level.ASSIGNED:
        visible |= Q(message__isnull=True)
    try:
        return get_object_or_404(
            Media.objects.filter(visible, organization=membership.organization), code=code
        )
    except ValidationError as error:
        raise Http404 from error
