import io

from django.core.management import call_command
from django.test import TestCase

from accounts.models import Membership, Organization, Role, User
from inbox.models import Chat, Contact, Message


def counts():
    return [m.objects.count() for m in (Organization, User, Membership, Contact, Chat, Message)]


class DemoCommandTests(TestCase):
    def test_it_creates_the_demo_organization_once(self):
        call_command("demo", stdout=io.StringIO())
        first = counts()
        call_command("demo", stdout=io.StringIO())
        self.assertEqual(counts(), first)
        organization = Organization.objects.get(name="Clínica Sorriso")
        roles = set(
            Membership.objects.filter(organization=organization).values_list("role", flat=True)
        )
        self.assertEqual(roles, {Role.ADMIN, Role.MANAGER, Role.OPERATOR, Role.AGENT})
        self.assertGreaterEqual(Chat.objects.filter(organization=organization).count(), 5)

    def test_the_owner_can_sign_in(self):
        call_command("demo", stdout=io.StringIO())
        from inbox.management.commands.demo import DEMO_PASSWORD, OWNER_EMAIL

        self.assertTrue(self.client.login(email=OWNER_EMAIL, password=DEMO_PASSWORD))
        self.assertContains(self.client.get("/"), "Clínica Sorriso")
