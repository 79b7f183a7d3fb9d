from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.access import Level, level_for


def organization_group(organization) -> str:
    """Everyone in the organization who may see all its chats."""
    return f"org.{organization.code}"


def user_group(user) -> str:
    return f"user.{user.pk}"


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """One socket per open tab. Joins only groups the server derives from the checked membership:
    the organization's group (not for agents, who see only their assigned chats) and the user's."""

    async def connect(self):
        membership = self.scope.get("membership")
        if membership is None:
            await self.close(code=4401)
            return
        self.groups_joined = [user_group(self.scope["user"])]
        if level_for(membership, "chats") > Level.ASSIGNED:
            self.groups_joined.append(organization_group(membership.organization))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "organization": str(membership.organization.code)})

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def live_event(self, event):
        """Forward a published event (``{"type": "live.event", "data": {...}}``) to the browser."""
        await self.send_json(event["data"])
