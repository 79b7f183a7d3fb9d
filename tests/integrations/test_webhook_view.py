"""The signed webhook of a number: verification, signatures, durable store-first ingest, and
exactly-once effects of what it carries (duplicates, out-of-order statuses, orphans)."""

import json
import time
from datetime import timedelta

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inbox import services as inbox_services
from inbox.models import Chat, Contact, Message, OrphanStatus
from integrations import outgoing, services
from integrations.models import MessageTemplate, WebhookEvent
from integrations.whatsapp import payloads as wa
from tests.api.receiver import Receiver
from tests.base import BaseTestCase
from tests.integrations.conftest import (
    CUSTOMER_WA_ID,
    inbound_body,
    post_signed,
    status_body,
    webhook_path,
)


class WebhookTestCase(BaseTestCase):
    def deliver(self, body: bytes, number=None, **kwargs):
        with self.captureOnCommitCallbacks(execute=True):
            return post_signed(self.client, number or self.number, body, **kwargs)

    def outbound(self, wamid: str, status=Message.Status.SENT) -> Message:
        return Message.objects.create(
            organization=self.org,
            chat=self.other_chat,
            number=self.number,
            direction=Message.Direction.OUTBOUND,
            type=Message.Type.TEXT,
            text="Sua consulta está confirmada",
            wamid=wamid,
            status=status,
            author_type=Message.Author.USER,
        )


