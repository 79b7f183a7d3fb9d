"""Free slots: working hours, plus extra hours, minus time off, clinic holidays and the spans
existing appointments block (buffers included), cut to the minimum notice and the horizon.

Weekly hours are wall-clock times in the organization's zone: each day's periods are made
aware for that date (``zoneinfo``), so a slot at 09:00 stays at 09:00 local across a DST
change, and wall times that do not exist that day (spring-forward gap) are skipped. A query
costs four indexed queries whatever the range: hours, exceptions, holidays, appointments.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from accounts.models import Holiday
from appointments.models import (
    AgendaException,
    AgendaSettings,
    Appointment,
    Professional,
    Service,
    WorkingHours,
)


@dataclass(frozen=True)
class Slot:
    professional_id: int
    starts_at: datetime  # UTC
    ends_at: datetime

    def local(self, tz: ZoneInfo) -> datetime:
        return self.starts_at.astimezone(tz)


def settings_for(organization) -> AgendaSettings:
    agenda, _created = AgendaSettings.objects.get_or_create(organization=organization)
    return agenda


def zone(organization) -> ZoneInfo:
    return ZoneInfo(organization.time_zone or "UTC")


def _aware(day: date, moment, tz: ZoneInfo) -> datetime | None:
    """``day`` at wall time ``moment`` in ``tz`` as UTC; None when that wall time does not
    exist (the hour skipped by a DST change)."""
    local = datetime.combine(day, moment, tzinfo=tz)
    utc = local.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return utc


def _subtract(periods: list[tuple], cut: tuple) -> list[tuple]:
    out = []
    for start, end in periods:
        if cut[1] <= start or cut[0] >= end:
            out.append((start, end))
            continue
        if start < cut[0]:
            out.append((start, cut[0]))
        if cut[1] < end:
            out.append((cut[1], end))
    return out


def working_periods(
    *, organization, professional_ids: list[int], start: date, end: date
) -> dict[int, list[tuple[datetime, datetime]]]:
    """{professional id: [(from, until) UTC]} of the days ``start``..``end`` (local dates),
    after extra hours, time off and clinic holidays."""
    tz = zone(organization)
    weekly: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for hours in WorkingHours.objects.filter(professional_id__in=professional_ids).only(
        "professional_id", "weekday", "starts_at", "ends_at"
    ):
        weekly[hours.professional_id][hours.weekday].append((hours.starts_at, hours.ends_at))
    holidays = set(
        Holiday.objects.filter(
            organization=organization, date__gte=start, date__lte=end
        ).values_list("date", flat=True)
    )
    range_from = datetime.combine(start, datetime.min.time(), tzinfo=tz)
    range_until = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    exceptions = list(
        AgendaException.objects.filter(
            organization=organization, starts_at__lt=range_until, ends_at__gt=range_from
        ).values_list("professional_id", "kind", "starts_at", "ends_at")
    )
    result: dict[int, list] = {}
    for professional_id in professional_ids:
        periods = []
        day = start
        while day <= end:
            if day not in holidays:
                for opens, closes in weekly[professional_id].get(day.weekday(), []):
                    begin, finish = _aware(day, opens, tz), _aware(day, closes, tz)
                    if begin and finish and begin < finish:
                        periods.append((begin, finish))
            day += timedelta(days=1)
        for owner, kind, exc_from, exc_until in exceptions:
            if owner not in (None, professional_id):
                continue
            if kind == AgendaException.Kind.EXTRA and owner is not None:
                periods.append((exc_from, exc_until))
        periods = _merge(periods)
        for owner, kind, exc_from, exc_until in exceptions:
            if owner in (None, professional_id) and kind == AgendaException.Kind.OFF:
                periods = _subtract(periods, (exc_from, exc_until))
        result[professional_id] = periods
    return result


def _merge(periods: list[tuple]) -> list[tuple]:
    merged: list[list] = []
    for start, end in sorted(periods):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def professionals_for(service: Service, professional: Professional | None = None) -> list[int]:
    ids = list(
        service.professionals.filter(active=True).order_by("name").values_list("pk", flat=True)
    )
    if professional is not None:
        return [professional.pk] if professional.pk in ids else []
    return ids


def free_slots(
    *,
    service: Service,
    start: date,
    end: date,
    professional: Professional | None = None,
    now: datetime | None = None,
    enforce_notice: bool = True,
    exclude_appointment_id: int | None = None,
) -> list[Slot]:
    """Every free start for ``service`` between the local dates ``start`` and ``end``, by
    ``professional`` or any who performs it, sorted by time then professional."""
    organization = service.organization
    agenda = settings_for(organization)
    tz = zone(organization)
    now = now or timezone.now()
    earliest = now + timedelta(minutes=agenda.min_notice_minutes) if enforce_notice else now
    latest = now + timedelta(days=agenda.horizon_days)
    today = now.astimezone(tz).date()
    start = max(start, today)
    end = min(end, latest.astimezone(tz).date())
    ids = professionals_for(service, professional)
    if not ids or start > end:
        return []
    periods = working_periods(organization=organization, professional_ids=ids, start=start, end=end)
    duration = timedelta(minutes=service.duration_minutes)
    before = timedelta(minutes=service.buffer_before_minutes)
    after = timedelta(minutes=service.buffer_after_minutes)
    step = timedelta(minutes=max(agenda.slot_step_minutes, 5))
    window_from = min((p[0] for ps in periods.values() for p in ps), default=None)
    if window_from is None:
        return []
    window_until = max(p[1] for ps in periods.values() for p in ps)
    busy_rows = Appointment.objects.filter(
        professional_id__in=ids,
        status__in=Appointment.ACTIVE,
        blocked_from__lt=window_until + before,
        blocked_until__gt=window_from - after,
    )
    if exclude_appointment_id:
        busy_rows = busy_rows.exclude(pk=exclude_appointment_id)
    busy: dict[int, list] = defaultdict(list)
    for pid, b_from, b_until in busy_rows.values_list(
        "professional_id", "blocked_from", "blocked_until"
    ).order_by("blocked_from"):
        busy[pid].append((b_from, b_until))
    slots = []
    for pid in ids:
        taken = busy[pid]
        for p_from, p_until in periods[pid]:
            local = p_from.astimezone(tz)
            while True:
                begin = local.astimezone(UTC)
                finish = begin + duration
                if finish > p_until:
                    break
                exists = begin.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None)
                if exists and earliest <= begin <= latest:
                    block_from, block_until = begin - before, finish + after
                    if not any(b < block_until and e > block_from for b, e in taken):
                        slots.append(Slot(pid, begin, finish))
                local = (local.replace(tzinfo=None) + step).replace(tzinfo=tz)
    slots.sort(key=lambda s: (s.starts_at, s.professional_id))
    return slots


def slot_is_free(
    *,
    service: Service,
    professional: Professional,
    starts_at: datetime,
    now: datetime | None = None,
    enforce_notice: bool = True,
    exclude_appointment_id: int | None = None,
) -> bool:
    tz = zone(service.organization)
    day = starts_at.astimezone(tz).date()
    return any(
        slot.starts_at == starts_at
        for slot in free_slots(
            service=service,
            professional=professional,
            start=day,
            end=day,
            now=now,
            enforce_notice=enforce_notice,
            exclude_appointment_id=exclude_appointment_id,
        )
    )
