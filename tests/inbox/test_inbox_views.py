import re
from datetime import timedelta
from unittest import mock

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from inbox import selectors
from inbox.models import Chat, Message, QuickReply
from integrations.models import MessageTemplate
from tests.api.helpers import SandboxMixin
from tests.base import BaseTestCase, make_chat


class InboxListTests(BaseTestCase):
    def setUp(self):
        self.login(self.operator)

    def list(self, **params):
        return self.client.get(reverse("chat_list"), params)

    def test_it_shows_the_organizations_chats_newest_first(self):
        Chat.objects.filter(pk=self.other_chat.pk).update(last_message_at=timezone.now())
        Chat.objects.filter(pk=self.agent_chat.pk).update(
            last_message_at=timezone.now() - timedelta(hours=1)
        )
        body = self.list().content.decode()
        self.assertLess(body.index("Unassigned Customer"), body.index("Assigned Customer"))
        self.assertNotIn("Zelda", body)

    def test_the_view_tabs_filter_and_count(self):
        response = self.list(view="unassigned")
        self.assertContains(response, "Unassigned Customer")
        self.assertNotContains(response, ">Assigned Customer<")
        self.assertEqual(response.context["counts"], {"all": 2, "mine": 0, "unassigned": 1})
        self.login(self.agent)
        response = self.list(view="mine")
        self.assertContains(response, "Assigned Customer")
        self.assertEqual(response.context["counts"]["all"], 1)

    def test_status_tag_and_ai_filters(self):
        Chat.objects.filter(pk=self.agent_chat.pk).update(
            status="resolved", tags=["vip"], ai_enabled=True
        )
        self.assertNotContains(self.list(), ">Assigned Customer<")
        self.assertContains(self.list(status="resolved"), "Assigned Customer")
        self.assertContains(self.list(status="any", tag="vip"), "Assigned Customer")
        self.assertNotContains(self.list(status="any", tag="vip"), "Unassigned Customer")
        self.assertContains(self.list(status="any", ai="on"), "Assigned Customer")
        self.assertNotContains(self.list(status="any", ai="off"), ">Assigned Customer<")

    def test_search_by_name_phone_and_message_text(self):
        Message.objects.create(
            organization=self.org,
            chat=self.other_chat,
            number=self.number,
            direction="in",
            text="Preciso de um orçamento de clareamento",
            author_type="customer",
        )
        self.assertContains(self.list(q="Unassigned"), "Unassigned Customer")
        self.assertContains(self.list(q="900000002"), "Unassigned Customer")
        found = self.list(q="clareamento")
        self.assertContains(found, "Unassigned Customer")
        self.assertNotContains(found, ">Assigned Customer<")
        self.assertNotContains(self.list(q="segredo-do-bob"), "Zelda")

    def test_search_lists_a_chat_once_and_only_chats_the_member_may_see(self):
        Chat.objects.filter(organization=self.org).update(status="resolved")
        self.agent_chat.contact.profile_name = "Dona Clareamento"
        self.agent_chat.contact.save()
        Message.objects.create(
            organization=self.org,
            chat=self.agent_chat,
            number=self.number,
            direction="in",
            text="quero clareamento",
            author_type="customer",
        )
        found = self.list(q="CLAREAMENTO", status="any")  # a profile name and a message
        self.assertEqual([chat.pk for chat in found.context["chats"]], [self.agent_chat.pk])
        self.assertEqual(found.context["counts"]["all"], 1)
        self.assertEqual(self.list(q="clareamento").context["chats"], [])  # status "open"
        self.login(self.agent)  # an agent sees only the chats assigned to them
        self.assertEqual(len(self.list(q="Customer", status="any").context["chats"]), 1)
        self.assertEqual(self.list(q="Unassigned", status="any").context["chats"], [])
        nothing = self.list(q="Nobody Matches This", status="any")
        self.assertEqual((nothing.context["chats"], nothing.context["counts"]["all"]), ([], 0))

    def test_a_search_matching_many_contacts_lists_the_same_chats(self):
        """Up to ``SEARCH_CONTACT_IDS`` matching contacts are looked up by id, more by a
        subquery: the two ways list the same chats, message hits included."""
        for index in range(4):
            make_chat(self.org, self.number, f"55119555{index:05d}", f"Implante {index}")
        Message.objects.create(
            organization=self.org,
            chat=self.agent_chat,
            number=self.number,
            direction="in",
            text="sobre o implante",
            author_type="customer",
        )

        def found():
            with CaptureQueriesContext(connection) as statements:
                response = self.list(q="implante", status="any")
            chats = sorted(chat.pk for chat in response.context["chats"])
            return chats, response.context["counts"]["all"], len(statements)

        found()  # the page's first view reads what later ones reuse
        by_ids = found()
        with mock.patch.object(selectors, "SEARCH_CONTACT_IDS", 2):
            by_subquery = found()
        self.assertEqual(len(by_ids[0]), 5)
        self.assertEqual(by_ids[:2], (by_subquery[0], 5))
        self.assertEqual(by_subquery[1], 5)
        if connection.vendor == "postgresql":
            # The message hits are then part of the subquery: not read on their own first,
            # neither for the list nor for its counts.
            self.assertEqual(by_subquery[2], by_ids[2] - 2)

    def test_the_list_pages_with_a_cursor(self):
        for index in range(45):
            make_chat(self.org, self.number, f"55119888{index:05d}", f"Bulk {index:02d}")
        Chat.objects.filter(organization=self.org).update(last_message_at=timezone.now())
        first = self.list(status="any")
        self.assertTrue(first.context["has_more"])
        last = first.context["chats"][-1]
        more = self.client.get(reverse("chat_items"), {"status": "any", "before": last.code})
        rows = re.compile(r'id="chat-([0-9a-f-]{36})"')
        shown = set(rows.findall(first.content.decode())) | set(rows.findall(more.content.decode()))
        self.assertEqual(len(shown), 47)

    def test_the_list_runs_a_constant_number_of_queries(self):
        def queries_for_list():
            with self.assertNumQueriesCapture() as ctx:
                self.list()
            return len(ctx.captured_queries)

        self.list()  # the first page after signing in stores the chosen organization
        small = queries_for_list()
        for index in range(30):
            make_chat(
                self.org, self.number, f"55117777{index:05d}", f"Many {index}", assignee=self.agent
            )
        self.assertEqual(queries_for_list(), small)

    def assertNumQueriesCapture(self):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        return CaptureQueriesContext(connection)


