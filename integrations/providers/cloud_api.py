"""Meta's WhatsApp Cloud API as a channel provider: ``CloudAPIClient`` for the calls, the
``X-Hub-Signature-256`` check and the Cloud API parser for webhooks."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import cached_property
from typing import Any

from django.conf import settings

from integrations.providers.base import Capabilities, ChannelProvider, MediaInfo, WebhookVerdict
from integrations.providers.registry import register
from integrations.whatsapp import payloads, signature
from integrations.whatsapp.client import CloudAPIClient


@register("cloud_api")
class CloudAPIProvider(ChannelProvider):
    """A number connected to Meta's Cloud API (its own access token, app secret and WABA)."""

    capabilities = Capabilities(
        service_window=timedelta(hours=24),
        templates=True,
        interactive=True,
        reactions=True,
        read_receipts=True,
        media=True,
        # Meta's ceiling is the number's throughput tier (80/s by default, up to 1,000/s), kept
        # on the number; daily limits are per tier too, enforced by Meta with errors we map.
        max_per_second=None,
        daily_cap=None,
    )

    def base_url(self) -> str:
        return settings.WHATSAPP_GRAPH_BASE_URL

    def prepare(self) -> None:
        """Anything the API needs before this number's first call (nothing, for Meta)."""

    @cached_property
    def client(self) -> CloudAPIClient:
        self.prepare()
        client = CloudAPIClient(
            base_url=self.base_url(),
            api_version=settings.WHATSAPP_GRAPH_API_VERSION,
            phone_number_id=self.number.phone_number_id,
            access_token=self.number.access_token,
            waba_id=self.number.waba_id,
            timeout=(3.05, settings.WHATSAPP_READ_TIMEOUT_SECONDS),
        )
        if not self.retry_inline:
            client.max_retries = 0
        return client

    def send(
        self,
        *,
        to: str,
        message_type: str,
        content: Any,
        reply_to: str | None = None,
        callback_data: str | None = None,
    ) -> str:
        return self.client.send_message(
            to, message_type, content, reply_to=reply_to, callback_data=callback_data
        )

    def mark_read(self, message_id: str, *, to: str = "") -> None:
        self.client.mark_read(message_id)

    def upload_media(self, *, data: bytes, mime_type: str, filename: str) -> str:
        return self.client.upload_media(data, mime_type, filename)

    def download_media(
        self,
        media_id: str,
        *,
        max_bytes: int,
        check: Callable[[MediaInfo], None] | None = None,
    ) -> tuple[MediaInfo, bytes]:
        """The media's URL, type, size and hash first (``GET /{media-id}``), then its bytes: a
        file ``check`` refuses is never downloaded."""
        meta = self.client.get_media(media_id)
        info = MediaInfo(
            id=meta.id, mime_type=meta.mime_type, sha256=meta.sha256, file_size=meta.file_size
        )
        if check is not None:
            check(info)
        return info, self.client.download_media(meta.url, max_bytes=max_bytes)

    def list_templates(self) -> list[dict]:
        return self.client.list_templates()

    def verify_webhook(self, *, headers: Mapping[str, str], body: bytes) -> WebhookVerdict:
        """``X-Hub-Signature-256``: HMAC-SHA256 of the exact bytes with the app secret."""
        header = headers.get("x-hub-signature-256")
        if not header:
            return WebhookVerdict.UNSIGNED
        if signature.verify(body, header, self.number.app_secret):
            return WebhookVerdict.AUTHENTIC
        return WebhookVerdict.FORGED

    def answer_handshake(self, params: Mapping[str, str]) -> str | None:
        """Meta's subscription check: ``hub.mode=subscribe`` with the number's verify token."""
        token = params.get("hub.verify_token", "")
        if params.get("hub.mode") == "subscribe" and hmac.compare_digest(
            token.encode(), self.number.verify_token.encode()
        ):
            return params.get("hub.challenge", "")
        return None

    def parse_webhook(self, body: bytes) -> list:
        # Item by item: an unreadable message becomes a RejectedItem with its reason, and the
        # rest of the delivery still goes through.
        return payloads.parse_webhook_items(payloads.load_webhook(body))
