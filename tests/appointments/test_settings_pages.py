"""The agenda settings pages: receptionists edit services, professionals (weekly hours with
breaks, exceptions), opening hours, holidays and booking rules with clear errors; professionals
and other organizations are kept out."""

from datetime import time

from django.urls import reverse

from accounts.models import Holiday, OpeningHours
from appointments import availability
from appointments.models import AgendaException, AgendaSettings, Professional, Service
from tests.appointments.helpers import at, make_agenda, next_weekday
from tests.base import BaseTestCase


def _hours_post(rows, prefix="hours", initial=0, start="starts_at", end="ends_at"):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            key = {"start": start, "end": end}.get(key, key)
            data[f"{prefix}-{i}-{key}"] = value
    return data


class AgendaSettingsPagesTests(BaseTestCase):
    def setUp(self):
        self.agenda = make_agenda(self.org, users=(self.agent, None))

    def test_a_receptionist_creates_a_service_and_a_bad_one_is_refused_with_reasons(self):
        self.login(self.operator)
        listing = self.client.get(reverse("agenda_settings_services"))
        self.assertContains(listing, "Limpeza")
        refused = self.client.post(
            reverse("agenda_settings_service_new"),
            {"name": "Limpeza", "duration_minutes": "2", "buffer_before_minutes": "0",
             "buffer_after_minutes": "0", "price": "-5"},
            HTTP_HX_REQUEST="true",
        )  # fmt: skip
        self.assertEqual(refused.status_code, 422)
        self.assertContains(refused, "Another service already has this name.", status_code=422)
        self.assertContains(refused, "between 5 and 720 minutes", status_code=422)
        self.assertContains(refused, "cannot be negative", status_code=422)
        self.assertEqual(Service.objects.filter(organization=self.org).count(), 2)

        saved = self.client.post(
            reverse("agenda_settings_service_new"),
            {"name": "Clareamento", "description": "Clareamento a laser", "category": "Estética",
             "duration_minutes": "90", "buffer_before_minutes": "10",
             "buffer_after_minutes": "15", "price": "800.00",
             "professionals": [self.agenda["bruno"].pk], "bookable_online": "on",
             "reminder_hours": "48, 2", "active": "on"},
        )  # fmt: skip
        self.assertRedirects(saved, reverse("agenda_settings_services"))
        service = Service.objects.get(organization=self.org, name="Clareamento")
        self.assertEqual((service.duration_minutes, service.buffer_before_minutes), (90, 10))
        self.assertEqual(list(service.professionals.all()), [self.agenda["bruno"]])
        self.assertEqual(service.reminder_hours, "48, 2")
        # It is bookable at once: Bruno has free times for it.
        day = next_weekday(1)
        slots = availability.free_slots(service=service, start=day, end=day)
        self.assertTrue(slots)

    def test_professionals_of_another_organization_cannot_be_chosen(self):
        foreign = Professional.objects.create(organization=self.other_org, name="Estranho")
        self.login(self.admin)
        response = self.client.post(
            reverse("agenda_settings_service", args=[self.agenda["cleaning"].code]),
            {"name": "Limpeza", "duration_minutes": "30", "buffer_before_minutes": "0",
             "buffer_after_minutes": "10", "professionals": [foreign.pk], "active": "on"},
            HTTP_HX_REQUEST="true",
        )  # fmt: skip
        self.assertEqual(response.status_code, 422)
        self.assertFalse(self.agenda["cleaning"].professionals.filter(pk=foreign.pk).exists())

    def test_weekly_hours_with_a_break_and_overlaps_are_refused(self):
        self.login(self.manager)
        url = reverse("agenda_settings_professional_new")
        base = {"name": "Dra. Carla", "user": "", "color": "#10b981", "room": "", "active": "on"}
        overlapping = self.client.post(
            url,
            {**base, **_hours_post([
                {"weekday": "0", "start": "08:00", "end": "12:00"},
                {"weekday": "0", "start": "11:00", "end": "17:00"},
            ])},
            HTTP_HX_REQUEST="true",
        )  # fmt: skip
        self.assertContains(overlapping, "overlaps another one", status_code=422)
        backwards = self.client.post(
            url,
            {**base, **_hours_post([{"weekday": "1", "start": "18:00", "end": "08:00"}])},
            HTTP_HX_REQUEST="true",
        )
        self.assertContains(backwards, "The end must be after the start.", status_code=422)
        self.assertFalse(Professional.objects.filter(name="Dra. Carla").exists())

        saved = self.client.post(
            url,
            {**base, **_hours_post([
                {"weekday": "0", "start": "08:00", "end": "12:00"},
                {"weekday": "0", "start": "13:00", "end": "17:00"},
                {"weekday": "", "start": "", "end": ""},
            ])},
        )  # fmt: skip
        carla = Professional.objects.get(name="Dra. Carla")
        self.assertRedirects(saved, reverse("agenda_settings_professional", args=[carla.code]))
        self.assertEqual(
            list(carla.working_hours.values_list("weekday", "starts_at", "ends_at")),
            [(0, time(8), time(12)), (0, time(13), time(17))],
        )
        self.assertEqual(carla.organization, self.org)

    def test_linking_a_member_and_adding_time_off_removes_free_slots(self):
        self.login(self.admin)
        bruno = self.agenda["bruno"]
        page = self.client.get(reverse("agenda_settings_professional", args=[bruno.code]))
        self.assertContains(page, "Weekly hours")
        self.assertContains(page, "External professional (no login)")
        self.assertNotContains(page, "bob@bob.test")  # members of other organizations
        # The agent already has Ana's agenda.
        rows = [
            {"id": h.pk, "weekday": h.weekday, "start": h.starts_at.strftime("%H:%M"),
             "end": h.ends_at.strftime("%H:%M")} for h in bruno.working_hours.all()
        ]  # fmt: skip
        taken = self.client.post(
            reverse("agenda_settings_professional", args=[bruno.code]),
            {"name": bruno.name, "user": self.agent.pk, "color": "#f97316", "active": "on",
             **_hours_post(rows, initial=len(rows))},
            HTTP_HX_REQUEST="true",
        )  # fmt: skip
        self.assertContains(taken, "This member already has an agenda.", status_code=422)

        day = next_weekday(2)
        before = availability.free_slots(
            service=self.agenda["implant"], professional=bruno, start=day, end=day
        )
        self.assertTrue(before)
        added = self.client.post(
            reverse("agenda_settings_exception_add", args=[bruno.code]),
            {"kind": "off", "starts_on": day.isoformat(), "ends_on": day.isoformat(),
             "reason": "Férias"},
            HTTP_HX_REQUEST="true",
        )  # fmt: skip
        self.assertContains(added, "Exception added.")
        self.assertContains(added, "Férias")
        exception = AgendaException.objects.get(professional=bruno)
        self.assertEqual(exception.starts_at, at(day, 0))
        after = availability.free_slots(
            service=self.agenda["implant"], professional=bruno, start=day, end=day
        )
        self.assertEqual(after, [])
        wrong = self.client.post(
            reverse("agenda_settings_exception_add", args=[bruno.code]),
            {"kind": "extra", "starts_on": day.isoformat(), "ends_on": day.isoformat()},
            HTTP_HX_REQUEST="true",
        )
        self.assertContains(wrong, "Extra hours need a start and an end time.", status_code=422)

    def test_opening_hours_and_holidays(self):
        self.login(self.operator)
        url = reverse("agenda_settings_hours")
        saved = self.client.post(
            url,
            _hours_post(
                [{"weekday": "0", "start": "08:00", "end": "18:00"}],
                start="opens_at",
                end="closes_at",
            ),
            HTTP_HX_REQUEST="true",
        )
        self.assertContains(saved, "Opening hours saved.")
        self.assertEqual(
            list(
                OpeningHours.objects.filter(organization=self.org).values_list("weekday", flat=True)
            ),
            [0],
        )
        day = next_weekday(0)
        added = self.client.post(
            reverse("agenda_settings_holiday_add"),
            {"date": day.isoformat(), "name": "Feriado municipal"},
            HTTP_HX_REQUEST="true",
        )
        self.assertContains(added, "Feriado municipal")
        twice = self.client.post(
            reverse("agenda_settings_holiday_add"),
            {"date": day.isoformat(), "name": "De novo"},
            HTTP_HX_REQUEST="true",
        )
        self.assertContains(twice, "already a holiday", status_code=422)
        self.assertEqual(Holiday.objects.filter(organization=self.org).count(), 1)
        self.assertEqual(
            availability.free_slots(service=self.agenda["cleaning"], start=day, end=day), []
        )

    def test_booking_rules_are_validated_and_saved(self):
        self.login(self.admin)
        url = reverse("agenda_settings")
        base = {"min_notice_minutes": "30", "horizon_days": "90", "slot_step_minutes": "15",
                "keywords": "agendar, marcar", "reminder_template": "", "waitlist_template": "",
                "address": "Rua A, 1"}  # fmt: skip
        refused = self.client.post(
            url, {**base, "reminder_hours": "24, amanhã"}, HTTP_HX_REQUEST="true"
        )
        self.assertContains(refused, "not “amanhã”", status_code=422)
        self.assertEqual(availability.settings_for(self.org).min_notice_minutes, 60)
        saved = self.client.post(url, {**base, "reminder_hours": "2,24"}, HTTP_HX_REQUEST="true")
        self.assertContains(saved, "Agenda settings saved.")
        agenda = AgendaSettings.objects.get(organization=self.org)
        self.assertEqual((agenda.horizon_days, agenda.reminder_hours), (90, "24, 2"))

    def test_professionals_and_outsiders_cannot_edit_settings(self):
        self.login(self.agent)  # Ana's agenda: a professional, not a receptionist
        self.assertEqual(self.client.get(reverse("appointments_calendar")).status_code, 200)
        for name in ("agenda_settings", "agenda_settings_services", "agenda_settings_hours"):
            self.assertEqual(self.client.get(reverse(name)).status_code, 403)
        self.login(self.outsider)
        self.assertEqual(
            self.client.get(
                reverse("agenda_settings_service", args=[self.agenda["cleaning"].code])
            ).status_code,
            404,
        )

    def test_the_settings_are_linked_from_the_agenda_and_the_settings_nav(self):
        self.login(self.admin)
        self.assertContains(
            self.client.get(reverse("appointments_calendar")),
            reverse("agenda_settings_services"),
        )
        self.assertContains(
            self.client.get(reverse("settings_organization")),
            reverse("agenda_settings_services"),
        )
