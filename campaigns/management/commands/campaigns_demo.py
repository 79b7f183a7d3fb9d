"""``manage.py campaigns_demo``: segments and a finished campaign with results for the demo
organization (after ``manage.py demo``), so the campaign pages and charts show something on
first run. Idempotent."""

import random
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from campaigns.models import Campaign, CampaignRecipient, Segment
from inbox.models import Contact
from integrations.models import MessageTemplate

R = CampaignRecipient.Status


class Command(BaseCommand):
    help = "Add segments and a finished campaign to the demo organization Clínica Sorriso."

    @transaction.atomic
    def handle(self, *args, **options):
        organization = Organization.objects.filter(slug="clinica-sorriso").first()
        template = MessageTemplate.objects.filter(
            organization=organization, name="retorno_semestral"
        ).first()
        if organization is None or template is None:
            self.stderr.write("Run `manage.py demo` first.")
            return
        Segment.objects.get_or_create(
            organization=organization,
            name="Pacientes",
            defaults={"filters": {"tags": ["paciente"], "opt_in": "opted_in"}},
        )
        Segment.objects.get_or_create(
            organization=organization,
            name="Leads de implante",
            defaults={"filters": {"tags": ["lead", "implante"]}},
        )
        leads, _ = Segment.objects.get_or_create(
            organization=organization,
            name="Leads",
            defaults={"filters": {"tags": ["lead"]}},
        )
        pacientes = Segment.objects.get(organization=organization, name="Pacientes")
        campaign, created = Campaign.objects.get_or_create(
            organization=organization,
            name="Retorno semestral — maio",
            defaults={
                "number": template.number,
                "template": template,
                "segment": pacientes,
                "status": Campaign.Status.COMPLETED,
                "variables": {
                    "body": [
                        {"source": "field", "value": "first_name", "fallback": "tudo bem"},
                        {"source": "fixed", "value": "R$ 90", "fallback": ""},
                    ],
                    "conversion": {"kind": "reply", "value": ""},
                },
            },
        )
        if created:
            self._results(campaign, organization)
        Campaign.objects.get_or_create(
            organization=organization,
            name="Clareamento — convite",
            defaults={
                "number": template.number,
                "template": template,
                "segment": leads,
                "variables": {
                    "body": [
                        {"source": "field", "value": "first_name", "fallback": ""},
                        {"source": "fixed", "value": "R$ 450", "fallback": ""},
                    ],
                    "conversion": {"kind": "reply", "value": ""},
                },
            },
        )
        self.stdout.write(self.style.SUCCESS("Demo campaigns and segments ready."))

    def _results(self, campaign, organization):
        """Recipients in every outcome, spread over two days ten days ago."""
        rng = random.Random(7)
        contacts = list(Contact.objects.filter(organization=organization).order_by("pk"))
        started = timezone.now() - timedelta(days=10)
        outcomes = [R.REPLIED, R.READ, R.READ, R.DELIVERED, R.REPLIED, R.READ, R.FAILED, R.SKIPPED]
        rows = []
        for index, contact in enumerate(contacts):
            status = outcomes[index % len(outcomes)]
            sent = started + timedelta(minutes=rng.randint(0, 2 * 24 * 60))
            reached = status in (R.DELIVERED, R.READ, R.REPLIED)
            rows.append(
                CampaignRecipient(
                    organization=organization,
                    campaign=campaign,
                    contact=contact,
                    to=contact.wa_id,
                    status=status,
                    reason="opted_out"
                    if status == R.SKIPPED
                    else ("send_error" if status == R.FAILED else ""),
                    error_code=131026 if status == R.FAILED else None,
                    sent_at=None if status == R.SKIPPED else sent,
                    delivered_at=sent + timedelta(seconds=5) if reached else None,
                    read_at=sent + timedelta(minutes=20) if status in (R.READ, R.REPLIED) else None,
                    replied_at=sent + timedelta(hours=1) if status == R.REPLIED else None,
                    failed_at=sent if status == R.FAILED else None,
                    wamid=f"wamid.demo-campaign-{contact.pk}",
                )
            )
        CampaignRecipient.objects.bulk_create(rows)
        count = {s: sum(1 for r in rows if r.status == s) for s in R.values}
        Campaign.objects.filter(pk=campaign.pk).update(
            total=len(rows),
            sent=len(rows) - count[R.SKIPPED] - count[R.FAILED],
            delivered=count[R.DELIVERED] + count[R.READ] + count[R.REPLIED],
            read=count[R.READ] + count[R.REPLIED],
            replied=count[R.REPLIED],
            failed=count[R.FAILED],
            skipped=count[R.SKIPPED],
            run=1,
            expanded_run=1,
            started_at=started,
            completed_at=started + timedelta(days=2),
        )
