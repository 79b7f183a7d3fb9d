"""Daily aggregation: turn one organization's local day of messages into ``DailyStat`` rows.

Definitions (what the dashboard shows):

- a *conversation* is a chat with at least one customer message on that local day; its start
  is the first such message;
- *first response* is the time from that start to the first reply by a team member or an
  assistant (campaigns and automations do not count), looked for up to 24 h later; the
  conversation belongs to the team member who replied first (AI-answered and unanswered
  conversations belong to no agent);
- a *resolution* is a chat marked resolved that day; its time runs from the first customer
  message after the chat's previous resolution (looking back at most 7 days); it was
  *resolved by AI alone* when an assistant replied, no team member did, and no handoff
  happened in between; it belongs to the team member who resolved it;
- a *handoff* is the AI being turned off by Porfin itself (an assistant rule or tool);
- *CSAT* answers count on the local day they arrive, for the team member who resolved the chat
  (the organization row when nobody did) and, when the AI resolved it alone, for its assistant;
  a customer's tap on a survey button is not a new conversation.

Per assistant (``AssistantDailyStat``): the conversations whose first response came from it,
those it resolved alone (the assistant of the last AI reply before the resolution), the
handoffs it made (the handoff entry is credited to the assistant whose reply is the latest one
up to a minute after it: the handoff message follows the entry), its AI cost and its CSAT.
"""

import zoneinfo
from collections import defaultdict
from datetime import date, datetime, time, timedelta

from django.apps import apps
from django.db import transaction
from django.db.models import Q, Sum

from accounts.models import Organization
from inbox.models import Contact, Message
from reports.models import AssistantDailyStat, CsatResponse, DailyStat

REPLY_AUTHORS = (Message.Author.USER, Message.Author.ASSISTANT)
REPLY_HORIZON = timedelta(hours=24)
RESOLUTION_LOOKBACK = timedelta(days=7)
RESOLVED = Q(type=Message.Type.ACTIVITY, content__activity__kind="status") & Q(
    content__activity__status="resolved"
)
HANDOFF = Q(
    type=Message.Type.ACTIVITY,
    author_type=Message.Author.SYSTEM,
    content__activity__kind="ai",
    content__activity__enabled=False,
)
CSAT_PREFIX = "csat:"
# A customer's tap on a CSAT survey button (see reports.csat).
CSAT_TAP = Q(
    direction=Message.Direction.INBOUND,
    type=Message.Type.INTERACTIVE,
    content__interactive__button_reply__id__startswith=CSAT_PREFIX,
)
HANDOFF_GRACE = timedelta(minutes=1)


def assistant_refs(organization: Organization) -> dict[str, int]:
    """``Message.author_ref`` of AI replies (a version's or an assistant's code) → assistant id."""
    if not apps.is_installed("assistants"):
        return {}
    assistant = apps.get_model("assistants", "Assistant")
    version = apps.get_model("assistants", "AssistantVersion")
    refs = {
        str(code): assistant_id
        for code, assistant_id in version.objects.filter(organization=organization).values_list(
            "code", "assistant_id"
        )
    }
    for pk, code in assistant.objects.filter(organization=organization).values_list("pk", "code"):
        refs[str(code)] = pk
    return refs


def day_bounds(organization: Organization, day: date) -> tuple[datetime, datetime]:
    tz = zoneinfo.ZoneInfo(organization.time_zone)
    start = datetime.combine(day, time.min, tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)


def local_today(organization: Organization) -> date:
    return datetime.now(zoneinfo.ZoneInfo(organization.time_zone)).date()


class _Row:
    def __init__(self):
        self.conversations = 0
        self.first_response_seconds: list[int] = []
        self.resolution_seconds: list[int] = []
        self.resolved = 0
        self.resolved_by_ai = 0
        self.handoffs = 0
        self.csat_responses = 0
        self.csat_score_total = 0
        self.ai_cost = 0


