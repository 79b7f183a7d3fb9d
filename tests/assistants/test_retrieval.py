"""Retrieval as customers write: no accents, typos, slang, English and Spanish, follow-ups that
need the previous turn, the organization's own synonyms, and no passage at all when nothing in
the knowledge answers (a veterinary clinic's knowledge, not the demo's)."""

from assistants import knowledge, services
from assistants.models import AISettings
from tests.assistants.helpers import AssistantTestCase

VET = {
    "Banho e tosa": "O banho e tosa para cães de porte pequeno custa R$ 90; porte grande R$ 150.",
    "Vacinas": "Aplicamos vacina V10 e antirrábica. A vacinação de filhotes começa com 45 dias. "
    "Cada dose custa R$ 80.",
    "Estacionamento": "Os clientes estacionam de graça no pátio ao lado da clínica.",
    "Cancelamento": "Para cancelar uma consulta avise com 12 horas de antecedência.",
    "Horários": "Funcionamos de segunda a sábado, das 9h às 18h. Domingo fechado.",
}


class RetrievalTests(AssistantTestCase):
    def setUp(self):
        super().setUp()
        for title, text in VET.items():
            services.knowledge_add(assistant=self.assistant, kind="text", title=title, text=text)

    def titles(self, question: str, **kwargs) -> list[str]:
        hits = knowledge.search(self.assistant, question, mode="lexical", **kwargs)
        return [hit.source_title for hit in hits]

    def test_it_understands_typos_slang_english_and_spanish(self):
        cases = {
            "qto custa o banho do cachorro?": "Banho e tosa",
            "vacinaçao de filhote": "Vacinas",
            "vacnas": "Vacinas",
            "onde deixo o carro?": "Estacionamento",
            "is there parking?": "Estacionamento",
            "preciso desmarcar": "Cancelamento",
            "how do I cancel?": "Cancelamento",
            "abren el sabado?": "Horários",
            "what time do you open?": "Horários",
        }
        for question, expected in cases.items():
            with self.subTest(question=question):
                self.assertEqual(self.titles(question)[:1], [expected])

    def test_a_follow_up_keeps_the_topic_of_the_previous_turn(self):
        for context, expected in [
            ("queria dar banho no meu cachorro", "Banho e tosa"),
            ("meu filhote precisa de vacina", "Vacinas"),
        ]:
            self.assertEqual(self.titles("e quanto custa?", context=context)[:1], [expected])

    def test_nothing_is_returned_when_the_knowledge_does_not_answer(self):
        self.assertEqual(self.titles("aceita uniodonto?"), [])
        self.assertEqual(self.titles("vocês vendem ração importada?"), [])

    def test_the_organizations_synonyms_count(self):
        self.assertEqual(self.titles("quanto é a tosquia?"), [])
        self.assertEqual(
            self.titles("quanto é a tosquia?", synonyms="tosa, tosquia")[:1], ["Banho e tosa"]
        )

    def test_query_and_passage_prefixes_go_to_the_embedding_model(self):
        AISettings.objects.filter(organization=self.org).update(
            embedding_query_prefix="query: ", embedding_passage_prefix="passage: "
        )
        self.stub.requests.clear()
        services.knowledge_add(
            assistant=self.assistant, kind="text", title="Hotel", text="Hospedagem para gatos."
        )
        self.ai_chat()
        self.stub.script({"content": "Sim."})
        self.receive("hotel pra gato?")
        inputs = [
            r["body"]["input"] for r in self.stub.requests if r["path"].endswith("embeddings")
        ]
        self.assertTrue(inputs[0][0].startswith("passage: Hotel"))
        self.assertEqual(inputs[-1], ["query: oi\nhotel pra gato?"])

    def test_an_english_question_is_answered_in_english(self):
        self.ai_chat()
        self.stub.script({"content": "Parking is free next door."})
        self.receive("is there parking?")
        system, data = self.stub.chat_requests()[-1]["messages"][:2]
        self.assertIn("answer in English", system["content"])
        self.assertIn("estacionam de graça", data["content"])
