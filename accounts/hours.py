"""When an organization is open: its weekly opening hours and holidays, in its time zone.

One answer for every app that asks (flows' "business hours" condition, the booking agenda,
handoff messages); organizations that never set hours are treated as always open, so nothing
stops working before an owner fills them in.
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from accounts.models import Holiday, OpeningHours, Organization


def zone(organization: Organization) -> ZoneInfo:
    return ZoneInfo(organization.time_zone or "UTC")


def weekly_hours(organization: Organization) -> dict[int, list[tuple]]:
    """{weekday: [(opens_at, closes_at), ...]} (empty when the organization set no hours)."""
    hours: dict[int, list[tuple]] = {}
    for period in OpeningHours.objects.filter(organization=organization):
        hours.setdefault(period.weekday, []).append((period.opens_at, period.closes_at))
    return hours


def is_open(organization: Organization, when: datetime | None = None) -> bool:
    """Open at ``when`` (now by default)? Always open when no hours were ever set."""
    hours = weekly_hours(organization)
    if not hours:
        return True
    local = (when or timezone.now()).astimezone(zone(organization))
    if Holiday.objects.filter(organization=organization, date=local.date()).exists():
        return False
    moment = local.time()
    return any(opens <= moment < closes for opens, closes in hours.get(local.weekday(), []))


def next_opening(organization: Organization, when: datetime | None = None) -> datetime | None:
    """The next moment the organization opens after ``when`` (None: always open, or no hours
    in the next 60 days)."""
    hours = weekly_hours(organization)
    if not hours:
        return None
    tz = zone(organization)
    local = (when or timezone.now()).astimezone(tz)
    holidays = set(
        Holiday.objects.filter(
            organization=organization,
            date__gte=local.date(),
            date__lte=local.date() + timedelta(60),
        ).values_list("date", flat=True)
    )
    for offset in range(61):
        day = local.date() + timedelta(days=offset)
        if day in holidays:
            continue
        for opens, _closes in sorted(hours.get(day.weekday(), [])):
            start = datetime.combine(day, opens, tzinfo=tz)
            if start > local:
                return start
    return None
