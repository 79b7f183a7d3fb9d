"""Shared setup: an assistant wired to a real local OpenAI stub, and a real WhatsApp sandbox."""

import itertools

from django.test import override_settings

from assistants import services
from assistants.models import AISettings, Assistant
from inbox import services as inbox_services
from inbox.models import Chat
from integrations.whatsapp import payloads
from integrations.whatsapp.sandbox import SandboxServer
from tests.assistants.openai_stub import OpenAIStub
from tests.base import BaseTestCase

_wamids = itertools.count(1)


def inbound(
    number, wa_id: str, text: str = "", *, name="Maria Cliente", message_type="text", content=None
):
    """A parsed customer message, built with the same payload builders the sandbox uses."""
    body = payloads.build_webhook(
        "waba-test",
        [
            payloads.build_messages_change(
                phone_number_id=number.phone_number_id,
                display_phone_number="551140000000",
                contacts=[payloads.build_contact(wa_id=wa_id, profile_name=name)],
                messages=[
                    payloads.build_inbound_message(
                        wamid=f"wamid.test.{next(_wamids)}",
                        from_wa_id=wa_id,
                        message_type=message_type,
                        content=content if content is not None else payloads.build_text(text),
                    )
                ],
            )
        ],
    )
    (event,) = payloads.parse_webhook(body)
    return event


class AssistantTestCase(BaseTestCase):
    """Alice's clinic with an assistant on its number, its AI pointed at the stub."""

    timeout = 2.0

    @classmethod
    def setUpClass(cls):
        cls.stub = OpenAIStub().start()
        cls.sandbox = SandboxServer().start()
        cls._settings = override_settings(
            SANDBOX_URL=cls.sandbox.url,
            SANDBOX_WEBHOOK_BASE_URL="http://127.0.0.1:9",
            ASSISTANT_DEBOUNCE_SECONDS=0,
        )
        cls._settings.enable()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls._settings.disable()
        cls.stub.stop()
        cls.sandbox.stop()

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.number.waba_id = "102290129340398"  # the sandbox accepts Meta-shaped ids only
        cls.number.save(update_fields=["waba_id"])
        AISettings.objects.create(
            organization=cls.org,
            api_key="sk-test",
            base_url="http://placeholder.invalid/v1",
            timeout_seconds=cls.timeout,
        )
        cls.assistant = Assistant(
            organization=cls.org,
            name="Sofia",
            instructions="SECRET-PROMPT-7731: you answer for Clínica Alice.",
            model="gpt-4o-mini",
            max_turns_without_resolution=0,
            enable_for_new_chats=False,
        )
        services.assistant_save(assistant=cls.assistant, user=cls.admin, numbers=[cls.number])

    def setUp(self):
        super().setUp()
        from integrations import services as integration_services

        integration_services._registered_with_sandbox.clear()
        AISettings.objects.filter(organization=self.org).update(base_url=self.stub.base_url)
        self.stub.queue.clear()
        self.stub.requests.clear()
        self.stub.delay = 0.0

    def receive(self, text: str, *, wa_id="5511977770000", **kwargs):
        """A customer message through the real inbound service, running its after-commit work."""
        with self.captureOnCommitCallbacks(execute=True):
            message = inbox_services.message_receive(
                number=self.number, inbound=inbound(self.number, wa_id, text, **kwargs)
            )
        return message

    def ai_chat(self, wa_id="5511977770000") -> Chat:
        """Open a chat (first message without AI), then turn its AI on."""
        message = self.receive("oi", wa_id=wa_id)
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_ai(chat=message.chat, enabled=True, actor=self.admin)
        return Chat.objects.get(pk=message.chat_id)
