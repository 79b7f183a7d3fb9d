import uuid

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts.access import Level, level_for
from inbox import selectors
from inbox.models import Chat, Media, Message
from kernel.sql import CompiledQuery


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


# What sending a message reads of its chat (``inbox.services.message_send``, its live event and
# the API's answer); anything else loads when first read.
SEND_COLUMNS = (
    *("code", "organization", "contact", "number", "assignee", "status"),
    *("window_expires_at", "waiting_since", "held_by", "held_until", "seq", "ai_enabled"),
    *("organization__code", "contact__wa_id", "contact__phone", "assignee__id"),
    *("number__provider", "number__waba_id", "number__organization"),
)
_send_lookups: dict[str, CompiledQuery] = {}


def get_chat_for_send(membership, code) -> Chat:
    """``get_chat_for_member`` for an API send: the same chats visible, with ``SEND_COLUMNS``
    only, in a query compiled once per role (the whole chat with its contact, number, assignee
    and organization, compiled at every call, was a third of the request's time)."""
    lookup = _send_lookups.get(membership.role)
    if lookup is None:
        role = membership.role

        def build(organization_id, user_id, chat_code):
            member = selectors.member_stand_in(role, organization_id, user_id)
            return (
                selectors.chats_visible_to(member)
                .select_related("contact", "number", "assignee", "organization")
                .only(*SEND_COLUMNS)
                .filter(code=chat_code)
            )

        lookup = _send_lookups[role] = CompiledQuery(build, -7341, -7342, uuid.UUID(int=7343))
    try:
        chat_code = code if isinstance(code, uuid.UUID) else uuid.UUID(str(code))
    except ValueError as error:
        raise Http404 from error
    chat = lookup.first(membership.organization_id, membership.user_id, chat_code)
    if chat is None:
        raise Http404
    return chat


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
