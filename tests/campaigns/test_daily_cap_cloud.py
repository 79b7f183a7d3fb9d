"""A daily send cap for Cloud API numbers too: the number's own cap, else its Meta messaging
tier, else none; the campaign waits (never fails) at the cap with a visible reason; the cap is
set in Settings › Numbers and shown on the number's page."""

from django.utils import timezone

from campaigns.models import Campaign
from integrations import web
from integrations.models import WhatsAppNumber
from tests.campaigns.helpers import make_campaign, make_contacts
from tests.campaigns.test_dispatch import DispatchTestCase, run


class CloudDailyCapTests(DispatchTestCase):
    def test_the_default_cap_follows_the_messaging_tier_and_the_number_may_set_its_own(self):
        self.assertIsNone(web.daily_cap_for(self.number))  # tier unknown: no cap
        self.number.messaging_limit = "TIER_1K"
        self.assertEqual(web.daily_cap_for(self.number), 1000)
        self.number.messaging_limit = "TIER_UNLIMITED"
        self.assertIsNone(web.daily_cap_for(self.number))
        self.number.daily_cap = 7
        self.assertEqual(web.daily_cap_for(self.number), 7)
        self.assertFalse(self.number.is_web_session)

    def test_a_batch_takes_what_is_left_of_the_cap_and_no_more(self):
        WhatsAppNumber.objects.filter(pk=self.number.pk).update(daily_cap=5)
        self.number.refresh_from_db()
        self.assertEqual(web.daily_quota_take_upto(self.number, 3), 3)
        self.assertEqual(web.daily_quota_take_upto(self.number, 3), 2)
        self.assertEqual(web.daily_quota_take_upto(self.number, 3), 0)
        self.assertEqual(web.daily_sends(self.number), 5)

    def test_a_campaign_waits_at_the_cap_with_a_visible_reason_and_fails_nothing(self):
        WhatsAppNumber.objects.filter(pk=self.number.pk).update(daily_cap=3)
        self.number.refresh_from_db()
        make_contacts(self.org, 8)
        campaign = self.launch(make_campaign(self.org, self.number, self.template))
        self.assertEqual(run(campaign, slice_seconds=1.5), "slice")
        self.assertEqual(len(self.sent_to(self.number)), 3)
        campaign.refresh_from_db()
        self.assertEqual(campaign.status, Campaign.Status.RUNNING)
        self.assertGreater(campaign.throttled_until, timezone.now() + timezone.timedelta(minutes=1))
        self.assertEqual(campaign.recipients.filter(status="failed").count(), 0)
        self.assertEqual(campaign.recipients.filter(status="queued").count(), 5)
        self.login(self.admin)
        page = self.client.get(f"/campaigns/{campaign.code}/")
        self.assertContains(page, 'data-testid="daily-cap-wait"')
        self.assertContains(page, "daily cap of 3")
        self.assertNotContains(page, 'data-testid="ban-warning"')  # not a WhatsApp Web number
        stats = self.client.get(f"/campaigns/{campaign.code}/?part=stats", HTTP_HX_REQUEST="true")
        self.assertContains(stats, 'data-testid="daily-cap-wait"')

    def test_without_a_cap_nothing_is_counted_or_shown(self):
        make_contacts(self.org, 4)
        campaign = self.launch(make_campaign(self.org, self.number, self.template))
        self.assertEqual(run(campaign), "done")
        self.assertEqual(len(self.sent_to(self.number)), 4)
        self.assertEqual(web.daily_sends(self.number), 0)
        self.login(self.admin)
        page = self.client.get(f"/campaigns/{campaign.code}/")
        self.assertNotContains(page, 'data-testid="daily-cap-wait"')


class NumberPageDailyCapTests(DispatchTestCase):
    def test_the_cap_is_set_in_settings_and_shown_on_the_number_page(self):
        self.login(self.admin)
        response = self.client.post(
            f"/settings/numbers/{self.number.code}/edit/", {"name": "Recepção", "daily_cap": "150"}
        )
        self.assertEqual(response.status_code, 302)
        self.number.refresh_from_db()
        self.assertEqual(self.number.daily_cap, 150)
        web.daily_quota_take(self.number, 12)
        page = self.client.get(f"/settings/numbers/{self.number.code}/")
        self.assertContains(page, "12 of 150 campaign messages sent today")
        response = self.client.post(
            f"/settings/numbers/{self.number.code}/edit/", {"name": "Recepção", "daily_cap": ""}
        )
        self.number.refresh_from_db()
        self.assertIsNone(self.number.daily_cap)
        page = self.client.get(f"/settings/numbers/{self.number.code}/")
        self.assertContains(page, "no cap")

    def test_a_bad_cap_is_refused_and_nothing_changes(self):
        self.login(self.admin)
        response = self.client.post(
            f"/settings/numbers/{self.number.code}/edit/", {"name": "Recepção", "daily_cap": "0"}
        )
        self.assertEqual(response.status_code, 400)
        self.number.refresh_from_db()
        self.assertIsNone(self.number.daily_cap)

    def test_a_manager_reads_but_cannot_edit(self):
        self.login(self.manager)
        self.assertEqual(self.client.get(f"/settings/numbers/{self.number.code}/").status_code, 200)
        response = self.client.post(
            f"/settings/numbers/{self.number.code}/edit/", {"name": "X", "daily_cap": "5"}
        )
        self.assertEqual(response.status_code, 403)
