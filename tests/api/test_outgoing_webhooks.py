import html
import json
import re
import time
from datetime import timedelta

from django.core import mail
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from integrations import outgoing
from integrations.models import WebhookDelivery, WebhookSubscription
from tests.api.helpers import ApiTestCase, SandboxMixin
from tests.api.receiver import Receiver

# The inbox's events (resolving a chat would also bring analysis.completed: see
# test_outgoing_events.py for the campaign and assistant events).
ALL_EVENTS = [
    e for e in WebhookSubscription.Event.values if e.split(".")[0] in ("message", "chat", "contact")
]


@override_settings(EGRESS_ALLOW_PRIVATE=True)
class OutgoingWebhookTests(ApiTestCase):
    def setUp(self):
        super().setUp()
        self.receiver = Receiver().start()
        self.addCleanup(self.receiver.stop)
        self.subscription = outgoing.subscription_create(
            organization=self.org, url=self.receiver.url, events=ALL_EVENTS
        )

    def resolve(self, chat):
        return self.api(
            "post", reverse("api_chat_status", args=[chat.code]), {"status": "resolved"}
        )

    def snippet(self):
        self.login(self.admin)
        page = self.client.get(
            reverse("webhook_detail", args=[self.subscription.code])
        ).content.decode()
        code = re.search(r"<pre data-verify-snippet><code>(.*?)</code></pre>", page, re.S).group(1)
        namespace = {}
        exec(html.unescape(code), namespace)  # the snippet exactly as documented
        return namespace["verify"]

    def test_events_are_signed_verifiably_with_the_documented_snippet(self):
        self.resolve(self.other_chat)
        headers, body = self.receiver.requests[-1]
        event = json.loads(body)
        self.assertEqual(event["type"], "chat.resolved")
        self.assertEqual(event["data"]["chat"]["id"], str(self.other_chat.code))
        self.assertEqual(event["data"]["chat"]["contact"]["phone"], "+5511900000002")
        self.assertTrue(event["created_at"].endswith("Z"))
        verify = self.snippet()
        secret, stamp, signature = (
            self.subscription.secret,
            headers["x-porfin-timestamp"],
            headers["x-porfin-signature"],
        )
        self.assertTrue(verify(secret, body, stamp, signature))
        self.assertFalse(verify(secret, body.replace(b"resolved", b"open"), stamp, signature))
        self.assertFalse(verify("whsec_wrong", body, stamp, signature))
        old = str(int(time.time()) - 3600)
        replayed = outgoing.sign(secret, int(old), body)
        self.assertFalse(verify(secret, body, old, replayed))

    def test_events_carry_a_growing_sequence(self):
        self.api(
            "post",
            reverse("api_chat_assign", args=[self.other_chat.code]),
            {"assignee": self.agent.email},
        )
        self.resolve(self.other_chat)
        self.api("post", reverse("api_contact_opt_out", args=[self.other_chat.contact.code]))
        self.api("post", reverse("api_contacts"), {"phone": "+5511987654321"})
        events = [json.loads(body) for _headers, body in self.receiver.requests]
        self.assertEqual(
            [e["type"] for e in events],
            ["chat.assigned", "chat.resolved", "contact.opted_out", "contact.created"],
        )
        self.assertEqual([e["sequence"] for e in events], [1, 2, 3, 4])
        self.assertLess(
            events[0]["data"]["chat"]["sequence"], events[1]["data"]["chat"]["sequence"]
        )

    def test_a_failed_delivery_is_retried_with_backoff_until_it_succeeds(self):
        self.receiver.statuses = [500, 503]
        self.resolve(self.other_chat)
        delivery = WebhookDelivery.objects.get()
        self.assertEqual(
            (delivery.status, delivery.attempts, delivery.response_status), ("retrying", 1, 500)
        )
        self.assertAlmostEqual(
            (delivery.next_attempt_at - timezone.now()).total_seconds(),
            outgoing.retry_delay(1),
            delta=5,
        )
        self.assertEqual(outgoing.deliveries_retry_due(), 0)  # not due yet: nothing is sent early
        for expected_attempts, expected_status in ((2, "retrying"), (3, "succeeded")):
            WebhookDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
            with self.captureOnCommitCallbacks(execute=True):
                self.assertEqual(outgoing.deliveries_retry_due(), 1)
            delivery.refresh_from_db()
            self.assertEqual(
                (delivery.attempts, delivery.status), (expected_attempts, expected_status)
            )
        self.assertEqual(delivery.response_status, 200)
        self.assertIsNotNone(delivery.duration_ms)
        self.assertEqual(len(self.receiver.requests), 3)
        ids = {json.loads(body)["id"] for _h, body in self.receiver.requests}
        self.assertEqual(len(ids), 1)  # the same event each time
        self.assertGreater(outgoing.retry_delay(9), 4 * 3600)  # the last retry comes hours later

    @override_settings(OUTGOING_WEBHOOKS_RETRY_BASE=0, OUTGOING_WEBHOOKS_DISABLE_AFTER=3)
    def test_a_subscription_that_keeps_failing_is_disabled_and_admins_are_told(self):
        self.receiver.statuses = [500] * 20
        self.resolve(self.other_chat)
        self.subscription.refresh_from_db()
        self.assertFalse(self.subscription.is_active)
        self.assertEqual(len(self.receiver.requests), 3)
        self.assertEqual(WebhookDelivery.objects.get().status, "failed")
        self.assertEqual(len(mail.outbox), 1)
        self.assertIn(self.admin.email, mail.outbox[0].to)
        self.assertIn(self.receiver.url, mail.outbox[0].body)
        self.resolve(self.agent_chat)  # disabled: nothing more is sent
        self.assertEqual(len(self.receiver.requests), 3)

    def test_admins_can_see_and_resend_a_delivery(self):
        self.receiver.statuses = [410]
        self.resolve(self.other_chat)
        delivery = WebhookDelivery.objects.get()
        self.login(self.admin)
        page = self.client.get(reverse("webhook_detail", args=[self.subscription.code]))
        self.assertContains(page, "chat.resolved")
        self.assertContains(page, "410")
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(reverse("webhook_delivery_resend", args=[delivery.code]))
        self.assertEqual(response.status_code, 302)
        resent = WebhookDelivery.objects.exclude(pk=delivery.pk).get()
        self.assertEqual((resent.status, resent.event_id), ("succeeded", delivery.event_id))

    def test_a_member_without_settings_access_cannot_manage_webhooks(self):
        self.login(self.operator)
        self.assertEqual(self.client.get(reverse("webhook_list")).status_code, 403)
        self.login(self.manager)  # may look, not change
        self.assertEqual(
            self.client.get(reverse("webhook_detail", args=[self.subscription.code])).status_code,
            200,
        )
        response = self.client.post(
            reverse("webhook_create"), {"url": "https://x.example", "events": ["chat.created"]}
        )
        self.assertEqual(response.status_code, 403)
        self.assertEqual(
            self.client.post(reverse("webhook_delete", args=[self.subscription.code])).status_code,
            403,
        )


