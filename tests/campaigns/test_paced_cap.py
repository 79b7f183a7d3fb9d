"""Campaigns aim a few sends under a number's cap (``dispatch.paced_cap``): the provider counts
a strict sliding second, and the shared pace may put ``rate + 2`` sends in one. The sustained
figure against the sandbox is the bench's (``bench/campaign_dispatch.py --workers1 2``)."""

from campaigns import dispatch
from tests.base import BaseTestCase
from tests.campaigns.helpers import make_campaign, make_template


class PacedCapTests(BaseTestCase):
    def test_a_campaign_at_full_speed_leaves_room_for_the_paces_own_burst(self):
        self.number.throughput_per_second = 80
        self.number.save(update_fields=["throughput_per_second"])
        campaign = make_campaign(self.org, self.number, make_template(self.number))
        rate = dispatch.effective_rate(campaign)
        self.assertLessEqual(rate + 2, 80 * 0.99)  # the pace's burst and 1% jitter fit
        self.assertGreaterEqual(rate, 76)  # issue 18's bar: >= 95% of the cap

    def test_the_headroom_at_other_caps(self):
        self.assertAlmostEqual(dispatch.paced_cap(1000), 988)
        self.assertAlmostEqual(dispatch.paced_cap(20), 18)  # never under 90%
        for cap in (60, 80, 125, 250, 1000):
            self.assertGreaterEqual(dispatch.paced_cap(cap), cap * 0.95)
            self.assertLessEqual(dispatch.paced_cap(cap) + 2, cap * 0.99 + 1e-9)
