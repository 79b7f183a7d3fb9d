"""Time math for campaigns: runs in the organization's (or each contact's) time zone, recurrence
and quiet hours. Pure functions on aware datetimes, easy to test across zones."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

# The run of a "contact's time zone" campaign for local date D starts at 00:00 of D in the
# earliest zone on Earth, so every contact's D-at-send_time is still ahead when it is expanded.
EARLIEST_ZONE = ZoneInfo("Etc/GMT-14")


def zone(name: str, fallback: str = "UTC") -> ZoneInfo:
    for candidate in (name, fallback, "UTC"):
        try:
            return ZoneInfo(candidate) if candidate else ZoneInfo(fallback)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def local_to_aware(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at).replace(tzinfo=tz)


def _matches(day: date, weekdays: list[int] | None) -> bool:
    return not weekdays or day.weekday() in weekdays


def next_occurrence(
    *,
    after: datetime,
    send_time: time,
    weekdays: list[int] | None,
    org_tz: ZoneInfo,
    per_contact: bool,
) -> tuple[datetime, date]:
    """The next run strictly after ``after``: (when to start the run, the run's local date).

    Organization mode: ``send_time`` on the next matching date in the organization's zone.
    Contact mode: the run for date D starts at D 00:00 in the earliest zone; each recipient is
    then due at ``send_time`` on D in their own zone (``recipient_due``).
    """
    tz = EARLIEST_ZONE if per_contact else org_tz
    at = time(0, 0) if per_contact else send_time
    day = after.astimezone(tz).date()
    for _ in range(15):
        if _matches(day, weekdays):
            start = local_to_aware(day, at, tz)
            if start > after:
                return start, day
        day += timedelta(days=1)
    raise ValueError("No weekday selected")


def recipient_due(run_date: date, send_time: time, contact_tz: ZoneInfo) -> datetime:
    return local_to_aware(run_date, send_time, contact_tz)


def in_quiet_hours(moment: datetime, start: time | None, end: time | None, tz: ZoneInfo) -> bool:
    """Quiet hours [start, end) in ``tz``; a window like 21:00–08:00 spans midnight."""
    if start is None or end is None or start == end:
        return False
    local = moment.astimezone(tz).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_hours_end(moment: datetime, start: time, end: time, tz: ZoneInfo) -> datetime:
    """When the quiet hours containing ``moment`` end (as an aware datetime)."""
    local = moment.astimezone(tz)
    candidate = local_to_aware(local.date(), end, tz)
    if candidate <= moment:
        candidate = local_to_aware(local.date() + timedelta(days=1), end, tz)
    return candidate


def now() -> datetime:
    return timezone.now()
