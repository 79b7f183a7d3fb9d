"""Signing in and the statements every signed-in page pays (issue 20; timings:
bench/pages.py): the session is written only when the chosen organization changes, and the
membership, the switcher's list and the member's user come from one query."""

from django.urls import reverse

from accounts.middleware import SESSION_KEY
from accounts.models import Membership, Role
from tests.base import PASSWORD, BaseTestCase
from tests.queries import assert_at_most, statements


class SignedInPageQueriesTests(BaseTestCase):
    def test_a_page_does_not_write_the_session_again(self):
        self.login(self.admin)
        self.client.get(reverse("campaign_contact_import"))
        with statements() as captured:
            self.assertEqual(self.client.get(reverse("campaign_contact_import")).status_code, 200)
        self.assertEqual(len(captured.tables("django_session")), 1, captured)  # the read
        self.assertEqual(len(captured.tables("accounts_membership")), 1, captured)
        self.assertEqual(len(captured.tables("accounts_user")), 1, captured)  # request.user

    def test_the_chosen_organization_is_stored_once_then_followed(self):
        Membership.objects.create(user=self.admin, organization=self.other_org, role=Role.AGENT)
        self.login(self.admin)
        self.client.get(reverse("home"))
        self.assertEqual(self.client.session[SESSION_KEY], str(self.org.code))
        page = self.client.get(reverse("home"))
        self.assertContains(page, "Clínica Bob Secreta")  # the switcher lists both

        self.client.post(reverse("organization_switch", args=[self.other_org.code]))
        self.assertEqual(self.client.session[SESSION_KEY], str(self.other_org.code))
        page = self.client.get(reverse("campaign_contact_import"))
        self.assertEqual(page.wsgi_request.organization, self.other_org)

    def test_a_stale_choice_falls_back_to_the_first_organization_and_is_stored(self):
        self.login(self.admin)
        session = self.client.session
        session[SESSION_KEY] = str(self.other_org.code)  # not a member there
        session.save()
        page = self.client.get(reverse("home"))
        self.assertEqual(page.wsgi_request.organization, self.org)
        self.assertEqual(self.client.session[SESSION_KEY], str(self.org.code))

    def test_signing_in_stays_within_its_budget(self):
        with statements() as captured:
            response = self.client.post(
                reverse("account_login"), {"login": self.admin.email, "password": PASSWORD}
            )
        self.assertEqual(response.status_code, 302)
        assert_at_most(self, captured, 9, "sign-in POST")