class ChatViewTests(BaseTestCase):
    def setUp(self):
        self.login(self.operator)

    def test_opening_a_chat_clears_its_unread_count(self):
        Chat.objects.filter(pk=self.other_chat.pk).update(unread_count=3)
        response = self.client.get(reverse("chat_detail", args=[self.other_chat.code]))
        self.assertContains(response, "Unassigned Customer")
        self.other_chat.refresh_from_db()
        self.assertEqual(self.other_chat.unread_count, 0)

    def test_the_thread_runs_a_constant_number_of_queries(self):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        url = reverse("chat_detail", args=[self.other_chat.code])
        self.client.get(url)  # the first page after signing in stores the chosen organization
        with CaptureQueriesContext(connection) as few:
            self.client.get(url)
        for index in range(30):
            Message.objects.create(
                organization=self.org,
                chat=self.other_chat,
                number=self.number,
                direction="out",
                text=f"Resposta {index}",
                author_type="user",
                author_user=self.operator,
                reply_to=self.other_chat.messages.first(),
                status="read",
            )
        with CaptureQueriesContext(connection) as many:
            self.client.get(url)
        self.assertEqual(len(many.captured_queries), len(few.captured_queries))

    def test_older_messages_load_upwards(self):
        base = timezone.now() - timedelta(days=2)
        for index in range(50):
            Message.objects.create(
                organization=self.org,
                chat=self.other_chat,
                number=self.number,
                direction="in",
                text=f"msg-{index:02d}",
                author_type="customer",
                timestamp=base + timedelta(minutes=index),
            )
        page = self.client.get(reverse("chat_detail", args=[self.other_chat.code]))
        entries = page.context["entries"]
        self.assertTrue(page.context["has_older"])
        older = self.client.get(
            reverse("thread_older", args=[self.other_chat.code]), {"before": entries[0].code}
        )
        self.assertContains(older, "msg-00")
        self.assertNotContains(older, entries[-1].text)

    def test_a_script_body_renders_as_text(self):
        Message.objects.create(
            organization=self.org,
            chat=self.other_chat,
            number=self.number,
            direction="in",
            text="<script>alert('x')</script>",
            content={"type": "text", "text": {"body": "<script>alert('x')</script>"}},
            author_type="customer",
        )
        response = self.client.get(reverse("chat_detail", args=[self.other_chat.code]))
        self.assertContains(response, "&lt;script&gt;alert(")
        self.assertNotContains(response, "<script>alert(")


