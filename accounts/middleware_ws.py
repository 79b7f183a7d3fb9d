"""Resolve the current organization once per websocket connection (the HTTP twin is
``middleware.TenantMiddleware``): consumers read ``scope["organization"]`` and
``scope["membership"]`` and never trust a client-supplied organization."""

from channels.db import database_sync_to_async

from accounts import selectors
from accounts.middleware import SESSION_KEY


class TenantWebsocketMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        scope = dict(scope, organization=None, membership=None)
        user = scope.get("user")
        if user is not None and user.is_authenticated:
            code = scope["session"].get(SESSION_KEY)
            membership = await database_sync_to_async(selectors.membership_for_session)(user, code)
            if membership is not None:
                scope["membership"] = membership
                scope["organization"] = membership.organization
        return await self.app(scope, receive, send)
