"""``manage.py flow_demo``: the demo clinic's published "welcome and menu" flow, idempotently.

Run after ``manage.py demo``. Its trigger is the keyword "menu" (so the demo assistant keeps
answering everything else).
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Organization
from flows import services, templates_library
from flows.models import Flow


class Command(BaseCommand):
    help = "Create (or keep) the demo clinic's published welcome-and-menu flow."

    def add_arguments(self, parser):
        parser.add_argument("--organization", default="clinica-sorriso", help="organization slug")

    @transaction.atomic
    def handle(self, *args, organization, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"No organization {organization!r}; run `manage.py demo` first.")
        flow = Flow.objects.filter(organization=org, template_key="welcome_menu").first()
        if flow is None:
            flow = templates_library.flow_from_template(
                organization=org, key="welcome_menu", language="pt-br"
            )
            flow.draft["nodes"][0]["props"]["keywords"] = "menu"
            flow.save(update_fields=["draft"])
        if flow.published_id is None:
            services.flow_publish(flow=flow)
        self.stdout.write(f"Demo flow {flow.name!r} is live (send 'menu' from the sandbox phone).")
