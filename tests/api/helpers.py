"""Shared setup for API tests: keys for Alice's clinic (and Bob's), and a real sandbox."""

import json
from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from accounts.api_auth import api_key_create
from accounts.models import API_RESOURCES
from inbox.models import Chat
from integrations import services as channel
from integrations.whatsapp.sandbox import SandboxServer
from tests.base import BaseTestCase

ALL_SCOPES = [f"{r}:{a}" for r in API_RESOURCES for a in ("read", "write")]


def key_for(organization, scopes=None, name="Integration"):
    _key, secret = api_key_create(
        organization=organization,
        name=name,
        scopes=ALL_SCOPES if scopes is None else scopes,
        created_by=None,
    )
    return secret


class ApiTestCase(BaseTestCase):
    """Alice's clinic with a full-scope key; requests go through the real URL conf."""

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.secret = key_for(cls.org)
        cls.foreign_secret = key_for(cls.other_org, name="Bob's")

    def api(self, method, path, data=None, *, secret=None, **extra):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret or self.secret}", **extra}
        call = getattr(self.client, method)
        if method == "get":
            return call(path, data or {}, **headers)
        with self.captureOnCommitCallbacks(execute=True):
            return call(path, json.dumps(data or {}), content_type="application/json", **headers)

    def open_window(self, chat):
        Chat.objects.filter(pk=chat.pk).update(
            window_expires_at=timezone.now() + timedelta(hours=3)
        )
        chat.refresh_from_db()


class SandboxMixin:
    """A real sandbox over HTTP for sends (same client code as production)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sandbox = SandboxServer().start()
        cls._sandbox_settings = override_settings(
            SANDBOX_URL=cls.sandbox.url, SANDBOX_WEBHOOK_BASE_URL="http://127.0.0.1:9"
        )
        cls._sandbox_settings.enable()

    @classmethod
    def tearDownClass(cls):
        cls._sandbox_settings.disable()
        cls.sandbox.stop()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        channel._registered_with_sandbox.clear()
