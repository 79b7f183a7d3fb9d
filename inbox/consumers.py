import asyncio
import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from accounts.access import Level, level_for
from accounts.services import membership_group
from inbox import presence

logger = logging.getLogger(__name__)


def organization_group(organization) -> str:
    """Everyone in the organization who may see all its chats."""
    return f"org.{organization.code}"


def user_group(user) -> str:
    return f"user.{user.pk}"


_sockets = [0]  # live sockets open in this process, for ``/metrics``


def open_sockets() -> int:
    return _sockets[0]


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """One socket per open tab. Joins only groups the server derives from the checked membership:
    the organization's group (not for agents, who see only their assigned chats), the user's, and
    the membership's own, through which removing the member or changing their role closes the
    socket at once (``member.revoked``): its groups were chosen for the old role."""

    REVOKED = 4403  # close code: the page reloads, and a new socket joins what the role allows

    BURST_WINDOW = 0.04  # seconds; see live_event

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._waiting: list[str] = []  # event texts held for the end of the burst window
        self._last_frame_at = float("-inf")
        self._flush: asyncio.TimerHandle | None = None
        self._revoked = False

    async def connect(self):
        membership = self.scope.get("membership")
        if membership is None:
            await self.close(code=4401)
            return
        self.groups_joined = [user_group(self.scope["user"]), membership_group(membership.pk)]
        if level_for(membership, "chats") > Level.ASSIGNED:
            self.groups_joined.append(organization_group(membership.organization))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        _sockets[0] += 1
        self._counted = True
        await presence.seen(membership.organization_id, membership.user_id)
        await self.send_json({"type": "hello", "organization": str(membership.organization.code)})

    async def disconnect(self, code):
        if getattr(self, "_counted", False):
            _sockets[0] -= 1
            self._counted = False
            membership = self.scope["membership"]
            await presence.gone(membership.organization_id, membership.user_id)
        if self._flush is not None:
            self._flush.cancel()
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def member_revoked(self, event):
        """The membership this socket was opened for was removed or changed: stop forwarding
        anything (events already waiting included) and close."""
        self._revoked = True
        self._waiting.clear()
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = []
        await self.close(code=self.REVOKED)

    async def receive_json(self, content, **kwargs):
        if self._revoked:
            return
        kind = content.get("type")
        if kind in ("ping", "presence"):  # the page says it is there (every 10 s)
            membership = self.scope["membership"]
            await presence.seen(membership.organization_id, membership.user_id)
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "presence" and content.get("state") in ("viewing", "typing", "left"):
            chat_code = str(content.get("chat", ""))[:36]
            seq = await self.announce_presence(chat_code, content["state"])
            if seq is not None and content["state"] == "viewing":
                # The heartbeat (every 10 s while a chat is open): the chat's latest event number,
                # straight on this socket. Events lost while the channel layer was down leave the
                # page behind it, and the page resyncs without waiting for a reconnect.
                await self.send_json({"type": "chat.seq", "chat": chat_code, "seq": seq})

    async def announce_presence(self, chat_code: str, state: str) -> int | None:
        """Tell teammates who is looking at or typing in a chat; only for chats this member
        may see, and only to the groups that may see it. Returns the chat's latest live-event
        number (None when the member may not see it)."""
        found = await database_sync_to_async(self._groups_for_chat)(chat_code)
        if found is None:
            return None
        groups, seq = found
        event = {
            "type": "live.event",
            "data": {
                "type": "presence",
                "chat": chat_code,
                "state": state,
                "user": self.scope["user"].pk,
                "name": self.scope["user"].display_name,
            },
        }
        try:
            for group in groups:
                await self.channel_layer.group_send(group, event)
        except Exception as error:  # the channel layer is down: presence is best effort
            logger.warning("Presence not announced: %r", error)
        return seq

    def _groups_for_chat(self, chat_code: str) -> tuple[list[str], int] | None:
        from inbox.access import get_chat_for_member

        try:
            chat = get_chat_for_member(self.scope["membership"], chat_code)
        except Http404:
            return None
        groups = [organization_group(chat.organization)]
        if chat.assignee_id:
            groups.append(user_group(chat.assignee))
        return groups, chat.seq

    async def dispatch(self, message):
        """Forward live events straight away. Channels' own dispatch first closes stale database
        connections on a worker thread, for every message; a forwarded event never touches the
        database, and at thousands of events a second per process that thread hop was half of
        the server's work. Everything else goes through Channels as usual."""
        if message["type"] == "live.event":
            if not self._revoked:
                await self.live_event(message)
        else:
            await super().dispatch(message)

    async def live_event(self, event):
        """Forward a published event (``{"type": "live.event", "data": {...}}``) to the browser,
        as the JSON text ``realtime.publish`` encoded once for all sockets.

        An event goes out at once unless this socket sent a frame less than ``BURST_WINDOW``
        ago; then it waits for the end of that window, and everything that waited goes out
        in order as one frame, a JSON array. A quiet chat is never delayed, and a busy one
        costs each socket at most 1 / ``BURST_WINDOW`` frames a second, whatever the rate.
        Events published together arrive together (``{"texts": [...]}``, see
        ``realtime._coalesced``) and are such a burst already."""
        texts = event.get("texts") or [
            event.get("text") or json.dumps(event["data"], separators=(",", ":"))
        ]
        loop = asyncio.get_running_loop()
        due = self._last_frame_at + self.BURST_WINDOW
        if not self._waiting and loop.time() >= due:
            await self._send_frame(texts)
            return
        self._waiting.extend(texts)
        if self._flush is None:
            self._flush = loop.call_at(due, lambda: loop.create_task(self._send_waiting()))

    async def _send_waiting(self):
        self._flush = None
        texts, self._waiting[:] = self._waiting[:], []
        if texts:
            await self._send_frame(texts)

    async def _send_frame(self, texts: list[str]):
        """One event as itself, several as one JSON array (``live.js`` reads both)."""
        text = texts[0] if len(texts) == 1 else f"[{','.join(texts)}]"
        self._last_frame_at = asyncio.get_running_loop().time()
        send = self.scope.get("server_send", self.base_send)  # see config.asgi.with_server_send
        await send({"type": "websocket.send", "text": text})
