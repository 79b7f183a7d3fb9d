"""Campaign reply bookkeeping survives the task broker: recorded in the outbox with each batch
of replies, so a broker that is down or restarts empty (Redis without persistence) delays it
and never drops it (issue 22: 173 of 1,000 replies were never marked before)."""

import os
from unittest import mock

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from django_q.brokers.redis_broker import Redis as RedisBroker

from campaigns.models import CampaignRecipient
from integrations import services
from integrations.models import WebhookEvent
from kernel import outbox, tasks
from kernel.models import OutboxEntry
from tests.base import BaseTestCase
from tests.campaigns.helpers import make_campaign, make_contacts, make_template
from tests.integrations.conftest import inbound_body

REPLIES = int(os.environ.get("DURABLE_REPLIES", "200"))  # the bench bar is 1,000


class UnreachableBroker(RedisBroker):
    """django-q2's Redis broker, aimed at a port nothing listens on (Redis down)."""

    @staticmethod
    def get_connection(list_key=None):
        return redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)


class DurableFollowupTests(BaseTestCase):
    def setUp(self):
        # The task runner fails fast for a few seconds after a broker error: not across tests.
        tasks._broker_down_until.clear()
        self.addCleanup(tasks._broker_down_until.clear)
        self.contacts = make_contacts(self.org, REPLIES)
        campaign = make_campaign(self.org, self.number, make_template(self.number))
        now = timezone.now()
        CampaignRecipient.objects.bulk_create(
            CampaignRecipient(
                organization=self.org,
                campaign=campaign,
                contact=contact,
                to=contact.wa_id,
                status=CampaignRecipient.Status.DELIVERED,
                sent_at=now,
                wamid=f"wamid.campaign-{i}",
            )
            for i, contact in enumerate(self.contacts)
        )

    def replies_arrive(self) -> None:
        """Every contact answers; one inbound worker processes the deliveries in its batches."""
        ids = [
            WebhookEvent.objects.create(
                **services.webhook_event_fields(
                    number=self.number,
                    body=inbound_body(
                        self.number, wamid=f"wamid.reply-{i}", wa_id=contact.wa_id, name="Cliente"
                    ),
                    headers={},
                )
            ).pk
            for i, contact in enumerate(self.contacts)
        ]
        for start in range(0, len(ids), 80):
            with self.captureOnCommitCallbacks(execute=True):
                services.webhook_events_process(ids[start : start + 80])
        self.assertFalse(WebhookEvent.objects.filter(processed_at=None).exists())

    def replied(self) -> int:
        return CampaignRecipient.objects.filter(status=CampaignRecipient.Status.REPLIED).count()

    def sweep(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            outbox.sweep(grace_seconds=0)

    def test_replies_processed_while_the_broker_is_down_are_all_marked_once_it_sweeps(self):
        cluster = tasks.cluster_name("default")
        with (
            override_settings(TASK_RUNNER="django_q"),
            mock.patch.dict(tasks._brokers, {cluster: UnreachableBroker(cluster)}),
        ):
            self.replies_arrive()
        self.assertEqual(self.replied(), 0)  # nothing ran: the broker never got the tasks
        self.assertTrue(OutboxEntry.objects.filter(key="campaigns.inbound_followups").exists())
        self.sweep()
        self.assertEqual(self.replied(), REPLIES)
        self.assertFalse(OutboxEntry.objects.exists())

    @pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL)")
    def test_replies_whose_tasks_a_redis_restart_lost_are_all_marked_by_the_sweep(self):
        cluster = tasks.cluster_name("default")
        broker = RedisBroker(cluster)
        broker.purge_queue()
        with (
            override_settings(TASK_RUNNER="django_q"),
            mock.patch.dict(tasks._brokers, {cluster: broker}),
        ):
            self.replies_arrive()
            self.assertGreater(broker.queue_size(), 0)  # queued in Redis, not run yet
            broker.purge_queue()  # Redis restarts without persistence: the tasks are gone
        self.assertEqual(self.replied(), 0)
        self.sweep()
        self.assertEqual(self.replied(), REPLIES)
        self.assertFalse(OutboxEntry.objects.exists())

    def test_an_entry_run_twice_does_its_work_once(self):
        self.replies_arrive()  # inline: the follow-ups ran after each commit
        self.assertEqual(self.replied(), REPLIES)
        self.sweep()
        self.assertEqual(self.replied(), REPLIES)
        self.assertEqual(CampaignRecipient.objects.filter(reply__isnull=False).count(), REPLIES)
