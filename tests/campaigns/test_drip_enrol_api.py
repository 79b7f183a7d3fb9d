"""Question of the day, loose ends: the program refuses a fallback template without a variable
for the question; ``POST /api/v1/drips/<id>/enrolments/`` enrols a contact (scopes, schema,
clear 400s and 409s)."""

from django.urls import reverse

from campaigns.models import ConsentEvent, DripEnrolment, DripProgram, DripQuestion
from inbox.models import Contact
from tests.api.helpers import ApiTestCase, key_for
from tests.base import BaseTestCase
from tests.campaigns.helpers import make_template


class ProgramTemplateTests(BaseTestCase):
    def post(self, template, kind="qotd"):
        self.login(self.manager)
        return self.client.post(
            reverse("drip_create"),
            {
                "name": "Pergunta",
                "kind": kind,
                "is_active": "on",
                "number": self.number.pk,
                "send_time": "09:00",
                "template": template.pk,
                "form_enabled": "on",
            },
        )

    def test_a_fallback_template_without_a_variable_is_refused(self):
        response = self.post(make_template(self.number, "welcome"))  # no {{1}}
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "no variable for the question", status_code=400)
        self.assertFalse(DripProgram.objects.filter(organization=self.org).exists())

    def test_a_template_with_a_variable_is_accepted(self):
        response = self.post(make_template(self.number, "appointment_reminder"))
        self.assertEqual(response.status_code, 302)
        self.assertTrue(DripProgram.objects.filter(organization=self.org).exists())

    def test_a_step_program_may_use_any_template(self):
        response = self.post(make_template(self.number, "welcome"), kind="steps")
        self.assertEqual(response.status_code, 302)


class DripEnrolApiTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.program = DripProgram.objects.create(
            organization=cls.org,
            name="Pergunta do dia",
            kind=DripProgram.Kind.QUESTION_OF_THE_DAY,
            number=cls.number,
            topics="higiene, ortodontia",
        )
        DripQuestion.objects.create(
            organization=cls.org, program=cls.program, text="?", topic="higiene", rubric="x"
        )

    def url(self, program=None):
        return reverse("api_drip_enrolments", args=[(program or self.program).code])

    def test_it_enrols_by_phone_creating_the_contact_with_consent_and_zone(self):
        response = self.api(
            "post",
            self.url(),
            {"phone": "+34612345678", "name": "Lucía", "topic": "higiene", "consent": True},
        )
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        contact = Contact.objects.get(organization=self.org, phone="+34612345678")
        self.assertEqual(body["contact"]["id"], str(contact.code))
        self.assertEqual(
            (body["status"], body["topic"], body["source"]), ("active", "higiene", "api")
        )
        self.assertEqual(body["time_zone"], "Europe/Madrid")  # from the phone's country
        self.assertIsNotNone(body["next_due_at"])
        self.assertEqual(contact.opt_in, "opted_in")
        self.assertTrue(ConsentEvent.objects.filter(contact=contact, source="api").exists())
        # Again: the same enrolment, 200.
        again = self.api("post", self.url(), {"phone": "+34612345678", "topic": "ortodontia"})
        self.assertEqual(again.status_code, 200)
        self.assertEqual(again.json()["id"], body["id"])
        self.assertEqual(DripEnrolment.objects.get(contact=contact).topic, "ortodontia")

    def test_it_enrols_an_existing_contact_by_id_with_a_chosen_zone(self):
        contact = self.agent_chat.contact
        response = self.api(
            "post",
            self.url(),
            {"contact": str(contact.code), "topic": "higiene", "time_zone": "America/Manaus"},
        )
        self.assertEqual(response.status_code, 201, response.content)
        contact.refresh_from_db()
        self.assertEqual(contact.time_zone, "America/Manaus")

    def test_bad_input_is_a_clear_400_and_nothing_is_stored(self):
        cases = [
            ({"topic": "higiene"}, "contact"),  # neither contact nor phone
            ({"phone": "+5511987654321", "contact": str(self.agent_chat.contact.code)}, "contact"),
            ({"phone": "12", "topic": "higiene"}, "phone"),
            ({"phone": "+5511987654321", "topic": "culinária"}, "topic"),
            ({"phone": "+5511987654321"}, "topic"),  # the program has topics
            ({"phone": "+5511987654321", "topic": "higiene", "time_zone": "Mars/X"}, "time_zone"),
            ({"phone": "+5511987654321", "topic": "higiene", "language": "fr"}, "language"),
            ({"phone": "+5511987654321", "topic": "higiene", "extra": 1}, "extra"),
            ({"contact": "0b5c0c1e-0000-4000-8000-000000000000", "topic": "higiene"}, "contact"),
        ]
        for data, field in cases:
            with self.subTest(data=data):
                response = self.api("post", self.url(), data)
                self.assertEqual(response.status_code, 400, response.content)
                self.assertIn(field, response.json()["error"]["details"])
        self.assertFalse(DripEnrolment.objects.exists())
        self.assertFalse(Contact.objects.filter(phone="+5511987654321").exists())

    def test_an_opted_out_contact_or_a_paused_program_is_a_409(self):
        contact = self.agent_chat.contact
        Contact.objects.filter(pk=contact.pk).update(opt_in="opted_out")
        data = {"contact": str(contact.code), "topic": "higiene"}
        response = self.api("post", self.url(), data)
        self.assertEqual(response.status_code, 409)
        self.assertIn("opted out", response.json()["error"]["message"])
        self.assertFalse(DripEnrolment.objects.exists())
        DripProgram.objects.filter(pk=self.program.pk).update(is_active=False)
        response = self.api("post", self.url(), {**data, "consent": True})
        self.assertEqual(response.status_code, 409)
        self.assertFalse(DripEnrolment.objects.exists())

    def test_it_needs_the_campaigns_write_scope(self):
        data = {"phone": "+5511987654321", "topic": "higiene"}
        read_only = key_for(self.org, scopes=["campaigns:read"], name="ro")
        self.assertEqual(self.api("post", self.url(), data, secret=read_only).status_code, 403)
        other = key_for(self.org, scopes=["contacts:write"], name="contacts")
        self.assertEqual(self.api("post", self.url(), data, secret=other).status_code, 403)
        writer = key_for(self.org, scopes=["campaigns:write"], name="rw")
        self.assertEqual(self.api("post", self.url(), data, secret=writer).status_code, 201)

    def test_another_organizations_program_is_a_404(self):
        theirs = DripProgram.objects.create(
            organization=self.other_org, name="B", number=self.other_number
        )
        data = {"phone": "+5511987654321"}
        self.assertEqual(self.api("post", self.url(theirs), data).status_code, 404)

    def test_the_schema_documents_it(self):
        schema = self.client.get("/api/schema/?format=json").json()
        operation = schema["paths"]["/api/v1/drips/{code}/enrolments/"]["post"]
        self.assertEqual(operation["operationId"], "drip_enrolments_create")
        self.assertIn("201", operation["responses"])
        self.assertIn("409", operation["responses"])
