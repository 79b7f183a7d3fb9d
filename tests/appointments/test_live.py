"""A booking reaches the open calendars at once: the receptionist's (organization group) and the
professional's own (an agent, who is not in the organization group)."""

import asyncio

from asgiref.sync import async_to_sync, sync_to_async
from django.test import TransactionTestCase

from accounts.models import Membership, Role, User
from appointments import services
from tests.appointments.helpers import at, make_agenda, next_weekday
from tests.base import make_org
from tests.inbox.test_live_consumer import connect, session_cookie


class LiveCalendarTests(TransactionTestCase):
    def test_a_booking_is_announced_to_the_receptionist_and_the_professional(self):
        organization, _number = make_org("Clínica Live", "clinica-live", "555")
        receptionist = User.objects.create_user(email="recepcao@live.test", password="x")
        dentist = User.objects.create_user(email="ana@live.test", password="x")
        other = User.objects.create_user(email="bruno@live.test", password="x")
        Membership.objects.create(user=receptionist, organization=organization, role=Role.OPERATOR)
        Membership.objects.create(user=dentist, organization=organization, role=Role.AGENT)
        Membership.objects.create(user=other, organization=organization, role=Role.AGENT)
        agenda = make_agenda(organization, users=(dentist, other))
        cookies = [session_cookie(u) for u in (receptionist, dentist, other)]

        def book():
            return services.appointment_book(
                service=agenda["cleaning"],
                professional=agenda["ana"],
                starts_at=at(next_weekday(1), 9),
                channel="staff",
                customer_name="Paula",
            )

        async def scenario():
            sockets = [connect(c) for c in cookies]
            for socket in sockets:
                connected, _ = await socket.connect()
                self.assertTrue(connected)
                await socket.receive_json_from()  # hello
            appointment = await sync_to_async(book)()
            for socket in sockets[:2]:
                event = await socket.receive_json_from(timeout=3)
                self.assertEqual(event["type"], "appointment.changed")
                self.assertEqual(event["op"], "created")
                self.assertEqual(event["appointment"], str(appointment.code))
            self.assertTrue(await sockets[2].receive_nothing(timeout=0.3))  # Bruno's agenda only
            for socket in sockets:
                await socket.disconnect()
            await asyncio.sleep(0)

        async_to_sync(scenario)()
