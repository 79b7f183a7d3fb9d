"""The public opt-in form of a drip program: no sign-in, an unguessable address, phone validation
in the organization's country, recorded consent, enrolment, and protection against abuse."""

from django.core.cache import cache
from django.test import Client, override_settings
from django.urls import reverse

from accounts.models import Organization
from campaigns.models import (
    Automation,
    AutomationRun,
    ConsentEvent,
    DripEnrolment,
    DripProgram,
    DripQuestion,
)
from inbox.models import Contact
from tests.base import BaseTestCase


class OptInFormTests(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        Organization.objects.filter(pk=cls.org.pk).update(language="pt-br")  # Brazil
        cls.program = DripProgram.objects.create(
            organization=cls.org,
            name="Pergunta do dia",
            kind=DripProgram.Kind.QUESTION_OF_THE_DAY,
            number=cls.number,
            topics="higiene, ortodontia",
            form_intro="Uma pergunta por dia sobre saúde bucal.",
        )
        DripQuestion.objects.create(
            organization=cls.org, program=cls.program, text="?", topic="higiene", rubric="x"
        )

    def setUp(self):
        cache.clear()
        self.url = reverse("drip_optin", args=[self.program.form_slug])

    def data(self, **overrides):
        data = {
            "name": "Paula Pires",
            "phone": "(11) 98765-4321",
            "topic": "higiene",
            "language": "pt",
            "consent": "on",
            "website": "",
        }
        return {**data, **overrides}

    def test_the_slug_is_long_and_random_and_nothing_else_answers(self):
        self.assertGreaterEqual(len(self.program.form_slug), 24)
        other = DripProgram.objects.create(organization=self.org, name="B", number=self.number)
        self.assertNotEqual(other.form_slug, self.program.form_slug)
        self.assertEqual(self.client.get(reverse("drip_optin", args=["guess"])).status_code, 404)
        DripProgram.objects.filter(pk=other.pk).update(form_enabled=False)
        self.assertEqual(
            self.client.get(reverse("drip_optin", args=[other.form_slug])).status_code, 404
        )

    def test_anyone_signs_up_and_is_enrolled_with_consent_recorded(self):
        page = self.client.get(self.url)
        self.assertContains(page, "Uma pergunta por dia")
        self.assertContains(page, "ortodontia")
        response = self.client.post(self.url, self.data())
        self.assertRedirects(response, f"{self.url}?done=1")
        self.assertContains(self.client.get(response.url), "You are signed up")
        contact = Contact.objects.get(organization=self.org, phone="+5511987654321")
        self.assertEqual(
            (contact.name, contact.wa_id, contact.language), ("Paula Pires", "5511987654321", "pt")
        )
        self.assertEqual((contact.opt_in, contact.opt_in_source), ("opted_in", "form"))
        event = ConsentEvent.objects.get(contact=contact)
        self.assertEqual((event.opted_in, event.source), (True, "form"))
        self.assertIn("Pergunta do dia", event.detail)
        enrolment = DripEnrolment.objects.get(contact=contact)
        self.assertEqual(
            (enrolment.topic, enrolment.language, enrolment.source), ("higiene", "pt", "form")
        )
        self.assertIsNotNone(enrolment.next_due_at)

    def test_signing_up_again_updates_the_contact_without_a_second_enrolment(self):
        existing = Contact.objects.create(
            organization=self.org, wa_id="5511987654321", phone="+5511987654321", opt_in="opted_out"
        )
        self.client.post(self.url, self.data(topic="ortodontia", language="es"))
        self.client.post(self.url, self.data(name="Paula P."))
        existing.refresh_from_db()
        self.assertEqual((existing.name, existing.opt_in), ("Paula P.", "opted_in"))
        self.assertEqual(ConsentEvent.objects.filter(contact=existing, source="form").count(), 2)
        enrolment = DripEnrolment.objects.get(contact=existing)
        self.assertEqual(enrolment.topic, "higiene")

    def test_a_bad_phone_is_explained(self):
        response = self.client.post(self.url, self.data(phone="12345"))
        self.assertContains(response, "That is not a valid phone number", status_code=400)
        self.assertFalse(Contact.objects.filter(name="Paula Pires").exists())

    def test_consent_is_required(self):
        data = self.data()
        del data["consent"]
        response = self.client.post(self.url, data)
        self.assertContains(response, "Tick the box to agree", status_code=400)
        self.assertFalse(DripEnrolment.objects.exists())

    def test_a_filled_honeypot_is_silently_ignored(self):
        response = self.client.post(self.url, self.data(website="http://spam.example"))
        self.assertRedirects(response, f"{self.url}?done=1")
        self.assertFalse(Contact.objects.filter(phone="+5511987654321").exists())

    @override_settings(DRIP_OPTIN_RATE_LIMIT=(2, 600))
    def test_too_many_submissions_from_one_address_are_refused(self):
        for _ in range(2):
            self.client.post(self.url, self.data())
        response = self.client.post(self.url, self.data(phone="+55 11 91111-2222"))
        self.assertContains(response, "Too many sign-ups", status_code=429)
        self.assertFalse(Contact.objects.filter(phone="+5511911112222").exists())

    def test_it_is_csrf_protected(self):
        client = Client(enforce_csrf_checks=True)
        self.assertEqual(client.post(self.url, self.data()).status_code, 403)
        page = client.get(self.url)
        token = page.cookies["csrftoken"].value
        response = client.post(self.url, {**self.data(), "csrfmiddlewaretoken": token})
        self.assertEqual(response.status_code, 302)

    def test_it_only_touches_the_programs_own_organization(self):
        theirs = Contact.objects.create(
            organization=self.other_org, wa_id="5511987654321", phone="+5511987654321", name="Bob's"
        )
        Automation.objects.create(
            organization=self.other_org, name="B", trigger="new_contact", action_tags=["bob"]
        )
        ours = Automation.objects.create(
            organization=self.org, name="A", trigger="new_contact", action_tags=["via-form"]
        )
        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(self.url, self.data())
        theirs.refresh_from_db()
        self.assertEqual((theirs.name, theirs.opt_in, theirs.tags), ("Bob's", "unknown", []))
        contact = Contact.objects.get(organization=self.org, wa_id="5511987654321")
        self.assertEqual(contact.tags, ["via-form"])  # the new-contact rule ran, ours only
        self.assertEqual(AutomationRun.objects.get().automation, ours)


class OptInTimeZoneTests(BaseTestCase):
    """The sign-up's time zone: chosen, or from the phone's country, else the organization's."""

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        Organization.objects.filter(pk=cls.org.pk).update(
            language="pt-br", time_zone="America/Manaus"
        )
        cls.program = DripProgram.objects.create(
            organization=cls.org,
            name="Pergunta do dia",
            kind=DripProgram.Kind.QUESTION_OF_THE_DAY,
            number=cls.number,
        )

    def setUp(self):
        cache.clear()
        self.url = reverse("drip_optin", args=[self.program.form_slug])

    def sign_up(self, phone, **extra):
        data = {"name": "Paula", "phone": phone, "language": "pt", "consent": "on", **extra}
        return self.client.post(self.url, data)

    def zone_of(self, phone):
        return Contact.objects.get(organization=self.org, phone=phone).time_zone

    def test_the_form_offers_the_zones_with_automatic_first(self):
        page = self.client.get(self.url)
        self.assertContains(page, 'name="time_zone"')
        self.assertContains(page, "America/Sao_Paulo")
        self.assertContains(page, "America/Manaus")  # the organization's own
        self.assertContains(page, "Automatic, from my phone number")

    def test_without_a_choice_the_phones_country_decides(self):
        self.assertEqual(self.sign_up("(11) 98765-4321").status_code, 302)
        self.assertEqual(self.zone_of("+5511987654321"), "America/Sao_Paulo")
        self.sign_up("+34 612 345 678")
        self.assertEqual(self.zone_of("+34612345678"), "Europe/Madrid")
        self.sign_up("+52 55 1234 5678")
        self.assertEqual(self.zone_of("+525512345678"), "America/Mexico_City")

    def test_a_country_not_in_the_mapping_gets_the_organizations_zone(self):
        self.sign_up("+81 90 1234 5678")  # Japan
        self.assertEqual(self.zone_of("+819012345678"), "America/Manaus")

    def test_a_chosen_zone_wins_and_the_questions_follow_it(self):
        self.sign_up("(11) 98765-4321", time_zone="Europe/Lisbon")
        self.assertEqual(self.zone_of("+5511987654321"), "Europe/Lisbon")
        enrolment = DripEnrolment.objects.get(contact__phone="+5511987654321")
        from zoneinfo import ZoneInfo

        local = enrolment.next_due_at.astimezone(ZoneInfo("Europe/Lisbon"))
        self.assertEqual((local.hour, local.minute), (9, 0))

    def test_an_unknown_zone_is_a_form_error_and_nothing_is_stored(self):
        response = self.sign_up("(11) 98765-4321", time_zone="Mars/Olympus")
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "Mars/Olympus", status_code=400)
        self.assertFalse(Contact.objects.filter(phone="+5511987654321").exists())
