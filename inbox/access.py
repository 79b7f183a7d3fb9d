from django.shortcuts import get_object_or_404

from inbox import selectors
from inbox.models import Chat


def get_chat_for_member(membership, code) -> Chat:
    """The chat with ``code`` if this member may see it; 404 otherwise (never a hint it exists)."""
    return get_object_or_404(
        selectors.chats_visible_to(membership).select_related("contact", "number", "assignee"),
        code=code,
    )
