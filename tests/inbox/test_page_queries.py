"""Statement budgets of the inbox pages people wait on (issue 20; timings: bench/pages.py)."""

from django.urls import reverse

from inbox.models import Message
from integrations.models import MessageTemplate
from tests.base import BaseTestCase
from tests.queries import assert_at_most, statements

PANE = {"HX-Request": "true", "HX-Target": "chat-pane"}


class InboxPageQueriesTests(BaseTestCase):
    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        for index, status in enumerate(["APPROVED", "approved", "PENDING"]):
            MessageTemplate.objects.create(
                organization=cls.org,
                number=cls.number,
                meta_id=f"tpl-{index}",
                name=f"reminder_{index}",
                language="pt_BR",
                status=status,
                category="UTILITY",
                components=[{"type": "BODY", "text": "Olá {{1}}"}],
            )
        first = cls.other_chat.messages.first()
        for index in range(20):
            Message.objects.create(
                organization=cls.org,
                chat=cls.other_chat,
                number=cls.number,
                direction="out" if index % 2 else "in",
                text=f"Mensagem {index}",
                author_type="user" if index % 2 else "customer",
                author_user=cls.operator if index % 2 else None,
                reply_to=first,
                status="read",
            )

    def setUp(self):
        self.login(self.admin)
        self.client.get(reverse("home"))  # the session has chosen its organization

    def test_home_stays_within_its_budget(self):
        with statements() as captured:
            self.assertEqual(self.client.get(reverse("home")).status_code, 200)
        assert_at_most(self, captured, 8, "home")

    def test_the_inbox_list_stays_within_its_budget(self):
        with statements() as captured:
            response = self.client.get(reverse("chat_list"), {"status": "any"})
        self.assertEqual(response.status_code, 200)
        assert_at_most(self, captured, 10, "inbox list")

    def test_opening_a_chat_stays_within_its_budget(self):
        url = reverse("chat_detail", args=[self.other_chat.code])
        self.client.get(url)  # read once: the unread count is already zero below
        with statements() as captured:
            response = self.client.get(url)
        self.assertContains(response, "Mensagem 19")
        assert_at_most(self, captured, 21, "chat open")
        # The number's templates are read once for the composer and the timeline.
        self.assertEqual(len(captured.tables("integrations_messagetemplate")), 1)
        self.assertContains(response, "reminder_0 (pt_BR)")
        self.assertContains(response, "reminder_1 (pt_BR)")
        self.assertNotContains(response, "reminder_2 (pt_BR)")  # pending: not offered

    def test_the_chat_pane_stays_within_its_budget(self):
        url = reverse("chat_detail", args=[self.other_chat.code])
        self.client.get(url, headers=PANE)
        with statements() as captured:
            response = self.client.get(url, headers=PANE)
        self.assertContains(response, "Mensagem 19")
        assert_at_most(self, captured, 14, "chat pane")