@override_settings(EGRESS_ALLOW_PRIVATE=False)
class SsrfGuardTests(ApiTestCase):
    def test_private_and_loopback_urls_are_refused(self):
        for url in (
            "http://127.0.0.1:8000/hook",
            "http://localhost/hook",
            "http://10.0.0.5/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/hook",
            "ftp://example.com/hook",
        ):
            with self.subTest(url=url), self.assertRaises(outgoing.UnsafeURL):
                outgoing.url_check(url)

    def test_the_settings_form_refuses_a_private_url(self):
        self.login(self.admin)
        response = self.client.post(
            reverse("webhook_create"),
            {"url": "http://127.0.0.1:9/hook", "events": ["chat.created"]},
        )
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "private", status_code=400)
        self.assertFalse(WebhookSubscription.objects.exists())

    def test_a_delivery_to_an_address_that_became_private_is_never_sent(self):
        receiver = Receiver().start()
        self.addCleanup(receiver.stop)
        WebhookSubscription.objects.create(
            organization=self.org, url=receiver.url, events=["chat.resolved"]
        )
        self.api(
            "post", reverse("api_chat_status", args=[self.other_chat.code]), {"status": "resolved"}
        )
        delivery = WebhookDelivery.objects.get()
        self.assertIn("private", delivery.error)
        self.assertIsNone(delivery.response_status)
        self.assertEqual(receiver.requests, [])


