"""The sandbox phone page shows the customer's side of the conversation: what they sent, with
whether Porfin's webhook took it (a refused message shows as failed, with the reason, never as
"Sent"), and what the business sent them, whose reply buttons and list menus can be tapped."""

import time

from django.urls import reverse

from integrations.providers import provider_for
from tests.integrations.conftest import CUSTOMER_WA_ID
from tests.integrations.test_webhook_inbound import SandboxTestCase


class SandboxPhoneTests(SandboxTestCase):
    def setUp(self):
        super().setUp()
        self.client.force_login(self.operator)  # the phone is a tool of anyone on chats

    def page(self):
        return self.client.get(
            reverse("sandbox_phone"), {"number": self.number.pk, "phone": CUSTOMER_WA_ID}
        )

    def write(self, **fields):
        data = {
            "number": self.number.pk,
            "phone": CUSTOMER_WA_ID,
            "profile_name": "Carla",
            "type": "text",
            **fields,
        }
        return self.client.post(reverse("sandbox_phone"), data, follow=True)

    def wait_for_state(self, state, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entries = self.sandbox.app.messages(self.number.phone_number_id, direction="inbound")
            if entries and (entries[-1].get("delivery") or {}).get("state") == state:
                return entries[-1]
            time.sleep(0.02)
        raise AssertionError(f"the last customer message never became {state!r}")

    def test_a_message_the_webhook_refuses_shows_as_failed_with_the_reason(self):
        self.receiver.status_codes = [404, 404]  # the first attempt and its one retry
        response = self.write(text="Alguém aí?")
        self.assertContains(response, "refused the message (HTTP 404)")
        self.assertNotContains(response, "Sent as")
        entry = self.wait_for_state("failed")
        page = self.page()
        bubble = f'data-state="failed" data-wamid="{entry["wamid"]}"'
        self.assertContains(page, bubble)
        self.assertContains(page, "Failed after 2 attempts")
        self.assertContains(page, "HTTP 404")
        self.assertContains(page, "Alguém aí?")

    def test_a_message_the_webhook_takes_shows_as_sent(self):
        response = self.write(text="Oi")
        self.assertContains(response, "Sent as 5511977776666")
        entry = self.wait_for_state("delivered")
        self.assertContains(self.page(), f'data-state="delivered" data-wamid="{entry["wamid"]}"')

    def test_the_business_list_menu_and_buttons_show_and_a_tap_answers_them(self):
        self.write(text="menu")
        provider = provider_for(self.number)
        menu = provider.send(
            to=CUSTOMER_WA_ID,
            message_type="interactive",
            content={
                "type": "list",
                "body": {"text": "Escolha um horário"},
                "action": {
                    "button": "Ver horários",
                    "sections": [
                        {
                            "title": "Manhã",
                            "rows": [
                                {"id": "slot-9", "title": "09:00", "description": "Dra. Ana"},
                                {"id": "slot-10", "title": "10:00"},
                            ],
                        }
                    ],
                },
            },
        )
        provider.send(
            to=CUSTOMER_WA_ID,
            message_type="interactive",
            content={
                "type": "button",
                "body": {"text": "Confirma?"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "yes", "title": "Sim"}},
                        {"type": "reply", "reply": {"id": "no", "title": "Não"}},
                    ]
                },
            },
        )
        page = self.page()
        self.assertContains(page, "Escolha um horário")
        self.assertContains(page, "Ver horários")
        self.assertContains(page, 'data-reply-id="slot-9"')
        self.assertContains(page, "Dra. Ana")
        self.assertContains(page, 'data-reply-id="yes"')
        self.assertContains(page, "Confirma?")

        self.write(type="list_reply", reply_id="slot-9", text="09:00", context_id=menu)
        received = self.receiver.wait_for(
            lambda items: any(b"slot-9" in item.body for item in items)
        )
        body = next(item for item in received if b"slot-9" in item.body).json()
        message = body["entry"][0]["changes"][0]["value"]["messages"][0]
        self.assertEqual(message["interactive"]["list_reply"]["id"], "slot-9")
        self.assertEqual(message["context"]["id"], menu)
        self.assertContains(self.page(), "09:00")

    def test_the_conversation_fragment_refreshes_alone(self):
        self.write(text="Olá fragmento")
        response = self.client.get(
            reverse("sandbox_phone"),
            {"number": self.number.pk, "phone": CUSTOMER_WA_ID, "fragment": "1"},
        )
        self.assertContains(response, "Olá fragmento")
        self.assertNotContains(response, "<html")
