import asyncio

from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client, TransactionTestCase
from django.urls import reverse

from accounts.models import Membership, Organization, Role, User
from config.asgi import application
from inbox.consumers import organization_group, user_group
from kernel import realtime


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def connect(cookie: bytes | None):
    headers = [(b"origin", b"http://testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/live/", headers=headers)


class LiveConsumerTests(TransactionTestCase):
    def setUp(self):
        self.org = Organization.objects.create(name="A", slug="a")
        self.other = Organization.objects.create(name="B", slug="b")
        self.operator = User.objects.create_user(email="op@a.test", password="x")
        self.agent = User.objects.create_user(email="agent@a.test", password="x")
        self.stranger = User.objects.create_user(email="s@b.test", password="x")
        Membership.objects.create(user=self.operator, organization=self.org, role=Role.OPERATOR)
        Membership.objects.create(user=self.agent, organization=self.org, role=Role.AGENT)
        Membership.objects.create(user=self.stranger, organization=self.other, role=Role.ADMIN)

    def test_anonymous_sockets_are_refused(self):
        async def scenario():
            communicator = connect(None)
            connected, code = await communicator.connect()
            self.assertFalse(connected)
            await communicator.disconnect()

        async_to_sync(scenario)()

    def test_events_reach_only_the_organizations_members(self):
        cookies = [session_cookie(u) for u in (self.operator, self.agent, self.stranger)]

        async def scenario():
            sockets = [connect(c) for c in cookies]
            for socket in sockets:
                connected, _ = await socket.connect()
                self.assertTrue(connected)
                hello = await socket.receive_json_from()
                self.assertEqual(hello["type"], "hello")
            operator, agent, stranger = sockets
            # Published from a worker thread, as a task would.
            await sync_to_async(realtime.publish)(
                organization_group(self.org),
                {"type": "live.event", "data": {"type": "chat.updated"}},
            )
            self.assertEqual((await operator.receive_json_from(timeout=3))["type"], "chat.updated")
            # Agents see only their own chats, so they are not in the organization group.
            self.assertTrue(await agent.receive_nothing(timeout=0.3))
            self.assertTrue(await stranger.receive_nothing(timeout=0.3))
            await sync_to_async(realtime.publish)(
                user_group(self.agent), {"type": "live.event", "data": {"type": "chat.assigned"}}
            )
            self.assertEqual((await agent.receive_json_from(timeout=3))["type"], "chat.assigned")
            self.assertTrue(await stranger.receive_nothing(timeout=0.3))
            for socket in sockets:
                await socket.disconnect()
            await asyncio.sleep(0)

        async_to_sync(scenario)()

    def test_events_published_together_reach_the_socket_as_one_frame_in_order(self):
        """A batch's events travel as one channel-layer message (``realtime._coalesced``)."""
        from channels.layers import get_channel_layer

        cookie = session_cookie(self.operator)

        async def scenario():
            socket = connect(cookie)
            await socket.connect()
            await socket.receive_json_from()  # hello
            texts = [f'{{"type":"message.new","n":{n}}}' for n in range(3)]
            await get_channel_layer().group_send(
                organization_group(self.org), {"type": "live.event", "texts": texts}
            )
            frame = await socket.receive_json_from(timeout=3)
            self.assertEqual([event["n"] for event in frame], [0, 1, 2])
            self.assertTrue(await socket.receive_nothing(timeout=0.2))
            await socket.disconnect()

        async_to_sync(scenario)()

    def test_a_burst_of_events_arrives_complete_and_in_order_in_fewer_frames(self):
        cookie = session_cookie(self.operator)

        async def scenario():
            socket = connect(cookie)
            await socket.connect()
            await socket.receive_json_from()  # hello
            for index in range(30):
                await sync_to_async(realtime.publish)(
                    organization_group(self.org),
                    {"type": "live.event", "data": {"type": "message.new", "n": index}},
                )
            received, frames = [], 0
            while len(received) < 30:
                data = await socket.receive_json_from(timeout=3)
                frames += 1
                received.extend(data if isinstance(data, list) else [data])
            self.assertEqual([event["n"] for event in received], list(range(30)))
            self.assertLess(frames, 30)
            self.assertEqual(received[0], {"type": "message.new", "n": 0})  # the first at once
            self.assertTrue(await socket.receive_nothing(timeout=0.2))
            await socket.disconnect()

        async_to_sync(scenario)()


class MembershipChangeTests(TransactionTestCase):
    """Removing a member or changing their role closes their open sockets at once: the groups
    a socket joined were chosen for the old role."""

    def setUp(self):
        self.org = Organization.objects.create(name="A", slug="a")
        self.admin = User.objects.create_user(email="admin@a.test", password="x")
        self.operator = User.objects.create_user(email="op@a.test", password="x")
        Membership.objects.create(user=self.admin, organization=self.org, role=Role.ADMIN)
        self.membership = Membership.objects.create(
            user=self.operator, organization=self.org, role=Role.OPERATOR
        )
        self.admin_client = Client()
        self.admin_client.force_login(self.admin)

    async def open_socket(self, cookie):
        socket = connect(cookie)
        connected, _ = await socket.connect()
        self.assertTrue(connected)
        self.assertEqual((await socket.receive_json_from())["type"], "hello")
        return socket

    async def assert_closed_for_revocation(self, socket):
        self.assertEqual(
            await socket.receive_output(timeout=3), {"type": "websocket.close", "code": 4403}
        )
        await sync_to_async(realtime.publish)(
            organization_group(self.org), {"type": "live.event", "data": {"type": "chat.new"}}
        )
        self.assertTrue(await socket.receive_nothing(timeout=0.3))
        await socket.disconnect()

    def test_a_removed_members_socket_closes_and_cannot_reopen(self):
        cookie = session_cookie(self.operator)
        url = reverse("member_remove", args=[self.membership.pk])

        async def scenario():
            socket = await self.open_socket(cookie)
            response = await sync_to_async(self.admin_client.post)(url)
            self.assertEqual(response.status_code, 302)
            await self.assert_closed_for_revocation(socket)
            again = connect(cookie)
            connected, _ = await again.connect()
            self.assertFalse(connected)  # no organization left: refused (4401)
            await again.disconnect()

        async_to_sync(scenario)()

    def test_a_role_change_closes_the_socket_and_the_next_one_follows_the_new_role(self):
        cookie = session_cookie(self.operator)
        url = reverse("member_role", args=[self.membership.pk])

        async def scenario():
            socket = await self.open_socket(cookie)
            response = await sync_to_async(self.admin_client.post)(url, {"role": Role.AGENT})
            self.assertEqual(response.status_code, 302)
            await self.assert_closed_for_revocation(socket)
            # Reopened as an agent: no longer in the organization's group.
            socket = await self.open_socket(cookie)
            await sync_to_async(realtime.publish)(
                organization_group(self.org), {"type": "live.event", "data": {"type": "x"}}
            )
            self.assertTrue(await socket.receive_nothing(timeout=0.3))
            await socket.disconnect()
            await asyncio.sleep(0)

        async_to_sync(scenario)()

    def test_the_members_next_page_already_follows_the_change(self):
        """Sessions need no closing: every request reads the membership again."""
        operator = Client()
        operator.force_login(self.operator)
        self.assertEqual(operator.get(reverse("campaign_contact_list")).status_code, 200)
        url = reverse("member_role", args=[self.membership.pk])
        self.admin_client.post(url, {"role": Role.AGENT})
        self.assertEqual(operator.get(reverse("campaign_contact_list")).status_code, 403)
        self.assertEqual(operator.get(reverse("chat_list")).status_code, 200)
        self.admin_client.post(reverse("member_remove", args=[self.membership.pk]))
        self.assertNotEqual(operator.get(reverse("chat_list")).status_code, 200)


class LiveGapTests(TransactionTestCase):
    """Events published while the channel layer is down never reach the page; the heartbeat
    (the open chat's latest event number, on every 10-second "viewing" message) shows the page
    it is behind, so it resyncs without a reconnect (``static/js/inbox.js``)."""

    def setUp(self):
        from tests.base import make_chat, make_org

        self.org, number = make_org("Gap", "gap", "4242")
        self.operator = User.objects.create_user(email="op@gap.test", password="x")
        Membership.objects.create(user=self.operator, organization=self.org, role=Role.OPERATOR)
        self.chat = make_chat(self.org, number, "5511977770000", "Cliente")

    def test_the_heartbeat_shows_the_page_an_event_the_layer_lost(self):
        from channels.layers import channel_layers

        from inbox import services
        from kernel.pubsub import PubSubLayer

        cookie = session_cookie(self.operator)
        code = str(self.chat.code)

        def publish_while_the_layer_is_down():
            down = PubSubLayer(hosts=["redis://127.0.0.1:1/0"])
            real = channel_layers.backends.get("default") or channel_layers["default"]
            channel_layers.backends["default"] = down
            try:
                services.publish_chat_event(self.chat, "message.new", message="lost")
                realtime.flush(timeout=5)
            finally:
                channel_layers.backends["default"] = real

        async def heartbeat(socket):
            await socket.send_json_to({"type": "presence", "chat": code, "state": "viewing"})
            while True:  # the socket's own presence event may come first
                frame = await socket.receive_json_from(timeout=3)
                if frame.get("type") == "chat.seq":
                    return frame

        async def scenario():
            socket = connect(cookie)
            connected, _ = await socket.connect()
            self.assertTrue(connected)
            await socket.receive_json_from()  # hello
            self.assertEqual(await heartbeat(socket), {"type": "chat.seq", "chat": code, "seq": 0})
            await sync_to_async(publish_while_the_layer_is_down)()
            frames = []
            while not await socket.receive_nothing(timeout=0.5):
                frames.append(await socket.receive_json_from())
            self.assertNotIn("message.new", [f.get("type") for f in frames])  # it was lost
            # The page saw event 0; the heartbeat says 1: it is behind, and resyncs.
            self.assertEqual(await heartbeat(socket), {"type": "chat.seq", "chat": code, "seq": 1})
            await socket.disconnect()

        async_to_sync(scenario)()
