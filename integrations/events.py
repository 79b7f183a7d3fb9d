"""Provider-neutral inbound events: what a channel provider's webhook parser hands the apps above.

The Cloud API's webhook is the richest model we know, so its parsed shapes are the neutral ones:
every adapter's ``parse_webhook`` returns these dataclasses (message content stays Meta-shaped,
e.g. ``{"body": ...}`` for text), and ``inbox`` imports them from here, never from a provider's
package. They are defined beside the Cloud API parser (``integrations.whatsapp.payloads``) and
re-exported here so that module keeps one definition for its parser and its ``build_*`` helpers.
"""

from dataclasses import dataclass
from typing import ClassVar

from integrations.whatsapp.payloads import (
    AccountEvent,
    Event,
    EventError,
    InboundMessage,
    PayloadError,
    PhoneNumberQualityUpdate,
    RejectedItem,
    StatusUpdate,
    TemplateQualityUpdate,
    TemplateStatusUpdate,
    ValueErrors,
)


@dataclass(frozen=True)
class OwnMessage:
    """A message the business sent from elsewhere than Porfin (the phone paired with a WhatsApp
    Web number, or another client of its session), to be recorded as outbound. ``message`` is
    shaped like a customer's (``wa_id`` is the customer it went to)."""

    kind: ClassVar[str] = "own_message"

    message: InboundMessage

    @property
    def wamid(self) -> str:
        return self.message.wamid


@dataclass(frozen=True)
class ConnectionUpdate:
    """A session-based number's connection changed (paired, lost, a new QR code to scan)."""

    kind: ClassVar[str] = "connection"

    state: str  # "open", "connecting", "close"
    qr: str = ""  # a data: URI while waiting for a phone
    phone: str = ""  # the paired phone's number (digits), when known
    profile_name: str = ""
    reason: str = ""


__all__ = [
    "AccountEvent",
    "ConnectionUpdate",
    "OwnMessage",
    "Event",
    "EventError",
    "InboundMessage",
    "PayloadError",
    "PhoneNumberQualityUpdate",
    "RejectedItem",
    "StatusUpdate",
    "TemplateQualityUpdate",
    "TemplateStatusUpdate",
    "ValueErrors",
]
