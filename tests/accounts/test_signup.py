from django.core import mail
from django.test import TestCase
from django.urls import reverse

from accounts.models import Invitation, Membership, Organization, Role, User
from tests.base import BaseTestCase

SIGNUP = {
    "name": "Dra. Carla",
    "email": "carla@odonto.test",
    "password1": "a-long-passphrase-42",
    "password2": "a-long-passphrase-42",
    "organization_name": "Odonto Carla",
}


class SignupTests(TestCase):
    def test_it_creates_the_organization_with_an_admin_membership(self):
        response = self.client.post(reverse("account_signup"), SIGNUP)
        self.assertEqual(response.status_code, 302)
        user = User.objects.get(email="carla@odonto.test")
        self.assertEqual(user.name, "Dra. Carla")
        membership = Membership.objects.get(user=user)
        self.assertEqual(membership.role, Role.ADMIN)
        self.assertEqual(membership.organization.name, "Odonto Carla")
        self.assertEqual(membership.organization.slug, "odonto-carla")
        home = self.client.get(reverse("home"))
        self.assertContains(home, "Odonto Carla")

    def test_it_requires_an_organization_name(self):
        response = self.client.post(reverse("account_signup"), {**SIGNUP, "organization_name": ""})
        self.assertEqual(response.status_code, 200)
        self.assertFalse(User.objects.filter(email=SIGNUP["email"]).exists())
        self.assertContains(response, "errorlist")

    def test_it_sends_an_email_verification_link(self):
        with self.captureOnCommitCallbacks(execute=True):
            self.client.post(reverse("account_signup"), SIGNUP)
        self.assertEqual(len(mail.outbox), 1)
        self.assertIn("carla@odonto.test", mail.outbox[0].to)
        self.assertIn("/accounts/confirm-email/", mail.outbox[0].body)


class InvitationTests(BaseTestCase):
    def invite(self, email="new@alice.test", role=Role.OPERATOR):
        self.login(self.admin)
        response = self.client.post(reverse("member_invite"), {"email": email, "role": role})
        self.assertEqual(response.status_code, 302)
        self.client.logout()
        return Invitation.objects.get(email=email)

    def test_it_emails_a_link_that_signs_a_newcomer_up_into_the_organization(self):
        invitation = self.invite()
        self.assertEqual(len(mail.outbox), 1)
        self.assertIn(reverse("invitation_accept", args=[invitation.token]), mail.outbox[0].body)

        page = self.client.get(reverse("invitation_accept", args=[invitation.token]))
        self.assertContains(page, "Clínica Alice")
        self.client.post(
            reverse("account_signup"),
            {**SIGNUP, "email": "new@alice.test", "organization_name": ""},
        )
        user = User.objects.get(email="new@alice.test")
        membership = Membership.objects.get(user=user)
        self.assertEqual((membership.organization, membership.role), (self.org, Role.OPERATOR))
        self.assertEqual(Organization.objects.filter(memberships__user=user).count(), 1)
        invitation.refresh_from_db()
        self.assertIsNotNone(invitation.accepted_at)

    def test_an_existing_user_accepts_it(self):
        invitation = self.invite(email=self.outsider.email, role=Role.AGENT)
        self.login(self.outsider)
        response = self.client.post(reverse("invitation_accept", args=[invitation.token]))
        self.assertRedirects(response, reverse("home"), fetch_redirect_response=False)
        self.assertTrue(
            Membership.objects.filter(
                user=self.outsider, organization=self.org, role=Role.AGENT
            ).exists()
        )
        # The session now works in the new organization.
        self.assertContains(self.client.get(reverse("home")), "Clínica Alice")

    def test_an_expired_invitation_is_refused(self):
        invitation = self.invite()
        Invitation.objects.filter(pk=invitation.pk).update(expires_at="2020-01-01T00:00:00Z")
        self.login(self.outsider)
        response = self.client.post(reverse("invitation_accept", args=[invitation.token]))
        self.assertEqual(response.status_code, 410)
        self.assertContains(response, "expired", status_code=410)
        self.assertFalse(
            Membership.objects.filter(user=self.outsider, organization=self.org).exists()
        )

    def test_a_used_invitation_cannot_be_reused(self):
        invitation = self.invite()
        self.login(self.outsider)
        self.client.post(reverse("invitation_accept", args=[invitation.token]))
        stranger = User.objects.create_user(email="stranger@x.test", password="x-long-passphrase-1")
        self.login(stranger)
        response = self.client.post(
            reverse("invitation_accept", args=[invitation.token]), HTTP_ACCEPT_LANGUAGE="en"
        )
        self.assertEqual(response.status_code, 410)
        self.assertContains(response, "already been used", status_code=410)
        self.assertFalse(Membership.objects.filter(user=stranger).exists())

    def test_an_unknown_token_is_404(self):
        self.assertEqual(
            self.client.get(reverse("invitation_accept", args=["nope"])).status_code, 404
        )

    def test_a_current_member_cannot_be_invited_again(self):
        self.login(self.admin)
        response = self.client.post(
            reverse("member_invite"), {"email": self.agent.email, "role": Role.ADMIN}, follow=True
        )
        self.assertContains(response, "already a member")
        self.assertFalse(Invitation.objects.exists())
