"""Reads for the calendar pages: the visible range, its appointments and their positions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Max, Min

from appointments import availability
from appointments.models import Appointment, WorkingHours

VIEWS = ("day", "week", "month")


@dataclass
class Block:
    appointment: Appointment
    top: float  # % of the column
    height: float
    local_start: datetime
    local_end: datetime


@dataclass
class Column:
    title: str
    day: date
    professional: object | None = None
    blocks: list[Block] = field(default_factory=list)


def visible_range(view: str, day: date) -> tuple[date, date]:
    if view == "day":
        return day, day
    if view == "month":
        first = day.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        return first - timedelta(days=first.weekday()), last + timedelta(days=6 - last.weekday())
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def appointments_between(organization, professionals, start: date, end: date):
    tz = availability.zone(organization)
    since = datetime.combine(start, time.min, tzinfo=tz)
    until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz)
    return (
        Appointment.objects.filter(
            organization=organization,
            professional__in=professionals,
            starts_at__gte=since,
            starts_at__lt=until,
        )
        .select_related("service", "professional", "contact")
        .order_by("starts_at")
    )


def hours_shown(professionals) -> tuple[int, int]:
    """The hours the grid spans: the professionals' working hours, at least 08:00-18:00."""
    bounds = WorkingHours.objects.filter(professional__in=professionals).aggregate(
        first=Min("starts_at"), last=Max("ends_at")
    )
    first = min(8, bounds["first"].hour) if bounds["first"] else 8
    last = bounds["last"]
    last = max(18, last.hour + (1 if last.minute else 0)) if last else 18
    return first, min(last, 24)


def columns_for(
    *, organization, view: str, day: date, professionals, by_professional: bool
) -> tuple[list[Column], tuple[int, int]]:
    """Day/week columns with each appointment's position (local time, DST-correct)."""
    tz = availability.zone(organization)
    start, end = visible_range(view, day)
    first, last = hours_shown(professionals)
    span = (last - first) * 60
    columns: list[Column] = []
    if by_professional:
        columns = [Column(title=p.name, day=day, professional=p) for p in professionals]
    else:
        columns = [
            Column(title="", day=start + timedelta(days=i)) for i in range((end - start).days + 1)
        ]
    index = {(c.day, c.professional.pk if c.professional else None): c for c in columns}
    for appointment in appointments_between(organization, professionals, start, end):
        local_start = appointment.starts_at.astimezone(tz)
        local_end = appointment.ends_at.astimezone(tz)
        key = (local_start.date(), appointment.professional_id if by_professional else None)
        column = index.get(key)
        if column is None:
            continue
        minutes = (local_start.hour - first) * 60 + local_start.minute
        length = max((local_end - local_start).total_seconds() / 60, 15)
        column.blocks.append(
            Block(
                appointment=appointment,
                top=round(max(minutes, 0) / span * 100, 3),
                height=round(min(length, span - max(minutes, 0)) / span * 100, 3),
                local_start=local_start,
                local_end=local_end,
            )
        )
    return columns, (first, last)


def month_weeks(*, organization, day: date, professionals) -> list[list[dict]]:
    tz = availability.zone(organization)
    start, end = visible_range("month", day)
    by_day: dict[date, list] = {}
    for appointment in appointments_between(organization, professionals, start, end):
        by_day.setdefault(appointment.starts_at.astimezone(tz).date(), []).append(appointment)
    weeks, current = [], start
    while current <= end:
        weeks.append(
            [
                {
                    "day": current + timedelta(days=i),
                    "appointments": by_day.get(current + timedelta(days=i), []),
                    "in_month": (current + timedelta(days=i)).month == day.month,
                }
                for i in range(7)
            ]
        )
        current += timedelta(days=7)
    return weeks


# --- Reports ----------------------------------------------------------------------------------


@dataclass
class AgendaReport:
    by_channel: list[tuple[str, int]]
    total: int
    confirmation_rate: float | None  # of the appointments held (past or future, not cancelled)
    no_show_rate: float | None  # of the past appointments not cancelled
    cancelled: int
    occupancy: list[dict]


def agenda_report(*, organization, professionals, start: date, end: date) -> AgendaReport:
    """Bookings by channel, confirmation and no-show rates, and each professional's occupancy
    (booked minutes over working minutes) for the appointments starting ``start``..``end``."""
    from django.db.models import Count, Q
    from django.utils import timezone

    rows = appointments_between(organization, professionals, start, end)
    counts = dict(rows.values_list("channel").annotate(n=Count("id")).order_by())
    by_channel = [(label, counts.get(value, 0)) for value, label in Appointment.Channel.choices]
    now = timezone.now()
    figures = rows.aggregate(
        total=Count("id"),
        cancelled=Count("id", filter=Q(status=Appointment.Status.CANCELLED)),
        held=Count("id", filter=~Q(status=Appointment.Status.CANCELLED)),
        confirmed=Count("id", filter=Q(confirmed_at__isnull=False) & ~Q(status="cancelled")),
        past=Count("id", filter=Q(starts_at__lt=now) & ~Q(status=Appointment.Status.CANCELLED)),
        no_show=Count("id", filter=Q(status=Appointment.Status.NO_SHOW)),
    )
    working = availability.working_periods(
        organization=organization,
        professional_ids=[p.pk for p in professionals],
        start=start,
        end=end,
    )
    booked: dict[int, float] = {}
    for pid, starts_at, ends_at in rows.exclude(status=Appointment.Status.CANCELLED).values_list(
        "professional_id", "starts_at", "ends_at"
    ):
        booked[pid] = booked.get(pid, 0) + (ends_at - starts_at).total_seconds() / 60
    occupancy = []
    for professional in professionals:
        available = sum((b - a).total_seconds() / 60 for a, b in working.get(professional.pk, []))
        used = booked.get(professional.pk, 0)
        occupancy.append(
            {
                "professional": professional,
                "booked_hours": round(used / 60, 1),
                "working_hours": round(available / 60, 1),
                "rate": round(100 * used / available) if available else None,
            }
        )

    def rate(part, whole):
        return round(100 * part / whole, 1) if whole else None

    return AgendaReport(
        by_channel=by_channel,
        total=figures["total"],
        confirmation_rate=rate(figures["confirmed"], figures["held"]),
        no_show_rate=rate(figures["no_show"], figures["past"]),
        cancelled=figures["cancelled"],
        occupancy=occupancy,
    )
