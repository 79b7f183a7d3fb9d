"""``/metrics`` for the operator's Prometheus: hidden from everyone else."""

from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from inbox import services as inbox_services
from inbox.models import Chat, Message
from integrations.models import WebhookEvent
from tests.base import BaseTestCase
from tests.campaigns.helpers import SandboxMixin


@override_settings(METRICS_TOKEN="scrape-token-123")
class MetricsTests(BaseTestCase):
    def test_a_scraper_with_the_token_reads_the_figures(self):
        WebhookEvent.objects.create(number=self.number, body=b"{}", headers={})
        response = self.client.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response["Content-Type"].startswith("text/plain"))
        body = response.content.decode()
        self.assertIn("porfin_webhook_events_pending 1\n", body)
        self.assertIn('porfin_queue_depth{queue="inbound"}', body)
        self.assertIn("porfin_ai_cost_month_usd 0.0", body)
        self.assertIn("porfin_websocket_connections{pid=", body)

    def test_anyone_else_gets_a_404(self):
        self.assertEqual(self.client.get("/metrics").status_code, 404)
        wrong = {"Authorization": "Bearer nope"}
        self.assertEqual(self.client.get("/metrics", headers=wrong).status_code, 404)
        self.client.force_login(self.admin)  # an organization's admin is not the operator
        self.assertEqual(self.client.get("/metrics").status_code, 404)

    def test_a_superuser_reads_it_signed_in(self):
        self.admin.is_superuser = True
        self.admin.save(update_fields=["is_superuser"])
        self.client.force_login(self.admin)
        self.assertEqual(self.client.get("/metrics").status_code, 200)


@override_settings(METRICS_TOKEN="scrape-token-123")
class SendRateTests(SandboxMixin, BaseTestCase):
    def test_each_numbers_accepted_sends_are_counted(self):
        chat = Chat.objects.select_related("contact", "organization").get(pk=self.agent_chat.pk)
        chat.window_expires_at = timezone.now() + timedelta(hours=20)
        chat.save(update_fields=["window_expires_at"])
        for text in ("Olá!", "Tudo bem?"):
            with self.captureOnCommitCallbacks(execute=True):
                inbox_services.message_send(
                    chat=chat, message_type="text", content={"body": text}, author_user=self.admin
                )
        self.assertEqual(Message.objects.filter(chat=chat, status="sent").count(), 2)
        body = self.client.get(
            "/metrics", headers={"Authorization": "Bearer scrape-token-123"}
        ).content.decode()
        self.assertIn(
            f'porfin_sends_total{{number="{self.number.pk}",phone_number_id="111"}} 2', body
        )
        self.assertNotIn(f'number="{self.other_number.pk}"', body)  # it sent nothing