class ConversationActionTests(BaseTestCase):
    def setUp(self):
        self.login(self.operator)
        self.url = lambda name: reverse(name, args=[self.other_chat.code])

    def timeline(self):
        return list(self.other_chat.messages.filter(direction="int").values_list("text", flat=True))

    def test_assign_status_tags_and_ai_are_recorded_in_the_timeline(self):
        self.client.post(self.url("assign"), {"assignee": self.agent.pk})
        self.client.post(self.url("set_status"), {"status": "pending"})
        self.client.post(self.url("set_tags"), {"tags": "VIP, implante"})
        self.client.post(self.url("set_ai"), {"enabled": "on"})
        self.other_chat.refresh_from_db()
        self.assertEqual(self.other_chat.assignee, self.agent)
        self.assertEqual(self.other_chat.status, "pending")
        self.assertEqual(self.other_chat.tags, ["vip", "implante"])
        self.assertTrue(self.other_chat.ai_enabled)
        timeline = self.timeline()
        self.assertEqual(len(timeline), 4)
        self.assertIn("Otto Operator", timeline[0])
        self.assertIn("Ana Agent", timeline[0])

    def test_an_agent_may_only_take_a_chat_for_themselves(self):
        Chat.objects.filter(pk=self.other_chat.pk).update(assignee=self.agent)
        self.login(self.agent)
        response = self.client.post(self.url("assign"), {"assignee": self.operator.pk})
        self.assertEqual(response.status_code, 403)
        self.other_chat.refresh_from_db()
        self.assertEqual(self.other_chat.assignee, self.agent)

    def test_private_notes_mention_teammates(self):
        response = self.client.post(
            self.url("add_note"), {"body": "@ana pode ligar para ela?"}, HTTP_HX_REQUEST="true"
        )
        self.assertEqual(response.status_code, 201)
        note = self.other_chat.messages.get(type="note")
        self.assertEqual(list(note.mentions.all()), [self.agent])
        self.assertIsNone(note.wamid)

    def test_quick_replies_are_per_organization(self):
        Chat.objects.filter(pk=self.other_chat.pk).update(
            window_expires_at=timezone.now() + timedelta(hours=1)
        )
        self.client.post(
            reverse("quick_replies"), {"shortcut": "horario", "text": "Atendemos das 8h às 18h."}
        )
        self.assertTrue(
            QuickReply.objects.filter(organization=self.org, shortcut="horario").exists()
        )
        page = self.client.get(self.url("chat_detail"))
        self.assertContains(page, 'data-quick-reply="horario"')
        self.login(self.outsider)
        self.assertNotContains(self.client.get(reverse("quick_replies")), "horario")


class ComposerTests(SandboxMixin, BaseTestCase):
    """Sends go to a real sandbox over HTTP, through the same client as production."""

    def setUp(self):
        super().setUp()
        self.login(self.operator)
        Chat.objects.filter(pk=self.other_chat.pk).update(
            window_expires_at=timezone.now() + timedelta(hours=3)
        )
        self.other_chat.refresh_from_db()

    def test_text_is_sent_through_the_cloud_api(self):
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                reverse("send_message", args=[self.other_chat.code]),
                {"text": "Olá! Como posso ajudar?"},
                HTTP_HX_REQUEST="true",
            )
        self.assertEqual(response.status_code, 201)
        message = self.other_chat.messages.get(direction="out")
        self.assertEqual(message.status, "sent")
        self.assertTrue(message.wamid.startswith("wamid."))
        self.assertEqual(message.author_user, self.operator)
        self.assertContains(response, "Olá! Como posso ajudar?", status_code=201)

    def test_free_text_is_refused_once_the_window_has_closed(self):
        Chat.objects.filter(pk=self.other_chat.pk).update(
            window_expires_at=timezone.now() - timedelta(minutes=1)
        )
        response = self.client.post(
            reverse("send_message", args=[self.other_chat.code]),
            {"text": "Oi"},
            HTTP_HX_REQUEST="true",
        )
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "24", status_code=400)
        self.assertFalse(self.other_chat.messages.filter(direction="out").exists())
        page = self.client.get(reverse("chat_detail", args=[self.other_chat.code]))
        self.assertNotContains(page, 'id="composer-text"')
        self.assertContains(page, "template")

    def test_a_template_is_sent_with_its_parameters_outside_the_window(self):
        Chat.objects.filter(pk=self.other_chat.pk).update(window_expires_at=None)
        template = MessageTemplate.objects.create(
            organization=self.org,
            number=self.number,
            name="appointment_reminder",
            language="pt_BR",
            status="APPROVED",
            category="UTILITY",
            components=[
                {"type": "BODY", "text": "Olá {{1}}, sua consulta com {{2}} em {{3}} às {{4}}."}
            ],
        )
        url = reverse("send_template", args=[self.other_chat.code])
        missing = self.client.post(
            url, {"template": template.pk, "param": ["Ana"]}, HTTP_HX_REQUEST="true"
        )
        self.assertEqual(missing.status_code, 400)
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                url,
                {"template": template.pk, "param": ["Ana", "Dra. Luz", "12/05", "10h"]},
                HTTP_HX_REQUEST="true",
            )
        self.assertEqual(response.status_code, 201)
        message = self.other_chat.messages.get(direction="out")
        self.assertEqual(message.type, "template")
        self.assertEqual(message.status, "sent")
        sent = message.content["template"]
        self.assertEqual(sent["components"][0]["parameters"][1]["text"], "Dra. Luz")


