"""Channel providers: one interface for how a WhatsApp number is spoken (``base``), one adapter
per provider (``cloud_api``, ``sandbox``, ``evolution`` for WhatsApp Web), chosen by the number's ``provider`` (``registry``)."""

from integrations.providers import cloud_api, evolution, sandbox  # noqa: F401 - they register themselves
from integrations.providers.base import (
    Capabilities,
    ChannelProvider,
    ConnectionInfo,
    MediaInfo,
    WebhookVerdict,
)
from integrations.providers.registry import (
    capabilities_for,
    provider_class,
    provider_for,
    register,
    unregister,
)

__all__ = [
    "Capabilities",
    "ChannelProvider",
    "ConnectionInfo",
    "MediaInfo",
    "WebhookVerdict",
    "capabilities_for",
    "provider_class",
    "provider_for",
    "register",
    "unregister",
]
