"""``manage.py create_organization "Clínica Sorriso" owner@example.com``: the first
organization and its owner in production, where sign-up may be closed (``SIGNUP_OPEN=0``).

The owner is created when new, with a password read from ``OWNER_PASSWORD`` or asked for (no
password on the command line: shell history keeps it); an existing user simply becomes the
new organization's admin.
"""

import getpass
import os

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services
from accounts.models import User


class Command(BaseCommand):
    help = "Create an organization with its owner (admin); creates the owner when new."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Organization name, e.g. 'Clínica Sorriso'")
        parser.add_argument("owner_email", help="E-mail of the owner (created when new)")
        parser.add_argument("--time-zone", default="America/Sao_Paulo")
        parser.add_argument("--language", default="pt-br", choices=["pt-br", "en", "es"])

    def handle(self, *args, name, owner_email, time_zone, language, **options):
        email = owner_email.strip().lower()
        owner = User.objects.filter(email__iexact=email).first()
        password = None
        if owner is None:
            password = os.environ.get("OWNER_PASSWORD") or getpass.getpass(
                f"Password for the new user {email}: "
            )
            try:
                validate_password(password, User(email=email))
            except ValidationError as error:
                raise CommandError(" ".join(error.messages)) from error
        with transaction.atomic():
            if owner is None:
                owner = User.objects.create_user(email=email, password=password)
            organization = services.organization_create(
                name=name, owner=owner, time_zone=time_zone, language=language
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {organization.name} ({organization.slug}); {owner.email} is its admin."
            )
        )
