from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Prefetch, Q, QuerySet

from accounts.access import Level, level_for
from accounts.models import Membership, Organization, User
from inbox.models import Chat, Contact, Media, Message
from integrations.models import MessageTemplate

PAGE_SIZE = 40
THREAD_PAGE_SIZE = 40


def member_stand_in(role: str, organization_id: int, user_id: int | None) -> Membership:
    """An unsaved member with ``role`` in the organization and user given by id: what a query
    compiled once with stand-in ids (``kernel.sql.CompiledQuery``) is built from."""
    return Membership(
        organization=Organization(pk=organization_id), user=User(pk=user_id), role=role
    )


def chats_visible_to(membership: Membership) -> QuerySet[Chat]:
    """Chats a member may see: all of the organization's, or only their own for agents."""
    chats = Chat.objects.filter(organization=membership.organization)
    if level_for(membership, "chats") == Level.ASSIGNED:
        chats = chats.filter(assignee=membership.user)
    return chats


# The priority filter's values: one priority exactly ("0": none), or one "or higher" ("3+").
PRIORITY_FILTERS = frozenset(
    [str(value) for value in Chat.Priority.values]
    + [f"{value}+" for value in Chat.Priority.values if value]
)


@dataclass(frozen=True)
class ChatFilters:
    """The inbox's filter bar, parsed once from the query string."""

    view: str = "all"  # mine | unassigned | all
    status: str = "open"  # open | pending | resolved | any
    number: str = ""  # WhatsAppNumber code
    tag: str = ""
    ai: str = ""  # on | off | ""
    q: str = ""
    priority: str = ""  # "" (any) | "0" (none) .. "4" (urgent) | "2+" (medium or higher)...
    sort: str = ""  # "" (latest activity first) | "priority" (highest priority first)

    @classmethod
    def from_query(cls, query, membership: Membership) -> "ChatFilters":
        view = query.get(
            "view", "mine" if level_for(membership, "chats") == Level.ASSIGNED else "all"
        )
        status = query.get("status", "open")
        return cls(
            view=view if view in ("mine", "unassigned", "all") else "all",
            status=status if status in ("open", "pending", "resolved", "any") else "open",
            number=query.get("number", "")[:36],
            tag=query.get("tag", "").strip().lower()[:40],
            ai=query.get("ai", "") if query.get("ai") in ("on", "off") else "",
            q=query.get("q", "").strip()[:100],
            priority=query.get("priority", "") if query.get("priority") in PRIORITY_FILTERS else "",
            sort="priority" if query.get("sort") == "priority" else "",
        )

    @property
    def priority_floor(self) -> tuple[int, bool] | None:
        """(priority, "or higher") for the priority filter, or None."""
        if not self.priority:
            return None
        return int(self.priority[0]), self.priority.endswith("+")

    def tab_query(self, view: str) -> str:
        return self.as_query(view=view)

    @property
    def tabs(self) -> list[tuple[str, str]]:
        return [(view, self.as_query(view=view)) for view in ("mine", "unassigned", "all")]

    def as_query(self, **changes) -> str:
        from urllib.parse import urlencode

        values = {**self.__dict__, **changes}
        return urlencode({k: v for k, v in values.items() if v})


def _apply_filters(
    chats: QuerySet[Chat], filters: ChatFilters, membership: Membership
) -> QuerySet[Chat]:
    if filters.view == "mine":
        chats = chats.filter(assignee=membership.user)
    elif filters.view == "unassigned":
        chats = chats.filter(assignee__isnull=True)
    if filters.status != "any":
        chats = chats.filter(status=filters.status)
    if filters.number:
        chats = (
            chats.filter(number__code=filters.number) if _is_uuid(filters.number) else chats.none()
        )
    if filters.tag:
        chats = chats.filter(tags__icontains=f'"{filters.tag}"')
    if filters.ai:
        chats = chats.filter(ai_enabled=filters.ai == "on")
    if filters.q:
        chats = chats.filter(_search(filters.q, membership.organization))
    if filters.priority_floor is not None:
        value, or_higher = filters.priority_floor
        chats = chats.filter(priority__gte=value) if or_higher else chats.filter(priority=value)
    return chats


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


SEARCH_MESSAGE_HITS = 500
SEARCH_CONTACT_IDS = 500


def _search(q: str, organization) -> Q:
    """Contact name or phone, or message text (PostgreSQL full-text, LIKE on SQLite).

    Message hits are at most ``SEARCH_MESSAGE_HITS`` matching messages: a bounded id list
    keeps the plan cheap for common words (a bare IN over millions of rows would not be).

    On PostgreSQL both id lists are read first (the contacts by their trigram index,
    ``contact_search_trgm``; the messages by ``message_text_fts``) and the chats are then
    looked up by those ids. As subqueries, the plan hung on PostgreSQL's guess of how many
    contacts match: a guess of a thousand for "Cliente 4242" (20 matched) made it read all
    100k chats of the inbox bench twice (80 ms; an OR of the two subqueries, 218 ms). A search
    matching more than ``SEARCH_CONTACT_IDS`` contacts keeps them a subquery, in ONE ``IN``
    over a UNION with the message hits: reading many chats is then the right plan.
    """
    digits = "".join(ch for ch in q if ch.isdigit())
    # icontains for the phone too (digits have no case): the same UPPER(...) the index holds.
    named = Q(name__icontains=q) | Q(profile_name__icontains=q)
    if len(digits) >= 4:
        named |= Q(phone__icontains=digits)
    messages = Message.objects.filter(organization=organization).exclude(
        direction=Message.Direction.INTERNAL
    )
    if settings.IS_POSTGRES:
        from django.contrib.postgres.search import SearchQuery, SearchVector

        # Uncorrelated, so PostgreSQL answers it from the GIN index (message_text_fts).
        hits = messages.annotate(document=SearchVector("text", config="simple")).filter(
            document=SearchQuery(q, config="simple", search_type="websearch")
        )
    else:
        hits = messages.filter(text__icontains=q)
    hits = hits.order_by().values_list("chat_id", flat=True)[:SEARCH_MESSAGE_HITS]
    contacts = Contact.objects.filter(organization=organization).filter(named).values("pk")
    if not settings.IS_POSTGRES:
        return Q(contact__in=contacts) | Q(pk__in=hits)
    contact_ids = [row["pk"] for row in contacts.order_by()[: SEARCH_CONTACT_IDS + 1]]
    if len(contact_ids) <= SEARCH_CONTACT_IDS:
        return Q(contact_id__in=contact_ids) | Q(pk__in=list(hits))
    by_contact = Chat.objects.filter(organization=organization, contact__in=contacts)
    return Q(pk__in=by_contact.order_by().values("pk").union(hits))


