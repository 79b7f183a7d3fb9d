"""The agenda report: bookings by channel, confirmation and no-show rates, occupancy."""

from datetime import timedelta

from django.urls import reverse

from appointments import services
from appointments.models import Appointment
from tests.appointments.helpers import at, make_agenda, next_weekday
from tests.base import BaseTestCase


class ReportTests(BaseTestCase):
    def test_it_counts_channels_rates_and_occupancy(self):
        agenda = make_agenda(self.org, users=(self.agent, None))
        day = next_weekday(1)
        made = []
        for hour, channel in ((8, "bot"), (9, "ai"), (10, "staff"), (11, "api")):
            made.append(
                services.appointment_book(
                    service=agenda["cleaning"],
                    professional=agenda["ana"],
                    starts_at=at(day, hour),
                    channel=channel,
                    customer_name="P",
                )
            )
        services.appointment_confirm(appointment=made[0])
        services.appointment_cancel(appointment=made[3])
        # A past appointment that was a no-show (written as history: booking refuses the past).
        # Two weeks before ``day`` (2 to 8 days ahead) is always past; one week before was not
        # on Mondays, São Paulo time (``day`` is then 8 days ahead).
        past = at(day, 14) - timedelta(days=14)
        Appointment.objects.create(
            organization=self.org,
            professional=agenda["ana"],
            service=agenda["cleaning"],
            starts_at=past,
            ends_at=past + timedelta(minutes=30),
            blocked_from=past,
            blocked_until=past + timedelta(minutes=40),
            status="no_show",
            channel="bot",
        )
        self.login(self.manager)
        response = self.client.get(
            reverse("appointments_report"),
            {"from": (day - timedelta(days=14)).isoformat(), "until": day.isoformat()},
        )
        report = response.context["report"]
        self.assertEqual(dict(report.by_channel)["WhatsApp menu"], 2)
        self.assertEqual(report.total, 5)
        self.assertEqual(report.cancelled, 1)
        self.assertEqual(report.confirmation_rate, 25.0)  # 1 of 4 held
        self.assertEqual(report.no_show_rate, 100.0)  # the one past appointment
        ana = next(row for row in report.occupancy if row["professional"] == agenda["ana"])
        self.assertEqual(ana["booked_hours"], 2.0)  # 3 × 30 min, and 30 min 2 weeks before
        self.assertEqual(ana["working_hours"], 11 * 9.0)  # 11 weekdays, Tuesday to Tuesday
        self.assertContains(response, "Occupancy per professional")
        # A professional sees only their own figures.
        self.login(self.agent)
        response = self.client.get(reverse("appointments_report"))
        self.assertEqual(
            [row["professional"] for row in response.context["report"].occupancy], [agenda["ana"]]
        )
