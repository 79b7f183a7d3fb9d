from urllib.parse import urlencode

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from inbox.models import Chat, Message
from tests.api.helpers import ApiTestCase, SandboxMixin
from tests.base import make_chat


class ChatApiTests(ApiTestCase):
    def test_it_lists_only_the_organizations_chats_newest_first(self):
        response = self.api("get", reverse("api_chats"))
        self.assertEqual(response.status_code, 200)
        names = [c["contact"]["name"] for c in response.json()["results"]]
        self.assertCountEqual(names, ["Assigned Customer", "Unassigned Customer"])
        self.assertNotIn("Zelda", response.content.decode())

    def test_a_page_of_chats_costs_the_same_queries_whatever_its_size(self):
        def queries_for_the_list():
            with CaptureQueriesContext(connection) as queries:
                response = self.api("get", reverse("api_chats"), {"limit": 50})
            self.assertEqual(response.status_code, 200)
            return len(queries), response.json()["results"]

        queries_for_the_list()  # the key is looked up once, then remembered by the process
        few, _ = queries_for_the_list()
        for index in range(12):
            make_chat(
                self.org, self.number, f"55119000001{index:02d}", f"Customer {index}", self.agent
            )
        many, rows = queries_for_the_list()
        self.assertEqual(many, few)
        self.assertEqual(len(rows), 14)
        row = next(r for r in rows if r["contact"]["name"] == "Customer 3")
        self.assertEqual(row["contact"]["phone"], "+5511900000103")
        self.assertEqual(row["assignee"], {"email": self.agent.email, "name": "Ana Agent"})
        self.assertEqual(row["number"]["display_phone_number"], self.number.display_phone_number)

    def test_it_pages_with_a_cursor(self):
        first = self.api("get", reverse("api_chats"), {"limit": 1}).json()
        self.assertEqual(len(first["results"]), 1)
        second = self.client.get(first["next"], HTTP_AUTHORIZATION=f"Bearer {self.secret}").json()
        self.assertEqual(len(second["results"]), 1)
        self.assertIsNone(second["next"])
        self.assertNotEqual(first["results"][0]["id"], second["results"][0]["id"])

    def test_the_next_page_keeps_the_request_parameters_in_order(self):
        from urllib.parse import parse_qsl, urlsplit

        for index in range(3):
            make_chat(self.org, self.number, f"55119000002{index:02d}", f"Kept {index}")

        def params_of(url):
            return parse_qsl(urlsplit(url).query)

        query = [("status", "open"), ("limit", "1"), ("ordering", "created_at"), ("nota", "ação")]
        first = self.api("get", reverse("api_chats") + "?" + urlencode(query)).json()
        cursor = dict(params_of(first["next"]))["cursor"]
        self.assertEqual(params_of(first["next"]), [*query, ("cursor", cursor)])
        # A cursor sent before the other parameters keeps its place, with the next page's value.
        query = [("cursor", cursor), *query]
        second = self.api("get", reverse("api_chats") + "?" + urlencode(query)).json()
        following = dict(params_of(second["next"]))["cursor"]
        self.assertNotEqual(following, cursor)
        self.assertEqual(params_of(second["next"]), [("cursor", following), *query[1:]])
        self.assertNotEqual(first["results"], second["results"])

    def test_it_filters_by_assignee_and_status(self):
        mine = self.api("get", reverse("api_chats"), {"assignee": self.agent.email}).json()
        self.assertEqual([c["id"] for c in mine["results"]], [str(self.agent_chat.code)])
        none = self.api("get", reverse("api_chats"), {"assignee": "none"}).json()
        self.assertEqual([c["id"] for c in none["results"]], [str(self.other_chat.code)])
        resolved = self.api("get", reverse("api_chats"), {"status": "resolved"}).json()
        self.assertEqual(resolved["results"], [])

    def test_a_search_finds_a_chat_by_its_contact_and_one_that_finds_nothing_is_empty(self):
        name = self.agent_chat.contact.display_name
        found = self.api("get", reverse("api_chats"), {"q": name})
        self.assertEqual(found.status_code, 200)
        self.assertIn(str(self.agent_chat.code), [c["id"] for c in found.json()["results"]])
        nothing = self.api("get", reverse("api_chats"), {"q": "Nobody Matches This"})
        self.assertEqual(nothing.status_code, 200)
        self.assertEqual(nothing.json()["results"], [])
        self.assertIsNone(nothing.json()["next"])

    def test_it_assigns_resolves_toggles_ai_and_tags(self):
        code = self.other_chat.code
        response = self.api(
            "post", reverse("api_chat_assign", args=[code]), {"assignee": self.agent.email}
        )
        self.assertEqual(response.json()["assignee"]["email"], self.agent.email)
        response = self.api("post", reverse("api_chat_status", args=[code]), {"status": "resolved"})
        self.assertEqual(response.json()["status"], "resolved")
        response = self.api("post", reverse("api_chat_ai", args=[code]), {"enabled": True})
        self.assertTrue(response.json()["ai_enabled"])
        response = self.api(
            "post", reverse("api_chat_tags", args=[code]), {"tags": ["VIP", "billing"]}
        )
        self.assertEqual(response.json()["tags"], ["vip", "billing"])
        activity = Message.objects.filter(chat=self.other_chat, type="activity").count()
        self.assertEqual(activity, 4)

    def test_it_refuses_assigning_to_a_stranger(self):
        response = self.api(
            "post",
            reverse("api_chat_assign", args=[self.other_chat.code]),
            {"assignee": self.outsider.email},
        )
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "invalid")
        self.assertIn("assignee", response.json()["error"]["details"])

    def test_it_lists_messages_without_internal_entries_by_default(self):
        self.api(
            "post", reverse("api_chat_status", args=[self.other_chat.code]), {"status": "pending"}
        )
        url = reverse("api_chat_messages", args=[self.other_chat.code])
        public = self.api("get", url).json()["results"]
        self.assertEqual([m["direction"] for m in public], ["in"])
        everything = self.api("get", url, {"include_internal": "true"}).json()["results"]
        self.assertEqual(len(everything), 2)


