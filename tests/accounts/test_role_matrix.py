"""The role matrix of the product spec, one assertion per cell that matters."""

from django.urls import reverse

from accounts.models import Role
from tests.base import BaseTestCase

# section → URL name of its page
PAGES = {
    "dashboard": "home",
    "chats": "chat_list",
    "assistants": "assistants_index",
    "campaigns": "campaigns_index",
    "settings": "settings_organization",
    "billing": "billing",
}
# role → sections whose page answers 200 (all others 403)
CAN_VIEW = {
    Role.ADMIN: {"dashboard", "chats", "assistants", "campaigns", "settings", "billing"},
    Role.MANAGER: {"dashboard", "chats", "assistants", "campaigns", "settings", "billing"},
    Role.OPERATOR: {"dashboard", "chats", "assistants", "campaigns"},
    Role.AGENT: {"dashboard", "chats"},
}


class RoleMatrixTests(BaseTestCase):
    def test_each_role_sees_exactly_its_sections(self):
        for role, user in self.members.items():
            self.login(user)
            for section, url_name in PAGES.items():
                with self.subTest(role=role, section=section):
                    expected = 200 if section in CAN_VIEW[role] else 403
                    self.assertEqual(self.client.get(reverse(url_name)).status_code, expected)

    def test_only_admins_change_settings(self):
        data = {"name": "Renamed", "time_zone": "America/Manaus", "language": "en"}
        for role, user in self.members.items():
            self.login(user)
            with self.subTest(role=role):
                response = self.client.post(reverse("settings_organization"), data)
                expected = 302 if role == Role.ADMIN else 403
                self.assertEqual(response.status_code, expected)
        self.org.refresh_from_db()
        self.assertEqual((self.org.name, self.org.time_zone), ("Renamed", "America/Manaus"))

    def test_manager_sees_settings_read_only(self):
        self.login(self.manager)
        response = self.client.get(reverse("settings_organization"))
        self.assertContains(response, "Only admins can change these settings")
        self.assertContains(response, "disabled")

    def test_only_admins_invite(self):
        for role, user in self.members.items():
            self.login(user)
            with self.subTest(role=role):
                response = self.client.post(
                    reverse("member_invite"), {"email": "x@y.test", "role": "agent"}
                )
                self.assertEqual(response.status_code, 302 if role == Role.ADMIN else 403)

    def test_an_agent_sees_only_chats_assigned_to_them(self):
        self.login(self.agent)
        response = self.client.get(reverse("chat_list"))
        self.assertContains(response, "Assigned Customer")
        self.assertNotContains(response, "Unassigned Customer")
        self.assertEqual(
            self.client.get(reverse("chat_detail", args=[self.agent_chat.code])).status_code, 200
        )
        self.assertEqual(
            self.client.get(reverse("chat_detail", args=[self.other_chat.code])).status_code, 404
        )

    def test_an_operator_sees_every_chat(self):
        self.login(self.operator)
        response = self.client.get(reverse("chat_list"))
        self.assertContains(response, "Assigned Customer")
        self.assertContains(response, "Unassigned Customer")

    def test_navigation_shows_only_allowed_sections(self):
        self.login(self.agent)
        response = self.client.get(reverse("home"))
        self.assertNotContains(response, reverse("assistants_index"))
        self.assertNotContains(response, reverse("settings_organization"))
        self.login(self.admin)
        response = self.client.get(reverse("home"))
        self.assertContains(response, reverse("assistants_index"))
        self.assertContains(response, reverse("settings_organization"))

    def test_anonymous_users_are_sent_to_sign_in(self):
        response = self.client.get(reverse("chat_list"))
        self.assertEqual(response.status_code, 302)
        self.assertIn(reverse("account_login"), response["Location"])
