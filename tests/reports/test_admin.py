from django.urls import reverse
from django.utils import timezone

from integrations.models import WebhookEvent
from reports.models import AuditEvent, DailyStat
from tests.base import BaseTestCase

EMPTY_DELIVERY = b'{"object": "whatsapp_business_account", "entry": []}'


class BackOfficeTests(BaseTestCase):
    def setUp(self):
        self.admin.is_staff = True
        self.admin.save()
        self.login(self.admin)

    def test_it_retries_failed_webhook_events(self):
        failed = WebhookEvent.objects.create(
            organization=self.org,
            number=self.number,
            body=EMPTY_DELIVERY,
            processed_at=timezone.now(),
            error="OperationalError: database is locked",
        )
        foreign = WebhookEvent.objects.create(
            organization=self.other_org, number=self.other_number, body=EMPTY_DELIVERY, error="x"
        )
        url = reverse("admin:integrations_webhookevent_changelist")
        response = self.client.post(
            url, {"action": "retry", "_selected_action": [failed.pk, foreign.pk]}, follow=True
        )
        self.assertContains(response, "Retried 1 events; 0 still failing.")
        failed.refresh_from_db()
        self.assertEqual(failed.error, "")
        self.assertIsNotNone(failed.processed_at)
        self.assertEqual(WebhookEvent.objects.get(pk=foreign.pk).error, "x")

    def test_it_shows_only_the_organizations_audit_events_read_only(self):
        own = AuditEvent.objects.create(
            organization=self.org, action="settings_changed", target_label="ours"
        )
        AuditEvent.objects.create(
            organization=self.other_org, action="settings_changed", target_label="segredo-do-bob"
        )
        response = self.client.get(reverse("admin:reports_auditevent_changelist"))
        self.assertContains(response, "ours")
        self.assertNotContains(response, "segredo-do-bob")
        self.assertNotContains(response, "delete_selected")
        change = self.client.get(reverse("admin:reports_auditevent_change", args=[own.pk]))
        self.assertNotContains(change, 'name="_save"')
        delete = self.client.post(reverse("admin:reports_auditevent_delete", args=[own.pk]))
        self.assertEqual(delete.status_code, 403)
        self.assertTrue(AuditEvent.objects.filter(pk=own.pk).exists())

    def test_it_lists_daily_usage_per_organization(self):
        DailyStat.objects.create(organization=self.org, day="2026-03-10", messages_in=7)
        DailyStat.objects.create(organization=self.other_org, day="2026-03-10", messages_in=9)
        response = self.client.get(reverse("admin:reports_dailystat_changelist"))
        self.assertContains(response, self.org.name)
        self.assertNotContains(response, self.other_org.name)
