import io

from django.core.management import call_command
from django.test import override_settings

from assistants import knowledge
from assistants.models import Assistant


@override_settings(OPENAI_API_KEY="")
def test_it_creates_the_demo_assistant_once(db):
    call_command("demo", stdout=io.StringIO())
    call_command("assistant_demo", stdout=io.StringIO())
    call_command("assistant_demo", stdout=io.StringIO())
    assistant = Assistant.objects.get(organization__slug="clinica-sorriso")
    assert assistant.default_for_numbers.count() == 1
    assert assistant.sources.count() == 14
    assert knowledge.search(assistant, "vocês aceitam Pix?")[0].source_title == "Pagamento"
