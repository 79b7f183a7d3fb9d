"""Flows and an "AI on" assistant share a chat through the router: the flow owns the messages
it waits for, the assistant answers once the flow has finished."""

from flows import services
from inbox.models import Message
from tests.assistants.helpers import AssistantTestCase
from tests.flows.helpers import five_nodes


class FlowAndAssistantTests(AssistantTestCase):
    def test_the_flow_holds_the_chat_then_the_assistant_answers_again(self):
        flow = services.flow_create(organization=self.org, name="Agendamento", draft=five_nodes())
        with self.captureOnCommitCallbacks(execute=True):
            services.flow_publish(flow=flow)
        chat = self.ai_chat()
        self.stub.script({"content": "Resposta da IA"})
        for text in ("menu", "Limpeza", "maria@example.com"):
            message = self.receive(text)
            message.refresh_from_db()
            self.assertEqual(message.handled_by, "flow", text)
        self.assertFalse(
            Message.objects.filter(chat=chat, author_type=Message.Author.ASSISTANT).exists()
        )
        after = self.receive("Quanto custa o clareamento?")
        after.refresh_from_db()
        self.assertEqual(after.handled_by, "assistant")
        self.assertEqual(
            list(
                Message.objects.filter(chat=chat, author_type=Message.Author.ASSISTANT).values_list(
                    "text", flat=True
                )
            ),
            ["Resposta da IA"],
        )
