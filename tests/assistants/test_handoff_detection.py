"""Deterministic handoff detection: customers who ask for a person (pt-BR WhatsApp style, English,
Spanish; typos, no accents, slang) get one, and questions that merely mention people do not."""

from django.test import SimpleTestCase

from assistants import handoff

REQUESTS = [
    # Portuguese
    "isso é robô?",
    "vc é um bot?",
    "to falando com uma maquina?",
    "é uma IA?",
    "me passa pra alguém de verdade",
    "preciso falar com a recepcionista",
    "chama o gerente",
    "quero falar com um atendente",
    "quero falar c um humano pfv",
    "atendente",
    "ATENDENTE!!!",
    "tem alguem ai?",
    "alguém pode me atender?",
    "quero uma pessoa real",
    "posso falar com a dentista?",
    "me transfere pra recepção",
    "passa pro responsavel por favor",
    "cade a secretaria",
    "quero falar com o dono",
    "preciso de atendimento humano",
    "vc eh de verdade?",
    "gerente por favor",
    "pode chamar alguem da equipe?",
    "queria falar com uma pessoa",
    "é uma pessoa que ta respondendo?",
    "passa pro seu chefe",
    "preciso de ajuda de uma pessoa",
    "me liga por favor",
    # English
    "can I talk to a real person?",
    "are you a bot?",
    "is this automated?",
    "I want to speak with a human",
    "put me through to someone please",
    "connect me to an agent",
    "I need a representative",
    "call the manager",
    "talk to reception",
    "is this a real person?",
    "can someone call me?",
    # Spanish
    "quiero hablar con un agente",
    "eres un robot?",
    "necesito hablar con una persona",
    "pasame con alguien de verdad",
    "quiero un asesor",
    "hablo con una persona real?",
    "comunicarme con recepcion por favor",
]

CONTROLS = [
    "é por pessoa ou por arcada?",
    "quanto custa por pessoa?",
    "a recepção abre sábado?",
    "vcs atendem criança?",
    "qual o horario de atendimento?",
    "o atendimento é rapido?",
    "quero marcar uma limpeza",
    "quero marcar com a dentista amanha",
    "minha mae é uma pessoa idosa, tem acessibilidade?",
    "eu ia marcar amanha mas nao vou poder",
    "e ai, tudo bem?",
    "quero falar sobre clareamento",
    "posso levar alguém comigo na consulta?",
    "tem maquina de cartao?",
    "aceita uniodonto?",
    "o gerente do meu banco pediu um atestado",
    "quanto é o botox?",
    "onde deixo o carro?",
    "preciso de um dentista urgente, quebrei o dente",
    "vcs fazem implante?",
    "is it per person?",
    "do you take insurance?",
    "what time do you open on saturday?",
    "how much is a cleaning?",
    "where can I park?",
    "es por persona?",
    "hay estacionamiento?",
    "cuanto cuesta la limpieza?",
    "atienden niños?",
    "la doctora atiende los sabados?",
    "obrigada, até amanhã!",
    "meu filho tem 5 anos, pode ir?",
    "quantas pessoas cabem na sala de espera?",
    "vocês atendem pessoas com deficiência?",
    "qual o telefone da recepção?",
    "preciso de ajuda com o agendamento",
    "pode me ajudar a marcar?",
    "how many people work there?",
    "who is the dentist?",
    "la recepcion abre a que hora?",
]


class HandoffDetectionTests(SimpleTestCase):
    def test_the_test_set_is_big_and_multilingual_enough(self):
        self.assertGreaterEqual(len(REQUESTS) + len(CONTROLS), 40)

    def test_it_recognises_requests_for_a_person_with_high_recall_and_precision(self):
        caught = [text for text in REQUESTS if handoff.detect(text)]
        false_hits = [text for text in CONTROLS if handoff.detect(text)]
        recall = len(caught) / len(REQUESTS)
        precision = len(caught) / (len(caught) + len(false_hits))
        missed = [text for text in REQUESTS if text not in caught]
        self.assertGreaterEqual(recall, 0.95, f"missed: {missed}")
        self.assertGreaterEqual(precision, 0.95, f"false hits: {false_hits}")

    def test_the_issues_examples_are_all_right(self):
        for text in [
            "isso é robô?",
            "vc é um bot?",
            "me passa pra alguém de verdade",
            "preciso falar com a recepcionista",
            "chama o gerente",
            "can I talk to a real person?",
            "quiero hablar con un agente",
        ]:
            self.assertTrue(handoff.detect(text), text)
        self.assertEqual(handoff.detect("é por pessoa ou por arcada?"), "")

    def test_an_organizations_own_phrases_count_as_whole_words(self):
        self.assertEqual(handoff.detect("quero a Dona Marta", ["dona marta"]), "dona marta")
        self.assertEqual(handoff.detect("SOS!", ["sos"]), "sos")
        self.assertEqual(handoff.detect("sossego", ["sos"]), "")
