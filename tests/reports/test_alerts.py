"""Operational alerts: raised once per episode (in-app and by e-mail), cleared when back to
normal, with thresholds the organization's admins edit; the installation's queue backlog goes
to superusers, who also get the ops page (heartbeats and queue depth per cluster)."""

import threading
import time
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

from django.core import mail
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from assistants.models import Assistant, UsageRecord
from inbox.models import Message
from integrations import services as channel
from kernel import tasks
from reports import alerts
from reports.models import Alert, AlertSettings, OpsSettings
from tests.base import BaseTestCase

RELEASE = threading.Event()


def hold():
    RELEASE.wait(10)


class AlertTests(BaseTestCase):
    def sends(self, *, sent: int, failed: int, ago=timedelta(minutes=1)):
        for index in range(sent + failed):
            Message.objects.create(
                organization=self.org,
                chat=self.other_chat,
                number=self.number,
                direction="out",
                text="Oi",
                status="failed" if index < failed else "sent",
                author_type=Message.Author.CAMPAIGN,
                timestamp=timezone.now() - ago,
            )

    def evaluate(self):
        with self.captureOnCommitCallbacks(execute=True):
            return alerts.alerts_evaluate()

    def test_a_send_error_rate_alerts_the_admins_once_per_episode(self):
        self.sends(sent=15, failed=10)  # 40% of 25 sends failed
        self.assertEqual(self.evaluate(), {"opened": 1, "cleared": 0})
        alert = Alert.objects.get(organization=self.org, cleared_at=None)
        self.assertEqual(alert.kind, Alert.Kind.SEND_ERRORS)
        self.assertEqual([m.to for m in mail.outbox], [[self.admin.email]])  # admins only
        self.assertIn("10 of the last 25 messages failed", mail.outbox[0].body)
        # The admin sees it in the bell on any page; an agent does not.
        self.login(self.admin)
        page = self.client.get(reverse("home"), follow=True)
        self.assertContains(page, "10 of the last 25 messages failed")
        self.login(self.agent)
        page = self.client.get(reverse("home"), follow=True)
        self.assertNotContains(page, "messages failed")
        # Still failing a minute later: no second alert, no second e-mail.
        self.assertEqual(self.evaluate(), {"opened": 0, "cleared": 0})
        self.assertEqual(len(mail.outbox), 1)
        # Back to normal (the failures leave the window): cleared, and said so.
        Message.objects.filter(direction="out").update(
            timestamp=timezone.now() - timedelta(hours=1)
        )
        self.sends(sent=30, failed=1)
        self.assertEqual(self.evaluate(), {"opened": 0, "cleared": 1})
        self.assertIn("Back to normal", mail.outbox[1].subject)
        self.assertFalse(Alert.objects.filter(cleared_at=None).exists())
        # A new episode is a new alert.
        self.sends(sent=0, failed=30)
        self.assertEqual(self.evaluate(), {"opened": 1, "cleared": 0})
        self.assertEqual(Alert.objects.filter(organization=self.org).count(), 2)

    def test_the_admins_thresholds_decide(self):
        self.sends(sent=15, failed=10)
        self.login(self.admin)
        response = self.client.post(
            reverse("alert_list"),
            {
                "send_error_percent": 50,
                "send_error_min_sends": 20,
                "ai_budget_percent": 80,
                "quality_alerts": "on",
            },
        )
        self.assertRedirects(response, reverse("alert_list"))
        config = AlertSettings.objects.get(organization=self.org)
        self.assertEqual((config.send_error_percent, config.email), (50, False))
        self.assertEqual(self.evaluate(), {"opened": 0, "cleared": 0})  # 40% < 50%
        # A manager reads the thresholds but may not change them; an agent may not see them.
        self.login(self.manager)
        self.assertEqual(self.client.get(reverse("alert_list")).status_code, 200)
        self.assertEqual(
            self.client.post(reverse("alert_list"), {"send_error_percent": 1}).status_code, 403
        )
        self.login(self.agent)
        self.assertEqual(self.client.get(reverse("alert_list")).status_code, 403)

    def test_a_number_whose_quality_drops_alerts_until_it_recovers(self):
        update = SimpleNamespace(
            display_phone_number=self.number.display_phone_number, event="FLAGGED", current_limit=""
        )
        channel.number_quality_apply(number=self.number, update=update)  # as its webhook does
        self.evaluate()
        alert = Alert.objects.get(kind=Alert.Kind.NUMBER_QUALITY, cleared_at=None)
        self.assertEqual(alert.organization, self.org)
        self.assertIn("FLAGGED", mail.outbox[0].body)
        channel.number_quality_apply(
            number=self.number, update=SimpleNamespace(**{**vars(update), "event": "UNFLAGGED"})
        )
        self.assertEqual(self.evaluate(), {"opened": 0, "cleared": 1})

    def test_an_assistant_near_its_budget_alerts(self):
        assistant = Assistant.objects.create(
            organization=self.org, name="Sofia", monthly_budget=Decimal("10.00")
        )
        month = timezone.now().strftime("%Y-%m")
        UsageRecord.objects.create(
            organization=self.org, assistant=assistant, kind="chat", month=month, cost=7
        )
        self.assertEqual(self.evaluate()["opened"], 0)  # 70% < 80%
        UsageRecord.objects.create(
            organization=self.org, assistant=assistant, kind="chat", month=month, cost=1.5
        )
        self.assertEqual(self.evaluate()["opened"], 1)
        self.assertIn("Sofia has used 85% of its monthly AI budget", mail.outbox[0].body)

    @override_settings(TASK_RUNNER="thread")
    def test_a_queue_backlog_alerts_the_superusers_who_see_the_ops_page(self):
        self.outsider.is_superuser = True
        self.outsider.save(update_fields=["is_superuser"])
        OpsSettings.objects.update_or_create(pk=1, defaults={"queue_backlog": 3})
        RELEASE.clear()
        try:
            for _ in range(tasks.QUEUES["bulk"] + 4):  # both threads busy, 4 waiting
                tasks.dispatch("tests.reports.test_alerts.hold", queue="bulk")
            time.sleep(0.2)
            self.assertGreaterEqual(tasks.queue_depth("bulk"), 3)
            self.evaluate()
        finally:
            RELEASE.set()
        alert = Alert.objects.get(kind=Alert.Kind.QUEUE_BACKLOG)
        self.assertIsNone(alert.organization)
        self.assertEqual(alert.subject, "bulk")
        self.assertEqual([m.to for m in mail.outbox], [[self.outsider.email]])
        self.client.force_login(self.outsider)
        page = self.client.get(reverse("ops_page"))
        self.assertContains(page, 'data-queue="inbound"')
        self.assertContains(page, "tasks are waiting in the bulk queue")
        # Nobody else knows the page exists.
        self.client.force_login(self.admin)
        self.assertEqual(self.client.get(reverse("ops_page")).status_code, 404)
        # Drained: cleared.
        deadline = time.monotonic() + 5
        while tasks.queue_depth("bulk") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.evaluate()["cleared"], 1)