class VerificationTests(WebhookTestCase):
    def test_it_answers_the_challenge_with_the_right_token(self):
        response = self.client.get(
            webhook_path(self.number),
            {
                "hub.mode": "subscribe",
                "hub.verify_token": self.number.verify_token,
                "hub.challenge": "1158201444",
            },
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, b"1158201444")

    def test_it_refuses_a_wrong_token(self):
        response = self.client.get(
            webhook_path(self.number),
            {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"},
        )
        self.assertEqual(response.status_code, 403)
        self.assertNotIn(b"1158201444", response.content)

    def test_it_refuses_another_numbers_token(self):
        response = self.client.get(
            webhook_path(self.number),
            {
                "hub.mode": "subscribe",
                "hub.verify_token": self.other_number.verify_token,
                "hub.challenge": "42",
            },
        )
        self.assertEqual(response.status_code, 403)

    def test_it_answers_404_for_an_unknown_key(self):
        self.assertEqual(self.client.get("/webhooks/whatsapp/nope/").status_code, 404)
        self.assertEqual(
            self.client.post(
                "/webhooks/whatsapp/nope/", data=b"{}", content_type="application/json"
            ).status_code,
            404,
        )

    def test_it_answers_405_for_other_methods(self):
        self.assertEqual(self.client.put(webhook_path(self.number)).status_code, 405)


class SignatureTests(WebhookTestCase):
    def test_it_stores_and_processes_a_validly_signed_delivery(self):
        response = self.deliver(inbound_body(self.number, wamid="wamid.ok1"))
        self.assertEqual(response.status_code, 200)
        event = WebhookEvent.objects.get()
        self.assertIsNotNone(event.processed_at)
        self.assertEqual(event.error, "")
        self.assertIn("x-hub-signature-256", event.headers)
        message = Message.objects.get(wamid="wamid.ok1")
        self.assertEqual(message.text, "Olá, tudo bem?")
        self.assertEqual(message.direction, Message.Direction.INBOUND)
        contact = Contact.objects.get(organization=self.org, wa_id=CUSTOMER_WA_ID)
        self.assertEqual(contact.phone, "+5511977776666")
        self.assertEqual(contact.profile_name, "Carla Cliente")
        chat = message.chat
        self.assertEqual(chat.unread_count, 1)
        self.assertTrue(chat.window_is_open)
        self.assertEqual(chat.last_message_preview, "Olá, tudo bem?")

    def test_it_answers_401_and_stores_nothing_without_a_signature(self):
        response = self.deliver(inbound_body(self.number, wamid="wamid.x"), signature="")
        self.assertEqual(response.status_code, 401)
        self.assertFalse(WebhookEvent.objects.exists())
        self.assertFalse(Message.objects.filter(wamid="wamid.x").exists())

    def test_it_answers_403_and_stores_nothing_for_a_bad_signature(self):
        body = inbound_body(self.number, wamid="wamid.x")
        response = self.deliver(body, signature="sha256=" + "0" * 64)
        self.assertEqual(response.status_code, 403)
        tampered = body.replace(b"tudo bem", b"tudo mal")
        response = self.deliver(tampered, signature=wa_signature(body, self.number.app_secret))
        self.assertEqual(response.status_code, 403)
        self.assertFalse(WebhookEvent.objects.exists())
        self.assertFalse(Message.objects.filter(wamid="wamid.x").exists())

    def test_it_refuses_a_body_signed_for_another_number(self):
        """Organization A's secret on organization B's URL: 403, nothing stored."""
        body = inbound_body(self.other_number, wamid="wamid.cross")
        response = self.deliver(body, number=self.other_number, secret=self.number.app_secret)
        self.assertEqual(response.status_code, 403)
        self.assertFalse(WebhookEvent.objects.exists())
        self.assertFalse(Message.objects.filter(wamid="wamid.cross").exists())

    def test_it_never_creates_data_in_another_organization(self):
        """Signed with A's secret on A's URL but naming B's phone_number_id."""
        before = Message.objects.filter(organization=self.other_org).count()
        body = inbound_body(
            self.number,
            wamid="wamid.smuggled",
            phone_number_id=self.other_number.phone_number_id,
            wa_id="5511955554444",
        )
        self.assertEqual(self.deliver(body).status_code, 200)
        self.assertFalse(Message.objects.filter(wamid="wamid.smuggled").exists())
        self.assertEqual(Message.objects.filter(organization=self.other_org).count(), before)
        self.assertFalse(Contact.objects.filter(wa_id="5511955554444").exists())
        self.assertIsNotNone(WebhookEvent.objects.get().processed_at)

    def test_it_never_applies_a_status_to_another_organizations_message(self):
        secret = Message.objects.get(organization=self.other_org)
        body = status_body(
            self.number,
            (secret.wamid, "read", int(time.time())),
            phone_number_id=self.other_number.phone_number_id,
        )
        self.assertEqual(self.deliver(body).status_code, 200)
        secret.refresh_from_db()
        self.assertIsNone(secret.read_at)
        self.assertFalse(OrphanStatus.objects.exists())

    def test_it_accepts_a_delivery_signed_with_a_just_rotated_secret(self):
        """The number is kept a few seconds per process; a signature that fails against the kept
        secret is checked again against the stored one, so a rotation takes effect at once."""
        self.assertEqual(
            self.deliver(inbound_body(self.number, wamid="wamid.old")).status_code, 200
        )
        previous = self.number.app_secret
        self.number.app_secret = "rotated-app-secret"
        self.number.save(update_fields=["app_secret"])
        response = self.deliver(inbound_body(self.number, wamid="wamid.new"))
        self.assertEqual(response.status_code, 200)
        self.assertTrue(Message.objects.filter(wamid="wamid.new").exists())
        stale = inbound_body(self.number, wamid="wamid.stale")
        self.assertEqual(self.deliver(stale, secret=previous).status_code, 403)
        self.assertFalse(Message.objects.filter(wamid="wamid.stale").exists())

    @override_settings(WEBHOOK_MAX_BODY_BYTES=1000)
    def test_it_answers_413_for_an_oversized_body(self):
        body = inbound_body(self.number, wamid="wamid.big", content=wa.build_text("x" * 2000))
        self.assertEqual(self.deliver(body).status_code, 413)
        self.assertFalse(WebhookEvent.objects.exists())


class ShapeTests(WebhookTestCase):
    def test_it_stores_malformed_json_with_the_error_and_answers_200(self):
        response = self.deliver(b'{"object": "whatsapp_business_account", "entry": [')
        self.assertEqual(response.status_code, 200)
        event = WebhookEvent.objects.get()
        self.assertIn("Malformed JSON", event.error)
        self.assertIsNotNone(event.processed_at)

    def test_it_stores_an_unknown_shape_with_the_error_and_answers_200(self):
        body = json.dumps({"object": "page", "entry": []}).encode()
        response = self.deliver(body)
        self.assertEqual(response.status_code, 200)
        event = WebhookEvent.objects.get()
        self.assertIn("Unrecognised payload", event.error)
        self.assertIn("whatsapp_business_account", event.error)
        self.assertIsNotNone(event.processed_at)
        self.assertEqual(bytes(event.body), body)

    def test_it_processes_every_item_of_a_batched_body(self):
        now = int(time.time())
        messages = [
            wa.build_inbound_message(
                wamid=f"wamid.batch{i}",
                from_wa_id=CUSTOMER_WA_ID,
                message_type="text",
                content=wa.build_text(f"parte {i}"),
                timestamp=str(now + i),
            )
            for i in range(3)
        ]
        change = wa.build_messages_change(
            phone_number_id=self.number.phone_number_id,
            display_phone_number="551140000000",
            contacts=[wa.build_contact(wa_id=CUSTOMER_WA_ID, profile_name="Carla")],
            messages=messages,
        )
        body = wa.encode_webhook(wa.build_webhook("1000", [change, change]))
        self.assertEqual(self.deliver(body).status_code, 200)
        chat = Chat.objects.get(contact__wa_id=CUSTOMER_WA_ID)
        self.assertEqual(chat.messages.count(), 3)
        self.assertEqual(chat.unread_count, 3)
        self.assertEqual(chat.last_message_preview, "parte 2")


class ExactlyOnceTests(WebhookTestCase):
    def test_it_stores_the_same_wamid_once_across_duplicate_deliveries(self):
        body = inbound_body(self.number, wamid="wamid.dup")
        for _ in range(3):
            self.assertEqual(self.deliver(body).status_code, 200)
        self.assertEqual(WebhookEvent.objects.count(), 3)
        self.assertEqual(Message.objects.filter(wamid="wamid.dup").count(), 1)
        self.assertEqual(Message.objects.get(wamid="wamid.dup").chat.unread_count, 1)

    def test_it_is_harmless_to_process_the_same_event_again(self):
        self.deliver(inbound_body(self.number, wamid="wamid.again"))
        event = WebhookEvent.objects.get()
        services.webhook_event_process(event.pk)
        WebhookEvent.objects.filter(pk=event.pk).update(processed_at=None)
        with self.captureOnCommitCallbacks(execute=True):
            services.webhook_event_process(event.pk)
        self.assertEqual(Message.objects.filter(wamid="wamid.again").count(), 1)
        event.refresh_from_db()
        self.assertIsNotNone(event.processed_at)
        self.assertEqual(event.attempts, 2)

    def test_the_sweep_processes_events_a_lost_task_left_behind(self):
        body = inbound_body(self.number, wamid="wamid.lost")
        event = WebhookEvent.objects.create(
            number=self.number, organization=self.org, body=body, headers={}
        )
        WebhookEvent.objects.filter(pk=event.pk).update(
            received_at=timezone.now() - timedelta(minutes=5)
        )
        with self.captureOnCommitCallbacks(execute=True):
            self.assertEqual(services.webhook_events_sweep(), 1)
        self.assertEqual(Message.objects.filter(wamid="wamid.lost").count(), 1)
        self.assertEqual(services.webhook_events_sweep(), 0)

    def test_an_older_message_delivered_late_does_not_move_the_chat_back(self):
        now = int(time.time())
        self.deliver(inbound_body(self.number, wamid="wamid.new", timestamp=now))
        late = inbound_body(
            self.number,
            wamid="wamid.old",
            timestamp=now - 3600,
            content=wa.build_text("mensagem antiga"),
        )
        self.deliver(late)
        chat = Chat.objects.get(contact__wa_id=CUSTOMER_WA_ID)
        self.assertEqual(chat.last_message_preview, "Olá, tudo bem?")
        self.assertEqual(int(chat.last_message_at.timestamp()), now)
        self.assertEqual(int(chat.window_expires_at.timestamp()), now + 24 * 3600)
        self.assertEqual(chat.unread_count, 2)


class StatusTests(WebhookTestCase):
    def test_statuses_never_move_backwards(self):
        message = self.outbound("wamid.out1")
        now = int(time.time())
        self.deliver(status_body(self.number, ("wamid.out1", "read", now + 2)))
        self.deliver(status_body(self.number, ("wamid.out1", "delivered", now + 1)))
        self.deliver(status_body(self.number, ("wamid.out1", "sent", now)))
        self.deliver(status_body(self.number, ("wamid.out1", "read", now + 2)))  # duplicate
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.READ)
        self.assertEqual(int(message.read_at.timestamp()), now + 2)
        self.assertEqual(int(message.delivered_at.timestamp()), now + 1)

    def test_a_failure_after_delivery_is_ignored(self):
        message = self.outbound("wamid.out2")
        now = int(time.time())
        error = wa.build_event_error(131000, title="Something went wrong", details="late")
        self.deliver(
            status_body(
                self.number,
                ("wamid.out2", "delivered", now),
                ("wamid.out2", "failed", now + 1, [error]),
            )
        )
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.DELIVERED)
        self.assertIsNone(message.failed_at)
        self.assertEqual(message.error_title, "")

    def test_a_failed_status_shows_whatsapps_reason(self):
        message = self.outbound("wamid.out3")
        error = wa.build_event_error(
            131047,
            title="Re-engagement message",
            details="Message failed to send because more than 24 hours have passed.",
        )
        self.deliver(status_body(self.number, ("wamid.out3", "failed", int(time.time()), [error])))
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.FAILED)
        self.assertEqual(message.error_code, 131047)
        self.assertEqual(message.error_title, "Re-engagement message")
        self.assertIn("24 hours", message.error_details)
        # A late "sent" never overwrites the failure.
        self.deliver(status_body(self.number, ("wamid.out3", "sent", int(time.time()))))
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.FAILED)

    def test_a_status_for_an_unknown_wamid_is_kept_and_applied_when_the_message_appears(self):
        message = self.outbound(None, status=Message.Status.PENDING)
        now = int(time.time())
        self.deliver(
            status_body(
                self.number, ("wamid.early", "delivered", now), ("wamid.early", "sent", now)
            )
        )
        event = WebhookEvent.objects.get()
        self.assertEqual(event.error, "")
        self.assertIsNotNone(event.processed_at)
        self.assertEqual(OrphanStatus.objects.filter(wamid="wamid.early").count(), 2)
        # What message_deliver does once the send call answers.
        Message.objects.filter(pk=message.pk).update(wamid="wamid.early", status="sent")
        inbox_services.message_orphans_apply(number_id=self.number.pk, wamid="wamid.early")
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.DELIVERED)
        self.assertFalse(OrphanStatus.objects.exists())

    def test_a_status_arriving_after_the_wamid_is_recorded_is_applied_at_once(self):
        message = self.outbound("wamid.known")
        OrphanStatus.objects.create(
            organization=self.org,
            number=self.number,
            wamid="wamid.known",
            status="delivered",
            timestamp=timezone.now(),
        )
        self.deliver(status_body(self.number, ("wamid.known", "read", int(time.time()))))
        message.refresh_from_db()
        self.assertEqual(message.status, Message.Status.READ)

    @override_settings(EGRESS_ALLOW_PRIVATE=True)
    def test_a_batch_moves_many_messages_and_announces_every_status_to_integrators(self):
        receiver = Receiver().start()
        self.addCleanup(receiver.stop)
        outgoing.subscription_create(
            organization=self.org, url=receiver.url, events=["message.status"]
        )
        messages = [self.outbound(f"wamid.batch{i}") for i in range(4)]
        bystander = self.outbound("wamid.not-in-the-batch")
        seq = Chat.objects.get(pk=self.other_chat.pk).seq
        now = int(time.time())
        self.deliver(
            status_body(
                self.number,
                *[(m.wamid, "delivered", now) for m in messages],
                *[(m.wamid, "read", now + 5) for m in messages],
            )
        )
        for message in messages:
            message.refresh_from_db()
            self.assertEqual(message.status, Message.Status.READ)
            self.assertEqual(int(message.delivered_at.timestamp()), now)
            self.assertEqual(int(message.read_at.timestamp()), now + 5)
        bystander.refresh_from_db()
        self.assertEqual((bystander.status, bystander.delivered_at), (Message.Status.SENT, None))
        # Integrators get one event per status change, in order; the inbox one live event per
        # message (with its latest status), numbered in the chat's sequence.
        events = [json.loads(body)["data"] for _headers, body in receiver.requests]
        self.assertEqual(
            sorted((e["message"]["wamid"], e["previous_status"]) for e in events),
            sorted((m.wamid, previous) for m in messages for previous in ("sent", "delivered")),
        )
        self.assertEqual(Chat.objects.get(pk=self.other_chat.pk).seq, seq + len(messages))

    def test_a_batch_of_statuses_costs_the_same_queries_for_two_messages_or_twenty(self):
        def apply(prefix: str, count: int) -> int:
            wamids = [f"wamid.{prefix}{i}" for i in range(count)]
            for wamid in wamids:
                self.outbound(wamid)
            updates = [
                wa.StatusUpdate(
                    phone_number_id=self.number.phone_number_id,
                    display_phone_number="551140000000",
                    waba_id="1000",
                    wamid=wamid,
                    status=status,
                    timestamp=timezone.now(),
                    recipient_id=CUSTOMER_WA_ID,
                )
                for status in ("delivered", "read")
                for wamid in wamids
            ]
            with (
                CaptureQueriesContext(connection) as queries,
                self.captureOnCommitCallbacks(execute=True),
            ):
                inbox_services.message_statuses_apply(number=self.number, updates=updates)
            self.assertEqual(Message.objects.filter(wamid__in=wamids, status="read").count(), count)
            return len(queries)

        apply("warm", 1)  # per-process lookups (e.g. who subscribes to outgoing webhooks)
        self.assertEqual(apply("few", 2), apply("many", 20))


class TemplateWebhookTests(WebhookTestCase):
    def test_it_applies_a_template_status_update(self):
        self.number.waba_id = "1000"
        self.number.save()
        template = MessageTemplate.objects.create(
            organization=self.org,
            number=self.number,
            meta_id="555",
            name="welcome",
            language="pt_BR",
            status="PENDING",
        )
        change = wa.build_template_status_change(
            template_id="555", name="welcome", language="pt_BR", event="REJECTED", reason="SCAM"
        )
        body = wa.encode_webhook(wa.build_webhook("1000", [change], entry_time=int(time.time())))
        self.assertEqual(self.deliver(body).status_code, 200)
        template.refresh_from_db()
        self.assertEqual(template.status, "REJECTED")
        self.assertEqual(template.rejected_reason, "SCAM")


def wa_signature(body: bytes, secret: str) -> str:
    from integrations.whatsapp.signature import sign

    return sign(body, secret)
