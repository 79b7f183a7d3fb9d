from django.urls import reverse

from accounts.models import Membership, Role
from tests.base import BaseTestCase


class MemberTests(BaseTestCase):
    def test_an_admin_changes_a_role(self):
        self.login(self.admin)
        membership = Membership.objects.get(user=self.agent)
        self.client.post(reverse("member_role", args=[membership.pk]), {"role": Role.MANAGER})
        membership.refresh_from_db()
        self.assertEqual(membership.role, Role.MANAGER)

    def test_the_last_admin_cannot_be_demoted_or_removed(self):
        self.login(self.admin)
        membership = Membership.objects.get(user=self.admin)
        response = self.client.post(
            reverse("member_role", args=[membership.pk]), {"role": Role.AGENT}, follow=True
        )
        self.assertContains(response, "at least one admin")
        self.client.post(reverse("member_remove", args=[membership.pk]))
        membership.refresh_from_db()
        self.assertEqual(membership.role, Role.ADMIN)

    def test_a_manager_cannot_change_roles(self):
        self.login(self.manager)
        membership = Membership.objects.get(user=self.agent)
        response = self.client.post(
            reverse("member_role", args=[membership.pk]), {"role": Role.ADMIN}
        )
        self.assertEqual(response.status_code, 403)
        membership.refresh_from_db()
        self.assertEqual(membership.role, Role.AGENT)

    def test_a_user_in_two_organizations_switches(self):
        Membership.objects.create(user=self.admin, organization=self.other_org, role=Role.AGENT)
        self.login(self.admin)
        self.assertContains(self.client.get(reverse("home")), "Clínica Alice")
        self.client.post(reverse("organization_switch", args=[self.other_org.code]))
        self.assertContains(self.client.get(reverse("home")), "Clínica Bob Secreta")

    def test_switching_to_an_organization_you_are_not_in_is_404(self):
        self.login(self.admin)
        response = self.client.post(reverse("organization_switch", args=[self.other_org.code]))
        self.assertEqual(response.status_code, 404)