class SendApiTests(SandboxMixin, ApiTestCase):
    def test_it_sends_text_in_an_open_chat(self):
        self.open_window(self.other_chat)
        response = self.api(
            "post",
            reverse("api_chat_messages", args=[self.other_chat.code]),
            {"type": "text", "text": {"body": "Consulta confirmada"}},
        )
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual(
            (body["type"], body["text"], body["direction"]), ("text", "Consulta confirmada", "out")
        )
        message = Message.objects.get(code=body["id"])
        self.assertEqual(message.status, "sent")
        self.assertEqual(message.author_type, "automation")

    def test_it_refuses_free_text_outside_the_window_with_422(self):
        response = self.api(
            "post",
            reverse("api_chat_messages", args=[self.other_chat.code]),
            {"type": "text", "text": {"body": "Oi"}},
        )
        self.assertEqual(response.status_code, 422)
        self.assertEqual(response.json()["error"]["code"], "send_refused")
        self.assertFalse(Message.objects.filter(chat=self.other_chat, direction="out").exists())

    def test_it_sends_to_a_phone_and_starts_nothing_when_refused(self):
        response = self.api(
            "post",
            reverse("api_messages_send"),
            {"to": "+5511987654321", "type": "text", "text": {"body": "Oi"}},
        )
        self.assertEqual(response.status_code, 422)
        self.assertFalse(Chat.objects.filter(contact__phone="+5511987654321").exists())

    def test_it_sends_to_a_known_contacts_phone(self):
        self.open_window(self.other_chat)
        response = self.api(
            "post",
            reverse("api_messages_send"),
            {"to": self.other_chat.contact.phone, "type": "text", "text": {"body": "Oi de novo"}},
        )
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["chat"], str(self.other_chat.code))

    def test_it_rejects_a_phone_that_is_not_e164(self):
        response = self.api(
            "post",
            reverse("api_messages_send"),
            {"to": "11 9999", "type": "text", "text": {"body": "x"}},
        )
        self.assertEqual(response.status_code, 400)
        self.assertIn("to", response.json()["error"]["details"])


class CursorTests(ApiTestCase):
    def test_every_chat_is_listed_once_across_pages_in_both_orders(self):
        from django.utils import timezone

        from tests.base import make_chat

        for i in range(5):
            chat = make_chat(self.org, self.number, f"55119000001{i:02d}", f"Paged {i}")
            if i % 2:
                Chat.objects.filter(pk=chat.pk).update(last_message_at=timezone.now())
        expected = set(Chat.objects.filter(organization=self.org).values_list("code", flat=True))
        for ordering in ("-last_message_at", "last_message_at", "created_at"):
            seen, url, params = [], reverse("api_chats"), {"limit": 2, "ordering": ordering}
            while url:
                page = self.api("get", url, params).json()
                seen += [c["id"] for c in page["results"]]
                url, params = page["next"], None
            with self.subTest(ordering=ordering):
                self.assertEqual(len(seen), len(expected))
                self.assertEqual(set(seen), {str(code) for code in expected})
