import io

from django.core.management import call_command
from django.test import TestCase

from accounts.models import Membership, Organization, Role, User
from inbox.models import Chat, Contact, Message


def counts():
    return [m.objects.count() for m in (Organization, User, Membership, Contact, Chat, Message)]


class DemoCommandTests(TestCase):
    def test_it_creates_the_demo_organization_once(self):
        call_command("demo", stdout=io.StringIO())
        first = counts()
        call_command("demo", stdout=io.StringIO())
        self.assertEqual(counts(), first)
        organization = Organization.objects.get(name="Clínica Sorriso")
        roles = set(
            Membership.objects.filter(organization=organization).values_list("role", flat=True)
        )
        self.assertEqual(roles, {Role.ADMIN, Role.MANAGER, Role.OPERATOR, Role.AGENT})
        self.assertGreaterEqual(Chat.objects.filter(organization=organization).count(), 5)

    def test_the_owner_can_sign_in(self):
        call_command("demo", stdout=io.StringIO())
        from inbox.management.commands.demo import DEMO_PASSWORD, OWNER_EMAIL

        self.assertTrue(self.client.login(email=OWNER_EMAIL, password=DEMO_PASSWORD))
        self.assertContains(self.client.get("/"), "Clínica Sorriso")


class RichDemoTests(TestCase):
    def test_weeks_of_history_every_type_templates_replies_a_closed_window_and_a_campaign(self):
        from datetime import timedelta

        from django.utils import timezone

        from campaigns.models import Campaign, Segment
        from inbox.models import QuickReply
        from integrations.models import MessageTemplate

        call_command("demo", stdout=io.StringIO())
        call_command("campaigns_demo", stdout=io.StringIO())
        first = counts() + [Campaign.objects.count()]
        call_command("demo", stdout=io.StringIO())
        call_command("campaigns_demo", stdout=io.StringIO())
        self.assertEqual(counts() + [Campaign.objects.count()], first)

        org = Organization.objects.get(slug="clinica-sorriso")
        messages = Message.objects.filter(organization=org)
        types = set(messages.values_list("type", flat=True))
        for kind in ("text", "image", "audio", "document", "location", "contacts"):
            self.assertIn(kind, types)
        self.assertTrue({"interactive", "template", "note", "sticker"} <= types)
        oldest = messages.order_by("timestamp").first().timestamp
        self.assertLess(oldest, timezone.now() - timedelta(days=14))
        self.assertGreaterEqual(messages.count(), 300)
        self.assertTrue(
            Chat.objects.filter(organization=org, window_expires_at__lt=timezone.now()).exists()
        )
        self.assertGreaterEqual(
            MessageTemplate.objects.filter(organization=org, status="APPROVED").count(), 3
        )
        self.assertGreaterEqual(QuickReply.objects.filter(organization=org).count(), 4)
        self.assertGreaterEqual(Segment.objects.filter(organization=org).count(), 2)
        finished = Campaign.objects.get(organization=org, status=Campaign.Status.COMPLETED)
        self.assertGreater(finished.replied, 0)
        self.assertEqual(finished.recipients.count(), finished.total)


class CampaignDailyTests(TestCase):
    def test_the_finished_demo_campaign_shows_its_days(self):
        from campaigns.models import Campaign

        call_command("demo", stdout=io.StringIO())
        call_command("campaigns_demo", stdout=io.StringIO())
        from inbox.management.commands.demo import OWNER_EMAIL

        self.client.force_login(User.objects.get(email=OWNER_EMAIL))
        campaign = Campaign.objects.get(status=Campaign.Status.COMPLETED)
        response = self.client.get(f"/campaigns/{campaign.code}/")
        daily = response.context["daily"]
        self.assertGreaterEqual(len(daily), 2)
        self.assertEqual(sum(row["sent"] for row in daily), campaign.sent + campaign.failed)
        self.assertEqual(sum(row["replied"] for row in daily), campaign.replied)
        self.assertContains(response, 'id="campaign-daily"')
