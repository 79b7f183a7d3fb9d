"""A member of organization A can never reach organization B's data, on any URL.

The sweep walks the whole URL conf, so a new view is covered the day it is added: a URL with
parameters must be listed in ``FOREIGN_KWARGS`` (how to point it at B's object), or the test
fails and says which one is missing.
"""

from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import Invitation, Membership, Role
from tests.base import BaseTestCase

SKIPPED_PREFIXES = ("admin", "accounts", "media", "static", "api/schema", "api/docs")


def walk(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield route, pattern


def our_urls():
    for route, pattern in walk(get_resolver().url_patterns):
        if not route.startswith(SKIPPED_PREFIXES):
            yield route, pattern


class TenantSweepTests(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.foreign_invitation = Invitation.objects.create(
            organization=cls.other_org, email="x@bob.test", role=Role.AGENT
        )
        cls.foreign_membership = Membership.objects.get(user=cls.outsider)

    def foreign_kwargs(self):
        """URL name → kwargs that point at organization B's object."""
        return {
            "chat_detail": {"code": self.secret_chat.code},
            "organization_switch": {"code": self.other_org.code},
            "member_role": {"membership_id": self.foreign_membership.pk},
            "member_remove": {"membership_id": self.foreign_membership.pk},
            "invitation_revoke": {"code": self.foreign_invitation.code},
            # Public by design: the token is the secret; covered in test_signup.
            "invitation_accept": None,
            # Authenticated by the number's own key and signature, not by a session.
            "whatsapp_webhook": None,
        }

    def test_every_object_url_answers_404_for_another_organization(self):
        self.login(self.admin)
        mapping = self.foreign_kwargs()
        checked = 0
        for route, pattern in our_urls():
            if not pattern.pattern.converters:
                continue
            self.assertIn(
                pattern.name, mapping, f"Add {pattern.name} ({route}) to the tenant sweep"
            )
            kwargs = mapping[pattern.name]
            if kwargs is None:
                continue
            url = reverse(pattern.name, kwargs=kwargs)
            for method in ("get", "post"):
                status = getattr(self.client, method)(url).status_code
                with self.subTest(url=url, method=method):
                    self.assertIn(status, (404, 405), f"{method.upper()} {url} answered {status}")
            checked += 1
        self.assertGreaterEqual(checked, 5)
        # Nothing of B's changed.
        self.assertTrue(
            Membership.objects.filter(pk=self.foreign_membership.pk, role=Role.ADMIN).exists()
        )
        self.assertTrue(Invitation.objects.filter(pk=self.foreign_invitation.pk).exists())

    def test_no_page_shows_another_organizations_data(self):
        self.login(self.admin)
        for route, pattern in our_urls():
            if pattern.pattern.converters:
                continue
            url = "/" + route
            response = self.client.get(url)
            with self.subTest(url=url):
                self.assertNotEqual(response.status_code, 500)
                body = response.content.decode(errors="replace")
                for secret in ("Clínica Bob Secreta", "Zelda Secretcustomer", "segredo-do-bob"):
                    self.assertNotIn(secret, body)
