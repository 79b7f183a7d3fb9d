"""LGPD erasure leaves the person nowhere: after it, a scan of every column that can hold text
(every model of every installed app: char, text, JSON and binary columns) finds none of the
customer's phone, WhatsApp id, names, email or message texts. The data gets there the real
ways: a signed webhook delivery (stored raw, with another customer in the same delivery),
outgoing webhooks to a local receiver, an API upsert, a reply sent through the API (to the
local sandbox) with an Idempotency-Key, a staff note,
the admin's change history, consent, automation and analysis records.

Also: the raw webhook log is pruned once its deliveries are done and old enough."""

import json
import time
from datetime import timedelta

from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.db import models
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from assistants.models import ConversationAnalysis
from campaigns.models import Automation, AutomationRun, ConsentEvent
from inbox import services as inbox_services
from inbox.models import Contact, Message
from integrations import outgoing
from integrations import services as channel
from integrations.models import WebhookDelivery, WebhookEvent
from integrations.whatsapp import payloads as wa
from reports.models import AuditEvent, RetentionPolicy
from reports.privacy import retention_purge
from tests.api.helpers import ApiTestCase, SandboxMixin
from tests.api.receiver import Receiver
from tests.integrations.conftest import post_signed

WA_ID = "5511977776666"
OTHER_WA_ID = "5511955554444"
SECRETS = (
    WA_ID,
    "+" + WA_ID,
    "Fulana Segredo",
    "Fulana WhatsApp",
    "fulana@segredo.test",
    "diagnostico secreto",
    "nota interna sigilosa",
    "plano-ouro-fulana",
)


def two_customers_body(number) -> bytes:
    """One delivery carrying two customers' messages, as Meta may batch them."""
    now = str(int(time.time()))
    change = wa.build_messages_change(
        phone_number_id=number.phone_number_id,
        display_phone_number="551140000000",
        contacts=[
            wa.build_contact(wa_id=WA_ID, profile_name="Fulana WhatsApp"),
            wa.build_contact(wa_id=OTHER_WA_ID, profile_name="Outro Cliente"),
        ],
        messages=[
            wa.build_inbound_message(
                wamid="wamid.fulana-1",
                from_wa_id=WA_ID,
                message_type="text",
                content=wa.build_text("Meu diagnostico secreto: implante"),
                timestamp=now,
            ),
            wa.build_inbound_message(
                wamid="wamid.outro-1",
                from_wa_id=OTHER_WA_ID,
                message_type="text",
                content=wa.build_text("mensagem de outro cliente"),
                timestamp=now,
            ),
        ],
    )
    return wa.encode_webhook(wa.build_webhook(number.waba_id or "1000", [change]))


def text_columns(model) -> list[str]:
    kinds = (models.CharField, models.TextField, models.JSONField, models.BinaryField)
    return [f.attname for f in model._meta.concrete_fields if isinstance(f, kinds)]


def as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def leaks(secrets) -> list[str]:
    """Every (model, column, secret) still holding one of ``secrets``, in every app's tables."""
    found = []
    for model in apps.get_models():
        columns = text_columns(model)
        if not columns or model._meta.proxy:
            continue
        for row in model._default_manager.all().values_list("pk", *columns):
            for column, value in zip(columns, row[1:], strict=True):
                text = as_text(value)
                for secret in secrets:
                    if secret in text:
                        found.append(f"{model._meta.label}#{row[0]}.{column}: {secret!r}")
    return found


