"""Dashboard reads: figures come from ``DailyStat`` and ``AssistantDailyStat`` rows, never from
messages; only the journey funnel counts contacts (their current stage, see ``funnel``)."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from inbox.models import Contact
from reports.models import AssistantDailyStat, AuditEvent, DailyStat
from reports.stats import day_bounds

HISTOGRAM_BUCKETS = (
    (5, _("0–5 s")),
    (30, _("5–30 s")),
    (300, _("30 s–5 min")),
    (1800, _("5–30 min")),
    (3600, _("30 min–1 h")),
    (None, _("> 1 h")),
)
FIELDS = (
    "day", "agent_id", "conversations", "messages_in", "messages_out", "new_contacts",
    "first_response_seconds", "resolution_seconds", "resolved", "resolved_by_ai", "handoffs",
    "opt_outs", "hourly", "ai_cost", "campaign_sent", "campaign_replied", "csat_responses",
    "csat_score_total",
)  # fmt: skip
COUNTERS = (
    "conversations", "messages_in", "messages_out", "new_contacts", "resolved",
    "resolved_by_ai", "handoffs", "opt_outs", "campaign_sent", "campaign_replied",
    "csat_responses", "csat_score_total",
)  # fmt: skip
ASSISTANT_FIELDS = (
    "day", "assistant_id", "conversations", "first_response_seconds", "resolved_by_ai",
    "handoffs", "ai_cost", "csat_responses", "csat_score_total",
)  # fmt: skip
ASSISTANT_COUNTERS = (
    "conversations", "resolved_by_ai", "handoffs", "csat_responses", "csat_score_total",
)  # fmt: skip
FUNNEL_STEPS = (
    (_("Leads"), None),
    (_("Engaged"), (Contact.Stage.REPLIED, Contact.Stage.CUSTOMER)),
    (_("Converted"), (Contact.Stage.CUSTOMER,)),
)


@dataclass(frozen=True)
class Period:
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def previous(self) -> "Period":
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1))

    def dates(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]


def percentile(values: list[int], fraction: float) -> float | None:
    """Nearest-rank-free linear interpolation (same as PostgreSQL ``percentile_cont``)."""
    if not values:
        return None
    position = (len(values) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


@dataclass
class Figures:
    conversations: int = 0
    messages_in: int = 0
    messages_out: int = 0
    new_contacts: int = 0
    resolved: int = 0
    resolved_by_ai: int = 0
    handoffs: int = 0
    opt_outs: int = 0
    campaign_sent: int = 0
    campaign_replied: int = 0
    csat_responses: int = 0
    csat_score_total: int = 0
    ai_cost: Decimal = Decimal(0)
    first_response: list | None = None
    resolution: list | None = None

    def add(self, row: dict) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + row[name])
        self.ai_cost += row["ai_cost"] or 0
        self.first_response.extend(row["first_response_seconds"])
        self.resolution.extend(row["resolution_seconds"])

    def finish(self) -> "Figures":
        self.first_response.sort()
        self.resolution.sort()
        return self

    @property
    def frt_median(self):
        return percentile(self.first_response, 0.5)

    @property
    def frt_p90(self):
        return percentile(self.first_response, 0.9)

    @property
    def resolution_median(self):
        return percentile(self.resolution, 0.5)

    @property
    def ai_share(self):
        return self.resolved_by_ai / self.resolved if self.resolved else None

    @property
    def handoff_rate(self):
        return self.handoffs / self.conversations if self.conversations else None

    @property
    def campaign_conversion(self):
        return self.campaign_replied / self.campaign_sent if self.campaign_sent else None

    @property
    def csat_average(self):
        return self.csat_score_total / self.csat_responses if self.csat_responses else None


@dataclass
class AssistantFigures:
    conversations: int = 0
    resolved_by_ai: int = 0
    handoffs: int = 0
    csat_responses: int = 0
    csat_score_total: int = 0
    ai_cost: Decimal = Decimal(0)
    first_response: list | None = None

    def add(self, row: dict) -> None:
        for name in ASSISTANT_COUNTERS:
            setattr(self, name, getattr(self, name) + row[name])
        self.ai_cost += row["ai_cost"] or 0
        self.first_response.extend(row["first_response_seconds"])

    @property
    def frt_median(self):
        return percentile(sorted(self.first_response), 0.5)

    @property
    def csat_average(self):
        return self.csat_score_total / self.csat_responses if self.csat_responses else None


def _new_figures() -> Figures:
    return Figures(first_response=[], resolution=[])


def stat_rows(organization, period: Period, *, with_previous: bool = True) -> list[dict]:
    first = period.previous.first if with_previous else period.first
    return list(
        DailyStat.objects.filter(
            organization=organization, day__gte=first, day__lte=period.last
        ).values(*FIELDS)
    )


def report(organization, period: Period) -> dict:
    """Everything the dashboard and its exports show for ``period`` (and the period before)."""
    rows = stat_rows(organization, period)
    current, previous = _new_figures(), _new_figures()
    per_day = defaultdict(_new_figures)
    per_agent = defaultdict(_new_figures)
    heat = [[0] * 24 for _weekday in range(7)]
    for row in rows:
        if row["day"] < period.first:
            previous.add(row)
            continue
        current.add(row)
        per_day[row["day"]].add(row)
        per_agent[row["agent_id"]].add(row)
        for hour, count in enumerate(row["hourly"] or []):
            heat[row["day"].weekday()][hour] += count
    current.finish()
    previous.finish()
    days = [(day, per_day[day].finish()) for day in period.dates()]
    users = get_user_model().objects.in_bulk([pk for pk in per_agent if pk is not None])
    agents = sorted(
        (
            (users[pk].display_name if pk in users else None, figures.finish())
            for pk, figures in per_agent.items()
        ),
        key=lambda item: (item[0] is None, -item[1].conversations, item[0] or ""),
    )
    return {
        "current": current,
        "previous": previous,
        "days": days,
        "agents": agents,
        "assistants": assistant_report(organization, period),
        "funnel": funnel(organization, period),
        "heat": heat,
        "histogram": histogram(current.first_response),
    }


def assistant_report(organization, period: Period) -> list[tuple[str, AssistantFigures]]:
    """Each AI assistant's figures over ``period``, busiest first."""
    per_assistant = defaultdict(lambda: AssistantFigures(first_response=[]))
    rows = AssistantDailyStat.objects.filter(
        organization=organization, day__gte=period.first, day__lte=period.last
    ).values(*ASSISTANT_FIELDS)
    for row in rows:
        per_assistant[row["assistant_id"]].add(row)
    if not per_assistant:
        return []
    from assistants.models import Assistant

    names = dict(Assistant.objects.filter(pk__in=per_assistant).values_list("pk", "name"))
    return sorted(
        ((names.get(pk, "?"), figures) for pk, figures in per_assistant.items()),
        key=lambda item: (-item[1].conversations, item[0]),
    )


