from django.urls import reverse

from accounts.models import Membership, Organization
from inbox.models import Chat, Contact
from tests.base import BaseTestCase


class AdminScopingTests(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.admin.is_staff = True
        cls.admin.save()

    def setUp(self):
        self.login(self.admin)

    def test_an_organization_admin_lists_only_their_rows(self):
        for model, own, foreign in [
            (Chat, self.agent_chat, self.secret_chat),
            (Contact, self.agent_chat.contact, self.secret_chat.contact),
            (Organization, self.org, self.other_org),
        ]:
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            response = self.client.get(url)
            with self.subTest(model=model.__name__):
                self.assertEqual(response.status_code, 200)
                self.assertContains(response, str(own.pk))
                self.assertNotContains(response, "Zelda Secretcustomer")
                self.assertNotContains(response, "Clínica Bob Secreta")
                self.assertNotContains(response, f"/{foreign.pk}/change/")

    def test_an_organization_admin_cannot_open_or_change_another_organizations_object(self):
        contact = self.secret_chat.contact
        url = reverse("admin:inbox_contact_change", args=[contact.pk])
        response = self.client.get(url)
        self.assertNotEqual(response.status_code, 200)
        response = self.client.post(
            url, {"name": "hacked", "phone": "+1", "organization": self.other_org.pk}
        )
        self.assertNotEqual(response.status_code, 200)
        contact.refresh_from_db()
        self.assertEqual(contact.name, "Zelda Secretcustomer")

    def test_foreign_key_choices_are_scoped(self):
        response = self.client.get(reverse("admin:inbox_contact_add"))
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Clínica Alice")
        self.assertNotContains(response, "Clínica Bob Secreta")

    def test_an_organization_admin_cannot_add_to_another_organization(self):
        response = self.client.post(
            reverse("admin:inbox_contact_add"),
            {
                "organization": self.other_org.pk,
                "phone": "+5511",
                "opt_in": "unknown",
                "stage": "lead",
                "tags": "[]",
                "attributes": "{}",
            },
        )
        self.assertEqual(response.status_code, 200)  # form redisplayed with an error
        self.assertFalse(
            Contact.objects.filter(organization=self.other_org, phone="+5511").exists()
        )

    def test_a_staff_user_who_is_not_an_organization_admin_sees_nothing(self):
        self.agent.is_staff = True
        self.agent.save()
        self.login(self.agent)
        self.assertNotEqual(
            self.client.get(reverse("admin:inbox_chat_changelist")).status_code, 200
        )
        self.assertFalse(Membership.objects.filter(user=self.agent, role="admin").exists())

    def test_a_superuser_sees_every_organization(self):
        self.admin.is_superuser = True
        self.admin.save()
        response = self.client.get(reverse("admin:accounts_organization_changelist"))
        self.assertContains(response, "Clínica Bob Secreta")

    def test_credentials_are_never_shown_in_admin(self):
        response = self.client.get(
            reverse("admin:integrations_whatsappnumber_change", args=[self.number.pk])
        )
        self.assertEqual(response.status_code, 200)
        self.assertNotContains(response, "token-clinica-alice")
        self.assertNotContains(response, "secret-clinica-alice")
        self.assertContains(response, "••••")
