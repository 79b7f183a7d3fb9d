"""A small clinic agenda: two professionals working Monday to Friday 08:00-12:00 and
13:00-18:00 (lunch break), a 30-minute cleaning with a 10-minute buffer after it."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from appointments.models import AgendaSettings, Professional, Service, WorkingHours


def next_weekday(weekday: int = 0, *, after_days: int = 2, tz="America/Sao_Paulo") -> date:
    """A date at least ``after_days`` ahead that falls on ``weekday`` (0 = Monday)."""
    day = datetime.now(ZoneInfo(tz)).date() + timedelta(days=after_days)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


def at(day: date, hour: int, minute: int = 0, tz="America/Sao_Paulo") -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(tz))


def make_agenda(organization, *, users=(None, None)):
    AgendaSettings.objects.update_or_create(
        organization=organization,
        defaults={"min_notice_minutes": 60, "horizon_days": 60, "slot_step_minutes": 30},
    )
    ana = Professional.objects.create(
        organization=organization, name="Dra. Ana Lima", user=users[0], color="#0ea5e9"
    )
    bruno = Professional.objects.create(
        organization=organization, name="Dr. Bruno Reis", user=users[1], color="#f97316"
    )
    for professional in (ana, bruno):
        for weekday in range(5):
            for start, end in ((time(8), time(12)), (time(13), time(18))):
                WorkingHours.objects.create(
                    organization=organization,
                    professional=professional,
                    weekday=weekday,
                    starts_at=start,
                    ends_at=end,
                )
    cleaning = Service.objects.create(
        organization=organization,
        name="Limpeza",
        category="Prevenção",
        duration_minutes=30,
        buffer_after_minutes=10,
        price="150.00",
    )
    cleaning.professionals.set([ana, bruno])
    implant = Service.objects.create(
        organization=organization, name="Avaliação de implante", duration_minutes=60
    )
    implant.professionals.set([bruno])
    return {"ana": ana, "bruno": bruno, "cleaning": cleaning, "implant": implant}
