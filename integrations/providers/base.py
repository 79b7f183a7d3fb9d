"""What every channel provider offers, and what it declares it can do.

A provider is how one WhatsApp number is spoken: Meta's Cloud API, the local sandbox, or a
WhatsApp Web bridge. Each is one ``ChannelProvider`` subclass registered under the value of
``WhatsAppNumber.provider`` (see ``registry``). The apps above ``integrations`` hold a provider
for a number (``provider_for``) and ask its ``Capabilities`` instead of encoding one provider's
rules: whether a customer service window applies and how long it is, whether templates exist,
how fast a number may send. They never compare provider names.

Content is the Cloud API's shape (``{"body": ...}`` for text, ``{"id": ..., "caption": ...}``
for media, the template object...), the richest model we know; an adapter for a poorer provider
translates it and refuses what it cannot carry with ``UnsupportedError``. Every failure is an
``integrations.errors.IntegrationError``.

A provider object is cheap: building one reads no credentials and opens no connection (webhook
processing builds one per delivery to parse it); the API client is made on first use.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from integrations import errors

if TYPE_CHECKING:
    from integrations.events import Event
    from integrations.models import WhatsAppNumber

MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})


@dataclass(frozen=True)
class Capabilities:
    """What a provider can do, declared once per provider class.

    - ``service_window``: free-form messages may be sent only this long after the customer's last
      message (Meta: 24 h); outside it only a template may. None: always.
    - ``templates``: provider-approved message templates exist (listed, synced, sent).
    - ``interactive``, ``reactions``, ``media``: those message types can be sent.
    - ``read_receipts``: the business can mark a customer's message as read.
    - ``max_per_second``: the provider's own ceiling on one number's send rate (sends are paced
      under it). None: the number's own tier decides (``throughput_per_second``).
    - ``daily_cap``: at most this many business-initiated messages per number per day. None: no
      cap declared by the provider.
    """

    service_window: timedelta | None
    templates: bool
    interactive: bool
    reactions: bool
    read_receipts: bool
    media: bool
    max_per_second: float | None = None
    daily_cap: int | None = None

    def can_send(self, message_type: str) -> bool:
        """Whether a message of this (Cloud API) type can go out through the provider at all."""
        if message_type == "template":
            return self.templates
        if message_type == "interactive":
            return self.interactive
        if message_type == "reaction":
            return self.reactions
        if message_type in MEDIA_TYPES:
            return self.media
        return True

    def send_rate(self, number_rate: float | None) -> float | None:
        """The number's sends per second: its own tier, never above the provider's ceiling."""
        rates = [rate for rate in (number_rate, self.max_per_second) if rate]
        return min(rates) if rates else None


@dataclass(frozen=True)
class MediaInfo:
    """What a provider says about a stored media file before (or while) handing its bytes."""

    id: str
    mime_type: str
    sha256: str = ""  # hex; "" when the provider gives none
    file_size: int = 0  # 0 when unknown


@dataclass(frozen=True)
class ConnectionInfo:
    """A session-based number's link to WhatsApp (WhatsApp Web): its state and, while it waits
    for a phone to pair, the QR code to scan (a ``data:`` URI) or a pairing code."""

    state: str  # "open" (paired and online), "connecting" (waiting for the QR), "close"
    qr: str = ""
    pairing_code: str = ""

    @property
    def is_open(self) -> bool:
        return self.state == "open"


class WebhookVerdict(enum.Enum):
    """Whether a webhook delivery comes from the provider (checked before anything is stored)."""

    AUTHENTIC = "authentic"
    UNSIGNED = "unsigned"  # no proof at all: 401
    FORGED = "forged"  # a proof that does not match: 403


def _counted(send):
    import functools

    from kernel import counters

    @functools.wraps(send)
    def counted(self, **kwargs):
        message_id = send(self, **kwargs)
        counters.incr("sends", self.number.pk)
        return message_id

    return counted


class ChannelProvider:
    """One number's connection to WhatsApp through one provider; subclass per provider."""

    key: ClassVar[str] = ""  # the ``WhatsAppNumber.provider`` value, set by ``register``
    capabilities: ClassVar[Capabilities]

    def __init__(self, number: WhatsAppNumber, *, retry_inline: bool = True) -> None:
        """``retry_inline=False`` for callers that schedule retries themselves (the campaign
        engine): a retryable failure is raised at once instead of slept on."""
        self.number = number
        self.retry_inline = retry_inline

    def __repr__(self) -> str:
        return f"{type(self).__name__}(number={self.number.pk!r})"

    def __init_subclass__(cls, **kwargs):
        """Every provider's accepted sends are counted per number for ``/metrics``
        (``porfin_sends_total``), whoever sends: inbox, campaigns, flows, assistants."""
        super().__init_subclass__(**kwargs)
        if "send" in cls.__dict__:
            cls.send = _counted(cls.__dict__["send"])

    # --- Sending --------------------------------------------------------------------------------

    def send(
        self,
        *,
        to: str,
        message_type: str,
        content: Any,
        reply_to: str | None = None,
        callback_data: str | None = None,
    ) -> str:
        """Send one message (Cloud API ``content`` for ``message_type``) to the customer ``to``
        (their WhatsApp id); returns the provider's message id. ``callback_data`` comes back on
        the message's status events when the provider supports it."""
        raise NotImplementedError

    def mark_read(self, message_id: str, *, to: str = "") -> None:
        """Tell the customer ``to`` (their WhatsApp id) their message ``message_id`` was read."""
        raise self.unsupported("read receipts")

    # --- Connection (session-based providers, e.g. WhatsApp Web; optional) --------------------

    def connect(self) -> ConnectionInfo:
        """Start (or resume) the number's session: its state and, until a phone pairs, a QR."""
        raise self.unsupported("connecting by QR code")

    def connection_state(self) -> ConnectionInfo:
        """The session's state as the provider sees it now."""
        raise self.unsupported("connection state")

    def logout(self) -> None:
        """End the session (the phone is unpaired); ``connect`` starts a new one."""
        raise self.unsupported("disconnecting")

    # --- Media ----------------------------------------------------------------------------------

    def upload_media(self, *, data: bytes, mime_type: str, filename: str) -> str:
        """Store a file with the provider for sending; returns the id a media message names."""
        raise self.unsupported("media")

    def download_media(
        self,
        media_id: str,
        *,
        max_bytes: int,
        check: Callable[[MediaInfo], None] | None = None,
    ) -> tuple[MediaInfo, bytes]:
        """The info and bytes of an inbound media file. ``check(info)`` runs as soon as the
        info is known (before the bytes, when the provider allows) and may raise to refuse it."""
        raise self.unsupported("media")

    # --- Templates ------------------------------------------------------------------------------

    def list_templates(self) -> list[dict]:
        """The number's templates in the Cloud API's shape (name, language, status, category,
        components, id)."""
        raise self.unsupported("templates")

    # --- Webhooks -------------------------------------------------------------------------------

    def verify_webhook(self, *, headers: Mapping[str, str], body: bytes) -> WebhookVerdict:
        """Whether ``body`` (the exact bytes) was sent by the provider; ``headers`` have
        lowercase names."""
        raise NotImplementedError

    def answer_handshake(self, params: Mapping[str, str]) -> str | None:
        """The answer to the provider's webhook subscription check (a GET with ``params``), or
        None to refuse it. Providers without one refuse every GET."""
        return None

    def parse_webhook(self, body: bytes) -> list[Event]:
        """The neutral events (``integrations.events``) in one verified delivery; raises
        ``integrations.events.PayloadError`` for a shape the provider never sends."""
        raise NotImplementedError

    # --- Helpers --------------------------------------------------------------------------------

    def unsupported(self, what: str) -> errors.UnsupportedError:
        return errors.UnsupportedError(
            f"This number's WhatsApp connection does not support {what}.",
            title="Not supported",
            details=f"{type(self).__name__} cannot do {what}.",
        )
