"""Team inbox operations: in-app notifications, mentions, snooze, priority, saved views, teams'
auto-assignment and messages sent later. Each operation sends its own live events."""

import logging
import re
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Membership, Team
from inbox import presence
from inbox.consumers import user_group
from inbox.models import Chat, Message, Notification, QuickReply, SavedView, ScheduledMessage
from kernel import realtime

logger = logging.getLogger(__name__)

NOTIFICATIONS_SHOWN = 10


# --- Notifications ------------------------------------------------------------------------------


def notify(*, user, chat: Chat | None, text: str, handoff: bool = False) -> Notification:
    """Store a notification and push it to the member's open pages after commit."""
    note = Notification.objects.create(
        organization_id=chat.organization_id if chat else None, user=user, chat=chat, text=text
    )
    data = {"type": "notification", "text": text, "id": str(note.code)}
    if chat is not None:
        data["chat"] = str(chat.code)
    if handoff:
        data["handoff"] = True
    realtime.publish_on_commit(user_group(user), {"type": "live.event", "data": data})
    return note


def notifications_for(user, organization) -> list[Notification]:
    """The bell menu: the latest unread notifications of this member in this organization."""
    if not getattr(user, "is_authenticated", False) or organization is None:
        return []
    return list(
        Notification.objects.filter(user=user, organization=organization, read_at=None)
        .select_related("chat")
        .order_by("-created_at")[:NOTIFICATIONS_SHOWN]
    )


def notifications_read(*, user, organization, chat: Chat | None = None) -> int:
    """Opening a chat reads its notifications; the menu's "mark all read" reads every one."""
    unread = Notification.objects.filter(user=user, organization=organization, read_at=None)
    if chat is not None:
        unread = unread.filter(chat=chat)
    return unread.update(read_at=timezone.now())


# --- Mentions -------------------------------------------------------------------------------------

MENTION = re.compile(r"@([\w.\-]+)", re.UNICODE)


def mention_handles(user) -> set[str]:
    """How a note may name a member: the first name or the email's local part, any case."""
    handles = {user.email.split("@")[0].lower()}
    name = (user.display_name or "").split()
    if name:
        handles.add(name[0].lower())
    return handles


def mentioned_members(*, organization_id: int, body: str, author) -> list:
    words = {m.group(1).lower().rstrip(".") for m in MENTION.finditer(body)}
    if not words:
        return []
    members = Membership.objects.select_related("user").filter(organization_id=organization_id)
    return [m.user for m in members if m.user_id != author.pk and mention_handles(m.user) & words]


def mention_candidates(organization) -> list[dict]:
    """For the note box's autocomplete: each member's name and the handle to insert (the first
    name, or the email's local part when two members share a first name)."""
    users = [
        m.user
        for m in Membership.objects.select_related("user")
        .filter(organization=organization, user__is_active=True)
        .order_by("user__name", "user__email")
    ]
    firsts: dict[str, int] = {}
    for user in users:
        first = (user.display_name or "").split()[0].lower() if user.display_name else ""
        firsts[first] = firsts.get(first, 0) + 1
    rows = []
    for user in users:
        first = (user.display_name or "").split()[0] if user.display_name else ""
        handle = first if first and firsts[first.lower()] == 1 else user.email.split("@")[0]
        rows.append({"id": user.pk, "name": user.display_name, "handle": handle})
    return rows


def mentions_notify(*, note: Message, chat: Chat, author, body: str) -> list:
    mentioned = mentioned_members(organization_id=chat.organization_id, body=body, author=author)
    note.mentions.set(mentioned)
    for user in mentioned:
        notify(
            user=user,
            chat=chat,
            text=_("%(author)s mentioned you: %(body)s")
            % {"author": author.display_name, "body": body[:120]},
        )
    return mentioned


# --- Snooze, priority -----------------------------------------------------------------------------


@transaction.atomic
def chat_snooze(*, chat: Chat, until: datetime, actor) -> Chat:
    """Out of the open list until ``until``; the tick reopens it (``snoozes_wake``), and so does
    a new customer message."""
    from inbox import services

    if until <= timezone.now():
        raise ValidationError(_("Choose a moment in the future."))
    chat.snoozed_until = until
    chat.status = Chat.Status.PENDING
    chat.save(update_fields=["snoozed_until", "status"])
    local = timezone.localtime(until)
    text = _("%(actor)s snoozed the chat until %(when)s") % {
        "actor": actor.display_name,
        "when": local.strftime("%d/%m %H:%M"),
    }
    entry = services._record_activity(chat, actor, text, {"kind": "snooze"})
    services.publish_chat_event(chat, "chat.changed", change="status", message=str(entry.code))
    return chat