def _conversations(organization, start, end, rows, hourly, tz, ai_rows, refs) -> tuple[int, int]:
    """Walk the day's customer and reply messages once; returns (messages in, messages out)."""
    scope = Message.objects.filter(
        organization=organization,
        timestamp__gte=start,
        timestamp__lt=end + REPLY_HORIZON,
        direction__in=(Message.Direction.INBOUND, Message.Direction.OUTBOUND),
    )
    taps = set(scope.filter(CSAT_TAP).values_list("pk", flat=True))
    stream = scope.order_by("chat_id", "timestamp", "id").values_list(
        "pk", "chat_id", "timestamp", "direction", "author_type", "author_user_id", "author_ref"
    )
    counts = {Message.Direction.INBOUND: 0, Message.Direction.OUTBOUND: 0}
    chat_id = first_in = None
    answered = True
    for pk, row_chat, at, direction, author_type, author_user, ref in stream.iterator(
        chunk_size=5000
    ):
        if at < end:
            counts[direction] += 1
        if pk in taps:
            continue
        if row_chat != chat_id:
            if not answered:
                rows[None].conversations += 1
            chat_id, first_in, answered = row_chat, None, True
        if first_in is None:
            if direction == Message.Direction.INBOUND and at < end:
                first_in, answered = at, False
                hourly[at.astimezone(tz).hour] += 1
            continue
        if (
            not answered
            and direction == Message.Direction.OUTBOUND
            and author_type in REPLY_AUTHORS
            and at - first_in <= REPLY_HORIZON
        ):
            answered = True
            seconds = round((at - first_in).total_seconds())
            row = rows[author_user if author_type == Message.Author.USER else None]
            row.conversations += 1
            row.first_response_seconds.append(seconds)
            if author_type == Message.Author.ASSISTANT and ref in refs:
                ai_rows[refs[ref]].conversations += 1
                ai_rows[refs[ref]].first_response_seconds.append(seconds)
    if not answered:
        rows[None].conversations += 1
    return counts[Message.Direction.INBOUND], counts[Message.Direction.OUTBOUND]


def _by_chat(queryset, *fields) -> dict[int, list]:
    grouped = defaultdict(list)
    for chat, *rest in queryset.order_by("timestamp", "id").values_list("chat_id", *fields):
        grouped[chat].append(rest[0] if len(rest) == 1 else tuple(rest))
    return grouped


def _resolutions(organization, start, end, rows, ai_rows, refs) -> None:
    resolutions = list(
        Message.objects.filter(
            RESOLVED, organization=organization, timestamp__gte=start, timestamp__lt=end
        )
        .order_by("timestamp", "id")
        .values_list("chat_id", "timestamp", "author_user_id")
    )
    if not resolutions:
        return
    scope = Message.objects.filter(
        organization=organization,
        chat_id__in={chat for chat, _at, _user in resolutions},
        timestamp__gte=start - RESOLUTION_LOOKBACK,
        timestamp__lt=end,
    )
    previous = _by_chat(scope.filter(RESOLVED), "timestamp")
    handoffs = _by_chat(scope.filter(HANDOFF), "timestamp")
    messages = _by_chat(
        scope.filter(
            Q(direction=Message.Direction.INBOUND)
            | Q(direction=Message.Direction.OUTBOUND, author_type__in=REPLY_AUTHORS)
        ),
        "timestamp",
        "direction",
        "author_type",
        "author_ref",
    )
    for chat, resolved_at, resolver in resolutions:
        earlier = [at for at in previous[chat] if at < resolved_at]
        since = earlier[-1] if earlier else start - RESOLUTION_LOOKBACK
        window = [m for m in messages[chat] if since < m[0] < resolved_at]
        started = next((at for at, direction, _a, _r in window if direction == "in"), None)
        authors = {author for _at, direction, author, _r in window if direction == "out"}
        handed_off = any(since < at < resolved_at for at in handoffs[chat])
        row = rows[resolver]
        row.resolved += 1
        if started is not None:
            row.resolution_seconds.append(round((resolved_at - started).total_seconds()))
        if authors == {Message.Author.ASSISTANT} and not handed_off:
            row.resolved_by_ai += 1
            last_ref = [ref for _at, direction, _a, ref in window if direction == "out"][-1]
            if last_ref in refs:
                ai_rows[refs[last_ref]].resolved_by_ai += 1


def _assistant_handoffs(organization, start, end, ai_rows, refs) -> None:
    handoffs = list(
        Message.objects.filter(
            HANDOFF, organization=organization, timestamp__gte=start, timestamp__lt=end
        ).values_list("chat_id", "timestamp")
    )
    if not handoffs or not refs:
        return
    replies = _by_chat(
        Message.objects.filter(
            organization=organization,
            chat_id__in={chat for chat, _at in handoffs},
            direction=Message.Direction.OUTBOUND,
            author_type=Message.Author.ASSISTANT,
            timestamp__gte=start - REPLY_HORIZON,
            timestamp__lt=end + HANDOFF_GRACE,
        ),
        "timestamp",
        "author_ref",
    )
    for chat, handed_off_at in handoffs:
        refs_before = [ref for at, ref in replies[chat] if at <= handed_off_at + HANDOFF_GRACE]
        if refs_before and refs_before[-1] in refs:
            ai_rows[refs[refs_before[-1]]].handoffs += 1


