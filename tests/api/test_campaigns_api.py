from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, CampaignRecipient, Segment
from inbox.models import Contact
from integrations.models import WhatsAppNumber
from tests.api.helpers import ApiTestCase, key_for
from tests.campaigns.helpers import (
    SandboxMixin,
    make_campaign,
    make_contacts,
    make_template,
)


class CampaignApiTestCase(SandboxMixin, ApiTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        WhatsAppNumber.objects.filter(pk=cls.number.pk).update(waba_id="900111")
        cls.number.refresh_from_db()
        cls.template = make_template(cls.number)
        cls.reminder = make_template(cls.number, "appointment_reminder")
        cls.foreign_template = make_template(cls.other_number)
        cls.foreign_campaign = make_campaign(
            cls.other_org, cls.other_number, cls.foreign_template, name="Bob's secret campaign"
        )

    def setUp(self):
        super().setUp()
        self.sandbox_number(self.number)

    def create(self, **data):
        body = {
            "name": "Welcome",
            "number": str(self.number.code),
            "template": str(self.template.code),
            **data,
        }
        return self.api("post", reverse("api_campaigns"), body)

    def action(self, name, campaign, data=None, **extra):
        return self.api(
            "post", reverse(f"api_campaign_{name}", args=[campaign.code]), data, **extra
        )


class CampaignCreateTests(CampaignApiTestCase):
    def test_it_creates_a_draft_with_variables_like_the_page(self):
        response = self.create(
            name="Reminders",
            template=str(self.reminder.code),
            variables={
                "body": [
                    {"source": "first_name"},
                    {"source": "fixed", "value": "Dra. Ana"},
                    {"source": "attribute", "value": "day", "fallback": "amanhã"},
                    {"source": "fixed", "value": "10h"},
                ]
            },
            quiet_start="21:00",
            quiet_end="08:00",
        )
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual(
            (body["status"], body["template"]["name"]), ("draft", "appointment_reminder")
        )
        self.assertEqual((body["quiet_start"], body["quiet_end"]), ("21:00", "08:00"))
        campaign = Campaign.objects.get(code=body["id"])
        self.assertEqual(campaign.organization, self.org)
        self.assertEqual(
            campaign.variables["body"][2],
            {"source": "field", "value": "attribute:day", "fallback": "amanhã"},
        )
        self.assertFalse(campaign.recipients.exists())  # nothing is sent before scheduling

    def test_it_refuses_what_the_page_refuses(self):
        past = (timezone.now() - timedelta(hours=1)).isoformat()
        cases = [
            ({"schedule": "at", "scheduled_at": past}, "scheduled_at"),
            ({"schedule": "weekly", "send_time": "09:00"}, "weekdays"),
            ({"rate_per_second": 999}, "rate_per_second"),
            ({"template": str(self.foreign_template.code)}, "template"),
            ({"number": str(self.other_number.code)}, "number"),
            ({"segment": "00000000-0000-0000-0000-000000000000"}, "segment"),
            (
                {
                    "template": str(self.reminder.code),
                    "variables": {"body": [{"source": "fixed", "value": ""}]},
                },
                "variables",
            ),
        ]
        for data, field in cases:
            response = self.create(**data)
            with self.subTest(field=field):
                self.assertEqual(response.status_code, 400, response.content)
                self.assertIn(field, response.json()["error"]["details"])
        self.assertFalse(Campaign.objects.filter(organization=self.org).exists())

    def test_it_lists_and_filters_campaigns_with_a_cursor(self):
        for name in ("One", "Two", "Three"):
            self.create(name=name)
        Campaign.objects.filter(name="Two").update(status=Campaign.Status.PAUSED)
        first = self.api("get", reverse("api_campaigns"), {"limit": 2}).json()
        self.assertEqual([c["name"] for c in first["results"]], ["Three", "Two"])
        rest = self.client.get(first["next"], HTTP_AUTHORIZATION=f"Bearer {self.secret}").json()
        self.assertEqual([c["name"] for c in rest["results"]], ["One"])
        paused = self.api("get", reverse("api_campaigns"), {"status": "paused"}).json()
        self.assertEqual([c["name"] for c in paused["results"]], ["Two"])
        self.assertNotIn("Bob's secret campaign", str(first) + str(rest))


class CampaignLifecycleTests(CampaignApiTestCase):
    def test_scheduling_now_sends_to_the_audience_and_stats_follow(self):
        contacts = make_contacts(self.org, 3)
        make_contacts(self.org, 1, start=50, opt_in=Contact.OptIn.OPTED_OUT)
        campaign = Campaign.objects.get(code=self.create().json()["id"])
        response = self.action("schedule", campaign)
        self.assertEqual(response.status_code, 200, response.content)
        campaign.refresh_from_db()
        self.assertEqual(campaign.status, Campaign.Status.COMPLETED)
        self.assertEqual(sorted(self.sent_to(self.number)), sorted(c.wa_id for c in contacts))
        stats = self.api("get", reverse("api_campaign_stats", args=[campaign.code])).json()
        self.assertEqual(
            (stats["status"], stats["total"], stats["sent"], stats["progress_percent"]),
            ("completed", 3, 3, 100),
        )
        self.assertEqual(stats["audience"], 3)
        again = self.action("schedule", campaign)
        self.assertEqual(again.status_code, 409)
        self.assertEqual(again.json()["error"]["code"], "campaign_state")

    def test_it_schedules_at_a_moment_then_pauses_resumes_and_cancels(self):
        campaign = Campaign.objects.get(code=self.create().json()["id"])
        moment = timezone.now() + timedelta(days=1)
        response = self.action("schedule", campaign, {"scheduled_at": moment.isoformat()})
        self.assertEqual(response.json()["status"], "scheduled")
        self.assertEqual(response.json()["schedule"], "at")
        campaign.refresh_from_db()
        self.assertAlmostEqual(campaign.next_run_at.timestamp(), moment.timestamp(), delta=1)
        self.assertEqual(self.sent_to(self.number), [])
        self.assertEqual(self.action("pause", campaign).json()["status"], "paused")
        self.assertEqual(self.action("pause", campaign).status_code, 409)
        self.assertEqual(self.action("resume", campaign).json()["status"], "scheduled")
        self.assertEqual(self.action("schedule", campaign).status_code, 409)  # not a draft
        self.assertEqual(self.action("cancel", campaign).json()["status"], "cancelled")
        for name in ("resume", "pause", "cancel", "schedule"):
            self.assertEqual(self.action(name, campaign).status_code, 409)

    def test_a_past_moment_is_refused(self):
        campaign = Campaign.objects.get(code=self.create().json()["id"])
        past = (timezone.now() - timedelta(minutes=1)).isoformat()
        response = self.action("schedule", campaign, {"scheduled_at": past})
        self.assertEqual(response.status_code, 400)
        campaign.refresh_from_db()
        self.assertEqual(campaign.status, Campaign.Status.DRAFT)

    def test_recipients_are_paged_and_filtered(self):
        make_contacts(self.org, 3)
        Contact.objects.create(organization=self.org, wa_id="123", phone="+123", opt_in="opted_in")
        campaign = Campaign.objects.get(code=self.create().json()["id"])
        self.action("schedule", campaign)
        url = reverse("api_campaign_recipients", args=[campaign.code])
        first = self.api("get", url, {"limit": 3}).json()
        self.assertEqual(len(first["results"]), 3)
        rest = self.client.get(first["next"], HTTP_AUTHORIZATION=f"Bearer {self.secret}").json()
        self.assertEqual(len(rest["results"]), 1)
        ids = {r["id"] for r in first["results"] + rest["results"]}
        self.assertEqual(ids, {str(c) for c in campaign.recipients.values_list("code", flat=True)})
        skipped = self.api("get", url, {"status": "skipped"}).json()["results"]
        self.assertEqual(
            [(r["contact"]["phone"], r["reason"]) for r in skipped], [("+123", "invalid_number")]
        )
        stats = self.api("get", reverse("api_campaign_stats", args=[campaign.code])).json()
        self.assertEqual(
            stats["failures"],
            [{"status": "skipped", "reason": "invalid_number", "error_code": None, "count": 1}],
        )
        self.assertEqual(self.api("get", url, {"status": "nope"}).status_code, 400)

    def test_read_keys_and_operators_cannot_change_campaigns(self):
        campaign = Campaign.objects.get(code=self.create().json()["id"])
        secret = key_for(self.org, scopes=["campaigns:read"], name="Reader")
        self.assertEqual(
            self.api(
                "get", reverse("api_campaign", args=[campaign.code]), secret=secret
            ).status_code,
            200,
        )
        self.assertEqual(self.action("schedule", campaign, secret=secret).status_code, 403)
        self.login(self.operator)
        response = self.client.post(reverse("api_campaign_pause", args=[campaign.code]))
        self.assertEqual(response.status_code, 403)
        campaign.refresh_from_db()
        self.assertEqual(campaign.status, Campaign.Status.DRAFT)

    def test_another_organizations_campaign_is_out_of_reach(self):
        for name in ("pause", "cancel", "schedule"):
            self.assertEqual(self.action(name, self.foreign_campaign).status_code, 404)
        self.foreign_campaign.refresh_from_db()
        self.assertEqual(self.foreign_campaign.status, Campaign.Status.DRAFT)


class SegmentApiTests(CampaignApiTestCase):
    def test_a_saved_filter_counts_live(self):
        make_contacts(self.org, 2, tags=["implant"])
        make_contacts(self.org, 1, start=10, tags=["implant"], opt_in=Contact.OptIn.UNKNOWN)
        response = self.api(
            "post",
            reverse("api_segments"),
            {"name": "Implant", "filters": {"tags": ["implant"], "opt_in": "opted_in"}},
        )
        self.assertEqual(response.status_code, 201, response.content)
        segment = response.json()
        self.assertEqual((segment["kind"], segment["contact_count"]), ("dynamic", 2))
        make_contacts(self.org, 1, start=20, tags=["implant"])
        url = reverse("api_segment", args=[segment["id"]])
        self.assertEqual(self.api("get", url).json()["contact_count"], 3)
        changed = self.api("patch", url, {"name": "All implant", "filters": {"tags": ["implant"]}})
        self.assertEqual(
            (changed.json()["name"], changed.json()["contact_count"]), ("All implant", 4)
        )
        listing = self.api("get", reverse("api_segments"), {"q": "implant"}).json()["results"]
        self.assertEqual([s["id"] for s in listing], [segment["id"]])

    def test_a_static_list_holds_the_contacts_given(self):
        contacts = make_contacts(self.org, 3)
        codes = [str(c.code) for c in contacts[:2]] + [str(self.secret_chat.contact.code)]
        response = self.api(
            "post", reverse("api_segments"), {"name": "VIP", "kind": "static", "contacts": codes}
        )
        self.assertEqual(response.json()["contact_count"], 2)  # never another organization's
        url = reverse("api_segment", args=[response.json()["id"]])
        changed = self.api(
            "patch",
            url,
            {"add_contacts": [str(contacts[2].code)], "remove_contacts": [codes[0]]},
        ).json()
        self.assertEqual(changed["contact_count"], 2)
        segment = Segment.objects.get(code=response.json()["id"])
        self.assertEqual(
            set(segment.contacts.values_list("pk", flat=True)), {contacts[1].pk, contacts[2].pk}
        )
        self.assertEqual(self.api("patch", url, {"filters": {"tags": ["x"]}}).status_code, 400)

    def test_it_validates_filters(self):
        for filters, field in (
            ({"attributes": {"plan__icontains": "gold"}}, "attributes"),
            ({"opt_in": "maybe"}, "opt_in"),
            ({"engagement": {"state": "ignored"}}, "engagement"),
            ({"inbound_after": "yesterday"}, "inbound_after"),
        ):
            response = self.api("post", reverse("api_segments"), {"name": "S", "filters": filters})
            with self.subTest(filters=filters):
                self.assertEqual(response.status_code, 400, response.content)
                self.assertIn(field, response.json()["error"]["details"]["filters"])
        self.assertFalse(Segment.objects.exists())

    def test_a_segment_in_use_cannot_be_deleted(self):
        segment = self.api("post", reverse("api_segments"), {"name": "S"}).json()
        campaign = self.create(segment=segment["id"]).json()
        self.assertEqual(campaign["segment"]["id"], segment["id"])
        url = reverse("api_segment", args=[segment["id"]])
        response = self.api("delete", url)
        self.assertEqual(
            (response.status_code, response.json()["error"]["code"]), (409, "segment_in_use")
        )
        Campaign.objects.filter(code=campaign["id"]).delete()
        self.assertEqual(self.api("delete", url).status_code, 204)
        self.assertEqual(self.api("get", url).status_code, 404)

    def test_segments_need_their_own_scope(self):
        secret = key_for(self.org, scopes=["campaigns:write"], name="Campaigns only")
        self.assertEqual(self.api("get", reverse("api_segments"), secret=secret).status_code, 403)


class CampaignRecipientRowTests(CampaignApiTestCase):
    def test_a_recipient_row_shows_its_delivery_times(self):
        contact = make_contacts(self.org, 1)[0]
        campaign = make_campaign(self.org, self.number, self.template)
        CampaignRecipient.objects.create(
            organization=self.org,
            campaign=campaign,
            contact=contact,
            to=contact.phone,
            status=CampaignRecipient.Status.READ,
            sent_at=timezone.now(),
            read_at=timezone.now(),
        )
        (row,) = self.api("get", reverse("api_campaign_recipients", args=[campaign.code])).json()[
            "results"
        ]
        self.assertEqual((row["status"], row["contact"]["id"]), ("read", str(contact.code)))
        self.assertTrue(row["read_at"].endswith("Z"))