@override_settings(EGRESS_ALLOW_PRIVATE=True)
class ErasureEverywhereTests(SandboxMixin, ApiTestCase):
    def setUp(self):
        super().setUp()
        self.receiver = Receiver().start()
        self.addCleanup(self.receiver.stop)
        outgoing.subscription_create(
            organization=self.org,
            url=self.receiver.url,
            events=["message.received", "contact.created"],
        )
        with self.captureOnCommitCallbacks(execute=True):
            response = post_signed(self.client, self.number, two_customers_body(self.number))
        self.assertEqual(response.status_code, 200)
        self.contact = Contact.objects.get(organization=self.org, wa_id=WA_ID)
        self.chat = self.contact.chats.get()
        upsert = self.api(
            "post",
            reverse("api_contact_upsert"),
            {
                "phone": "+" + WA_ID,
                "name": "Fulana Segredo",
                "email": "fulana@segredo.test",
                "attributes": {"plano": "plano-ouro-fulana"},
            },
        )
        self.assertEqual(upsert.status_code, 200, upsert.content)
        sent = self.send_reply()
        self.assertEqual(sent.status_code, 201, sent.content)
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.note_add(chat=self.chat, author=self.admin, body="nota interna sigilosa")
        self.contact.refresh_from_db()
        LogEntry.objects.log_actions(self.admin.pk, [self.contact, self.chat], CHANGE)
        ConsentEvent.objects.create(
            organization=self.org,
            contact=self.contact,
            opted_in=True,
            source=ConsentEvent.Source.CONVERSATION,
            detail="Fulana Segredo: diagnostico secreto",
        )
        rule = Automation.objects.create(
            organization=self.org, name="Boas-vindas", trigger=Automation.Trigger.NEW_CONTACT
        )
        AutomationRun.objects.create(
            organization=self.org,
            automation=rule,
            contact=self.contact,
            chat=self.chat,
            trigger=rule.trigger,
            detail="Respondeu: diagnostico secreto",
            actions=[{"action": "tag", "ok": True, "detail": "Fulana Segredo"}],
        )
        ConversationAnalysis.objects.create(
            organization=self.org,
            chat=self.chat,
            summary="Fulana Segredo contou o diagnostico secreto",
            intent="implante",
            lead_score_reason="fulana@segredo.test pediu orçamento",
        )

    def send_reply(self):
        return self.api(
            "post",
            reverse("api_chat_messages", args=[self.chat.code]),
            {"type": "text", "text": {"body": "Fulana Segredo, sobre o diagnostico secreto"}},
            HTTP_IDEMPOTENCY_KEY="crm-reply-fulana",
        )

    def test_every_table_is_checked_to_hold_the_secrets_first(self):
        # The scan is only worth something if it sees them before the erasure.
        found = "\n".join(leaks(SECRETS))
        for where in (
            "integrations.WebhookEvent",
            "integrations.WebhookDelivery",
            "accounts.ApiIdempotencyKey",
            "admin.LogEntry",
            "inbox.Contact",
            "inbox.Message",
            "inbox.Chat",
            "campaigns.ConsentEvent",
            "campaigns.AutomationRun",
            "assistants.ConversationAnalysis",
        ):
            self.assertIn(where, found)

    def test_the_api_delete_leaves_the_person_in_no_column_of_any_table(self):
        response = self.api("delete", reverse("api_contact", args=[self.contact.code]))
        self.assertEqual(response.status_code, 204)
        self.assertEqual(leaks(SECRETS), [])
        # The other customer of the same delivery is still in the log, to replay.
        bodies = b"".join(bytes(b) for b in WebhookEvent.objects.values_list("body", flat=True))
        self.assertIn(b"mensagem de outro cliente", bodies)
        self.assertIn(OTHER_WA_ID.encode(), bodies)
        event = AuditEvent.objects.get(action=AuditEvent.Action.CONTACT_ERASED)
        self.assertEqual((event.organization, event.target_id), (self.org, str(self.contact.code)))
        # The anonymous counts stay: the message, the reply and the note, without their text.
        self.assertEqual(Message.objects.filter(chat__contact=self.contact).count(), 3)

    def test_an_idempotent_retry_after_the_erasure_does_not_bring_the_answer_back(self):
        self.api("delete", reverse("api_contact", args=[self.contact.code]))
        retry = self.send_reply()
        self.assertEqual(retry.status_code, 410)
        self.assertEqual(retry.json()["error"]["code"], "contact_erased")

    def test_an_unsent_outgoing_webhook_about_the_contact_is_never_sent(self):
        WebhookDelivery.objects.update(status=WebhookDelivery.Status.RETRYING)
        self.api("delete", reverse("api_contact", args=[self.contact.code]))
        self.assertFalse(
            WebhookDelivery.objects.filter(
                status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.RETRYING],
                payload__icontains=WA_ID,
            ).exists()
        )
        self.assertTrue(
            WebhookDelivery.objects.filter(
                status=WebhookDelivery.Status.FAILED, payload={"erased": True}
            ).exists()
        )

    def test_the_privacy_page_erasure_is_just_as_thorough_and_audited_once(self):
        self.client.force_login(self.admin)
        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(reverse("contact_erase", args=[self.contact.code]), {"confirm": "on"})
            self.client.post(reverse("contact_erase", args=[self.contact.code]), {"confirm": "on"})
        self.assertEqual(leaks(SECRETS), [])
        self.assertEqual(
            AuditEvent.objects.filter(action=AuditEvent.Action.CONTACT_ERASED).count(), 1
        )

    def test_a_delivery_not_processed_yet_brings_back_only_the_other_customer(self):
        body = two_customers_body(self.number).replace(b"wamid.fulana-1", b"wamid.fulana-2")
        body = body.replace(b"wamid.outro-1", b"wamid.outro-2")
        pending = WebhookEvent.objects.create(
            number=self.number, organization=self.org, body=body, processed_at=None
        )
        self.api("delete", reverse("api_contact", args=[self.contact.code]))
        with self.captureOnCommitCallbacks(execute=True):
            channel.webhook_events_process([pending.pk])
        self.assertTrue(Message.objects.filter(wamid="wamid.outro-2").exists())
        self.assertFalse(Message.objects.filter(wamid="wamid.fulana-2").exists())
        self.assertFalse(Contact.objects.filter(organization=self.org, wa_id=WA_ID).exists())
        self.assertEqual(leaks(SECRETS), [])


