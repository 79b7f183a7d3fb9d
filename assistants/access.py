"""Access to assistants: always scoped to the request's organization (404 otherwise)."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from accounts import access
from assistants.models import Assistant, KnowledgeSource
from inbox.models import Chat, Message


def get_assistant_for_user(request, code) -> tuple[Assistant, bool]:
    assistant = get_object_or_404(
        Assistant.objects.for_organization(request.organization), code=code
    )
    return assistant, access.can_edit(request.membership, "assistants")


def get_editable_assistant_for_user(request, code) -> Assistant:
    assistant, can_edit = get_assistant_for_user(request, code)
    if not can_edit:
        raise PermissionDenied
    return assistant


def get_editable_source_for_user(request, assistant_code, source_code) -> KnowledgeSource:
    assistant = get_editable_assistant_for_user(request, assistant_code)
    return get_object_or_404(assistant.sources.all(), code=source_code)


def get_analyzable_chat_for_user(request, code) -> Chat:
    """A chat of the organization the user may see (agents: only their own)."""
    chats = Chat.objects.for_organization(request.organization)
    if access.level_for(request.membership, "chats") == access.Level.ASSIGNED:
        chats = chats.filter(assignee=request.user)
    return get_object_or_404(chats, code=code)


def get_summarizable_message_for_user(request, code) -> Message:
    """An inbound message in a chat the user may see (agents: only their own chats)."""
    messages = Message.objects.for_organization(request.organization).filter(direction="in")
    if access.level_for(request.membership, "chats") == access.Level.ASSIGNED:
        messages = messages.filter(chat__assignee=request.user)
    return get_object_or_404(messages.select_related("chat"), code=code)