def _csat_and_costs(organization, start, end, rows, ai_rows) -> None:
    answers = CsatResponse.objects.filter(
        organization=organization, responded_at__gte=start, responded_at__lt=end
    ).values_list("agent_id", "assistant_id", "score")
    for agent, assistant, score in answers:
        for row in (rows[agent], ai_rows[assistant] if assistant else None):
            if row is not None:
                row.csat_responses += 1
                row.csat_score_total += score
    if apps.is_installed("assistants"):
        usage = apps.get_model("assistants", "UsageRecord")
        costs = (
            usage.objects.filter(
                organization=organization,
                assistant__isnull=False,
                created_at__gte=start,
                created_at__lt=end,
            )
            .values("assistant_id")
            .annotate(total=Sum("cost"))
            .values_list("assistant_id", "total")
        )
        for assistant, total in costs:
            ai_rows[assistant].ai_cost = total or 0


def _organization_counters(organization, start, end) -> dict:
    in_window = {"organization": organization, "created_at__gte": start, "created_at__lt": end}
    counters = {
        "new_contacts": Contact.objects.filter(**in_window).count(),
        "handoffs": Message.objects.filter(
            HANDOFF, organization=organization, timestamp__gte=start, timestamp__lt=end
        ).count(),
    }
    if apps.is_installed("campaigns"):
        consent = apps.get_model("campaigns", "ConsentEvent")
        counters["opt_outs"] = consent.objects.filter(opted_in=False, **in_window).count()
        recipient = apps.get_model("campaigns", "CampaignRecipient")
        scoped = recipient.objects.filter(organization=organization)
        counters["campaign_sent"] = scoped.filter(sent_at__gte=start, sent_at__lt=end).count()
        counters["campaign_replied"] = scoped.filter(
            replied_at__gte=start, replied_at__lt=end
        ).count()
    else:
        counters["opt_outs"] = Contact.objects.filter(
            organization=organization,
            opt_in=Contact.OptIn.OPTED_OUT,
            opt_in_at__gte=start,
            opt_in_at__lt=end,
        ).count()
    if apps.is_installed("assistants"):
        usage = apps.get_model("assistants", "UsageRecord")
        cost = usage.objects.filter(**in_window).aggregate(total=Sum("cost"))["total"]
        counters["ai_cost"] = cost or 0
    return counters


def day_rebuild(organization: Organization, day: date) -> list[DailyStat]:
    """Recompute one local day's rows of ``organization`` (idempotent: replaces them)."""
    start, end = day_bounds(organization, day)
    tz = zoneinfo.ZoneInfo(organization.time_zone)
    rows: dict[int | None, _Row] = defaultdict(_Row)
    rows[None]  # the organization row always exists, even on a quiet day
    ai_rows: dict[int, _Row] = defaultdict(_Row)
    refs = assistant_refs(organization)
    hourly = [0] * 24
    messages_in, messages_out = _conversations(
        organization, start, end, rows, hourly, tz, ai_rows, refs
    )
    _resolutions(organization, start, end, rows, ai_rows, refs)
    _assistant_handoffs(organization, start, end, ai_rows, refs)
    _csat_and_costs(organization, start, end, rows, ai_rows)
    counters = _organization_counters(organization, start, end)
    stats = []
    for agent, row in rows.items():
        stat = DailyStat(
            organization=organization,
            day=day,
            agent_id=agent,
            conversations=row.conversations,
            first_response_seconds=sorted(row.first_response_seconds),
            resolution_seconds=sorted(row.resolution_seconds),
            resolved=row.resolved,
            resolved_by_ai=row.resolved_by_ai,
            csat_responses=row.csat_responses,
            csat_score_total=row.csat_score_total,
        )
        if agent is None:
            stat.messages_in, stat.messages_out, stat.hourly = messages_in, messages_out, hourly
            for name, value in counters.items():
                setattr(stat, name, value)
        stats.append(stat)
    assistant_stats = [
        AssistantDailyStat(
            organization=organization,
            day=day,
            assistant_id=assistant,
            conversations=row.conversations,
            first_response_seconds=sorted(row.first_response_seconds),
            resolved_by_ai=row.resolved_by_ai,
            handoffs=row.handoffs,
            ai_cost=row.ai_cost,
            csat_responses=row.csat_responses,
            csat_score_total=row.csat_score_total,
        )
        for assistant, row in ai_rows.items()
    ]
    with transaction.atomic():
        DailyStat.objects.filter(organization=organization, day=day).delete()
        DailyStat.objects.bulk_create(stats)
        AssistantDailyStat.objects.filter(organization=organization, day=day).delete()
        AssistantDailyStat.objects.bulk_create(assistant_stats)
    return stats


def retention_floor(organization: Organization) -> date | None:
    """The oldest local day whose messages are all still held (older days keep their stats)."""
    policy = getattr(organization, "retention_policy", None)
    if policy is None or not policy.message_days:
        return None
    return local_today(organization) - timedelta(days=policy.message_days - 1)


def stats_rebuild(organization: Organization, *, first: date, last: date) -> int:
    floor = retention_floor(organization)
    if floor is not None:
        first = max(first, floor)
    day, count = first, 0
    while day <= last:
        day_rebuild(organization, day)
        day += timedelta(days=1)
        count += 1
    return count
