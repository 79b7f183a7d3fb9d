"""``manage.py assistant_demo``: the demo clinic's assistant with its knowledge base, idempotently.

Run after ``manage.py demo``; answers on every number of the organization (offline without an
API key, from the knowledge base).
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Organization
from assistants import services
from assistants.demo import CLINIC_KNOWLEDGE, DEMO_INSTRUCTIONS
from assistants.models import Assistant
from integrations.models import WhatsAppNumber


class Command(BaseCommand):
    help = "Create (or refresh) the demo assistant Sofia with the sample clinic knowledge base."

    def add_arguments(self, parser):
        parser.add_argument("--organization", default="clinica-sorriso", help="organization slug")

    @transaction.atomic
    def handle(self, *args, organization, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organization {organization!r}; run `manage.py demo` first.")
        assistant = Assistant.objects.filter(organization=org, name="Sofia").first()
        if assistant is None:
            assistant = Assistant(
                organization=org,
                name="Sofia",
                purpose="Tirar dúvidas e encaminhar agendamentos",
                instructions=DEMO_INSTRUCTIONS,
                greeting="Olá! Eu sou a Sofia, assistente virtual da clínica. 😊",
                sensitive_topics=["processo", "reclamação", "advogado"],
            )
            services.assistant_save(
                assistant=assistant, numbers=WhatsAppNumber.objects.for_organization(org)
            )
        existing = set(assistant.sources.values_list("title", flat=True))
        for title, text in CLINIC_KNOWLEDGE.items():
            if title not in existing:
                services.knowledge_add(assistant=assistant, kind="text", title=title, text=text)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo assistant ready: {assistant.name} ({assistant.sources.count()} sources)"
            )
        )
