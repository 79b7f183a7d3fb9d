"""An API key reaches only its own organization, on every endpoint and every method.

The sweep walks the ``/api/v1/`` URL table (``config.api.v1``), so a new endpoint is covered the day it is added.
"""

import json
from urllib.parse import urlencode

from django.urls import URLPattern, URLResolver, reverse

from accounts.models import API_RESOURCES
from appointments import services as appointment_services
from assistants import services as assistant_services
from assistants.models import Assistant, KnowledgeSource
from campaigns.models import Campaign, DripProgram, Segment
from config import api
from flows import services as flow_services
from inbox.models import Chat, Contact
from integrations.models import WebhookSubscription
from tests.api.helpers import ApiTestCase, key_for
from tests.appointments.helpers import at, make_agenda, next_weekday
from tests.campaigns.helpers import make_campaign, make_template
from tests.tenancy import cross_tenant_links, missing_kwargs, tenant_rows

METHODS = ("get", "post", "put", "patch", "delete")
SECRETS = (
    "Clínica Bob Secreta",
    "Zelda Secretcustomer",
    "segredo-do-bob",
    "5511911111111",
    "bob.example",
)


def walk(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield pattern


class ApiTenantSweepTests(ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.foreign_subscription = WebhookSubscription.objects.create(
            organization=cls.other_org, url="https://bob.example/hook", events=["chat.created"]
        )
        cls.foreign_assistant = Assistant(
            organization=cls.other_org, name="segredo-do-bob bot", instructions="segredo-do-bob"
        )
        assistant_services.assistant_save(assistant=cls.foreign_assistant)
        cls.foreign_source = KnowledgeSource.objects.create(
            organization=cls.other_org,
            assistant=cls.foreign_assistant,
            kind="text",
            title="segredo-do-bob",
            text="segredo-do-bob",
        )
        cls.foreign_segment = Segment.objects.create(
            organization=cls.other_org, name="segredo-do-bob segment"
        )
        foreign_agenda = make_agenda(cls.other_org)
        cls.foreign_appointment = appointment_services.appointment_book(
            service=foreign_agenda["cleaning"],
            professional=foreign_agenda["ana"],
            starts_at=at(next_weekday(2), 9),
            channel="staff",
            customer_name="segredo-do-bob",
        )
        cls.foreign_campaign = make_campaign(
            cls.other_org,
            cls.other_number,
            make_template(cls.other_number),
            name="segredo-do-bob campaign",
            segment=cls.foreign_segment,
        )
        cls.foreign_flow = flow_services.flow_create(
            organization=cls.other_org, name="segredo-do-bob flow"
        )
        cls.foreign_program = DripProgram.objects.create(
            organization=cls.other_org, name="segredo-do-bob drip", number=cls.other_number
        )

    def foreign_kwargs(self):
        chat = {"code": self.secret_chat.code}
        number = {"code": self.other_number.code}
        contact = {"code": self.secret_chat.contact.code}
        assistant = {"code": self.foreign_assistant.code}
        campaign = {"code": self.foreign_campaign.code}
        appointment = {"code": self.foreign_appointment.code}
        return {
            "api_number_health": number,
            "api_templates_sync": number,
            "api_contact": contact,
            "api_contact_opt_in": contact,
            "api_contact_opt_out": contact,
            "api_chat": chat,
            "api_chat_assign": chat,
            "api_chat_status": chat,
            "api_chat_ai": chat,
            "api_chat_tags": chat,
            "api_chat_messages": chat,
            "api_webhook": {"code": self.foreign_subscription.code},
            "api_contact_export": contact,
            "api_contact_erase": contact,
            "api_assistant": assistant,
            "api_assistant_sources": assistant,
            "api_assistant_source": {**assistant, "source_code": self.foreign_source.code},
            "api_assistant_ask": assistant,
            "api_campaign": campaign,
            "api_campaign_schedule": campaign,
            "api_campaign_pause": campaign,
            "api_campaign_resume": campaign,
            "api_campaign_cancel": campaign,
            "api_campaign_stats": campaign,
            "api_campaign_recipients": campaign,
            "api_segment": {"code": self.foreign_segment.code},
            "api_appointment": appointment,
            "api_appointment_reschedule": appointment,
            "api_appointment_cancel": appointment,
            "api_flow": {"code": self.foreign_flow.code},
            "api_flow_export": {"code": self.foreign_flow.code},
            "api_flow_start": {"code": self.foreign_flow.code},
            "api_drip_enrolments": {"code": self.foreign_program.code},
        }

    def test_every_object_endpoint_answers_404_for_another_organization(self):
        mapping = self.foreign_kwargs()
        checked = 0
        for pattern in walk(api.v1):
            if not pattern.pattern.converters:
                continue
            self.assertIn(pattern.name, mapping, f"Add {pattern.name} to the API tenant sweep")
            url = reverse(pattern.name, kwargs=mapping[pattern.name])
            for method in METHODS:
                body = {
                    "status": "resolved",
                    "type": "text",
                    "text": {"body": "x"},
                    "confirm": True,
                    "question": "segredo?",
                    "name": "Hijacked",
                    "instructions": "Hijacked",
                    "kind": "faq",
                    "faq": [{"question": "q", "answer": "a"}],
                }
                response = getattr(self.client, method)(
                    url,
                    *([] if method == "get" else [json.dumps(body)]),
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {self.secret}",
                )
                with self.subTest(url=url, method=method):
                    self.assertIn(response.status_code, (404, 405), response.content)
                    self.assertIn("error", response.json())
            checked += 1
        self.assertGreaterEqual(checked, 25)
        self.secret_chat.refresh_from_db()
        self.assertEqual(self.secret_chat.status, "open")
        self.assertTrue(Contact.objects.filter(pk=self.secret_chat.contact_id).exists())
        self.assertEqual(self.secret_chat.messages.count(), 1)
        self.assertTrue(
            WebhookSubscription.objects.filter(pk=self.foreign_subscription.pk).exists()
        )
        contact = Contact.objects.get(pk=self.secret_chat.contact_id)
        self.assertEqual(contact.name, "Zelda Secretcustomer")  # not erased
        assistant = Assistant.objects.get(pk=self.foreign_assistant.pk)
        self.assertEqual(
            (assistant.name, assistant.instructions), ("segredo-do-bob bot", "segredo-do-bob")
        )
        self.assertEqual(KnowledgeSource.objects.filter(assistant=assistant).count(), 1)
        campaign = Campaign.objects.get(pk=self.foreign_campaign.pk)
        self.assertEqual(campaign.status, Campaign.Status.DRAFT)
        self.assertEqual(
            Segment.objects.get(pk=self.foreign_segment.pk).name, "segredo-do-bob segment"
        )
        self.foreign_appointment.refresh_from_db()
        self.assertEqual(self.foreign_appointment.status, "booked")

    def test_no_list_shows_another_organizations_data(self):
        for pattern in walk(api.v1):
            if pattern.pattern.converters or pattern.name in ("api_schema", "api_docs"):
                continue
            params = {}
            if pattern.name == "api_availability":  # needs a service: ask about Bob's
                params = {"service": self.foreign_appointment.service.code}
                self.assertEqual(self.api("get", reverse(pattern.name), params).status_code, 404)
                continue
            response = self.api("get", reverse(pattern.name), params)
            with self.subTest(url=reverse(pattern.name)):
                self.assertIn(response.status_code, (200, 405))
                for secret in SECRETS:
                    self.assertNotIn(secret, response.content.decode())

    def test_sending_to_another_organizations_contact_is_impossible(self):
        response = self.api(
            "post",
            reverse("api_messages_send"),
            {"contact": str(self.secret_chat.contact.code), "type": "text", "text": {"body": "x"}},
        )
        self.assertEqual(response.status_code, 400)
        response = self.api(
            "post",
            reverse("api_messages_send"),
            {
                "to": "+5511987654321",
                "number": str(self.other_number.code),
                "type": "text",
                "text": {"body": "x"},
            },
        )
        self.assertEqual(response.status_code, 400)
        self.assertEqual(Chat.objects.filter(organization=self.other_org).count(), 1)

    def test_another_organizations_key_sees_nothing_of_ours(self):
        chats = self.api("get", reverse("api_chats"), secret=self.foreign_secret).json()["results"]
        self.assertEqual([c["id"] for c in chats], [str(self.secret_chat.code)])

    # --- Every key scope; foreign ids in the path, the query string and the body -------------

    def call(self, method, url, body=None, *, secret=None):
        return getattr(self.client, method)(
            url,
            *([] if method == "get" else [json.dumps(body or {})]),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret or self.secret}",
        )

    def test_every_key_scope_gets_the_same_answer_for_another_organizations_object_as_for_none(
        self,
    ):
        keys = {
            "all": self.secret,
            "read": key_for(self.org, [f"{r}:read" for r in API_RESOURCES], name="Read"),
            "none": key_for(self.org, [], name="Nothing"),
        }
        mapping = self.foreign_kwargs()
        before = tenant_rows(self.other_org)
        for scope, secret in keys.items():
            for pattern in walk(api.v1):
                if not pattern.pattern.converters or pattern.name not in mapping:
                    continue
                kwargs = mapping[pattern.name]
                url = reverse(pattern.name, kwargs=kwargs)
                nowhere = reverse(pattern.name, kwargs=missing_kwargs(kwargs))
                for method in METHODS:
                    response = self.call(method, url, {"confirm": True}, secret=secret)
                    expected = self.call(method, nowhere, {"confirm": True}, secret=secret)
                    with self.subTest(scope=scope, url=url, method=method):
                        # 403 only for a scope the key lacks, whatever the object.
                        self.assertIn(response.status_code, (403, 404, 405))
                        self.assertEqual(response.status_code, expected.status_code)
                        for secret_text in SECRETS:
                            self.assertNotIn(secret_text, response.content.decode())
        self.assertEqual(tenant_rows(self.other_org), before)

    def foreign_bodies(self) -> list[dict]:
        """Bodies naming organization B's objects in every field our endpoints read ids from
        (and a phone of our own, so a send may go as far as choosing a number)."""
        contact = str(self.secret_chat.contact.code)
        ids = {
            "contact": contact,
            "contacts": [contact],
            "add_contacts": [contact],
            "remove_contacts": [contact],
            "number": str(self.other_number.code),
            "template": str(self.foreign_campaign.template.code),
            "segment": str(self.foreign_segment.code),
            "campaign": str(self.foreign_campaign.code),
            "chat": str(self.secret_chat.code),
            "assistant": str(self.foreign_assistant.code),
            "reply_to": str(self.secret_chat.messages.get().code),
            "assignee": self.outsider.email,
            "filters": {
                "engagement": {"state": "replied", "campaign": str(self.foreign_campaign.code)}
            },
            "name": "Hijack",
            "kind": "static",
            "type": "text",
            "text": {"body": "Hijack"},
            "status": "resolved",
            "tags": ["hijack"],
            "confirm": True,
        }
        by_phone = {
            "to": "+5511987650000",
            "phone": "+5511987650000",
            "number": str(self.other_number.code),
            "type": "text",
            "text": {"body": "Hijack"},
        }
        return [ids, by_phone]

    def own_kwargs(self) -> dict:
        """Endpoints of our own objects that take other objects' ids in their bodies."""
        chat = {"code": self.other_chat.code}
        segment = Segment.objects.create(organization=self.org, name="Nossa lista", kind="static")
        campaign = make_campaign(self.org, self.number, make_template(self.number), name="Nossa")
        return {
            **dict.fromkeys(
                ("api_chat_assign", "api_chat_messages", "api_chat_tags", "api_chat_status"), chat
            ),
            "api_contact": {"code": self.other_chat.contact.code},
            "api_segment": {"code": segment.code},
            "api_campaign": {"code": campaign.code},
        }

    def test_foreign_ids_in_query_strings_and_bodies_reach_nothing(self):
        before = tenant_rows(self.other_org)
        own = self.own_kwargs()
        bodies = self.foreign_bodies()
        query = {k: v for k, v in bodies[0].items() if isinstance(v, str)} | {"q": "Zelda"}
        checked = 0
        for pattern in walk(api.v1):
            if pattern.name in ("api_schema", "api_docs", "api_media_upload"):
                continue  # media uploads: their own sweep
            if pattern.pattern.converters:
                if pattern.name not in own:
                    continue
                url = reverse(pattern.name, kwargs=own[pattern.name])
            else:
                url = reverse(pattern.name)
            responses = [self.call("get", f"{url}?{urlencode(query)}")]
            for body in bodies:
                for method in ("post", "put", "patch"):
                    responses.append(self.call(method, f"{url}?{urlencode(query)}", body))
            for response in responses:
                with self.subTest(url=url, method=response.request["REQUEST_METHOD"]):
                    self.assertLess(response.status_code, 500, response.content)
                    for secret in SECRETS:
                        self.assertNotIn(secret, response.content.decode())
            checked += 1
        self.assertGreaterEqual(checked, 15)
        self.assertEqual(cross_tenant_links(self.org, self.other_org), [])
        self.assertEqual(tenant_rows(self.other_org), before)
