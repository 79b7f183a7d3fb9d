"""A retried send never sends twice, even when the retries race each other."""

import hashlib
import json
import threading
from datetime import timedelta

from django.db import connection
from django.test import Client, TransactionTestCase, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from accounts.models import ApiIdempotencyKey
from inbox.models import Chat, Message
from integrations import services as channel
from integrations.whatsapp.sandbox import SandboxServer
from tests.api.helpers import key_for
from tests.base import make_chat, make_org

RETRIES = 8


class IdempotentSendTests(TransactionTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sandbox = SandboxServer().start()
        cls._settings = override_settings(
            SANDBOX_URL=cls.sandbox.url, SANDBOX_WEBHOOK_BASE_URL="http://127.0.0.1:9"
        )
        cls._settings.enable()

    @classmethod
    def tearDownClass(cls):
        cls._settings.disable()
        cls.sandbox.stop()
        super().tearDownClass()

    def setUp(self):
        self.sandbox.app.reset()
        channel._registered_with_sandbox.clear()
        self.org, self.number = make_org("Clínica Idem", "clinica-idem", "333")
        self.chat = make_chat(self.org, self.number, "5511900000009", "Retry Customer")
        Chat.objects.filter(pk=self.chat.pk).update(
            window_expires_at=timezone.now() + timedelta(hours=3)
        )
        self.secret = key_for(self.org)
        self.url = reverse("api_chat_messages", args=[self.chat.code])

    def post(self, body, key="order-42-confirmation"):
        return Client().post(
            self.url,
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.secret}",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    def test_concurrent_retries_send_once(self):
        body = {"type": "text", "text": {"body": "Sua consulta está confirmada"}}
        barrier = threading.Barrier(RETRIES)
        responses = []

        def retry():
            try:
                barrier.wait()
                responses.append(self.post(body))
            finally:
                connection.close()

        threads = [threading.Thread(target=retry) for _ in range(RETRIES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        outbound = Message.objects.filter(chat=self.chat, direction="out")
        self.assertEqual(outbound.count(), 1)
        # Each retry waited for the first and answered what it sent.
        self.assertEqual({r.status_code for r in responses}, {201})
        sent = outbound.get()
        for response in responses:
            self.assertEqual(response.json()["id"], str(sent.code))
        replayed = [r for r in responses if r.headers.get("Idempotent-Replayed") == "true"]
        self.assertEqual(len(replayed), RETRIES - 1)
        self.assertEqual(len(self.sandbox.app.messages("333", direction="outbound")), 1)

        # A later retry replays the stored answer.
        replay = self.post(body)
        self.assertEqual(replay.status_code, 201)
        self.assertEqual(replay["Idempotent-Replayed"], "true")
        self.assertEqual(replay.json()["id"], str(sent.code))
        self.assertEqual(outbound.count(), 1)

    def test_the_same_key_with_another_body_is_refused(self):
        self.assertEqual(self.post({"type": "text", "text": {"body": "A"}}).status_code, 201)
        response = self.post({"type": "text", "text": {"body": "B"}})
        self.assertEqual(response.status_code, 422)
        self.assertEqual(response.json()["error"]["code"], "idempotency_key_reused")

    def test_a_refused_send_can_be_retried_with_the_same_key(self):
        Chat.objects.filter(pk=self.chat.pk).update(window_expires_at=None)
        body = {"type": "text", "text": {"body": "Oi"}}
        self.assertEqual(self.post(body).status_code, 422)
        Chat.objects.filter(pk=self.chat.pk).update(
            window_expires_at=timezone.now() + timedelta(hours=1)
        )
        self.assertEqual(self.post(body).status_code, 201)

    def test_a_retry_after_the_window_closed_replays_the_first_answer(self):
        """The retry's send would now be refused (the key is stored after the work): the
        stored answer wins, and the refused retry leaves nothing behind."""
        body = {"type": "text", "text": {"body": "Confirmado"}}
        first = self.post(body)
        self.assertEqual(first.status_code, 201)
        Chat.objects.filter(pk=self.chat.pk).update(window_expires_at=None)
        retry = self.post(body)
        self.assertEqual(retry.status_code, 201)
        self.assertEqual(retry["Idempotent-Replayed"], "true")
        self.assertEqual(retry.json(), first.json())
        # Another body under that key is still refused as a reuse, not as a closed window.
        other = self.post({"type": "text", "text": {"body": "Outro"}})
        self.assertEqual(other.status_code, 422)
        self.assertEqual(other.json()["error"]["code"], "idempotency_key_reused")
        self.assertEqual(Message.objects.filter(chat=self.chat, direction="out").count(), 1)
        self.assertEqual(ApiIdempotencyKey.objects.filter(organization=self.org).count(), 1)

    def test_a_retry_spelling_the_same_body_otherwise_replays(self):
        """The same JSON, with its keys in another order, other spacing and escaped accents
        (as another client library would write it), is the same request."""
        first = self.post(
            {"type": "text", "text": {"body": "Confirmação às 10h", "preview_url": False}}
        )
        self.assertEqual(first.status_code, 201)
        retry = Client().post(
            self.url,
            '{ "text" : {"preview_url":false, "body":"Confirma\\u00e7\\u00e3o \\u00e0s 10h"},"type":"text"}',
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.secret}",
            HTTP_IDEMPOTENCY_KEY="order-42-confirmation",
        )
        self.assertEqual(retry.status_code, 201)
        self.assertEqual(retry["Idempotent-Replayed"], "true")
        self.assertEqual(retry.json()["id"], first.json()["id"])
        self.assertEqual(Message.objects.filter(chat=self.chat, direction="out").count(), 1)

    def test_a_key_stored_before_the_digest_change_still_replays(self):
        """A key claimed before a deploy replays after it: its request hash, made by rendering
        the body's data to JSON and parsing it back before dumping it sorted (the code before
        issue 21's last change), is the one made now from the parsed JSON."""
        body = {"type": "text", "text": {"body": "Até amanhã, às 9h30 🙂", "preview_url": True}}
        rendered = json.dumps(json.loads(JSONRenderer().render(body)), sort_keys=True)
        stored = {"id": "00000000-0000-4000-8000-000000000001", "status": "pending"}
        ApiIdempotencyKey.objects.create(
            organization=self.org,
            key="before-the-deploy",
            request_hash=hashlib.sha256(f"POST {self.url}\n{rendered}".encode()).hexdigest(),
            completed=True,
            response_status=201,
            response_body=stored,
        )
        replay = self.post(body, key="before-the-deploy")
        self.assertEqual(replay.status_code, 201)
        self.assertEqual(replay["Idempotent-Replayed"], "true")
        self.assertEqual(replay.json(), stored)
        self.assertFalse(Message.objects.filter(chat=self.chat, direction="out").exists())