def snoozes_wake(now: datetime | None = None) -> int:
    """Reopen the chats whose snooze has passed and tell their assignee. Claimed one by one
    with a conditional UPDATE, so two ticks never wake the same chat twice."""
    from inbox import services

    now = now or timezone.now()
    woken = 0
    due = Chat.objects.filter(snoozed_until__lte=now).values_list("pk", flat=True)[:200]
    for pk in list(due):
        with transaction.atomic():
            if not Chat.objects.filter(pk=pk, snoozed_until__lte=now).update(
                snoozed_until=None, status=Chat.Status.OPEN
            ):
                continue
            chat = Chat.objects.select_related("assignee", "contact").get(pk=pk)
            entry = services._record_activity(
                chat, None, _("The snooze ended: the chat is open again"), {"kind": "snooze"}
            )
            services.publish_chat_event(
                chat, "chat.changed", change="status", message=str(entry.code)
            )
            if chat.assignee:
                notify(
                    user=chat.assignee,
                    chat=chat,
                    text=_("Back from snooze: %(name)s") % {"name": chat.contact.display_name},
                )
            woken += 1
    return woken


def chat_set_priority(*, chat: Chat, priority: int, actor) -> Chat:
    from inbox import services

    if priority not in Chat.Priority.values:
        raise ValidationError(_("Unknown priority."))
    if chat.priority == priority:
        return chat
    Chat.objects.filter(pk=chat.pk).update(priority=priority)
    chat.priority = priority
    services.publish_chat_event(chat, "chat.changed", change="priority")
    return chat


# --- Saved views ----------------------------------------------------------------------------------


def saved_view_save(*, user, organization, name: str, query: str) -> SavedView:
    name = name.strip()[:60]
    if not name:
        raise ValidationError(_("Name the view."))
    view, _created = SavedView.objects.update_or_create(
        organization=organization, user=user, name=name, defaults={"query": query[:500]}
    )
    return view


# --- Teams and auto-assignment --------------------------------------------------------------------


def open_chat_counts(organization_id: int, user_ids: list[int]) -> dict[int, int]:
    rows = (
        Chat.objects.filter(
            organization_id=organization_id,
            assignee_id__in=user_ids,
            status__in=(Chat.Status.OPEN, Chat.Status.PENDING),
        )
        .values("assignee_id")
        .annotate(n=Count("id"))
    )
    return {row["assignee_id"]: row["n"] for row in rows}


def auto_assignee(team: Team):
    """The next member of ``team`` for a new chat: round robin after the last one dealt, among
    the members online in the inbox with room under their ``max_open_chats``; None when nobody
    online has room (the chat stays unassigned for the team)."""
    members = list(
        Membership.objects.filter(
            organization_id=team.organization_id,
            user__in=team.members.all(),
            user__is_active=True,
        )
        .select_related("user")
        .order_by("user_id")
    )
    online = presence.online_user_ids(team.organization_id, [m.user_id for m in members])
    members = [m for m in members if m.user_id in online]
    counts = open_chat_counts(team.organization_id, [m.user_id for m in members])
    members = [
        m for m in members if not m.max_open_chats or counts.get(m.user_id, 0) < m.max_open_chats
    ]
    if not members:
        return None
    for _attempt in range(3):
        last = Team.objects.filter(pk=team.pk).values_list("last_assignee_id", flat=True).first()
        following = [m.user for m in members if last is None or m.user_id > last]
        chosen = (following or [members[0].user])[0]
        if Team.objects.filter(pk=team.pk, last_assignee_id=last).update(last_assignee=chosen):
            return chosen
    return chosen


def chat_auto_assign(*, chat: Chat) -> bool:
    """A new chat nobody has: the first auto-assigning team (by name) deals it to a member.
    Chats an assistant answers are left alone: its handoff picks the person."""
    if chat.assignee_id or chat.ai_enabled:
        return False
    team = (
        Team.objects.filter(organization_id=chat.organization_id, auto_assign=True)
        .order_by("name")
        .first()
    )
    if team is None:
        return False
    return chat_team_assign(chat=chat, team=team) is not None


def chat_team_assign(*, chat: Chat, team: Team):
    """Give ``chat`` to ``team``: it joins the team's queue and the team's round robin
    (``auto_assignee``) deals it to a member online with room, unless a member of the team
    has it already. Returns the assignee; None when nobody online has room (the chat keeps
    whoever had it, in the team's queue). Used by new chats' auto-assignment and by flows'
    "assign to a team" step."""
    from inbox import services

    if chat.team_id != team.pk:
        Chat.objects.filter(pk=chat.pk).update(team=team)
        chat.team = team
    if chat.assignee_id and team.members.filter(pk=chat.assignee_id).exists():
        return chat.assignee
    assignee = auto_assignee(team)
    if assignee is None:
        return None
    previous = chat.assignee if chat.assignee_id else None
    with transaction.atomic():
        # Conditional on the assignee read: a person assigning meanwhile wins.
        if not Chat.objects.filter(pk=chat.pk, assignee_id=chat.assignee_id).update(
            assignee=assignee
        ):
            return None
        chat.assignee = assignee
        entry = services._record_activity(
            chat,
            None,
            _("Assigned to %(name)s by the team %(team)s's round robin")
            % {"name": assignee.display_name, "team": team.name},
            {"kind": "assigned", "assignee": assignee.pk},
        )
        if previous is not None and previous != assignee:
            realtime.publish_on_commit(
                user_group(previous),
                {"type": "live.event", "data": {"type": "chat.removed", "chat": str(chat.code)}},
            )
        services.publish_chat_event(
            chat, "chat.changed", change="assigned", message=str(entry.code)
        )
        notify(
            user=assignee,
            chat=chat,
            text=_("New chat for you: %(name)s") % {"name": chat.contact.display_name},
        )
    return assignee


