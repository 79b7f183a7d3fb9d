"""The local Cloud API emulator as a channel provider: the Cloud API adapter pointed at the
sandbox, which is told about the number (token, secret, webhook target) before the first call."""

from __future__ import annotations

import requests

from integrations.providers.cloud_api import CloudAPIProvider
from integrations.providers.registry import register
from integrations.whatsapp.errors import ServerError


@register("sandbox")
class SandboxProvider(CloudAPIProvider):
    """Same calls, same webhooks, same capabilities as Meta's: only the base URL differs."""

    capabilities = CloudAPIProvider.capabilities

    def base_url(self) -> str:
        from integrations import sandbox_links

        return sandbox_links.sandbox_url()

    def prepare(self) -> None:
        """Register the number with the sandbox (once per process and credentials); a sandbox
        that cannot be reached is a temporary failure like any other, retried later."""
        from integrations.services import sandbox_register  # services builds providers

        try:
            sandbox_register(self.number)
        except requests.RequestException as exc:
            raise ServerError(
                "Could not reach WhatsApp. Try again in a few minutes.",
                title="Connection error",
                details=type(exc).__name__,
                retryable=True,
            ) from exc
