"""Free slots: hours minus breaks, appointments, buffers, time off and holidays; DST-correct."""

from datetime import UTC, date, datetime, timedelta

from accounts.models import Holiday
from appointments import availability, services
from appointments.models import AgendaException, Appointment, Professional, Service, WorkingHours
from tests.appointments.helpers import at, make_agenda, next_weekday
from tests.base import BaseTestCase


class FreeSlotTests(BaseTestCase):
    def setUp(self):
        self.agenda = make_agenda(self.org)
        self.monday = next_weekday(0)

    def starts(self, professional=None, service=None, day=None):
        day = day or self.monday
        return [
            s.local(availability.zone(self.org)).strftime("%H:%M")
            for s in availability.free_slots(
                service=service or self.agenda["cleaning"],
                professional=professional or self.agenda["ana"],
                start=day,
                end=day,
            )
        ]

    def test_it_offers_the_working_hours_on_the_grid_and_skips_the_lunch_break(self):
        starts = self.starts()
        self.assertEqual(starts[0], "08:00")
        self.assertIn("11:30", starts)  # 11:30-12:00 fits before lunch
        self.assertNotIn("12:00", starts)
        self.assertNotIn("12:30", starts)
        self.assertEqual(starts[-1], "17:30")

    def test_a_booking_and_its_buffer_take_their_slots(self):
        services.appointment_book(
            service=self.agenda["cleaning"],
            professional=self.agenda["ana"],
            starts_at=at(self.monday, 9),
            channel=Appointment.Channel.STAFF,
            customer_name="Paula",
        )
        starts = self.starts()
        self.assertNotIn("09:00", starts)
        self.assertNotIn(
            "09:30", starts
        )  # 09:30 + buffer ends 09:40, the booking blocks until 09:40
        self.assertIn("10:00", starts)
        self.assertNotIn("08:30", starts)  # 08:30-09:00 + 10 min buffer overlaps 09:00
        # Bruno is still free at 09:00 when anyone will do.
        any_slots = availability.free_slots(
            service=self.agenda["cleaning"], start=self.monday, end=self.monday
        )
        at_nine = [s for s in any_slots if s.starts_at == at(self.monday, 9)]
        self.assertEqual([s.professional_id for s in at_nine], [self.agenda["bruno"].pk])

    def test_time_off_holidays_and_extra_hours(self):
        AgendaException.objects.create(
            organization=self.org,
            professional=self.agenda["ana"],
            starts_at=at(self.monday, 8),
            ends_at=at(self.monday, 10),
            reason="Dentista da dentista",
        )
        AgendaException.objects.create(
            organization=self.org,
            professional=self.agenda["ana"],
            kind=AgendaException.Kind.EXTRA,
            starts_at=at(self.monday, 19),
            ends_at=at(self.monday, 20),
        )
        starts = self.starts()
        self.assertEqual(starts[0], "10:00")
        self.assertIn("19:30", starts)
        Holiday.objects.create(organization=self.org, date=self.monday, name="Feriado")
        # Extra hours set on purpose still count on a clinic holiday; the weekly ones don't.
        self.assertEqual(self.starts(), ["19:00", "19:30"])
        saturday = self.monday + timedelta(days=5)
        self.assertEqual(self.starts(day=saturday), [])

    def test_notice_and_horizon(self):
        far = date.today() + timedelta(days=90)
        self.assertEqual(self.starts(day=far), [])
        self.assertEqual(self.starts(day=date.today() - timedelta(days=1)), [])

    def test_a_professional_who_does_not_perform_the_service_has_no_slots(self):
        self.assertEqual(self.starts(service=self.agenda["implant"]), [])

    def test_dst_keeps_local_wall_time(self):
        """New York moves its clocks on Sunday 8 March 2026: 09:00 local is 14:00 UTC on the
        Friday before and 13:00 UTC on the Monday after."""
        self.org.time_zone = "America/New_York"
        self.org.save()
        service = Service.objects.get(pk=self.agenda["cleaning"].pk)
        ana = Professional.objects.get(pk=self.agenda["ana"].pk)
        WorkingHours.objects.create(
            organization=self.org, professional=ana, weekday=6, starts_at="01:00", ends_at="04:00"
        )
        now = datetime(2026, 3, 1, 12, tzinfo=UTC)
        slots = availability.free_slots(
            service=service, professional=ana, start=date(2026, 3, 6), end=date(2026, 3, 9), now=now
        )
        by_day = {}
        for slot in slots:
            by_day.setdefault(
                slot.starts_at.astimezone(availability.zone(self.org)).date(), []
            ).append(slot)
        self.assertEqual(
            by_day[date(2026, 3, 6)][0].starts_at, datetime(2026, 3, 6, 13, tzinfo=UTC)
        )
        self.assertEqual(
            by_day[date(2026, 3, 9)][0].starts_at, datetime(2026, 3, 9, 12, tzinfo=UTC)
        )
        sunday = [
            s.starts_at.astimezone(availability.zone(self.org)).strftime("%H:%M")
            for s in by_day[date(2026, 3, 8)]
        ]
        # 02:00-03:00 does not exist that night: no slot starts in it, and none is doubled.
        self.assertNotIn("02:00", sunday)
        self.assertNotIn("02:30", sunday)
        self.assertEqual(len(sunday), len(set(sunday)))
