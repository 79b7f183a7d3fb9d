"""The inbox's chat list: a priority filter and a sort by priority (priority set in the chat
header, see test_teamwork), paged with the same cursor as the default order."""

import re
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from inbox import selectors
from inbox.models import Chat
from tests.base import BaseTestCase, make_chat


class PriorityListTests(BaseTestCase):
    def setUp(self):
        now = timezone.now()
        self.chats = {}
        # name: (priority, minutes ago)
        for i, (name, priority, ago) in enumerate(
            [
                ("Urgent Old", 4, 50),
                ("High New", 3, 1),
                ("Low Newer", 1, 2),
                ("None Newest", 0, 0),
                ("High Old", 3, 40),
            ]
        ):
            chat = make_chat(self.org, self.number, f"55119800000{i:02d}", name)
            Chat.objects.filter(pk=chat.pk).update(
                priority=priority, last_message_at=now - timedelta(minutes=ago)
            )
            self.chats[name] = chat
        Chat.objects.filter(pk__in=[self.agent_chat.pk, self.other_chat.pk]).update(
            last_message_at=now - timedelta(days=1)
        )
        self.login(self.admin)

    def names(self, response):
        return [chat.contact.display_name for chat in response.context["chats"]]

    def test_it_filters_by_one_priority_or_a_floor(self):
        response = self.client.get(reverse("chat_list"), {"priority": "3+"})
        self.assertEqual(self.names(response), ["High New", "High Old", "Urgent Old"])
        response = self.client.get(reverse("chat_list"), {"priority": "4"})
        self.assertEqual(self.names(response), ["Urgent Old"])
        response = self.client.get(reverse("chat_list"), {"priority": "0"})
        self.assertIn("None Newest", self.names(response))
        self.assertNotIn("Low Newer", self.names(response))
        self.assertContains(response, 'id="filter-priority"')

    def test_it_sorts_by_priority_then_latest_activity(self):
        response = self.client.get(reverse("chat_list"), {"sort": "priority"})
        self.assertEqual(
            self.names(response)[:5],
            ["Urgent Old", "High New", "High Old", "Low Newer", "None Newest"],
        )
        # The default order is untouched.
        response = self.client.get(reverse("chat_list"))
        self.assertEqual(self.names(response)[:2], ["None Newest", "High New"])

    def test_the_next_page_follows_the_priority_order(self):
        membership = self.admin.memberships.get(organization=self.org)
        filters = selectors.ChatFilters(sort="priority")
        after = self.chats["High New"]
        after.refresh_from_db()
        rest = selectors.chat_page(membership, filters, before=after)
        self.assertEqual(
            [c.contact.display_name for c in rest][:3], ["High Old", "Low Newer", "None Newest"]
        )
        response = self.client.get(
            reverse("chat_items"), {"sort": "priority", "before": after.code}
        )
        codes = re.findall(r'id="chat-([0-9a-f-]{36})"', response.content.decode())
        by_code = {str(chat.code): name for name, chat in self.chats.items()}
        self.assertEqual(
            [by_code.get(code) for code in codes][:3], ["High Old", "Low Newer", "None Newest"]
        )

    def test_unknown_values_are_ignored_not_an_error(self):
        response = self.client.get(reverse("chat_list"), {"priority": "9", "sort": "x"})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.context["filters"].priority, "")
        self.assertEqual(len(self.names(response)), 7)

    def test_the_filters_travel_in_the_list_query_and_saved_views(self):
        filters = selectors.ChatFilters.from_query(
            {"priority": "2+", "sort": "priority"}, self.admin.memberships.get()
        )
        self.assertIn("priority=2%2B", filters.as_query())
        self.assertIn("sort=priority", filters.as_query())

    def test_an_agent_sees_only_their_own_chats_whatever_the_sort(self):
        Chat.objects.filter(pk=self.agent_chat.pk).update(priority=2)
        self.login(self.agent)
        response = self.client.get(reverse("chat_list"), {"sort": "priority", "view": "all"})
        self.assertEqual(self.names(response), ["Assigned Customer"])
