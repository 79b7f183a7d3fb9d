"""The conversation router: every customer message has exactly one owner (``inbox.router``)."""

import json
from unittest import mock

from django.test import override_settings

from assistants.models import ReplyJob
from campaigns.models import DripDelivery, DripEnrolment, DripProgram, DripQuestion
from inbox import router
from inbox import services as inbox_services
from inbox.models import Chat, Message
from integrations import services as integration_services
from integrations.models import WebhookEvent
from integrations.whatsapp import payloads
from kernel import tasks
from kernel.models import OutboxEntry
from tests.assistants.helpers import AssistantTestCase

WA_ID = "5511977770000"


class _TestFlow:
    """A handler standing in for the flow builder: it wants only chats it holds."""

    def __init__(self):
        self.seen: list[str] = []
        self.fail = False

    def accepts(self, inbound: router.Inbound) -> bool:
        if self.fail:
            raise RuntimeError("the flow broke")
        return inbound.held_by == "testflow"

    def handle(self, inbound: router.Inbound) -> None:
        self.seen.append(inbound.message.text)


class RouterTests(AssistantTestCase):
    def setUp(self):
        super().setUp()
        self.flow = _TestFlow()
        router.register(
            router.Handler(
                key="testflow",
                order=40,
                label="Test flow",
                accepts=self.flow.accepts,
                handle=self.flow.handle,
            )
        )
        self.addCleanup(router.unregister, "testflow")

    def assistant_replies(self, chat):
        return list(Message.objects.filter(chat=chat, author_type=Message.Author.ASSISTANT))

    def test_the_assistant_owns_an_ordinary_message_of_an_ai_chat(self):
        chat = self.ai_chat()
        self.stub.script({"content": "Abrimos às 8h."})
        message = self.receive("Que horas abrem?")
        message.refresh_from_db()
        self.assertEqual(message.handled_by, "assistant")
        self.assertEqual([m.text for m in self.assistant_replies(chat)], ["Abrimos às 8h."])

    def test_a_message_nobody_claims_is_the_teams_and_a_reply_marks_it(self):
        message = self.receive("oi")
        message.refresh_from_db()
        self.assertEqual(message.handled_by, "")
        chat = Chat.objects.select_related("contact", "organization").get(pk=message.chat_id)
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.message_send(
                chat=chat, message_type="text", content={"body": "Olá!"}, author_user=self.admin
            )
        message.refresh_from_db()
        self.assertEqual(message.handled_by, router.PERSON)

    def test_a_daily_answer_is_the_drips_even_with_the_default_queue_held_back(self):
        """The old race: drip answers were found by a default-queue task, so a queue more than
        a second behind let the AI answer the customer's reply to a daily question too."""
        chat = self.ai_chat()
        program = DripProgram.objects.create(
            organization=self.org,
            name="Pergunta do dia",
            kind=DripProgram.Kind.QUESTION_OF_THE_DAY,
            number=self.number,
        )
        question = DripQuestion.objects.create(
            organization=self.org, program=program, text="Quantas vezes escovar?", topic="higiene"
        )
        enrolment = DripEnrolment.objects.create(
            organization=self.org, program=program, contact=chat.contact
        )
        delivery = DripDelivery.objects.create(
            organization=self.org, enrolment=enrolment, question=question
        )
        held_back = []
        real_dispatch = tasks.dispatch

        def dispatch(func_path, *args, queue="default"):
            if queue == "default":
                held_back.append(func_path)  # the default queue is minutes behind
            else:
                real_dispatch(func_path, *args, queue=queue)

        self.stub.script({"content": "Resposta da IA que não deve sair"})
        with mock.patch.object(tasks, "dispatch", dispatch):
            answer = self.receive("Duas vezes por dia")
        answer.refresh_from_db()
        self.assertEqual(answer.handled_by, "drip")
        delivery.refresh_from_db()
        self.assertEqual(delivery.answer_id, answer.pk)
        self.assertEqual(self.assistant_replies(chat), [])
        self.assertFalse(ReplyJob.objects.filter(chat=chat).exists())
        self.assertIn("kernel.outbox.run", held_back)
        # Held back, but recorded with the message: the outbox sweep runs it when it is due.
        self.assertTrue(OutboxEntry.objects.filter(key="campaigns.inbound_followups").exists())

    def test_a_held_chats_next_message_goes_to_its_holder_before_the_assistant(self):
        chat = self.ai_chat()
        router.chat_hold(chat=chat, by="testflow")
        message = self.receive("Limpeza")
        message.refresh_from_db()
        self.assertEqual(message.handled_by, "testflow")
        self.assertEqual(self.flow.seen, ["Limpeza"])
        self.assertEqual(self.assistant_replies(chat), [])
        self.assertEqual(self.stub.chat_requests(), [])

    def test_stop_wins_over_a_hold(self):
        chat = self.ai_chat()
        router.chat_hold(chat=chat, by="testflow")
        message = self.receive("STOP")
        message.refresh_from_db()
        self.assertEqual(message.handled_by, "consent")
        self.assertEqual(self.flow.seen, [])

    def test_an_expired_hold_no_longer_holds(self):
        from datetime import timedelta

        from django.utils import timezone

        chat = self.ai_chat()
        router.chat_hold(chat=chat, by="testflow", until=timezone.now() - timedelta(seconds=1))
        self.stub.script({"content": "Oi!"})
        message = self.receive("olá")
        message.refresh_from_db()
        self.assertEqual(message.handled_by, "assistant")

    def test_a_person_replying_releases_the_hold(self):
        chat = self.ai_chat()
        router.chat_hold(chat=chat, by="testflow")
        chat = Chat.objects.select_related("contact", "organization").get(pk=chat.pk)
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.message_send(
                chat=chat,
                message_type="text",
                content={"body": "Sou a Ana"},
                author_user=self.admin,
            )
        chat.refresh_from_db()
        self.assertEqual(chat.held_by, "")

    def test_ai_off_releases_the_hold(self):
        chat = self.ai_chat()
        router.chat_hold(chat=chat, by="testflow")
        with self.captureOnCommitCallbacks(execute=True):
            inbox_services.chat_set_ai(chat=chat, enabled=False, actor=self.admin)
        chat.refresh_from_db()
        self.assertEqual(chat.held_by, "")
        message = self.receive("ainda aí?")
        message.refresh_from_db()
        self.assertEqual(message.handled_by, "")

    def test_a_failing_handler_leaves_the_message_stored_for_the_next_owner(self):
        chat = self.ai_chat()
        router.chat_hold(chat=chat, by="testflow")
        self.flow.fail = True
        self.stub.script({"content": "Posso ajudar?"})
        with self.assertLogs("inbox.router", "ERROR") as logs:
            message = self.receive("Oi de novo")
        self.assertIn("testflow failed", logs.output[0])
        message.refresh_from_db()
        self.assertEqual(message.handled_by, "assistant")
        self.assertEqual([m.text for m in self.assistant_replies(chat)], ["Posso ajudar?"])

    def test_a_handler_may_answer_a_brand_new_chat_at_once(self):
        """The chat a handler gets already has the customer's message on it: its service
        window is open, so an immediate reply is allowed."""

        def greet(inbound: router.Inbound) -> None:
            inbox_services.message_send(
                chat=inbound.chat,
                message_type="text",
                content={"body": "Olá! Escolha uma opção."},
                author_type=Message.Author.AUTOMATION,
            )

        router.register(
            router.Handler(key="greeter", order=5, label="Greeter", accepts=bool, handle=greet)
        )
        self.addCleanup(router.unregister, "greeter")
        message = self.receive("oi", wa_id="5511900001111")
        message.refresh_from_db()
        self.assertEqual(message.handled_by, "greeter")
        replies = Message.objects.filter(chat=message.chat, author_type=Message.Author.AUTOMATION)
        self.assertEqual([m.text for m in replies], ["Olá! Escolha uma opção."])

    def test_the_thread_says_who_handled_each_message(self):
        chat = self.ai_chat()
        self.stub.script({"content": "Abrimos às 8h."})
        self.receive("Que horas abrem?")
        self.client.force_login(self.admin)
        response = self.client.get(f"/inbox/{chat.code}/")
        self.assertContains(response, "Handled by AI assistant")


