"""Follow-up work that stopped retrying (an outbox entry at its maximum attempts) is not left
silently in the table: an installation alert opens once and clears when none is left, and the
ops page lists the entries with retry and discard, both audited."""

from datetime import timedelta

from django.core import mail
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from kernel import outbox
from kernel.models import OutboxEntry
from reports import alerts
from reports.models import Alert, AuditEvent
from tests.base import BaseTestCase

KEY = "tests.flaky"
RAN: list = []
BROKEN = {"on": True}


def _flaky(payload):
    if BROKEN["on"]:
        raise RuntimeError(f"the partner API is down for {payload['chat']}")
    RAN.append(payload["chat"])


outbox.register(KEY, _flaky)


@override_settings(TASK_RUNNER="thread")  # failures are recorded, not raised into the test
class DeadOutboxTests(BaseTestCase):
    def setUp(self):
        RAN.clear()
        BROKEN["on"] = True
        self.outsider.is_superuser = True
        self.outsider.save(update_fields=["is_superuser"])

    def fail_to_death(self, chat: int, organization_id=None) -> OutboxEntry:
        """Recorded, then run by the sweep until its attempts are spent (backoff skipped)."""
        entry = outbox.add(KEY, {"chat": chat}, organization_id=organization_id)
        for _ in range(outbox.MAX_ATTEMPTS):
            OutboxEntry.objects.filter(pk=entry.pk).update(
                run_after=timezone.now() - timedelta(minutes=1)
            )
            outbox.sweep(grace_seconds=0)
        entry.refresh_from_db()
        return entry

    def evaluate(self):
        with self.captureOnCommitCallbacks(execute=True):
            return alerts.alerts_evaluate()

    def test_a_dead_entry_alerts_once_is_listed_and_retried_with_an_audit(self):
        entry = self.fail_to_death(7, self.org.pk)
        self.assertEqual(entry.attempts, outbox.MAX_ATTEMPTS)
        self.assertEqual(list(outbox.dead()), [entry])
        # The sweep leaves it alone now.
        OutboxEntry.objects.filter(pk=entry.pk).update(run_after=timezone.now())
        self.assertEqual(outbox.sweep(grace_seconds=0), 0)
        self.assertEqual(OutboxEntry.objects.get(pk=entry.pk).attempts, outbox.MAX_ATTEMPTS)

        self.assertEqual(self.evaluate(), {"opened": 1, "cleared": 0})
        self.assertEqual(self.evaluate(), {"opened": 0, "cleared": 0})  # once per episode
        alert = Alert.objects.get(kind=Alert.Kind.OUTBOX_DEAD, cleared_at=None)
        self.assertIsNone(alert.organization)
        self.assertEqual([m.to for m in mail.outbox], [[self.outsider.email]])
        self.assertIn("1 follow-up task failed too many times", mail.outbox[0].body)

        self.client.force_login(self.outsider)
        page = self.client.get(reverse("ops_page"))
        self.assertContains(page, f'data-entry="{entry.pk}"')
        self.assertContains(page, KEY)
        self.assertContains(page, "Clínica Alice")
        self.assertContains(page, "the partner API is down for 7")
        # Only superusers may act (404 like the page).
        self.client.force_login(self.admin)
        denied = self.client.post(reverse("ops_outbox"), {"action": "retry", "entry": entry.pk})
        self.assertEqual(denied.status_code, 404)
        self.assertEqual(OutboxEntry.objects.get(pk=entry.pk).attempts, outbox.MAX_ATTEMPTS)

        BROKEN["on"] = False  # the partner is back
        self.client.force_login(self.outsider)
        # Queued again after the commit (inline here: the task runs in the request).
        with override_settings(TASK_RUNNER="inline"), self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                reverse("ops_outbox"), {"action": "retry", "entry": [entry.pk]}
            )
        self.assertRedirects(response, reverse("ops_page") + "#ops-outbox")
        self.assertEqual(RAN, [7])
        self.assertFalse(OutboxEntry.objects.filter(pk=entry.pk).exists())
        audit = AuditEvent.objects.get(action=AuditEvent.Action.OUTBOX_RETRIED)
        self.assertEqual(audit.actor, self.outsider)
        self.assertEqual(audit.organization, self.org)
        self.assertEqual(audit.data["key"], KEY)
        self.assertEqual(audit.data["payload"], {"chat": 7})
        self.assertEqual(audit.data["attempts"], outbox.MAX_ATTEMPTS)
        self.assertIn("partner API is down", audit.data["error"])

        self.assertEqual(self.evaluate(), {"opened": 0, "cleared": 1})
        self.assertContains(self.client.get(reverse("ops_page")), "None: every follow-up task")

    def test_discard_deletes_only_dead_entries_and_is_audited(self):
        dead = self.fail_to_death(8)
        alive = outbox.add(KEY, {"chat": 9})  # still retrying: not the operator's to discard
        self.assertEqual(self.evaluate()["opened"], 1)
        self.client.force_login(self.outsider)
        self.client.post(reverse("ops_outbox"), {"action": "discard", "entry": [dead.pk, alive.pk]})
        self.assertEqual(list(OutboxEntry.objects.values_list("pk", flat=True)), [alive.pk])
        audit = AuditEvent.objects.get(action=AuditEvent.Action.OUTBOX_DISCARDED)
        self.assertEqual(audit.target_id, str(dead.pk))
        self.assertEqual(audit.data["payload"], {"chat": 8})
        self.assertEqual(RAN, [])
        self.assertEqual(self.evaluate()["cleared"], 1)

    def test_bad_input_is_refused_and_changes_nothing(self):
        dead = self.fail_to_death(10)
        self.client.force_login(self.outsider)
        url = reverse("ops_outbox")
        self.assertEqual(
            self.client.post(url, {"action": "run", "entry": dead.pk}).status_code, 400
        )
        self.assertEqual(self.client.post(url, {"action": "retry", "entry": "x"}).status_code, 400)
        self.assertEqual(self.client.get(url).status_code, 405)
        self.assertEqual(OutboxEntry.objects.get(pk=dead.pk).attempts, outbox.MAX_ATTEMPTS)
        self.assertFalse(AuditEvent.objects.filter(action__startswith="outbox_").exists())
