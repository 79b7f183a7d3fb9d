"""Booking rules: every refusal has a clear reason and leaves no row; the database forbids
double bookings even under concurrent requests."""

import threading
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.test import TransactionTestCase

from appointments import services
from appointments.models import Appointment
from tests.appointments.helpers import at, make_agenda, next_weekday
from tests.base import BaseTestCase, make_org


class BookingRuleTests(BaseTestCase):
    def setUp(self):
        self.agenda = make_agenda(self.org)
        self.monday = next_weekday(0)

    def book(self, starts_at, *, professional="ana", service="cleaning", channel="bot"):
        return services.appointment_book(
            service=self.agenda[service],
            professional=self.agenda[professional],
            starts_at=starts_at,
            channel=channel,
            customer_name="Paula",
        )

    def assertRefused(self, message, starts_at, **kwargs):
        with self.assertRaises(services.BookingError) as refused:
            self.book(starts_at, **kwargs)
        self.assertIn(message, refused.exception.messages[0])

    def test_it_books_and_blocks_the_buffer(self):
        appointment = self.book(at(self.monday, 9))
        self.assertEqual(appointment.ends_at - appointment.starts_at, timedelta(minutes=30))
        self.assertEqual(appointment.blocked_until, at(self.monday, 9, 40))
        self.assertEqual(appointment.status, "booked")

    def test_bad_bookings_get_a_reason_and_no_row(self):
        self.book(at(self.monday, 9))
        self.assertRefused("not working", at(self.monday, 12, 0))  # lunch
        self.assertRefused("not working", at(self.monday, 20))
        self.assertRefused("in the past", at(self.monday, 9) - timedelta(days=30))
        self.assertRefused("just taken", at(self.monday, 9, 30))  # inside the buffer
        self.assertRefused("does not perform", at(self.monday, 10), service="implant")
        self.assertRefused("time zone", datetime.combine(self.monday, datetime.min.time()))
        self.assertEqual(Appointment.objects.count(), 1)

    def test_customers_respect_notice_but_staff_may_not(self):
        from django.utils import timezone

        soon = timezone.now() + timedelta(minutes=5)
        with self.assertRaises(services.BookingError) as refused:
            services.booking_check(
                service=self.agenda["cleaning"],
                professional=self.agenda["ana"],
                starts_at=soon,
                customer=True,
            )
        self.assertIn("at least 60 minutes", refused.exception.messages[0])

    def test_cancelling_frees_the_slot_and_rescheduling_moves_it(self):
        appointment = self.book(at(self.monday, 9))
        services.appointment_reschedule(appointment=appointment, starts_at=at(self.monday, 10))
        appointment.refresh_from_db()
        self.assertEqual(appointment.starts_at, at(self.monday, 10))
        self.book(at(self.monday, 9))  # the old time is free again
        self.assertTrue(services.appointment_cancel(appointment=appointment))
        self.assertFalse(services.appointment_cancel(appointment=appointment))
        self.book(at(self.monday, 10))


class ConcurrentBookingTests(TransactionTestCase):
    def test_twenty_concurrent_bookings_of_one_slot_make_exactly_one(self):
        organization, _number = make_org("Clínica Conc", "clinica-conc", "777")
        agenda = make_agenda(organization)
        starts_at = at(next_weekday(2), 10)
        barrier = threading.Barrier(20)
        outcomes = []

        def attempt(i):
            try:
                barrier.wait(10)
                services.appointment_book(
                    service=agenda["cleaning"],
                    professional=agenda["ana"],
                    starts_at=starts_at,
                    channel="api",
                    customer_name=f"Cliente {i}",
                )
                outcomes.append("booked")
            except services.SlotTaken as error:
                outcomes.append(error.messages[0])
            except Exception as error:  # noqa: BLE001 - the test reports anything else
                outcomes.append(f"error {error!r}")
            finally:
                connection.close()

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        self.assertEqual(outcomes.count("booked"), 1, outcomes)
        self.assertEqual(
            outcomes.count("That time was just taken. Please choose another one."), 19, outcomes
        )
        self.assertEqual(Appointment.objects.filter(professional=agenda["ana"]).count(), 1)

    def test_the_database_itself_refuses_an_overlap_on_postgresql(self):
        if connection.vendor != "postgresql":
            self.skipTest("exclusion constraints are PostgreSQL's")
        organization, _number = make_org("Clínica PG", "clinica-pg", "778")
        agenda = make_agenda(organization)
        first = services.appointment_book(
            service=agenda["cleaning"],
            professional=agenda["ana"],
            starts_at=at(next_weekday(2), 10),
            channel="staff",
        )
        with self.assertRaises(IntegrityError), transaction.atomic():
            Appointment.objects.create(
                organization=organization,
                professional=first.professional,
                service=first.service,
                starts_at=first.starts_at + timedelta(minutes=15),
                ends_at=first.ends_at + timedelta(minutes=15),
                blocked_from=first.starts_at + timedelta(minutes=15),
                blocked_until=first.ends_at + timedelta(minutes=15),
                channel="api",
            )
        # A cancelled appointment no longer holds its span.
        services.appointment_cancel(appointment=first)
        services.appointment_book(
            service=agenda["cleaning"],
            professional=agenda["ana"],
            starts_at=first.starts_at,
            channel="staff",
        )
