"""Two dispatchers at once (threads with their own connections) never send a recipient twice."""

import threading
from collections import Counter

from django.db import connection
from django.test import TransactionTestCase

from campaigns import dispatch
from campaigns.dispatch import Dispatcher, Options
from campaigns.models import Campaign
from tests.base import make_org
from tests.campaigns.helpers import SandboxMixin, make_campaign, make_contacts, make_template


class TwoDispatchersTests(SandboxMixin, TransactionTestCase):
    def test_two_dispatchers_never_double_send(self):
        organization, number = make_org("Clínica C", "clinica-c", "333")
        number.waba_id = "900333"
        number.save()
        self.sandbox_number(number)
        make_contacts(organization, 80)
        campaign = make_campaign(organization, number, make_template(number), rate_per_second=200)
        Campaign.objects.filter(pk=campaign.pk).update(
            status="scheduled", next_run_at=campaign.created_at
        )
        self.assertTrue(dispatch.run_start(campaign.pk))
        outcomes = []

        def work():
            try:
                # Bypass the per-campaign lease so both loops really compete for rows.
                dispatcher = Dispatcher(campaign.pk, Options(idle_sleep=0.01, slice_seconds=20))
                dispatcher.acquire = dispatcher.renew = lambda: True
                outcomes.append(dispatcher.run())
            finally:
                connection.close()

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        sent = Counter(self.sent_to(number))
        self.assertEqual(len(sent), 80)
        self.assertEqual(set(sent.values()), {1})
        self.assertEqual(set(campaign.recipients.values_list("status", flat=True)), {"sent"})
        self.assertEqual(len(outcomes), 2)

    def test_claims_are_disjoint(self):
        organization, number = make_org("Clínica D", "clinica-d", "444")
        make_contacts(organization, 40)
        campaign = make_campaign(organization, number, make_template(number))
        Campaign.objects.filter(pk=campaign.pk).update(
            status="scheduled", next_run_at=campaign.created_at
        )
        dispatch.run_start(campaign.pk)
        campaign.refresh_from_db()
        claimed = []

        def claim(token):
            try:
                while batch := dispatch.claim_batch(campaign, token, 7, 60):
                    claimed.extend(r.pk for r in batch)
            finally:
                connection.close()

        threads = [threading.Thread(target=claim, args=(f"t{i}",)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(len(claimed), 40)
        self.assertEqual(len(set(claimed)), 40)