@override_settings(ASSISTANT_DEBOUNCE_SECONDS=0)
class DuplicateDeliveryTests(AssistantTestCase):
    def test_the_same_delivery_processed_twice_has_one_owner_and_one_answer(self):
        chat = self.ai_chat()
        body = payloads.build_webhook(
            "waba-test",
            [
                payloads.build_messages_change(
                    phone_number_id=self.number.phone_number_id,
                    display_phone_number="551140000000",
                    contacts=[payloads.build_contact(wa_id=WA_ID, profile_name="Maria Cliente")],
                    messages=[
                        payloads.build_inbound_message(
                            wamid="wamid.router.dup",
                            from_wa_id=WA_ID,
                            message_type="text",
                            content=payloads.build_text("Quanto custa?"),
                        )
                    ],
                )
            ],
        )
        events = [
            WebhookEvent.objects.create(
                number=self.number, body=json.dumps(body).encode(), headers={}
            )
            for _ in range(2)
        ]
        self.stub.script({"content": "R$ 150."})
        for event in events:  # Meta delivered it twice; each copy processed (one retried)
            with self.captureOnCommitCallbacks(execute=True):
                integration_services.webhook_events_process([event.pk])
            with self.captureOnCommitCallbacks(execute=True):
                integration_services.webhook_events_process([event.pk])
        messages = Message.objects.filter(chat=chat, wamid="wamid.router.dup")
        self.assertEqual([m.handled_by for m in messages], ["assistant"])
        replies = Message.objects.filter(chat=chat, author_type=Message.Author.ASSISTANT)
        self.assertEqual([m.text for m in replies], ["R$ 150."])
        self.assertEqual(len(self.stub.chat_requests()), 1)
