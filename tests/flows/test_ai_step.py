"""The AI step with a model (a real local OpenAI stub): "classify" asks the model which intent
the answer is, and "answer and continue" sends the assistant's one answer, then the flow goes
on along "next" instead of leaving the chat to the assistant. The model is called outside the
step's transaction (the run waits at the step meanwhile)."""

from flows import services
from flows.models import FlowRun
from inbox.models import Message
from tests.assistants.helpers import AssistantTestCase
from tests.flows.test_actions import chain


class AIStepWithModelTests(AssistantTestCase):
    def publish(self, data):
        flow = services.flow_create(organization=self.org, name="Triagem", draft=data)
        with self.captureOnCommitCallbacks(execute=True):
            services.flow_publish(flow=flow)
        return flow

    def sent(self, chat):
        return list(
            Message.objects.filter(chat=chat, direction="out")
            .order_by("id")
            .values_list("text", flat=True)
        )

    def test_classify_asks_the_model(self):
        self.publish(
            chain(
                {"id": "what", "type": "question",
                 "props": {"text": "Como posso ajudar?", "save_to": "vars.need"}},
                {"id": "ai", "type": "ai", "follow": "intent2",
                 "props": {"mode": "classify",
                           "options": ["preço | preço, valor", "agenda | marcar, horário"]}},
                {"id": "book", "type": "message", "props": {"text": "Vamos marcar!"}},
            )
        )  # fmt: skip
        chat = self.receive("go").chat
        self.stub.script({"content": "agenda"})
        # No keyword of either intent: only the model can tell.
        self.receive("Dá pra ir amanhã cedo?")
        self.assertEqual(self.sent(chat)[-1], "Vamos marcar!")
        run = FlowRun.objects.get(chat=chat)
        self.assertEqual((run.status, run.variables["intent"]), ("completed", "agenda"))
        self.assertFalse(any(k.startswith("_ai_") for k in run.variables))
        request = self.stub.chat_requests()[-1]
        self.assertIn("preço, agenda", request["messages"][0]["content"])
        self.assertEqual(request["messages"][1]["content"], "Dá pra ir amanhã cedo?")
        steps = list(run.steps.order_by("index").values_list("node", "detail"))
        self.assertIn(("ai", "asked the AI model"), steps)
        self.assertIn(("ai", "intent agenda (by the model)"), steps)

    def test_answer_and_continue_on_next(self):
        self.publish(
            chain(
                {"id": "what", "type": "question",
                 "props": {"text": "Qual a sua dúvida?", "save_to": "vars.doubt"}},
                {"id": "ai", "type": "ai",
                 "props": {"mode": "assistant", "exit": "continue",
                           "goal": "Responder dúvidas de preço"}},
                {"id": "after", "type": "message",
                 "props": {"text": "Posso ajudar em algo mais?"}},
            )
        )  # fmt: skip
        chat = self.receive("go").chat
        self.stub.script({"content": "O clareamento custa R$ 800."})
        self.receive("Quanto custa o clareamento?")
        self.assertEqual(
            self.sent(chat)[-2:], ["O clareamento custa R$ 800.", "Posso ajudar em algo mais?"]
        )
        run = FlowRun.objects.get(chat=chat)
        self.assertEqual(run.status, "completed")
        chat.refresh_from_db()
        self.assertFalse(chat.ai_enabled)  # the flow kept the conversation
        system = [m["content"] for m in self.stub.chat_requests()[-1]["messages"]]
        self.assertTrue(any("Responder dúvidas de preço" in str(c) for c in system))

    def test_without_a_model_classify_falls_back_to_keywords(self):
        from assistants.models import AISettings

        AISettings.objects.filter(organization=self.org).delete()
        self.publish(
            chain(
                {"id": "what", "type": "question", "props": {"text": "?", "save_to": "vars.n"}},
                {"id": "ai", "type": "ai", "follow": "intent1",
                 "props": {"mode": "classify", "options": ["preço | valor"]}},
                {"id": "price", "type": "message", "props": {"text": "R$ 150"}},
            )
        )  # fmt: skip
        chat = self.receive("go").chat
        self.receive("qual o valor?")
        self.assertEqual(self.sent(chat)[-1], "R$ 150")
        self.assertEqual(self.stub.chat_requests(), [])


