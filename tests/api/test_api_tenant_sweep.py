"""An API key reaches only its own organization, on every endpoint and every method.

The sweep walks the ``/api/v1/`` URL table (``config.api.v1``), so a new endpoint is covered the day it is added.
"""

import json

from django.urls import URLPattern, URLResolver, reverse

from assistants import services as assistant_services
from assistants.models import Assistant, KnowledgeSource
from campaigns.models import Campaign, Segment
from config import api
from flows import services as flow_services
from inbox.models import Chat, Contact
from integrations.models import WebhookSubscription
from tests.api.helpers import ApiTestCase
from tests.campaigns.helpers import make_campaign, make_template

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

    def foreign_kwargs(self):
        chat = {"code": self.secret_chat.code}
        number = {"code": self.other_number.code}
        contact = {"code": self.secret_chat.contact.code}
        assistant = {"code": self.foreign_assistant.code}
        campaign = {"code": self.foreign_campaign.code}
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
            "api_flow": {"code": self.foreign_flow.code},
            "api_flow_export": {"code": self.foreign_flow.code},
            "api_flow_start": {"code": self.foreign_flow.code},
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

    def test_no_list_shows_another_organizations_data(self):
        for pattern in walk(api.v1):
            if pattern.pattern.converters or pattern.name in ("api_schema", "api_docs"):
                continue
            response = self.api("get", reverse(pattern.name))
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