def chat_matches(membership: Membership, filters: ChatFilters, chat: Chat) -> bool:
    """Whether ``chat`` belongs in the list the member is looking at (after a live change)."""
    return (
        _apply_filters(chats_visible_to(membership), filters, membership)
        .filter(pk=chat.pk)
        .exists()
    )


def chat_page(
    membership: Membership, filters: ChatFilters, *, before: Chat | None = None
) -> list[Chat]:
    """One page of the chat list, newest activity first (or, sorted by priority, the highest
    priority first and newest activity within one); ``before`` is the cursor."""
    chats = _apply_filters(chats_visible_to(membership), filters, membership)
    if before is not None and before.last_message_at is not None:
        after_in_time = (
            Q(last_message_at__lt=before.last_message_at)
            | Q(last_message_at=before.last_message_at, id__lt=before.id)
            | Q(last_message_at__isnull=True)
        )
        if filters.sort == "priority":
            after_in_time = Q(priority__lt=before.priority) | (
                Q(priority=before.priority) & after_in_time
            )
        chats = chats.filter(after_in_time)
    order = ("-last_message_at", "-id")
    if filters.sort == "priority":
        order = ("-priority", *order)
    return list(
        chats.select_related("contact", "assignee", "number").order_by(*order)[: PAGE_SIZE + 1]
    )


def chat_counts(membership: Membership, filters: ChatFilters) -> dict[str, int]:
    """Counts for the Mine / Unassigned / All tabs under the current status and other filters.
    Counting a column of the (organization, status, assignee) index, not ``id``, lets that
    index answer alone, without reading the table."""
    base = _apply_filters(
        chats_visible_to(membership), ChatFilters(**{**filters.__dict__, "view": "all"}), membership
    )
    return base.aggregate(
        all=Count("organization"),
        mine=Count("organization", filter=Q(assignee=membership.user)),
        unassigned=Count("organization", filter=Q(assignee__isnull=True)),
    )


def inbox_counts(membership: Membership) -> dict[str, int]:
    return chats_visible_to(membership).aggregate(
        open=Count("organization", filter=Q(status=Chat.Status.OPEN)),
        pending=Count("organization", filter=Q(status=Chat.Status.PENDING)),
        unassigned=Count("organization", filter=Q(assignee__isnull=True, status=Chat.Status.OPEN)),
        mine=Count("organization", filter=Q(assignee=membership.user, status=Chat.Status.OPEN)),
    )


def timeline_entries() -> QuerySet[Message]:
    """Messages with everything ``inbox/_message.html`` reads, in a constant number of queries."""
    return (
        Message.objects.exclude(type=Message.Type.REACTION)  # shown on the message they react to
        .select_related("author_user", "reply_to", "reply_to__author_user")
        .prefetch_related(Prefetch("media", queryset=Media.objects.order_by("id")))
    )


def thread_page(chat: Chat, *, before: Message | None = None) -> tuple[list[Message], bool]:
    """The latest messages of a chat (or those before ``before``), oldest first, and whether
    older ones exist."""
    messages = timeline_entries().filter(chat=chat)
    if before is not None:
        messages = messages.filter(
            Q(timestamp__lt=before.timestamp) | Q(timestamp=before.timestamp, id__lt=before.id)
        )
    page = list(messages.order_by("-timestamp", "-id")[: THREAD_PAGE_SIZE + 1])
    has_more = len(page) > THREAD_PAGE_SIZE
    return list(reversed(page[:THREAD_PAGE_SIZE])), has_more


def number_templates(chat: Chat) -> list[MessageTemplate]:
    """The message templates of the chat's number (the composer's choice and the timeline's
    template previews), in one query."""
    return list(MessageTemplate.objects.filter(number_id=chat.number_id))


def messages_after(chat: Chat, after: Message) -> list[Message]:
    return list(
        timeline_entries()
        .filter(chat=chat)
        .filter(Q(timestamp__gt=after.timestamp) | Q(timestamp=after.timestamp, id__gt=after.id))
        .order_by("timestamp", "id")[:200]
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


def past_chats(chat: Chat) -> QuerySet[Chat]:
    return (
        Chat.objects.filter(contact_id=chat.contact_id).exclude(pk=chat.pk).select_related("number")
    )


def teammates(membership: Membership):
    from accounts.models import User

    return User.objects.filter(memberships__organization=membership.organization).order_by(
        "name", "email"
    )


def organization_tags(membership: Membership) -> list[str]:
    tags = set()
    for row in (
        Chat.objects.filter(organization=membership.organization)
        .exclude(tags=[])
        .values_list("tags", flat=True)[:500]
    ):
        tags.update(row)
    return sorted(tags)