def funnel(organization, period: Period) -> list[tuple[str, int]]:
    """The customer journey of the contacts created in ``period``: leads → engaged → converted.

    Porfin keeps no history of stage changes, so this counts the contacts *created* in the
    period by their *current* stage (``Contact.stage``): every new contact is a lead, engaged
    means it has replied (stage replied or customer), converted means it is a customer. Each
    step therefore contains the next one; contacts now "lost" count as leads only.
    """
    start, end = day_bounds(organization, period.first)[0], day_bounds(organization, period.last)[1]
    counts = Contact.objects.filter(
        organization=organization, created_at__gte=start, created_at__lt=end
    ).aggregate(
        **{
            f"step{index}": Count("pk", filter=Q(stage__in=stages) if stages else None)
            for index, (_label, stages) in enumerate(FUNNEL_STEPS)
        }
    )
    return [(label, counts[f"step{index}"]) for index, (label, _s) in enumerate(FUNNEL_STEPS)]


def histogram(seconds: list[int]) -> list[tuple[str, int]]:
    counts = [0] * len(HISTOGRAM_BUCKETS)
    for value in seconds:
        for index, (limit, _label) in enumerate(HISTOGRAM_BUCKETS):
            if limit is None or value < limit:
                counts[index] += 1
                break
    return [
        (label, count) for (_limit, label), count in zip(HISTOGRAM_BUCKETS, counts, strict=True)
    ]


def audit_events(organization, *, action="", actor=None, since=None, until=None, query=""):
    """The organization's audit log, plus sign-ins of its current members."""
    members = organization.memberships.values("user_id")
    events = AuditEvent.objects.filter(
        Q(organization=organization) | Q(organization__isnull=True, actor_id__in=members)
    ).select_related("actor")
    if action:
        events = events.filter(action=action)
    if actor is not None:
        events = events.filter(actor=actor)
    if since:
        events = events.filter(created_at__gte=since)
    if until:
        events = events.filter(created_at__lt=until)
    if query:
        events = events.filter(Q(target_label__icontains=query) | Q(actor_label__icontains=query))
    return events
