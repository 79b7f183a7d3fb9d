"""Shared setup for flow tests: Alice's clinic with a real local WhatsApp sandbox, and
customers writing through the real inbound service (the router included)."""

import copy

from django.test import override_settings

from flows import services
from inbox import services as inbox_services
from inbox.models import Message
from integrations.whatsapp import payloads
from integrations.whatsapp.sandbox import SandboxServer
from tests.assistants.helpers import inbound
from tests.base import BaseTestCase

CUSTOMER = "5511966660000"

# Start (keyword "menu") → Welcome → Menu (Limpeza / Clareamento) → Email question → Thanks
FIVE_NODES = {
    "nodes": [
        {"id": "start", "type": "start", "props": {"keywords": "menu, oi menu"}, "x": 0, "y": 0},
        {
            "id": "welcome",
            "type": "message",
            "props": {"label": "Welcome", "text": "Olá {{contact.first_name}}!"},
        },
        {
            "id": "menu",
            "type": "buttons",
            "props": {
                "label": "Menu",
                "text": "O que deseja?",
                "options": ["Limpeza", "Clareamento"],
            },
        },
        {
            "id": "email",
            "type": "question",
            "props": {
                "label": "Email",
                "text": "Qual o seu email?",
                "kind": "email",
                "save_to": "contact.email",
            },
        },
        {
            "id": "thanks",
            "type": "message",
            "props": {"text": "Obrigado! Vamos escrever para {{contact.email}}."},
        },
    ],
    "edges": [
        {"from": "start", "port": "next", "to": "welcome"},
        {"from": "welcome", "port": "next", "to": "menu"},
        {"from": "menu", "port": "opt1", "to": "email"},
        {"from": "menu", "port": "opt2", "to": "email"},
        {"from": "email", "port": "next", "to": "thanks"},
    ],
}


def five_nodes() -> dict:
    return copy.deepcopy(FIVE_NODES)


class FlowTestCase(BaseTestCase):
    @classmethod
    def setUpClass(cls):
        cls.sandbox = SandboxServer().start()
        cls._settings = override_settings(
            SANDBOX_URL=cls.sandbox.url, SANDBOX_WEBHOOK_BASE_URL="http://127.0.0.1:9"
        )
        cls._settings.enable()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls._settings.disable()
        cls.sandbox.stop()

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.number.waba_id = "102290129340398"  # the sandbox accepts Meta-shaped ids only
        cls.number.save(update_fields=["waba_id"])

    def setUp(self):
        super().setUp()
        from integrations import services as integration_services

        integration_services._registered_with_sandbox.clear()

    def published_flow(self, definition=None, name="Agendamento"):
        flow = services.flow_create(
            organization=self.org, name=name, user=self.admin, draft=definition or five_nodes()
        )
        with self.captureOnCommitCallbacks(execute=True):
            services.flow_publish(flow=flow, user=self.admin)
        flow.refresh_from_db()
        return flow

    def receive(self, text: str = "", *, wa_id=CUSTOMER, **kwargs) -> Message:
        with self.captureOnCommitCallbacks(execute=True):
            message = inbox_services.message_receive(
                number=self.number, inbound=inbound(self.number, wa_id, text, **kwargs)
            )
        return message

    def tap(self, reply_id: str, title: str, *, wa_id=CUSTOMER) -> Message:
        content = payloads.build_button_reply(reply_id=reply_id, title=title)
        return self.receive(wa_id=wa_id, message_type="interactive", content=content)

    def sent(self, chat) -> list[Message]:
        return list(
            Message.objects.filter(chat=chat, direction=Message.Direction.OUTBOUND).order_by("id")
        )
