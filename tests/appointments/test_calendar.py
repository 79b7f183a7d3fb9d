"""The staff calendar: who sees which agenda, booking / moving / cancelling with clear errors,
live events, and the ICS feed."""

from django.urls import reverse

from accounts.models import Role
from appointments import services
from appointments.models import Appointment, Professional
from tests.appointments.helpers import at, make_agenda, next_weekday
from tests.base import BaseTestCase


class CalendarTests(BaseTestCase):
    def setUp(self):
        self.agenda = make_agenda(self.org, users=(self.agent, None))  # Ana is the agent's agenda
        self.monday = next_weekday(0)
        self.ana_visit = services.appointment_book(
            service=self.agenda["cleaning"],
            professional=self.agenda["ana"],
            starts_at=at(self.monday, 9),
            channel="staff",
            customer_name="Paciente da Ana",
        )
        self.bruno_visit = services.appointment_book(
            service=self.agenda["implant"],
            professional=self.agenda["bruno"],
            starts_at=at(self.monday, 10),
            channel="staff",
            customer_name="Paciente do Bruno",
        )

    def week(self, **params):
        return self.client.get(
            reverse("appointments_calendar"), {"date": self.monday.isoformat(), **params}
        )

    def test_the_receptionist_sees_the_whole_clinic_week(self):
        self.login(self.operator)
        response = self.week()
        self.assertContains(response, "Paciente da Ana")
        self.assertContains(response, "Paciente do Bruno")
        self.assertContains(response, "status-booked")

    def test_a_professional_sees_only_their_own_agenda(self):
        self.login(self.agent)
        response = self.week()
        self.assertContains(response, "Paciente da Ana")
        self.assertNotContains(response, "Paciente do Bruno")
        response = self.week(professional=str(self.agenda["bruno"].code))
        self.assertNotContains(response, "Paciente do Bruno")
        self.assertEqual(
            self.client.get(
                reverse("appointment_detail", args=[self.bruno_visit.code])
            ).status_code,
            404,
        )

    def test_a_member_without_an_agenda_and_outsiders_are_kept_out(self):
        Professional.objects.filter(user=self.agent).update(user=None)
        self.login(self.agent)
        self.assertEqual(self.week().status_code, 403)
        self.login(self.outsider)
        self.assertNotContains(self.week(), "Paciente")
        self.assertEqual(
            self.client.get(reverse("appointment_detail", args=[self.ana_visit.code])).status_code,
            404,
        )

    def test_day_and_month_views(self):
        self.login(self.manager)
        day = self.week(view="day")
        self.assertContains(day, "Dra. Ana Lima")
        self.assertContains(day, "Dr. Bruno Reis")
        self.assertContains(self.week(view="month"), "Limpeza")

    def test_the_htmx_refresh_returns_only_the_grid(self):
        self.login(self.manager)
        response = (
            self.week(HTTP_HX_REQUEST="true")
            if False
            else self.client.get(
                reverse("appointments_calendar"),
                {"date": self.monday.isoformat()},
                HTTP_HX_REQUEST="true",
            )
        )
        self.assertContains(response, 'id="calendar-grid"')
        self.assertContains(response, "live:appointment.changed from:document")
        self.assertNotContains(response, "<html")

    def test_staff_books_with_a_clear_error_for_a_bad_time(self):
        self.login(self.operator)
        data = {
            "service": self.agenda["cleaning"].code,
            "professional": self.agenda["ana"].code,
            "date": self.monday.isoformat(),
            "time": "12:15",
            "customer_name": "Rita",
        }
        response = self.client.post(reverse("appointment_create"), data, HTTP_HX_REQUEST="true")
        self.assertEqual(response.status_code, 422)
        self.assertContains(response, "is not working at", status_code=422)
        data["time"] = "09:20"
        response = self.client.post(reverse("appointment_create"), data, HTTP_HX_REQUEST="true")
        self.assertContains(response, "just taken", status_code=422)
        data["time"] = "14:00"
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(reverse("appointment_create"), data, HTTP_HX_REQUEST="true")
        self.assertContains(response, "Appointment booked.")
        self.assertIn("calendar-refresh", response.headers["HX-Trigger"])
        created = Appointment.objects.get(customer_name="Rita")
        self.assertEqual(created.starts_at, at(self.monday, 14))
        self.assertEqual(created.channel, "staff")
        self.assertEqual(Appointment.objects.count(), 3)

    def test_staff_bookings_in_the_past_or_for_a_service_not_performed_are_refused(self):
        from datetime import timedelta

        self.login(self.operator)
        before = Appointment.objects.count()
        data = {
            "service": self.agenda["implant"].code,  # only Bruno performs it
            "professional": self.agenda["ana"].code,
            "date": self.monday.isoformat(),
            "time": "15:00",
            "customer_name": "Rita",
        }
        response = self.client.post(reverse("appointment_create"), data, HTTP_HX_REQUEST="true")
        self.assertContains(response, "does not perform", status_code=422)
        data.update(
            service=self.agenda["cleaning"].code,
            date=(self.monday - timedelta(days=35)).isoformat(),
        )
        response = self.client.post(reverse("appointment_create"), data, HTTP_HX_REQUEST="true")
        self.assertContains(response, "in the past", status_code=422)
        data.update(date="31/02/2027")
        response = self.client.post(reverse("appointment_create"), data, HTTP_HX_REQUEST="true")
        self.assertContains(response, "Enter a valid date", status_code=422)
        self.assertEqual(Appointment.objects.count(), before)

    def test_no_show_only_once_the_visit_began_and_only_on_visible_agendas(self):
        from datetime import timedelta

        from django.utils import timezone

        self.login(self.operator)
        url = reverse("appointment_status", args=[self.ana_visit.code, "no-show"])
        early = self.client.post(url, HTTP_HX_REQUEST="true")
        self.assertEqual(early.status_code, 422)
        self.ana_visit.refresh_from_db()
        self.assertEqual(self.ana_visit.status, "booked")
        past = timezone.now() - timedelta(hours=1)
        Appointment.objects.filter(pk=self.ana_visit.pk).update(
            starts_at=past, ends_at=past + timedelta(minutes=30)
        )
        with self.captureOnCommitCallbacks(execute=True):
            marked = self.client.post(url, HTTP_HX_REQUEST="true")
        self.assertContains(marked, "Marked as no-show.")
        self.ana_visit.refresh_from_db()
        self.assertEqual(self.ana_visit.status, "no_show")
        self.assertEqual(self.client.post(url, HTTP_HX_REQUEST="true").status_code, 409)
        self.login(self.agent)  # Ana's agenda only: Bruno's visit is not theirs to mark
        other = reverse("appointment_status", args=[self.bruno_visit.code, "no-show"])
        self.assertEqual(self.client.post(other).status_code, 404)

    def test_move_and_cancel(self):
        self.login(self.operator)
        url = reverse("appointment_move", args=[self.ana_visit.code])
        response = self.client.post(
            url,
            {
                "date": self.monday.isoformat(),
                "time": "10:00",
                "professional": self.agenda["ana"].code,
            },
            HTTP_HX_REQUEST="true",
        )
        self.assertContains(response, "Appointment moved.")
        self.ana_visit.refresh_from_db()
        self.assertEqual(self.ana_visit.starts_at, at(self.monday, 10))
        response = self.client.post(
            url,
            {
                "date": self.monday.isoformat(),
                "time": "10:00",
                "professional": self.agenda["bruno"].code,
            },
            HTTP_HX_REQUEST="true",
        )
        self.assertContains(response, "just taken", status_code=422)  # Bruno's implant visit
        response = self.client.post(
            reverse("appointment_move", args=[self.bruno_visit.code]),
            {
                "date": self.monday.isoformat(),
                "time": "15:00",
                "professional": self.agenda["ana"].code,
            },
            HTTP_HX_REQUEST="true",
        )
        self.assertContains(response, "does not perform", status_code=422)
        self.assertEqual(self.client.get(url).status_code, 405)
        cancel = reverse("appointment_status", args=[self.ana_visit.code, "cancel"])
        self.assertContains(
            self.client.post(cancel, HTTP_HX_REQUEST="true"), "Appointment cancelled."
        )
        self.assertEqual(self.client.post(cancel).status_code, 409)
        self.ana_visit.refresh_from_db()
        self.assertEqual(self.ana_visit.status, "cancelled")

    def test_the_ics_feed_is_secret_and_revocable(self):
        ana = self.agenda["ana"]
        feed = reverse("appointments_ics_feed", args=[ana.ics_token])
        response = self.client.get(feed)
        self.assertEqual(response["Content-Type"], "text/calendar; charset=utf-8")
        self.assertContains(response, "SUMMARY:Limpeza · Paciente da Ana")
        self.assertNotContains(response, "Paciente do Bruno")
        self.login(self.operator)
        self.client.post(reverse("appointments_ics_revoke", args=[ana.code]))
        self.client.logout()
        self.assertEqual(self.client.get(feed).status_code, 404)
        ana.refresh_from_db()
        self.assertEqual(
            self.client.get(reverse("appointments_ics_feed", args=[ana.ics_token])).status_code, 200
        )

    def test_roles_in_the_matrix(self):
        from accounts.models import Membership
        from appointments.access import agenda_scope

        for role, everyone in (
            (Role.ADMIN, True),
            (Role.MANAGER, True),
            (Role.OPERATOR, True),
            (Role.AGENT, False),
        ):
            membership = Membership.objects.get(organization=self.org, role=role)
            self.assertEqual(agenda_scope(membership).everyone, everyone, role)
