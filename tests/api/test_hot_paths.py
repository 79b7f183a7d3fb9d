"""The integrator API's hot path (issue 21): what listing chats and sending a message cost in
statements, and the lean handler that serves API-key calls in production (``config.asgi``).

Speed itself is measured by ``bench/api_load.py``; these tests pin the statement counts and the
behaviour the speed must not change.
"""

import asyncio
import json
import threading
import time
import uuid
from contextlib import contextmanager
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection, transaction
from django.test import TransactionTestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_q.signing import SignedPackage

from accounts.models import Membership, Role
from config import asgi
from inbox.consumers import organization_group
from inbox.models import Chat, Message
from kernel import tasks
from kernel.pubsub import PubSubLayer
from tests.api.helpers import ApiTestCase, SandboxMixin, key_for
from tests.base import make_chat, make_org, make_user
from tests.inbox.test_multiprocess_fanout import REDIS_URL, redis_available


class StatementTests(SandboxMixin, ApiTestCase):
    def test_a_page_of_chats_is_one_statement_once_the_key_is_remembered(self):
        for index in range(20):
            make_chat(self.org, self.number, f"55119000002{index:02d}", f"Customer {index}")
        self.api("get", reverse("api_chats"))  # the key is looked up, then remembered
        with self.assertNumQueries(1):
            response = self.api("get", reverse("api_chats"), {"limit": 50})
        self.assertEqual(response.status_code, 200)
        self.assertEqual(len(response.json()["results"]), 22)

    def test_the_first_page_shows_each_member_what_they_may_see(self):
        """The unfiltered first page is compiled once per role: an agent (signed in) still
        sees only their own chats, a key every chat, and each a second time the same."""
        self.client.force_login(self.agent)
        for _ in range(2):
            rows = self.client.get(reverse("api_chats")).json()["results"]
            self.assertEqual([r["id"] for r in rows], [str(self.agent_chat.code)])
            keyed = self.api("get", reverse("api_chats"), {"limit": 1}).json()
            self.assertEqual(len(keyed["results"]), 1)
            rest = self.api("get", keyed["next"]).json()
            every = {r["id"] for r in keyed["results"] + rest["results"]}
            self.assertEqual(every, {str(self.agent_chat.code), str(self.other_chat.code)})

    def test_a_listed_chat_reads_as_the_chat_itself(self):
        """The list builds its rows from columns, the detail from the model: the same JSON."""
        Chat.objects.filter(pk=self.agent_chat.pk).update(tags=["vip", "billing"])
        rows = self.api("get", reverse("api_chats"), {"limit": 50}).json()["results"]
        for chat in (self.agent_chat, self.other_chat):
            detail = self.api("get", reverse("api_chat", args=[chat.code])).json()
            self.assertEqual(next(r for r in rows if r["id"] == str(chat.code)), detail)
        listed = next(r for r in rows if r["id"] == str(self.agent_chat.code))
        self.assertEqual(listed["assignee"], {"email": self.agent.email, "name": "Ana Agent"})
        self.assertTrue(listed["created_at"].endswith("Z"))

    def test_a_listed_chat_with_awkward_text_and_empty_fields_reads_as_the_chat_itself(self):
        """PostgreSQL writes each row's JSON as text: quotes, backslashes, line breaks,
        control characters and accents escaped as JSON, absent values null, a name that falls
        back to the profile name, a timestamp with microseconds and one without."""
        chat = make_chat(self.org, self.number, "5511900000777", "", text='Ela disse "oi"\\\n\tà')
        chat.contact.profile_name = 'Zé "Aspas" \\ Ação\u0007'
        chat.contact.save(update_fields=["profile_name"])
        Chat.objects.filter(pk=chat.pk).update(
            window_expires_at=None,
            last_message_at=chat.created_at.replace(microsecond=0),
            tags=['a"b', "ç"],
        )
        Chat.objects.filter(pk=self.other_chat.pk).update(
            last_message_at=None, last_message_preview=""
        )
        rows = self.api("get", reverse("api_chats"), {"limit": 50}).json()["results"]
        for each in (chat, self.other_chat):
            detail = self.api("get", reverse("api_chat", args=[each.code])).json()
            self.assertEqual(next(r for r in rows if r["id"] == str(each.code)), detail)
        listed = next(r for r in rows if r["id"] == str(chat.code))
        self.assertEqual(listed["contact"]["name"], 'Zé "Aspas" \\ Ação\u0007')
        self.assertEqual(listed["last_message_preview"], 'Ela disse "oi"\\\n\tà')
        self.assertIsNone(listed["window_expires_at"])
        self.assertRegex(listed["last_message_at"], r"T\d\d:\d\d:\d\dZ$")  # no fraction

    def test_sending_a_message_is_three_statements_and_answers_what_was_stored(self):
        """Chat lookup, then in one transaction the message with the chat's preview and
        live-event number (one statement on PostgreSQL) and the Idempotency-Key with its
        answer: the 201 is built from the stored row, not read back."""
        self.open_window(self.other_chat)
        url = reverse("api_chat_messages", args=[self.other_chat.code])
        body = {"type": "text", "text": {"body": "Consulta confirmada"}}
        self.api("get", reverse("api_chats"))  # the key is remembered
        key = str(uuid.uuid4())
        with (
            CaptureQueriesContext(connection) as queries,
            self.captureOnCommitCallbacks(execute=False) as callbacks,
        ):
            response = self.client.post(
                url,
                json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {self.secret}",
                HTTP_IDEMPOTENCY_KEY=key,
            )
        self.assertEqual(response.status_code, 201, response.content)
        statements = [q["sql"] for q in queries.captured_queries]
        writes = [s for s in statements if not s.startswith(("SAVEPOINT", "RELEASE"))]
        self.assertLessEqual(
            len(writes), 3 if connection.vendor == "postgresql" else 4, "\n".join(writes)
        )
        # Stored before the answer; its send is queued for after the commit.
        message = Message.objects.get(code=response.json()["id"])
        self.assertEqual(message.status, Message.Status.PENDING)
        self.assertTrue(callbacks)
        for callback in callbacks:
            callback()
        listed = self.api("get", url).json()["results"][0]
        answered = response.json()
        self.assertEqual(listed["id"], answered["id"])
        for field in ("chat", "direction", "type", "text", "content", "author_type", "timestamp"):
            self.assertEqual(listed[field], answered[field], field)
        self.assertEqual(answered["media"], [])
        self.assertEqual(answered["status"], "pending")
        # A retry replays the first answer and sends nothing again.
        replay = self.api("post", url, body, HTTP_IDEMPOTENCY_KEY=key)
        self.assertEqual(replay.headers["Idempotent-Replayed"], "true")
        self.assertEqual(replay.json(), answered)
        self.assertEqual(Message.objects.filter(chat=self.other_chat, direction="out").count(), 1)