class SettingsPagesTests(ApiTestCase):
    def test_an_admin_creates_a_key_seen_once_and_revokes_it(self):
        self.login(self.admin)
        response = self.client.post(
            reverse("api_key_create"),
            {"name": "CRM", "scope_chats": "write", "scope_contacts": "read"},
        )
        secret = re.search(
            r"data-api-key-secret[^>]*>(pfk_[^<]+)<", response.content.decode()
        ).group(1)
        self.assertNotContains(self.client.get(reverse("api_key_list")), secret)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
        self.client.logout()
        self.assertEqual(self.client.get(reverse("api_chats"), **headers).status_code, 200)
        self.assertEqual(self.client.get(reverse("api_numbers"), **headers).status_code, 403)
        self.login(self.admin)
        from accounts.models import ApiKey

        key = ApiKey.objects.get(name="CRM")
        self.assertEqual(key.scopes, ["chats:write", "contacts:read"])
        self.client.post(reverse("api_key_revoke", args=[key.code]))
        self.client.logout()
        self.assertEqual(self.client.get(reverse("api_chats"), **headers).status_code, 401)

    def test_only_admins_create_keys(self):
        self.login(self.manager)
        self.assertEqual(self.client.get(reverse("api_key_list")).status_code, 200)
        self.assertEqual(
            self.client.post(reverse("api_key_create"), {"name": "x"}).status_code, 403
        )
        self.login(self.agent)
        self.assertEqual(self.client.get(reverse("api_key_list")).status_code, 403)


@override_settings(EGRESS_ALLOW_PRIVATE=True)
class MessageEventTests(SandboxMixin, ApiTestCase):
    def test_a_sent_message_is_announced_with_its_status(self):
        receiver = Receiver().start()
        self.addCleanup(receiver.stop)
        outgoing.subscription_create(
            organization=self.org, url=receiver.url, events=["message.sent", "message.status"]
        )
        self.open_window(self.other_chat)
        response = self.api(
            "post",
            reverse("api_chat_messages", args=[self.other_chat.code]),
            {"type": "text", "text": {"body": "Até amanhã"}},
        )
        events = [json.loads(body) for _headers, body in receiver.requests]
        self.assertEqual([e["type"] for e in events], ["message.sent", "message.status"])
        message = events[0]["data"]["message"]
        self.assertEqual((message["id"], message["status"]), (response.json()["id"], "sent"))
        self.assertTrue(message["wamid"])
        self.assertEqual(events[0]["data"]["previous_status"], "pending")


class WebhookApiTests(ApiTestCase):
    @override_settings(EGRESS_ALLOW_PRIVATE=True)
    def test_an_integrator_subscribes_receives_and_unsubscribes(self):
        receiver = Receiver().start()
        self.addCleanup(receiver.stop)
        response = self.api(
            "post", reverse("api_webhooks"), {"url": receiver.url, "events": ["chat.resolved"]}
        )
        self.assertEqual(response.status_code, 201, response.content)
        secret = response.json()["secret"]
        self.api(
            "post", reverse("api_chat_status", args=[self.other_chat.code]), {"status": "resolved"}
        )
        headers, body = receiver.requests[-1]
        stamp = headers["x-porfin-timestamp"]
        self.assertEqual(headers["x-porfin-signature"], outgoing.sign(secret, int(stamp), body))
        listed = self.api("get", reverse("api_webhooks")).json()["results"]
        self.assertEqual([w["id"] for w in listed], [response.json()["id"]])
        self.assertNotIn("secret", listed[0])
        deleted = self.api("delete", reverse("api_webhook", args=[response.json()["id"]]))
        self.assertEqual(deleted.status_code, 204)
        self.assertFalse(WebhookSubscription.objects.exists())

    @override_settings(EGRESS_ALLOW_PRIVATE=False)
    def test_it_refuses_a_private_url(self):
        response = self.api(
            "post",
            reverse("api_webhooks"),
            {"url": "http://169.254.169.254/latest/", "events": ["chat.created"]},
        )
        self.assertEqual(response.status_code, 400)
        self.assertIn("url", response.json()["error"]["details"])

    def test_it_needs_the_webhooks_scope(self):
        from tests.api.helpers import key_for

        secret = key_for(self.org, scopes=["chats:write"], name="No hooks")
        self.assertEqual(self.api("get", reverse("api_webhooks"), secret=secret).status_code, 403)
