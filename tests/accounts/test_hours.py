"""Opening hours and holidays, in the organization's time zone (``accounts.hours``)."""

from datetime import UTC, date, datetime, time

from accounts import hours
from accounts.models import Holiday, OpeningHours
from tests.base import BaseTestCase


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


class OpeningHoursTests(BaseTestCase):
    def setUp(self):
        super().setUp()
        self.org.time_zone = "America/Sao_Paulo"  # UTC−3
        self.org.save(update_fields=["time_zone"])

    def open_weekdays(self):
        for weekday in range(5):  # Monday to Friday, 8–12 and 13–18
            OpeningHours.objects.create(
                organization=self.org, weekday=weekday, opens_at=time(8), closes_at=time(12)
            )
            OpeningHours.objects.create(
                organization=self.org, weekday=weekday, opens_at=time(13), closes_at=time(18)
            )

    def test_an_organization_without_hours_is_always_open(self):
        self.assertTrue(hours.is_open(self.org, utc(2026, 12, 6, 3, 0)))  # Sunday, midnight local
        self.assertIsNone(hours.next_opening(self.org, utc(2026, 12, 6, 3, 0)))

    def test_hours_are_read_in_the_organizations_time_zone(self):
        self.open_weekdays()
        # Monday 7 December 2026: 11:00 UTC is 08:00 in São Paulo.
        self.assertTrue(hours.is_open(self.org, utc(2026, 12, 7, 11, 0)))
        self.assertFalse(hours.is_open(self.org, utc(2026, 12, 7, 10, 59)))
        self.assertFalse(hours.is_open(self.org, utc(2026, 12, 7, 15, 30)))  # lunch, 12:30
        self.assertFalse(hours.is_open(self.org, utc(2026, 12, 5, 13, 0)))  # Saturday

    def test_a_holiday_closes_the_day_and_the_next_opening_skips_it(self):
        self.open_weekdays()
        Holiday.objects.create(organization=self.org, date=date(2026, 12, 25), name="Natal")
        self.assertFalse(hours.is_open(self.org, utc(2026, 12, 25, 14, 0)))
        # Thursday 24th, 19:00 local → Friday is Christmas → Monday 28th at 08:00 local.
        opening = hours.next_opening(self.org, utc(2026, 12, 24, 22, 0))
        self.assertEqual(opening, utc(2026, 12, 28, 11, 0))
