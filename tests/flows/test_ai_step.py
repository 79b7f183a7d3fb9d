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
