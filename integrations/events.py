"""Provider-neutral inbound events: what a channel provider's webhook parser hands the apps above.

The Cloud API's webhook is the richest model we know, so its parsed shapes are the neutral ones:
every adapter's ``parse_webhook`` returns these dataclasses (message content stays Meta-shaped,
e.g. ``{"body": ...}`` for text), and ``inbox`` imports them from here, never from a provider's
package. They are defined beside the Cloud API parser (``integrations.whatsapp.payloads``) and
re-exported here so that module keeps one definition for its parser and its ``build_*`` helpers.
"""

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

__all__ = [
    "AccountEvent",
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
