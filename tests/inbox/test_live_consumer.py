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
