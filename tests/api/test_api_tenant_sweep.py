"""An API key reaches only its own organization, on every endpoint and every method.

The sweep walks the ``/api/v1/`` URL table (``config.api.v1``), so a new endpoint is covered the day it is added.
"""

import json

from django.urls import URLPattern, URLResolver, reverse

from config import api
from inbox.models import Chat, Contact
from integrations.models import WebhookSubscription
from tests.api.helpers import ApiTestCase

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

    def foreign_kwargs(self):
        chat = {"code": self.secret_chat.code}
        number = {"code": self.other_number.code}
        contact = {"code": self.secret_chat.contact.code}
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
                body = {"status": "resolved", "type": "text", "text": {"body": "x"}}
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
        self.assertGreaterEqual(checked, 10)
        self.secret_chat.refresh_from_db()
        self.assertEqual(self.secret_chat.status, "open")
        self.assertTrue(Contact.objects.filter(pk=self.secret_chat.contact_id).exists())
        self.assertEqual(self.secret_chat.messages.count(), 1)
        self.assertTrue(
            WebhookSubscription.objects.filter(pk=self.foreign_subscription.pk).exists()
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
