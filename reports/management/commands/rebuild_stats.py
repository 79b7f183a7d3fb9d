from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from reports import stats


class Command(BaseCommand):
    help = "Recompute the daily report rows from messages (all organizations by default)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=90, help="How many local days back")
        parser.add_argument("--since", type=date.fromisoformat, help="First day (YYYY-MM-DD)")
        parser.add_argument("--organization", help="Only this organization (slug)")

    def handle(self, *args, days, since, organization, **options):
        organizations = Organization.objects.all()
        if organization:
            organizations = organizations.filter(slug=organization)
            if not organizations:
                raise CommandError(f"No organization {organization!r}")
        for org in organizations:
            last = stats.local_today(org)
            first = since or last - timedelta(days=days - 1)
            count = stats.stats_rebuild(org, first=first, last=last)
            self.stdout.write(f"{org.slug}: {count} days rebuilt")
