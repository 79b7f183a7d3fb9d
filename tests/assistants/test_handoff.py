"""What happens when a customer asks for a person: no model call, the chat waits for a person
(badge in the chat list), it is assigned by the assistant's rule, the assignee is notified live,
and the customer is told how long the wait is."""

import asyncio
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from asgiref.sync import async_to_sync, sync_to_async
from django.test import TransactionTestCase
from django.urls import reverse

from accounts.models import Membership, OpeningHours, Organization, Role
from assistants import services
from assistants.models import Assistant, UsageRecord
from inbox import services as inbox_services
from inbox.models import Chat, Message
from tests.assistants.helpers import AssistantTestCase
from tests.base import make_chat, make_org, make_user
from tests.inbox.test_live_consumer import connect, session_cookie


class HandoffTests(AssistantTestCase):
    def replies(self, chat):
        return list(
            Message.objects.filter(chat=chat, author_type=Message.Author.ASSISTANT).order_by("id")
        )

    def test_a_robot_question_hands_off_before_any_model_call_and_the_chat_waits(self):
        chat = self.ai_chat()
        self.receive("vc é um bot?")
        chat.refresh_from_db()
        self.assertEqual(self.stub.chat_requests(), [])
        self.assertFalse(chat.ai_enabled)
        self.assertIsNotNone(chat.waiting_since)
        self.assertEqual([m.text for m in self.replies(chat)], [self.assistant.handoff_message])
        self.login(self.admin)
        page = self.client.get(reverse("chat_list")).content.decode()
        self.assertIn("Waiting for a person", page)

    def test_the_organizations_own_handoff_phrases_work_for_every_assistant(self):
        from assistants.models import AISettings

        self.login(self.admin)
        self.assertContains(self.client.get(reverse("ai_settings")), "Handoff phrases")
        config = AISettings.objects.get(organization=self.org)
        config.handoff_phrases = "quero a doutora\nfalar com a Dra. Ana"
        config.save()  # as the settings form does
        other = Assistant(organization=self.org, name="Bia", is_active=True)
        services.assistant_save(assistant=other)
        for assistant in (self.assistant, other):
            self.assertIn(
                "quero a doutora", services.rule_handoff_reason(assistant, "Quero a DOUTORA já")
            )
            self.assertIn(
                "dra ana", services.rule_handoff_reason(assistant, "falar com a dra. Ana")
            )
            self.assertEqual(
                services.rule_handoff_reason(assistant, "a doutora atende sábado?"), ""
            )
        chat = self.ai_chat()
        self.receive("quero a doutora, por favor")
        chat.refresh_from_db()
        self.assertEqual(self.stub.chat_requests(), [])
        self.assertFalse(chat.ai_enabled)
        self.assertIsNotNone(chat.waiting_since)

    def test_a_person_asked_for_is_called_even_when_the_budget_is_spent(self):
        Assistant.objects.filter(pk=self.assistant.pk).update(monthly_budget=Decimal("0.01"))
        UsageRecord.objects.create(
            organization=self.org,
            assistant=self.assistant,
            kind="reply",
            month=services._month(),
            cost=Decimal("1"),
        )
        chat = self.ai_chat()
        self.receive("me passa pra alguém de verdade")
        chat.refresh_from_db()
        self.assertFalse(chat.ai_enabled)
        self.assertIsNotNone(chat.waiting_since)

    def test_a_price_per_person_is_answered_not_handed_off(self):
        chat = self.ai_chat()
        self.stub.script({"content": "É por arcada."})
        self.receive("é por pessoa ou por arcada?")
        chat.refresh_from_db()
        self.assertTrue(chat.ai_enabled)
        self.assertIsNone(chat.waiting_since)
        self.assertEqual([m.text for m in self.replies(chat)], ["É por arcada."])

    def test_a_persons_reply_ends_the_wait(self):
        chat = self.ai_chat()
        self.receive("quero falar com a recepcionista")
        chat.refresh_from_db()
        self.assertIsNotNone(chat.waiting_since)
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.message_send(
                chat=chat, message_type="text", content={"body": "Oi, sou a Ana!"},
                author_user=self.agent,
            )  # fmt: skip
        chat.refresh_from_db()
        self.assertIsNone(chat.waiting_since)

    def test_turning_the_assistant_back_on_ends_the_wait(self):
        chat = self.ai_chat()
        self.receive("vc é um bot?")
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_ai(
                chat=Chat.objects.get(pk=chat.pk), enabled=True, actor=self.admin
            )
        chat.refresh_from_db()
        self.assertIsNone(chat.waiting_since)

    def test_round_robin_gives_consecutive_handoffs_to_different_agents(self):
        Assistant.objects.filter(pk=self.assistant.pk).update(handoff_rule="round_robin")
        first = self.ai_chat("5511977770001")
        second = self.ai_chat("5511977770002")
        self.receive("chama o gerente", wa_id="5511977770001")
        self.receive("can I talk to a real person?", wa_id="5511977770002")
        first.refresh_from_db()
        second.refresh_from_db()
        self.assertEqual({first.assignee, second.assignee}, {self.operator, self.agent})

    def test_round_robin_deals_to_the_agents_online_in_the_inbox(self):
        from asgiref.sync import async_to_sync

        from inbox import presence

        Assistant.objects.filter(pk=self.assistant.pk).update(handoff_rule="round_robin")
        async_to_sync(presence.seen)(
            self.org.pk, self.agent.pk
        )  # only the agent has the inbox open
        chats = [self.ai_chat(f"551197777000{i}") for i in range(3)]
        for i in range(3):
            self.receive("chama o gerente", wa_id=f"551197777000{i}")
        for chat in chats:
            chat.refresh_from_db()
        self.assertEqual({chat.assignee for chat in chats}, {self.agent})

    def test_outside_opening_hours_the_customer_learns_when_the_team_is_back(self):
        zone = ZoneInfo(self.org.time_zone or "UTC")
        now = datetime.now(zone)
        tomorrow = (now + timedelta(days=1)).weekday()
        OpeningHours.objects.create(
            organization=self.org, weekday=tomorrow, opens_at=time(8), closes_at=time(9)
        )
        Assistant.objects.filter(pk=self.assistant.pk).update(language="en")
        chat = self.ai_chat()
        self.receive("quiero hablar con un agente")
        (reply,) = self.replies(chat)
        self.assertTrue(reply.text.startswith(self.assistant.handoff_message))
        weekday = (now + timedelta(days=1)).strftime("%A")  # English, as the assistant speaks
        self.assertIn(f"Nossa equipe volta {weekday} 08:00", reply.text)

    def test_the_expected_wait_is_told_while_open(self):
        Assistant.objects.filter(pk=self.assistant.pk).update(handoff_wait_minutes=10)
        chat = self.ai_chat()
        self.receive("atendente")
        (reply,) = self.replies(chat)
        self.assertIn("A espera estimada é de cerca de 10 minutos.", reply.text)