class InterruptedSendTests(BaseTestCase):
    def test_a_send_whose_worker_died_is_marked_failed_not_resent(self):
        from inbox import services

        message = Message.objects.create(
            organization=self.org,
            chat=self.other_chat,
            number=self.number,
            direction="out",
            text="Olá",
            author_type="user",
            status="pending",
            error_title=services.SENDING,
        )
        Message.objects.filter(pk=message.pk).update(
            created_at=timezone.now() - timedelta(minutes=30)
        )
        self.assertEqual(services.interrupted_sends_sweep(), 1)
        message.refresh_from_db()
        self.assertEqual(message.status, "failed")
        self.assertIn("may or may not", message.error_details)
        self.assertIsNone(message.wamid)


class LostSendTests(SandboxMixin, BaseTestCase):
    """A send's delivery task is queued after its commit: a broker outage or a crash right then
    loses it, and the message must not stay pending for good."""

    def send_losing_its_task(self, *texts: str) -> list[Message]:
        from inbox import services

        chat = self.other_chat
        Chat.objects.filter(pk=chat.pk).update(
            window_expires_at=timezone.now() + timedelta(hours=20)
        )
        chat.refresh_from_db()  # the customer wrote: a free-form reply may go
        with self.captureOnCommitCallbacks(execute=False):  # the tasks are never queued
            return [
                services.message_send(
                    chat=chat, message_type="text", content={"body": text}, author_user=self.agent
                )
                for text in texts
            ]

    def statuses(self) -> dict[str, str]:
        return dict(self.other_chat.messages.filter(direction="out").values_list("text", "status"))

    def test_a_send_whose_task_was_lost_is_queued_again_and_sent_once(self):
        from inbox import services

        [message] = self.send_losing_its_task("Sua consulta está confirmada.")
        message.refresh_from_db()
        self.assertEqual(message.status, "pending")
        # Within LOST_SEND_AFTER it may only be late: left to its task.
        self.assertEqual(services.lost_sends_requeue(), 0)
        later = timezone.now() + services.send.LOST_SEND_AFTER + timedelta(seconds=1)
        self.assertEqual(services.lost_sends_requeue(now=later), 1)
        message.refresh_from_db()
        self.assertEqual(message.status, "sent")
        self.assertTrue(message.wamid)
        self.assertEqual(services.lost_sends_requeue(now=later), 0)  # nothing left to send
        self.assertEqual(self.other_chat.messages.filter(direction="out").count(), 1)

    def test_a_sweep_queues_at_most_its_limit_the_oldest_first(self):
        from inbox import services

        sends = self.send_losing_its_task("um", "dois", "três")
        now = timezone.now()
        for minutes, message in zip((3, 5, 4), sends):
            Message.objects.filter(pk=message.pk).update(
                created_at=now - timedelta(minutes=minutes)
            )
        self.assertEqual(services.lost_sends_requeue(limit=2), 2)
        self.assertEqual(self.statuses(), {"um": "pending", "dois": "sent", "três": "sent"})
        self.assertEqual(services.lost_sends_requeue(limit=2), 1)
        self.assertEqual(self.statuses(), {"um": "sent", "dois": "sent", "três": "sent"})

    def test_claimed_held_in_backoff_and_sent_messages_are_left_alone(self):
        from inbox import services

        old = timezone.now() - timedelta(minutes=5)
        kinds = {
            "sending": {"error_title": services.SENDING},
            "unknown": {"error_title": services.UNKNOWN},
            "backoff": {"content": {"type": "text", "delivery": {"attempts": 1, "retry_in": 30}}},
            "sent": {"status": "sent", "wamid": "wamid.sent-already"},
        }
        for text, fields in kinds.items():
            message = Message.objects.create(
                organization=self.org,
                chat=self.other_chat,
                number=self.number,
                direction="out",
                text=text,
                author_type="user",
                **{"status": "pending", **fields},
            )
            Message.objects.filter(pk=message.pk).update(created_at=old)
        self.assertEqual(services.lost_sends_requeue(), 0)
        # Queued, each would have been sent here (the tests' task runner is inline).
        self.assertEqual(
            self.statuses(),
            {"sending": "pending", "unknown": "pending", "backoff": "pending", "sent": "sent"},
        )
