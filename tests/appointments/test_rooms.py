"""Rooms: two professionals who share a room cannot overlap in it (slots, bookings, and on
PostgreSQL the database itself)."""

from django.db import IntegrityError, connection, transaction

from appointments import availability, services
from appointments.models import Appointment, Professional, Room
from tests.appointments.helpers import at, make_agenda, next_weekday
from tests.base import BaseTestCase


class RoomTests(BaseTestCase):
    def setUp(self):
        self.agenda = make_agenda(self.org)
        self.room = Room.objects.create(organization=self.org, name="Consultório 1")
        for key in ("ana", "bruno"):
            professional = Professional.objects.get(pk=self.agenda[key].pk)
            professional.room = self.room
            professional.save()
            self.agenda[key] = professional
        self.day = next_weekday(1)

    def test_a_shared_room_blocks_the_other_professional(self):
        first = services.appointment_book(
            service=self.agenda["cleaning"],
            professional=self.agenda["ana"],
            starts_at=at(self.day, 9),
            channel="staff",
            customer_name="A",
        )
        self.assertEqual(first.room, self.room)
        bruno_starts = [
            s.starts_at
            for s in availability.free_slots(
                service=self.agenda["cleaning"],
                professional=self.agenda["bruno"],
                start=self.day,
                end=self.day,
            )
        ]
        self.assertNotIn(at(self.day, 9), bruno_starts)
        self.assertIn(at(self.day, 10), bruno_starts)
        with self.assertRaises(services.SlotTaken) as refused:
            services.appointment_book(
                service=self.agenda["cleaning"],
                professional=self.agenda["bruno"],
                starts_at=at(self.day, 9),
                channel="staff",
                customer_name="B",
            )
        self.assertIn("Consultório 1 is in use", refused.exception.messages[0])
        # In another room, Bruno is free at 9.
        other = Room.objects.create(organization=self.org, name="Consultório 2")
        bruno = self.agenda["bruno"]
        bruno.room = other
        bruno.save()
        services.appointment_book(
            service=self.agenda["cleaning"],
            professional=bruno,
            starts_at=at(self.day, 9),
            channel="staff",
            customer_name="B",
        )
        self.assertEqual(Appointment.objects.count(), 2)

    def test_the_database_refuses_a_room_overlap_on_postgresql(self):
        if connection.vendor != "postgresql":
            self.skipTest("exclusion constraints are PostgreSQL's")
        first = services.appointment_book(
            service=self.agenda["cleaning"],
            professional=self.agenda["ana"],
            starts_at=at(self.day, 9),
            channel="staff",
            customer_name="A",
        )
        with self.assertRaises(IntegrityError), transaction.atomic():
            Appointment.objects.create(
                organization=self.org,
                professional=self.agenda["bruno"],
                room=self.room,
                service=first.service,
                starts_at=first.starts_at,
                ends_at=first.ends_at,
                blocked_from=first.blocked_from,
                blocked_until=first.blocked_until,
                channel="api",
            )
