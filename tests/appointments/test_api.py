"""The appointments API: catalogue, availability, booking with Idempotency-Key, reschedule,
cancel, clear 4xx errors with no half-saved row, and webhook events to a real receiver."""

import json

from django.test import override_settings
from django.urls import reverse

from appointments.models import Appointment
from integrations import outgoing
from tests.api.helpers import ApiTestCase, key_for
from tests.api.receiver import Receiver
from tests.appointments.helpers import at, make_agenda, next_weekday


class AppointmentApiTests(ApiTestCase):
    def setUp(self):
        super().setUp()
        self.agenda = make_agenda(self.org)
        self.day = next_weekday(3)

    def book(self, start, *, key="", **fields):
        body = {
            "service": str(self.agenda["cleaning"].code),
            "start": start,
            "customer_name": "Rita",
            **fields,
        }
        extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        return self.api("post", reverse("api_appointments"), body, **extra)

    def test_catalogue_and_availability(self):
        services = self.api("get", reverse("api_services")).json()["results"]
        self.assertEqual({s["name"] for s in services}, {"Limpeza", "Avaliação de implante"})
        professionals = self.api("get", reverse("api_professionals")).json()["results"]
        self.assertEqual(len(professionals), 2)
        free = self.api(
            "get",
            reverse("api_availability"),
            {
                "service": self.agenda["implant"].code,
                "date_from": self.day,
                "date_to": self.day,
                "time_zone": "Europe/Lisbon",
            },
        ).json()
        self.assertEqual(free["time_zone"], "Europe/Lisbon")
        self.assertTrue(free["slots"][0]["start"].endswith("Z"))
        self.assertTrue(
            free["slots"][0]["local"].startswith(f"{self.day}T11:00")
        )  # 08:00 in São Paulo
        bad = self.api(
            "get",
            reverse("api_availability"),
            {"service": self.agenda["implant"].code, "time_zone": "Mars/Base"},
        )
        self.assertEqual(bad.status_code, 400)
        self.assertIn("Unknown time zone", json.dumps(bad.json()))

    def test_booking_is_idempotent_and_moves_and_cancels(self):
        start = at(self.day, 9).isoformat()
        first = self.book(start, key="abc-1")
        self.assertEqual(first.status_code, 201, first.json())
        again = self.book(start, key="abc-1")
        self.assertEqual(again.status_code, 201)
        self.assertEqual(again.headers["Idempotent-Replayed"], "true")
        self.assertEqual(Appointment.objects.count(), 1)
        created = first.json()
        self.assertEqual(created["channel"], "api")
        self.assertTrue(created["start"].endswith("Z"))
        code = created["id"]
        moved = self.api(
            "post",
            reverse("api_appointment_reschedule", args=[code]),
            {"start": at(self.day, 11).isoformat()},
        )
        self.assertEqual(moved.status_code, 200, moved.json())
        self.assertEqual(Appointment.objects.get().starts_at, at(self.day, 11))
        cancelled = self.api("post", reverse("api_appointment_cancel", args=[code]))
        self.assertEqual(cancelled.json()["status"], "cancelled")
        self.assertEqual(
            self.api("post", reverse("api_appointment_cancel", args=[code])).status_code, 409
        )

    def test_bad_bookings_get_a_4xx_with_a_message_and_no_row(self):
        self.book(at(self.day, 9).isoformat())
        cases = [
            (at(self.day, 9, 30).isoformat(), 409, "just taken"),
            (at(self.day, 20).isoformat(), 409, "No professional is free"),
            (f"{self.day}T10:00:00", 400, "UTC offset"),
            (at(self.day, 9).replace(year=2020).isoformat(), 409, "No professional is free"),
        ]
        for start, status, message in cases:
            response = (
                self.book(start, professional=str(self.agenda["ana"].code))
                if "just" in message
                else self.book(start)
            )
            self.assertEqual(response.status_code, status, (start, response.json()))
            self.assertIn(message, json.dumps(response.json()))
        past = self.book(
            at(self.day, 9).replace(year=2020).isoformat(),
            professional=str(self.agenda["ana"].code),
        )
        self.assertEqual(past.status_code, 422)
        self.assertIn("in the past", past.json()["error"]["message"])
        wrong = self.api(
            "post",
            reverse("api_appointments"),
            {
                "service": str(self.agenda["implant"].code),
                "professional": str(self.agenda["ana"].code),
                "start": at(self.day, 10).isoformat(),
                "customer_name": "X",
            },
        )
        self.assertEqual(wrong.status_code, 422)
        self.assertIn("does not perform", wrong.json()["error"]["message"])
        self.assertEqual(Appointment.objects.count(), 1)

    def test_scopes_and_tenancy(self):
        response = self.api(
            "get", reverse("api_services"), secret=key_for(self.org, scopes=["chats:read"])
        )
        self.assertEqual(response.status_code, 403)
        self.assertIn("appointments:read", response.json()["error"]["message"])
        code = self.book(at(self.day, 9).isoformat()).json()["id"]
        foreign = self.api(
            "get", reverse("api_appointment", args=[code]), secret=self.foreign_secret
        )
        self.assertEqual(foreign.status_code, 404)


@override_settings(EGRESS_ALLOW_PRIVATE=True)
class AppointmentEventsTests(ApiTestCase):
    def test_created_confirmed_rescheduled_cancelled_events_reach_the_receiver(self):
        agenda = make_agenda(self.org)
        day = next_weekday(3)
        receiver = Receiver().start()
        self.addCleanup(receiver.stop)
        outgoing.subscription_create(
            organization=self.org,
            url=receiver.url,
            events=[
                "appointment.created",
                "appointment.rescheduled",
                "appointment.cancelled",
                "appointment.confirmed",
            ],
        )
        body = {
            "service": str(agenda["cleaning"].code),
            "start": at(day, 9).isoformat(),
            "customer_name": "Rita",
        }
        code = self.api("post", reverse("api_appointments"), body).json()["id"]
        self.api(
            "post",
            reverse("api_appointment_reschedule", args=[code]),
            {"start": at(day, 10).isoformat()},
        )
        self.api("post", reverse("api_appointment_cancel", args=[code]))
        events = [json.loads(b) for _h, b in receiver.requests]
        self.assertEqual(
            [e["type"] for e in events],
            ["appointment.created", "appointment.rescheduled", "appointment.cancelled"],
        )
        self.assertEqual(events[0]["data"]["appointment"]["id"], code)
        self.assertTrue(events[1]["data"]["appointment"]["start"].endswith("Z"))
