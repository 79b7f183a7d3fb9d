from django.db.models import Count, Q, QuerySet

from accounts.access import Level, level_for
from accounts.models import Membership
from inbox.models import Chat, Contact


def chats_visible_to(membership: Membership) -> QuerySet[Chat]:
    """Chats a member may see: all of the organization's, or only their own for agents."""
    chats = Chat.objects.filter(organization=membership.organization)
    if level_for(membership, "chats") == Level.ASSIGNED:
        chats = chats.filter(assignee=membership.user)
    return chats


def chat_list(membership: Membership) -> QuerySet[Chat]:
    return (
        chats_visible_to(membership)
        .select_related("contact", "assignee", "number")
        .order_by("-last_message_at", "-id")
    )


def inbox_counts(membership: Membership) -> dict[str, int]:
    return chats_visible_to(membership).aggregate(
        open=Count("id", filter=Q(status=Chat.Status.OPEN)),
        pending=Count("id", filter=Q(status=Chat.Status.PENDING)),
        unassigned=Count("id", filter=Q(assignee__isnull=True, status=Chat.Status.OPEN)),
        mine=Count("id", filter=Q(assignee=membership.user, status=Chat.Status.OPEN)),
    )


def contact_count(membership: Membership) -> int:
    return Contact.objects.filter(organization=membership.organization).count()


def contact_search(membership: Membership, query: str) -> QuerySet[Contact]:
    """Contacts of the organization (agents: only those of chats assigned to them)."""
    contacts = Contact.objects.filter(organization=membership.organization)
    if level_for(membership, "chats") == Level.ASSIGNED:
        contacts = contacts.filter(chats__assignee=membership.user).distinct()
    if query:
        contacts = contacts.filter(
            Q(name__icontains=query) | Q(profile_name__icontains=query) | Q(phone__icontains=query)
        )
    return contacts.order_by("name", "phone")