class AIStepHoldsTheChatTests(AssistantTestCase):
    """While an AI step waits for the model, the chat is the flow's (the router's hold): a
    customer message meanwhile starts no other owner (the chat's assistant is on) and is not
    lost; it is answered in order once the step returns."""

    def publish(self, data):
        flow = services.flow_create(organization=self.org, name="Triagem", draft=data)
        with self.captureOnCommitCallbacks(execute=True):
            services.flow_publish(flow=flow)
        return flow

    def sent(self, chat):
        return list(
            Message.objects.filter(chat=chat, direction="out")
            .order_by("id")
            .values_list("text", flat=True)
        )

    def ai_on(self, chat):
        """ "AI on" for the chat: the assistant answers any message nobody else holds."""
        from inbox.models import Chat

        Chat.objects.filter(pk=chat.pk).update(ai_enabled=True)
        chat.refresh_from_db()
        return chat

    def waiting_for_the_model(self, text: str) -> list:
        """``text`` answers the question before the AI step; the step asks the model and
        the run waits. Returns the after-commit work not yet run (the model call among it)."""
        from inbox import services as inbox_services
        from tests.assistants.helpers import inbound

        with self.captureOnCommitCallbacks(execute=False) as stored:
            inbox_services.message_receive(
                number=self.number, inbound=inbound(self.number, "5511977770000", text)
            )
        with self.captureOnCommitCallbacks(execute=False) as stepped:
            for callback in stored:
                callback()  # the steps after the answer, up to the AI step's request
        return stepped

    def answer_then_ask(self):
        return chain(
            {"id": "what", "type": "question",
             "props": {"text": "Qual a sua dúvida?", "save_to": "vars.doubt"}},
            {"id": "ai", "type": "ai",
             "props": {"mode": "assistant", "exit": "continue", "goal": "Responder preços"}},
            {"id": "email", "type": "question",
             "props": {"text": "Qual o seu email?", "kind": "email",
                       "save_to": "contact.email"}},
            {"id": "thanks", "type": "message", "props": {"text": "Obrigado!"}},
        )  # fmt: skip

    def test_a_message_while_the_model_thinks_waits_for_the_flow(self):
        from inbox import router

        self.publish(self.answer_then_ask())
        chat = self.ai_on(self.receive("go").chat)
        model_call = self.waiting_for_the_model("Quanto custa o clareamento?")
        run = FlowRun.objects.get(chat=chat)
        self.assertEqual((run.status, run.node), ("waiting_time", "ai"))
        chat.refresh_from_db()
        self.assertEqual(chat.held_by, "flow")
        requests_before = len(self.stub.chat_requests())

        early = self.receive("maria@example.com")  # while the model is still thinking
        early.refresh_from_db()
        self.assertEqual(early.handled_by, "flow")
        self.assertEqual(len(self.stub.chat_requests()), requests_before)  # no assistant turn
        self.assertEqual(self.sent(chat)[-1], "Qual a sua dúvida?")
        self.assertEqual(FlowRun.objects.get(chat=chat).variables["_pending"], [early.pk])

        self.stub.script({"content": "O clareamento custa R$ 800."})
        with self.captureOnCommitCallbacks(execute=True):
            for callback in model_call:
                callback()  # the model answers; the flow goes on
        self.assertEqual(
            self.sent(chat)[-3:], ["O clareamento custa R$ 800.", "Qual o seu email?", "Obrigado!"]
        )
        run.refresh_from_db()
        self.assertEqual(run.status, "completed")
        self.assertNotIn("_pending", run.variables)
        chat.refresh_from_db()
        self.assertEqual(chat.contact.email, "maria@example.com")  # answered in order
        self.assertEqual(router.label_for(chat.held_by), "")  # released

    def test_queued_messages_go_back_to_the_router_when_the_flow_ends(self):
        self.publish(
            chain(
                {"id": "what", "type": "question",
                 "props": {"text": "Qual a sua dúvida?", "save_to": "vars.doubt"}},
                {"id": "ai", "type": "ai",
                 "props": {"mode": "assistant", "exit": "continue", "goal": "Preços"}},
            )
        )  # fmt: skip
        chat = self.ai_on(self.receive("go").chat)
        model_call = self.waiting_for_the_model("Quanto custa?")
        early = self.receive("E parcelam?")
        early.refresh_from_db()
        self.assertEqual(early.handled_by, "flow")
        self.stub.script({"content": "R$ 800."}, {"content": "Sim, em até 10 vezes."})
        with (
            self.assertLogs("flows.runtime", "INFO") as logs,
            self.captureOnCommitCallbacks(execute=True),
        ):
            for callback in model_call:
                callback()
        self.assertIn("1 queued customer messages; routing them again", "\n".join(logs.output))
        self.assertEqual(FlowRun.objects.get(chat=chat).status, "completed")
        early.refresh_from_db()
        self.assertEqual(early.handled_by, "assistant")  # the chat's assistant, after the flow
        self.assertEqual(self.sent(chat)[-2:], ["R$ 800.", "Sim, em até 10 vezes."])

    def test_the_hold_ends_when_the_model_never_answers(self):
        from datetime import timedelta

        from django.utils import timezone

        from flows import ai_steps, runtime

        self.publish(self.answer_then_ask())
        chat = self.receive("go").chat
        self.waiting_for_the_model("Quanto custa?")  # the model call is lost (a dead worker)
        early = self.receive("alo?")
        later = timezone.now()
        with self.assertLogs("flows.node_types", "INFO") as logs:
            for _try in range(ai_steps.AI_TRIES):
                later += ai_steps.AI_WAIT + timedelta(seconds=1)
                with self.captureOnCommitCallbacks(execute=False):  # its model calls, lost too
                    runtime.sweep(now=later)  # wakes the run: the step asks again, or gives up
        text = "\n".join(logs.output)
        self.assertIn("did not answer within", text)
        self.assertIn("after 2 tries; the step falls back", text)
        run = FlowRun.objects.get(chat=chat)
        # The step fell back (no answer) and went on; the queued "alo?" answered the email
        # question (not an email: asked again), so the run waits and the flow holds the chat.
        self.assertEqual((run.status, run.node), ("waiting_input", "email"))
        early.refresh_from_db()
        self.assertEqual(early.handled_by, "flow")
        self.assertEqual(self.sent(chat).count("Qual o seu email?"), 2)
