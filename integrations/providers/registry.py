"""Which ``ChannelProvider`` speaks for a number: the one registered under ``number.provider``.

Adapters register themselves at import (``@register("cloud_api")``); ``integrations.providers``
imports every adapter, so importing it fills the registry. A new provider is one more module and
one more ``WhatsAppNumber.Provider`` choice; nothing else branches on the name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from integrations import errors
from integrations.providers.base import Capabilities, ChannelProvider

if TYPE_CHECKING:
    from integrations.models import WhatsAppNumber

_providers: dict[str, type[ChannelProvider]] = {}


def register(key: str) -> Callable[[type[ChannelProvider]], type[ChannelProvider]]:
    """Class decorator: ``cls`` speaks for numbers whose ``provider`` is ``key``."""

    def decorator(cls: type[ChannelProvider]) -> type[ChannelProvider]:
        existing = _providers.get(key)
        if existing is not None and existing is not cls:
            raise ValueError(f"Channel provider {key!r} is already {existing.__name__}")
        cls.key = key
        _providers[key] = cls
        return cls

    return decorator


def unregister(key: str) -> None:
    """Forget ``key`` (for tests that register a provider of their own)."""
    _providers.pop(key, None)


def provider_class(key: str) -> type[ChannelProvider]:
    try:
        return _providers[key]
    except KeyError:
        raise errors.UnsupportedError(
            f"No WhatsApp provider {key!r} is available; check the number's settings.",
            title="Unknown provider",
            details=f"{key!r} is not one of: {', '.join(sorted(_providers)) or 'none'}.",
        ) from None


def provider_for(number: WhatsAppNumber, *, retry_inline: bool = True) -> ChannelProvider:
    """The provider object for ``number`` (cheap: the API client is made on first use)."""
    return provider_class(number.provider)(number, retry_inline=retry_inline)


def capabilities_for(number: WhatsAppNumber) -> Capabilities:
    """What ``number``'s provider can do, without building anything."""
    return provider_class(number.provider).capabilities