def team_members_of(user, organization) -> list[int]:
    return list(
        Team.objects.filter(organization=organization, members=user).values_list("pk", flat=True)
    )


# --- Quick replies --------------------------------------------------------------------------------


def quick_replies_for(*, organization, user):
    """The team's shared replies and this member's own."""
    return QuickReply.objects.filter(organization=organization).filter(
        Q(owner=None) | Q(owner=user)
    )


def quick_reply_fill(text: str, *, chat: Chat, user) -> str:
    """A quick reply's variables for this chat: {{name}}, {{first_name}}, {{phone}}, {{agent}}."""
    name = chat.contact.display_name or ""
    values = {
        "name": name,
        "first_name": name.split()[0] if name.split() else "",
        "phone": chat.contact.phone,
        "agent": (user.display_name or "").split()[0] if user.display_name else "",
    }
    return re.sub(r"{{\s*(\w+)\s*}}", lambda m: values.get(m.group(1).lower(), m.group(0)), text)


# --- Send later -----------------------------------------------------------------------------------


def scheduled_create(*, chat: Chat, author, text: str, send_at: datetime) -> ScheduledMessage:
    text = text.strip()
    if not text:
        raise ValidationError(_("Write the message to send later."))
    if send_at <= timezone.now():
        raise ValidationError(_("Choose a moment in the future."))
    item = ScheduledMessage.objects.create(
        organization_id=chat.organization_id,
        chat=chat,
        author=author,
        text=text[:4096],
        send_at=send_at,
    )
    from inbox import services

    services.publish_chat_event(chat, "chat.changed", change="scheduled")
    return item


def scheduled_cancel(*, item: ScheduledMessage) -> bool:
    from inbox import services

    done = ScheduledMessage.objects.filter(
        pk=item.pk, status=ScheduledMessage.Status.PENDING
    ).update(status=ScheduledMessage.Status.CANCELLED)
    if done:
        services.publish_chat_event(item.chat, "chat.changed", change="scheduled")
    return bool(done)


def scheduled_send_due(now: datetime | None = None) -> int:
    """Send the messages whose time has come. Each is claimed (pending → sending) with a
    conditional UPDATE before it goes, so a restarted or second worker never sends one twice.
    The 24 h window is checked now: when it has closed, the message is not sent and its author
    is told why."""
    from inbox import services

    now = now or timezone.now()
    sent = 0
    due = ScheduledMessage.objects.filter(
        status=ScheduledMessage.Status.PENDING, send_at__lte=now
    ).values_list("pk", flat=True)[:100]
    for pk in list(due):
        if not ScheduledMessage.objects.filter(
            pk=pk, status=ScheduledMessage.Status.PENDING
        ).update(status=ScheduledMessage.Status.SENDING):
            continue
        item = ScheduledMessage.objects.select_related(
            "chat__number", "chat__contact", "author"
        ).get(pk=pk)
        chat = item.chat
        window_open = not chat.has_service_window or (
            chat.window_expires_at is not None and chat.window_expires_at > now
        )
        if not window_open:
            item.status = ScheduledMessage.Status.FAILED
            item.error = _("The 24-hour window had closed: send a template instead.")
            item.save(update_fields=["status", "error"])
            if item.author:
                notify(
                    user=item.author,
                    chat=chat,
                    text=_("Not sent to %(name)s: the 24-hour window had closed.")
                    % {"name": chat.contact.display_name},
                )
            services.publish_chat_event(chat, "chat.changed", change="scheduled")
            continue
        try:
            message = services.message_send(
                chat=chat,
                message_type=Message.Type.TEXT,
                content={"body": item.text, "preview_url": "http" in item.text},
                author_user=item.author,
            )
        except ValidationError as error:
            item.status = ScheduledMessage.Status.FAILED
            item.error = " ".join(error.messages)[:300]
            item.save(update_fields=["status", "error"])
            logger.info("scheduled message %s not sent: %s", item.code, item.error)
            continue
        item.status = ScheduledMessage.Status.SENT
        item.message = message
        item.save(update_fields=["status", "message"])
        sent += 1
    return sent


def tick() -> None:
    """The inbox's periodic work: due messages out, snoozes over."""
    scheduled_send_due()
    snoozes_wake()
