"""The outgoing webhook events of campaigns and assistants, delivered to a real local receiver
from where they happen: a campaign run finishing, an assistant handing off, an analysis stored."""

import json

from django.test import override_settings
from django.urls import reverse

from campaigns.models import Campaign
from inbox import services as inbox_services
from inbox.models import Chat
from integrations import outgoing
from integrations.models import WebhookDelivery, WebhookSubscription
from tests.api.helpers import ApiTestCase
from tests.api.receiver import Receiver
from tests.api.test_assistants_api import AssistantApiTestCase
from tests.api.test_campaigns_api import CampaignApiTestCase
from tests.campaigns.helpers import make_contacts

NEW_EVENTS = ["campaign.completed", "assistant.handoff", "analysis.completed"]


class ReceiverMixin:
    events = NEW_EVENTS

    def setUp(self):
        super().setUp()
        self.receiver = Receiver().start()
        self.addCleanup(self.receiver.stop)
        self.subscription = outgoing.subscription_create(
            organization=self.org, url=self.receiver.url, events=self.events
        )
        # Bob's clinic listens too: it must never hear about Alice's clinic.
        self.foreign = outgoing.subscription_create(
            organization=self.other_org, url=self.receiver.url + "/bob", events=self.events
        )

    def received(self) -> list[dict]:
        return [json.loads(body) for _headers, body in self.receiver.requests]

    def assert_signed(self):
        headers, body = self.receiver.requests[-1]
        expected = outgoing.sign(self.subscription.secret, int(headers["x-porfin-timestamp"]), body)
        self.assertEqual(headers["x-porfin-signature"], expected)
        self.assertEqual(headers["x-porfin-event"], json.loads(body)["type"])
        self.assertFalse(WebhookDelivery.objects.filter(subscription=self.foreign).exists())


@override_settings(EGRESS_ALLOW_PRIVATE=True)
class CampaignCompletedTests(ReceiverMixin, CampaignApiTestCase):
    def test_a_finished_campaign_is_announced_with_its_figures(self):
        make_contacts(self.org, 3)
        created = self.create(name="Welcome wave").json()
        campaign = Campaign.objects.get(code=created["id"])
        self.action("schedule", campaign)
        (event,) = self.received()
        self.assertEqual(event["type"], "campaign.completed")
        data = event["data"]
        self.assertEqual(
            (data["campaign"]["id"], data["campaign"]["name"], data["campaign"]["status"]),
            (created["id"], "Welcome wave", "completed"),
        )
        self.assertEqual(data["campaign"]["number"]["id"], str(self.number.code))
        self.assertEqual(data["campaign"]["template"], {"name": "welcome", "language": "pt_BR"})
        self.assertTrue(data["campaign"]["completed_at"].endswith("Z"))
        stats = data["stats"]
        self.assertEqual(
            (stats["total"], stats["sent"], stats["failed"], stats["skipped"]), (3, 3, 0, 0)
        )
        self.assert_signed()

    def test_pausing_or_cancelling_is_not_completion(self):
        campaign = Campaign.objects.get(code=self.create().json()["id"])
        self.action("cancel", campaign)
        self.assertEqual(self.received(), [])


@override_settings(EGRESS_ALLOW_PRIVATE=True)
class AssistantEventTests(ReceiverMixin, AssistantApiTestCase):
    def test_a_handoff_is_announced_with_the_reason_and_the_chat(self):
        chat = self.ai_chat()
        self.receive("Quero falar com um atendente, por favor")
        (event,) = self.received()
        self.assertEqual(event["type"], "assistant.handoff")
        data = event["data"]
        self.assertEqual(data["assistant"], {"id": str(self.assistant.code), "name": "Sofia"})
        self.assertIn("atendente", data["reason"])
        self.assertEqual(data["chat"]["id"], str(chat.code))
        self.assertFalse(data["chat"]["ai_enabled"])  # the chat as it is after the handoff
        self.assertEqual(data["chat"]["sequence"], Chat.objects.get(pk=chat.pk).seq)
        self.assert_signed()

    def test_an_analysis_is_announced_when_a_resolved_chat_is_analysed(self):
        chat = self.ai_chat()
        self.stub.script(
            {
                "content": json.dumps(
                    {
                        "summary": "Wants a cleaning",
                        "intent": "book cleaning",
                        "sentiment": "positive",
                        "lead_score": 9,
                        "lead_score_reason": "asked for a time",
                        "next_step": "confirm the time",
                        "follow_up_days": 1,
                    }
                )
            }
        )
        self.api("post", reverse("api_chat_status", args=[chat.code]), {"status": "resolved"})
        (event,) = self.received()
        self.assertEqual(event["type"], "analysis.completed")
        data = event["data"]
        self.assertEqual(
            (data["analysis"]["summary"], data["analysis"]["lead_score"]), ("Wants a cleaning", 9)
        )
        self.assertEqual(data["analysis"]["sentiment"], "positive")
        self.assertEqual(data["assistant"]["name"], "Sofia")
        self.assertEqual((data["chat"]["id"], data["chat"]["status"]), (str(chat.code), "resolved"))
        self.assert_signed()

    def test_nothing_is_sent_to_a_subscription_without_the_event(self):
        WebhookSubscription.objects.filter(pk=self.subscription.pk).update(events=["chat.resolved"])
        chat = self.ai_chat()
        self.receive("Quero falar com um atendente")
        self.assertEqual(self.received(), [])
        self.stub.script({"content": '{"summary": "Asked for a person", "lead_score": 3}'})
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_status(chat=chat, status=Chat.Status.RESOLVED, actor=self.admin)
        self.assertEqual([e["type"] for e in self.received()], ["chat.resolved"])


class SubscribingTests(ApiTestCase):
    def test_settings_and_the_api_offer_the_new_events(self):
        self.login(self.admin)
        page = self.client.get(reverse("webhook_list"))
        for event in NEW_EVENTS:
            self.assertContains(page, f'value="{event}"')
        response = self.api(
            "post",
            reverse("api_webhooks"),
            {"url": "https://hooks.example.com/porfin", "events": NEW_EVENTS},
        )
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(sorted(response.json()["events"]), sorted(NEW_EVENTS))

    def test_the_api_docs_describe_each_event_payload(self):
        schema = self.client.get(reverse("api_schema"), {"format": "json"}).json()
        description = schema["info"]["description"]
        for event in NEW_EVENTS:
            self.assertIn(f"`{event}`", description)
        self.assertIn('"stats": {"total"', description)