class WebhookLogRetentionTests(ApiTestCase):
    def event(self, *, days_old: float, processed: bool, attempts: int = 1) -> WebhookEvent:
        event = WebhookEvent.objects.create(
            number=self.number,
            organization=self.org,
            body=b'{"entry": []}',
            processed_at=timezone.now() if processed else None,
            attempts=attempts,
        )
        WebhookEvent.objects.filter(pk=event.pk).update(
            received_at=timezone.now() - timedelta(days=days_old)
        )
        return event

    @override_settings(WEBHOOK_LOG_RETENTION_DAYS=7)
    def test_it_prunes_finished_deliveries_older_than_the_setting(self):
        old_done = self.event(days_old=8, processed=True)
        old_given_up = self.event(
            days_old=8, processed=False, attempts=channel.MAX_PROCESSING_ATTEMPTS
        )
        old_pending = self.event(days_old=8, processed=False)
        recent_done = self.event(days_old=6, processed=True)
        self.assertEqual(channel.webhook_events_prune(), 2)
        left = set(WebhookEvent.objects.values_list("pk", flat=True))
        self.assertEqual(left, {old_pending.pk, recent_done.pk})
        self.assertNotIn(old_done.pk, left)
        self.assertNotIn(old_given_up.pk, left)

    @override_settings(WEBHOOK_LOG_RETENTION_DAYS=30)
    def test_an_organizations_shorter_retention_policy_prunes_its_log_too(self):
        old = self.event(days_old=10, processed=True)
        recent = self.event(days_old=2, processed=True)
        foreign = WebhookEvent.objects.create(
            number=self.other_number,
            organization=self.other_org,
            body=b"{}",
            processed_at=timezone.now(),
        )
        WebhookEvent.objects.filter(pk=foreign.pk).update(
            received_at=timezone.now() - timedelta(days=10)
        )
        retention_purge(RetentionPolicy.objects.create(organization=self.org, message_days=7))
        left = set(WebhookEvent.objects.values_list("pk", flat=True))
        self.assertEqual(left, {recent.pk, foreign.pk})
        self.assertNotIn(old.pk, left)
