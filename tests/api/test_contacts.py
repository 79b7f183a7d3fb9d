from django.urls import reverse

from campaigns.models import ConsentEvent
from inbox.models import Contact
from reports.models import AuditEvent
from tests.api.helpers import ApiTestCase


class ContactApiTests(ApiTestCase):
    def test_it_creates_a_contact_with_an_e164_phone(self):
        response = self.api(
            "post",
            reverse("api_contacts"),
            {"phone": "+55 11 98765-4321", "name": "Ana", "tags": ["lead"]},
        )
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["phone"], "+5511987654321")
        contact = Contact.objects.get(code=response.json()["id"])
        self.assertEqual((contact.organization, contact.wa_id), (self.org, "5511987654321"))

    def test_it_answers_409_for_a_phone_that_exists(self):
        response = self.api(
            "post", reverse("api_contacts"), {"phone": self.other_chat.contact.phone}
        )
        self.assertEqual(response.status_code, 409)
        self.assertEqual(response.json()["error"]["code"], "contact_exists")

    def test_upsert_creates_then_updates(self):
        first = self.api(
            "post", reverse("api_contact_upsert"), {"phone": "+5511987654321", "name": "Ana"}
        )
        self.assertEqual(first.status_code, 201)
        second = self.api(
            "post",
            reverse("api_contact_upsert"),
            {"phone": "+5511987654321", "email": "ana@x.test"},
        )
        self.assertEqual(second.status_code, 200)
        self.assertEqual((second.json()["name"], second.json()["email"]), ("Ana", "ana@x.test"))
        self.assertEqual(Contact.objects.filter(phone="+5511987654321").count(), 1)

    def test_upsert_never_touches_another_organizations_contact(self):
        phone = self.secret_chat.contact.phone
        response = self.api(
            "post", reverse("api_contact_upsert"), {"phone": phone, "name": "Hijack"}
        )
        self.assertEqual(response.status_code, 201)
        self.secret_chat.contact.refresh_from_db()
        self.assertEqual(self.secret_chat.contact.name, "Zelda Secretcustomer")

    def test_it_updates_and_deletes(self):
        code = self.other_chat.contact.code
        response = self.api("patch", reverse("api_contact", args=[code]), {"stage": "customer"})
        self.assertEqual(response.json()["stage"], "customer")
        response = self.api("delete", reverse("api_contact", args=[code]))
        self.assertEqual(response.status_code, 204)
        # DELETE is the audited LGPD erasure: the person is gone, the anonymous counts stay.
        contact = Contact.objects.get(code=code)
        self.assertTrue(contact.name.startswith("erased-"))
        self.assertNotIn("5511900000002", contact.phone + contact.wa_id)
        self.assertEqual(contact.chats.get().messages.exclude(text="").count(), 0)
        event = AuditEvent.objects.get(action=AuditEvent.Action.CONTACT_ERASED)
        self.assertEqual((event.organization, event.target_id), (self.org, str(code)))
        self.assertEqual(self.api("get", reverse("api_contact", args=[code])).status_code, 404)
        self.assertEqual(self.api("delete", reverse("api_contact", args=[code])).status_code, 404)
        listed = self.api("get", reverse("api_contacts")).json()["results"]
        self.assertNotIn(str(code), [row["id"] for row in listed])

    def test_opt_out_and_in_are_recorded_in_the_consent_ledger(self):
        code = self.other_chat.contact.code
        response = self.api(
            "post", reverse("api_contact_opt_out", args=[code]), {"detail": "asked by phone"}
        )
        self.assertEqual(response.json()["opt_in"], "opted_out")
        self.api("post", reverse("api_contact_opt_in", args=[code]))
        events = ConsentEvent.objects.filter(contact__code=code).order_by("id")
        self.assertEqual([(e.opted_in, e.source) for e in events], [(False, "api"), (True, "api")])

    def test_bulk_import_is_all_or_nothing(self):
        bad = self.api(
            "post",
            reverse("api_contact_import"),
            {"contacts": [{"phone": "+5511987650001"}, {"phone": "123"}]},
        )
        self.assertEqual(bad.status_code, 422)
        self.assertEqual(bad.json()["error"]["details"]["rows"][0]["row"], 2)
        self.assertFalse(Contact.objects.filter(phone="+5511987650001").exists())
        good = self.api(
            "post",
            reverse("api_contact_import"),
            {
                "contacts": [
                    {
                        "phone": "+5511987650001",
                        "name": "Bia",
                        "opt_in": True,
                        "attributes": {"plan": "gold"},
                    },
                    {"phone": self.other_chat.contact.phone, "tags": ["vip"]},
                ]
            },
        )
        self.assertEqual(good.json(), {"created": 1, "updated": 1, "merged": 0})
        bia = Contact.objects.get(organization=self.org, phone="+5511987650001")
        self.assertEqual((bia.opt_in, bia.attributes), ("opted_in", {"plan": "gold"}))

    def test_it_lists_and_filters_contacts(self):
        self.api("post", reverse("api_contact_opt_out", args=[self.other_chat.contact.code]))
        response = self.api("get", reverse("api_contacts"), {"opt_in": "opted_out"})
        self.assertEqual(
            [c["id"] for c in response.json()["results"]], [str(self.other_chat.contact.code)]
        )
        everyone = self.api("get", reverse("api_contacts")).json()["results"]
        self.assertEqual(len(everyone), 2)
