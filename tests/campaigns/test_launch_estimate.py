"""The launch confirmation's cost: an estimate from a dated copy of Meta's Brazil rate card,
labelled as such on the page."""

from django.urls import reverse

from campaigns import preflight
from tests.base import BaseTestCase
from tests.campaigns.helpers import make_campaign, make_contacts, make_template


class LaunchEstimateTests(BaseTestCase):
    def test_the_cost_is_labelled_an_estimate_with_the_rate_cards_date(self):
        make_contacts(self.org, 3)
        campaign = make_campaign(self.org, self.number, make_template(self.number))
        template = campaign.template
        template.category = "MARKETING"
        template.save(update_fields=["category"])
        summary = preflight.launch_summary(campaign)
        self.assertEqual(summary.price_each, preflight.TEMPLATE_PRICES_USD["MARKETING"])
        self.assertEqual(summary.prices_date, preflight.TEMPLATE_PRICES_DATE)
        self.login(self.admin)
        page = self.client.get(reverse("campaign_launch", args=[campaign.code]))
        self.assertContains(page, 'data-testid="cost-estimate-note"')
        self.assertContains(page, "01/01/2026")
