import io

from django.core.management import call_command
from django.test import override_settings

from assistants import knowledge
from assistants.models import Assistant
from integrations.models import WhatsAppNumber


@override_settings(OPENAI_API_KEY="")
def test_it_creates_the_demo_assistant_once(db):
    call_command("demo", stdout=io.StringIO())
    call_command("assistant_demo", stdout=io.StringIO())
    call_command("assistant_demo", stdout=io.StringIO())
    assistant = Assistant.objects.get(organization__slug="clinica-sorriso")
    # One assistant, answering on each of the demo's numbers (Cloud API sandbox and WhatsApp Web).
    numbers = WhatsAppNumber.objects.filter(organization=assistant.organization)
    assert numbers.count() == 2
    assert set(assistant.default_for_numbers.all()) == set(numbers)
    assert assistant.sources.count() == 14
    assert knowledge.search(assistant, "vocês aceitam Pix?")[0].source_title == "Pagamento"


DEMO_ANSWERS = [
    ("vocês aceitam pix?", "Aceitamos Pix, dinheiro"),
    ("vcs abrem sabado?", "aos sábados das 8h às 13h"),
    ("Atendem criança?", "com a Dra. Paula, às terças e quintas."),
    ("quanto custa um implante?", "R$ 3.500"),
    ("onde deixo o carro?", "Center Park"),
    ("aceita uniodonto?", "Aceitamos os convênios"),
    ("qto custa a limpesa", "R$ 180"),
    ("preciso desmarcar a consulta", "24 horas de antecedência"),
]


@override_settings(OPENAI_API_KEY="")
def test_the_offline_demo_answers_with_whole_sentences_of_the_right_passage(db):
    from assistants import services

    call_command("demo", stdout=io.StringIO())
    call_command("assistant_demo", stdout=io.StringIO())
    assistant = Assistant.objects.get(organization__slug="clinica-sorriso")
    titles = set(assistant.sources.values_list("title", flat=True))
    for question, expected in DEMO_ANSWERS:
        turn = services.playground_turn(assistant=assistant, history=[], text=question)
        assert expected in turn.text, (question, turn.text, turn.handoff_reason)
        assert turn.text.endswith((".", "!", "?")), (question, turn.text)  # whole sentences
        assert not any(turn.text.endswith(title) for title in titles), turn.text
        assert "cheque" not in turn.text


@override_settings(OPENAI_API_KEY="")
def test_the_offline_demo_calls_a_person_when_the_knowledge_does_not_answer(db):
    from assistants import services

    call_command("demo", stdout=io.StringIO())
    call_command("assistant_demo", stdout=io.StringIO())
    assistant = Assistant.objects.get(organization__slug="clinica-sorriso")
    for question in ("vocês vendem ração pra cachorro?", "qual a senha do wifi?"):
        turn = services.playground_turn(assistant=assistant, history=[], text=question)
        assert turn.text == "", (question, turn.text)
        assert turn.handoff_reason, question
