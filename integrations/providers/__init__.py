"""Channel providers: one interface for how a WhatsApp number is spoken (``base``), one adapter
per provider (``cloud_api``, ``sandbox``), chosen by the number's ``provider`` (``registry``)."""

from integrations.providers import cloud_api, sandbox  # noqa: F401 - they register themselves
from integrations.providers.base import Capabilities, ChannelProvider, MediaInfo, WebhookVerdict
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
    "MediaInfo",
    "WebhookVerdict",
    "capabilities_for",
    "provider_class",
    "provider_for",
    "register",
    "unregister",
]
