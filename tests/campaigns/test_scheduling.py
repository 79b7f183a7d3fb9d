from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.test import SimpleTestCase
from django.utils import timezone

from campaigns import dispatch, scheduling, services
from campaigns.models import Campaign
from inbox.models import Contact
from tests.campaigns.helpers import make_campaign, make_contacts
from tests.campaigns.test_dispatch import DispatchTestCase

SP = ZoneInfo("America/Sao_Paulo")


class OccurrenceTests(SimpleTestCase):
    def test_it_runs_at_the_organizations_local_time_without_dst(self):
        # Brazil has had no DST since 2019: 09:00 in São Paulo is 12:00 UTC all year round.
        for month in (1, 7, 11):
            after = datetime(2026, month, 3, 0, 0, tzinfo=UTC)
            start, day = scheduling.next_occurrence(
                after=after, send_time=time(9), weekdays=None, org_tz=SP, per_contact=False
            )
            self.assertEqual(start, datetime(2026, month, 3, 12, 0, tzinfo=UTC))
            self.assertEqual(day, date(2026, month, 3))

    def test_it_moves_to_the_next_day_once_the_time_has_passed(self):
        after = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)  # 09:00 in São Paulo, exactly
        start, _day = scheduling.next_occurrence(
            after=after, send_time=time(9), weekdays=None, org_tz=SP, per_contact=False
        )
        self.assertEqual(start, datetime(2026, 5, 5, 12, 0, tzinfo=UTC))

    def test_weekly_recurrence_picks_the_next_selected_weekday(self):
        friday = datetime(2026, 5, 8, 15, 0, tzinfo=UTC)
        start, day = scheduling.next_occurrence(
            after=friday, send_time=time(8, 30), weekdays=[0, 3], org_tz=SP, per_contact=False
        )
        self.assertEqual(day, date(2026, 5, 11))  # Monday
        self.assertEqual(start, datetime(2026, 5, 11, 11, 30, tzinfo=UTC))

    def test_in_each_contacts_zone_the_run_starts_before_anyone_is_due(self):
        after = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)  # 22:00 on May 4 in the earliest zone
        start, day = scheduling.next_occurrence(
            after=after, send_time=time(9), weekdays=None, org_tz=SP, per_contact=True
        )
        self.assertEqual(day, date(2026, 5, 5))
        lisbon = scheduling.recipient_due(day, time(9), ZoneInfo("Europe/Lisbon"))
        manaus = scheduling.recipient_due(day, time(9), ZoneInfo("America/Manaus"))
        self.assertLess(start, lisbon)
        self.assertEqual(lisbon, datetime(2026, 5, 5, 8, 0, tzinfo=UTC))
        self.assertEqual(manaus, datetime(2026, 5, 5, 13, 0, tzinfo=UTC))


class ScheduledCampaignTests(DispatchTestCase):
    def test_a_campaign_at_a_local_time_starts_only_when_due(self):
        make_contacts(self.org, 2)
        later = timezone.now() + timedelta(hours=2)
        campaign = make_campaign(
            self.org, self.number, self.template, schedule=Campaign.Schedule.AT, scheduled_at=later
        )
        services.campaign_launch(campaign=campaign)
        self.assertEqual(dispatch.start_due(), [])
        self.assertEqual(dispatch.start_due(now=later + timedelta(seconds=1)), [campaign.pk])
        campaign.refresh_from_db()
        self.assertEqual((campaign.status, campaign.run), (Campaign.Status.RUNNING, 1))

    def test_a_daily_campaign_runs_again_and_each_contact_gets_it_in_their_zone(self):
        contacts = make_contacts(self.org, 2)
        Contact.objects.filter(pk=contacts[1].pk).update(time_zone="Europe/Lisbon")
        campaign = make_campaign(
            self.org,
            self.number,
            self.template,
            schedule=Campaign.Schedule.DAILY,
            send_time=time(9),
            time_zone_mode=Campaign.TimeZoneMode.CONTACT,
        )
        services.campaign_launch(campaign=campaign)
        campaign.refresh_from_db()
        first_run = campaign.next_run_at
        self.assertTrue(dispatch.run_start(campaign.pk, now=first_run))
        campaign.refresh_from_db()
        due = {r.contact_id: r.next_attempt_at for r in campaign.recipients.all()}
        self.assertEqual(due[contacts[0].pk], datetime.combine(campaign.run_date, time(9), SP))
        self.assertEqual(
            due[contacts[1].pk],
            datetime.combine(campaign.run_date, time(9), ZoneInfo("Europe/Lisbon")),
        )
        # Everyone is due in the past for this test: send the run, then the next one is scheduled.
        campaign.recipients.update(next_attempt_at=timezone.now())
        from tests.campaigns.test_dispatch import run

        self.assertEqual(run(campaign), "done")
        campaign.refresh_from_db()
        self.assertEqual(campaign.status, Campaign.Status.SCHEDULED)
        self.assertEqual(campaign.next_run_at, first_run + timedelta(days=1))
        self.assertEqual(len(self.sent_to(self.number)), 2)