class HandoffNotificationTests(TransactionTestCase):
    """The assignee of a handed-off chat is told on their own live socket (agents see nothing
    of the organization's group)."""

    def test_the_assignee_gets_a_live_notification_marked_as_a_handoff(self):
        org, number = make_org("Clínica", "clinica", "333")
        agent = make_user("agent@clinica.test")
        Membership.objects.create(user=agent, organization=org, role=Role.AGENT)
        assistant = Assistant.objects.create(
            organization=org, name="Sofia", handoff_rule="round_robin"
        )
        chat = make_chat(org, number, "5511955550000", "Maria")

        async def scenario():
            socket = connect(await sync_to_async(session_cookie)(agent))
            connected, _ = await socket.connect()
            self.assertTrue(connected)
            await socket.receive_json_from()  # hello
            await sync_to_async(services.chat_handoff)(
                chat=chat, assistant=assistant, reason="vc é um bot"
            )
            seen = []
            for _attempt in range(10):
                frame = await socket.receive_json_from(timeout=3)
                seen.extend(frame if isinstance(frame, list) else [frame])  # bursts: one array
                if seen[-1]["type"] == "notification":
                    break
            await socket.disconnect()
            await asyncio.sleep(0)
            return seen

        seen = async_to_sync(scenario)()
        notification = seen[-1]
        self.assertEqual(notification["type"], "notification")
        self.assertTrue(notification["handoff"])
        self.assertEqual(notification["chat"], str(chat.code))
        self.assertIn("Maria", notification["text"])
        self.assertEqual(Chat.objects.get(pk=chat.pk).assignee, agent)
        self.assertTrue(Organization.objects.filter(pk=org.pk).exists())
