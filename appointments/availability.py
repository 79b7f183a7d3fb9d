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

from django.db.models import Q
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
from kernel.memo import ProcessMemo


@dataclass(frozen=True)
class Slot:
    professional_id: int
    starts_at: datetime  # UTC
    ends_at: datetime

    def local(self, tz: ZoneInfo) -> datetime:
        return self.starts_at.astimezone(tz)


_settings = ProcessMemo()
_holidays = ProcessMemo()


def settings_for(organization) -> AgendaSettings:
    """The organization's agenda rules (memoized per process; see ``kernel.memo``)."""

    def load():
        agenda, _created = AgendaSettings.objects.get_or_create(organization=organization)
        return agenda

    return _settings.get(organization.pk, load)


def holidays_of(organization_id: int) -> frozenset:
    return _holidays.get(
        organization_id,
        lambda: frozenset(
            Holiday.objects.filter(organization_id=organization_id).values_list("date", flat=True)
        ),
    )


def rules_changed(organization_id: int) -> None:
    """Agenda settings or holidays changed: forget the memos (at once here, soon elsewhere)."""
    _settings.forget(organization_id)
    _holidays.forget(organization_id)


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
    *, organization, professional_ids: list[int], start: date, end: date, weekly=None
) -> dict[int, list[tuple[datetime, datetime]]]:
    """{professional id: [(from, until) UTC]} of the days ``start``..``end`` (local dates),
    after extra hours, time off and clinic holidays."""
    tz = zone(organization)
    if weekly is None:
        weekly = weekly_hours(WorkingHours.objects.filter(professional_id__in=professional_ids))
    holidays = holidays_of(organization.pk)
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


def weekly_hours(rows) -> dict[int, dict[int, list]]:
    weekly: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for professional_id, weekday, opens, closes in rows.values_list(
        "professional_id", "weekday", "starts_at", "ends_at"
    ):
        weekly[professional_id][weekday].append((opens, closes))
    return weekly


_service_hours = ProcessMemo()


def service_hours(service: Service, professional: Professional | None = None) -> dict:
    """Who performs ``service`` (active) and their weekly hours, in one query, memoized per
    process like the other agenda rules (a change is seen at once here, within 2 s elsewhere)."""

    def load():
        rows = WorkingHours.objects.filter(
            professional__services=service, professional__active=True
        )
        return weekly_hours(rows)

    weekly = _service_hours.get((service.organization_id, service.pk), load)
    if professional is None:
        return weekly
    return {professional.pk: weekly[professional.pk]} if professional.pk in weekly else {}


_rooms = ProcessMemo()


def rooms_of(organization_id: int) -> dict[int, int | None]:
    """{professional id: room id} of the organization's professionals (memoized)."""
    return _rooms.get(
        organization_id,
        lambda: dict(
            Professional.objects.filter(organization_id=organization_id).values_list(
                "pk", "room_id"
            )
        ),
    )


def hours_changed(organization_id: int) -> None:
    """Working hours, a professional or a service changed: forget that organization's hours."""
    for key in [k for k in _service_hours._values if k[0] == organization_id]:
        _service_hours.forget(key)
    _rooms.forget(organization_id)


def _merge(periods: list[tuple]) -> list[tuple]:
    merged: list[list] = []
    for start, end in sorted(periods):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


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
    weekly = service_hours(service, professional)
    ids = sorted(weekly)
    if not ids or start > end:
        return []
    periods = working_periods(
        organization=organization, professional_ids=ids, start=start, end=end, weekly=weekly
    )
    duration = timedelta(minutes=service.duration_minutes)
    before = timedelta(minutes=service.buffer_before_minutes)
    after = timedelta(minutes=service.buffer_after_minutes)
    step = timedelta(minutes=max(agenda.slot_step_minutes, 5))
    window_from = min((p[0] for ps in periods.values() for p in ps), default=None)
    if window_from is None:
        return []
    window_until = max(p[1] for ps in periods.values() for p in ps)
    rooms = {pid: room for pid, room in rooms_of(organization.pk).items() if pid in weekly and room}
    who = Q(professional_id__in=ids)
    if rooms:
        who |= Q(room_id__in=set(rooms.values()))
    busy_rows = Appointment.objects.filter(
        who,
        status__in=Appointment.ACTIVE,
        blocked_from__lt=window_until + before,
        blocked_until__gt=window_from - after,
    )
    if exclude_appointment_id:
        busy_rows = busy_rows.exclude(pk=exclude_appointment_id)
    busy: dict[int, list] = defaultdict(list)
    in_room: dict[int, list] = defaultdict(list)
    for pid, room_id, b_from, b_until in busy_rows.values_list(
        "professional_id", "room_id", "blocked_from", "blocked_until"
    ).order_by("blocked_from"):
        busy[pid].append((b_from, b_until))
        if room_id:
            in_room[room_id].append((b_from, b_until))
    for pid, room_id in rooms.items():  # a shared room's other bookings block this one too
        busy[pid] = _merge(busy[pid] + in_room[room_id])
    slots = []
    for pid in ids:
        taken = busy[pid]  # sorted, never overlapping (one professional)
        cursor = 0
        for p_from, p_until in periods[pid]:
            for begin in _starts(p_from, p_until - duration, step, tz):
                if not earliest <= begin <= latest:
                    continue
                block_from, block_until = begin - before, begin + duration + after
                while cursor < len(taken) and taken[cursor][1] <= block_from:
                    cursor += 1
                if cursor < len(taken) and taken[cursor][0] < block_until:
                    continue
                slots.append(Slot(pid, begin, begin + duration))
    slots.sort(key=lambda s: (s.starts_at, s.professional_id))
    return slots


def _starts(first: datetime, last: datetime, step: timedelta, tz: ZoneInfo):
    """Grid starts from ``first`` to ``last`` (UTC) every ``step`` of local wall-clock time.
    Without a DST change inside the period that is plain UTC arithmetic (the common case,
    and the hot path); across one, wall times are stepped and the nonexistent ones skipped."""
    if first > last:
        return
    if first.astimezone(tz).utcoffset() == last.astimezone(tz).utcoffset():
        begin = first
        while begin <= last:
            yield begin
            begin += step
        return
    local = first.astimezone(tz).replace(tzinfo=None)
    while True:
        begin = local.replace(tzinfo=tz).astimezone(UTC)
        if begin > last:
            return
        if begin.astimezone(tz).replace(tzinfo=None) == local:  # skips the spring-forward gap
            yield begin
        local += step


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