@contextmanager
def on_redis_broker(test):
    """django-q2's runner with the default queue on the real Redis broker, emptied before and
    after ``test``; yields the broker."""
    cluster = tasks.cluster_name("default")
    broker = tasks.OwnConnectionRedis(cluster)  # what tasks._broker builds for Redis
    broker.purge_queue()
    test.addCleanup(broker.purge_queue)
    with (
        override_settings(TASK_RUNNER="django_q"),
        mock.patch.dict(tasks._brokers, {cluster: broker}),
    ):
        yield broker


def asgi_call(method, path, *, headers=(), body=b"", query=b""):
    """One HTTP request through the production ASGI application."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            *([(b"content-length", str(len(body)).encode())] if body else []),
            *headers,
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    answer = {"body": b""}

    async def run():
        delivered = False

        async def receive():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)

        async def send(message):
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = [(k.lower(), v) for k, v in message["headers"]]
            else:
                answer["body"] += message.get("body", b"")

        await asgi.application(scope, receive, send)

    async_to_sync(run)()
    return answer


class ApiKeyHandlerTests(TransactionTestCase):
    """Through ``config.asgi.application``: API-key calls take the lean handler, everything
    else the full stack, and both answer the same API."""

    def setUp(self):
        self.org, self.number = make_org("Clínica Alice", "clinica-alice", "111")
        self.chat = make_chat(self.org, self.number, "5511900000001", "Customer")
        self.secret = key_for(self.org)

    def send_by_key(self, idempotency_key: bytes) -> dict:
        """A text sent to ``self.chat`` with the key, through the production application."""
        return asgi_call(
            "POST",
            f"/api/v1/chats/{self.chat.code}/messages/",
            headers=[
                (b"authorization", f"Bearer {self.secret}".encode()),
                (b"content-type", b"application/json"),
                (b"idempotency-key", idempotency_key),
            ],
            body=b'{"type": "text", "text": {"body": "Ola"}}',
        )

    def test_routing_takes_only_bearer_calls_under_api_to_the_key_handler(self):
        taken = []

        def app(name):
            async def application(scope, receive, send):
                taken.append(name)

            return application

        dispatch = asgi.route_api_keys(app("key"), app("full"))
        cases = [
            ("/api/v1/chats/", [(b"authorization", b"Bearer pfk_x")], "key"),
            ("/api/v1/chats/", [(b"authorization", b"Basic eDp5")], "full"),
            ("/api/v1/chats/", [(b"cookie", b"sessionid=x")], "full"),
            ("/inbox/", [(b"authorization", b"Bearer pfk_x")], "full"),
        ]
        for path, headers, expected in cases:
            taken.clear()
            async_to_sync(dispatch)({"type": "http", "path": path, "headers": headers}, None, None)
            self.assertEqual(taken, [expected], path)

    def test_a_key_call_answers_with_the_api_headers_and_no_session(self):
        auth = (b"authorization", f"Bearer {self.secret}".encode())
        answer = asgi_call("GET", "/api/v1/chats/", headers=[auth], query=b"limit=5")
        self.assertEqual(answer["status"], 200, answer["body"])
        headers = dict(answer["headers"])
        self.assertIn(b"x-request-id", headers)
        self.assertIn(b"server-timing", headers)
        self.assertEqual(headers[b"x-content-type-options"], b"nosniff")
        self.assertNotIn(b"set-cookie", headers)
        rows = json.loads(answer["body"])["results"]
        self.assertEqual([r["id"] for r in rows], [str(self.chat.code)])

    def test_a_key_call_speaks_the_requested_language(self):
        answer = asgi_call(
            "GET",
            "/api/v1/chats/",
            headers=[(b"authorization", b"Bearer pfk_nope"), (b"accept-language", b"en")],
        )
        self.assertEqual(answer["status"], 401)
        self.assertEqual(
            json.loads(answer["body"])["error"]["message"], "Invalid or revoked API key."
        )

    def test_a_key_call_sends_a_message_stored_before_the_answer(self):
        Chat.objects.filter(pk=self.chat.pk).update(
            window_expires_at=self.chat.created_at.replace(year=2999)
        )
        answer = self.send_by_key(b"k-1")
        self.assertEqual(answer["status"], 201, answer["body"])
        self.assertTrue(Message.objects.filter(code=json.loads(answer["body"])["id"]).exists())

    @pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL)")
    def test_a_key_calls_send_is_queued_on_the_broker_with_its_request_id(self):
        # The handler answers first and queues the delivery after (tasks.held_until_answered):
        # the task still reaches the broker, once, with the request's id for its log lines.
        Chat.objects.filter(pk=self.chat.pk).update(
            window_expires_at=self.chat.created_at.replace(year=2999)
        )
        with on_redis_broker(self) as broker:
            answer = self.send_by_key(b"k-queued")
            self.assertEqual(answer["status"], 201, answer["body"])
            deadline = time.monotonic() + 5
            while broker.queue_size() == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.1)  # nothing else follows
            self.assertEqual(broker.queue_size(), 1)
            package = SignedPackage.loads(broker.dequeue()[0][1])
        message = Message.objects.get(code=json.loads(answer["body"])["id"])
        self.assertEqual(package["func"], "inbox.tasks.deliver_message")
        self.assertEqual(package["args"], (message.pk,))
        self.assertEqual(
            package["porfin_context"]["request_id"],
            dict(answer["headers"])[b"x-request-id"].decode(),
        )
        self.assertEqual(message.status, Message.Status.PENDING)  # the worker delivers it

    @pytest.mark.skipif(not redis_available(), reason="needs Redis for channels-redis")
    def test_a_key_calls_send_reaches_the_live_inbox(self):
        # The production layer: the handler publishes the send's live event from the request's
        # thread once the answer is on its way (realtime.held_until_answered).
        from channels.layers import channel_layers

        layer = PubSubLayer(hosts=[REDIS_URL], prefix=f"porfin-test-{uuid.uuid4().hex[:8]}")
        real = channel_layers.backends.get("default") or channel_layers["default"]
        channel_layers.backends["default"] = layer
        self.addCleanup(channel_layers.backends.__setitem__, "default", real)
        loop = asyncio.new_event_loop()  # an inbox's websocket process, subscribed
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()

        def on_loop(coroutine):
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result(10)

        def stop():
            on_loop(layer.flush())
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)

        self.addCleanup(stop)
        channel = on_loop(layer.new_channel())
        on_loop(layer.group_add(organization_group(self.org), channel))
        Chat.objects.filter(pk=self.chat.pk).update(
            window_expires_at=self.chat.created_at.replace(year=2999)
        )

        answer = self.send_by_key(b"k-live")
        self.assertEqual(answer["status"], 201, answer["body"])
        event = on_loop(asyncio.wait_for(layer.receive(channel), 5))
        # The send's event first (the tests' inline runner also tries the delivery at once,
        # and its events may travel with it, coalesced).
        data = json.loads(event["texts"][0] if "texts" in event else event["text"])
        self.assertEqual(data["type"], "message.new")
        self.assertEqual(data["chat"], str(self.chat.code))
        self.assertEqual(data["message"], json.loads(answer["body"])["id"])

    def test_a_signed_in_member_still_uses_the_api_through_the_full_stack(self):
        user = make_user("admin@alice.test", "Alice Admin")
        Membership.objects.create(user=user, organization=self.org, role=Role.ADMIN)
        self.client.force_login(user)
        cookie = f"sessionid={self.client.cookies['sessionid'].value}".encode()
        answer = asgi_call("GET", "/api/v1/chats/", headers=[(b"cookie", cookie)])
        self.assertEqual(answer["status"], 200, answer["body"])
        self.assertEqual(len(json.loads(answer["body"])["results"]), 1)


class PlainSendBodyTests(TransactionTestCase):
    """``MessageSendIn.plain``, the send's validation without DRF, answers exactly what the
    serializer would for the bodies it takes, and leaves every other body to the serializer."""

    def test_it_agrees_with_the_serializer(self):
        from inbox.api import MessageSendIn

        taken = [
            {"type": "text", "text": {"body": "Oi"}},
            {"text": {"body": "Oi", "preview_url": True}, "type": "text"},
            {"type": "template", "template": {"name": "hello", "language": {"code": "pt_BR"}}},
            {"type": "contacts", "contacts": [{"name": {"formatted_name": "Ana"}}]},
            {"type": "image", "image": {"link": "https://example.com/a.png"}},
        ]
        for body in taken:
            serializer = MessageSendIn(data=body)
            self.assertTrue(serializer.is_valid(), serializer.errors)
            self.assertEqual(MessageSendIn.plain(body), dict(serializer.validated_data), body)
        left = [
            {"type": "text"},  # no object
            {"type": "text", "image": {"link": "x"}},  # another type's object
            {"type": "text", "text": "Oi"},  # not an object
            {"type": "contacts", "contacts": {"name": "Ana"}},  # not a list
            {"type": "reaction", "reaction": {"emoji": "👍"}},  # not a send type
            {"type": 1, "text": {"body": "Oi"}},
            {"type": "text", "text": {"body": "Oi"}, "extra": 1},  # an unknown field
            {"type": "text", "text": {"body": "Oi"}, "reply_to": str(uuid.uuid4())},
            ["type", "text"],
        ]
        for body in left:
            self.assertIsNone(MessageSendIn.plain(body), body)
        self.assertFalse(MessageSendIn(data={"type": "text", "text": "Oi"}).is_valid())

    def test_a_bad_body_still_gets_the_serializers_errors(self):
        org, number = make_org("Clínica Plain", "clinica-plain", "555")
        chat = make_chat(org, number, "5511900000055", "Bia")
        secret = key_for(org)
        url = reverse("api_chat_messages", args=[chat.code])
        response = self.client.post(
            url,
            json.dumps({"type": "text", "text": "Oi"}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )
        self.assertEqual(response.status_code, 400, response.content)
        self.assertIn("text", response.json()["error"]["details"])


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL)")
class HeldTasksTests(TransactionTestCase):
    """``kernel.tasks.held_until_answered``: what commits queue inside waits for
    ``queue_held``; nothing is lost or reordered, and nothing outside is held."""

    def test_tasks_committed_inside_are_queued_by_queue_held_in_order(self):
        with on_redis_broker(self) as broker:
            with tasks.held_until_answered() as held:
                with transaction.atomic():
                    tasks.enqueue("inbox.tasks.deliver_message", 1)
                    tasks.enqueue("inbox.tasks.deliver_message", 2)
                self.assertEqual(broker.queue_size(), 0)  # committed, not queued yet
            with transaction.atomic():
                tasks.enqueue("inbox.tasks.deliver_message", 3)  # outside: at its commit
            self.assertEqual(broker.queue_size(), 1)
            self.assertEqual(len(held), 2)
            tasks.queue_held(held)
            queued = [SignedPackage.loads(broker.dequeue()[0][1])["args"] for _ in range(3)]
        self.assertEqual(queued, [(3,), (1,), (2,)])

    def test_a_rolled_back_task_is_never_held_nor_queued(self):
        with on_redis_broker(self) as broker, tasks.held_until_answered() as held:
            try:
                with transaction.atomic():
                    tasks.enqueue("inbox.tasks.deliver_message", 1)
                    raise RuntimeError("the work failed")
            except RuntimeError:
                pass
        self.assertEqual(held, [])
        self.assertEqual(broker.queue_size(), 0)

    def test_other_runners_are_not_held(self):
        with tasks.held_until_answered() as held, transaction.atomic():
            tasks.enqueue("tests.api.test_hot_paths.remember", 7)
        self.assertEqual(held, [])
        self.assertEqual(REMEMBERED, [7])  # the tests' inline runner ran it at the commit


REMEMBERED: list = []


def remember(value):
    REMEMBERED.append(value)
