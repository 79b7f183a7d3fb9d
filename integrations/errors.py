"""The errors every channel provider raises, whatever provider it is.

The apps above ``integrations`` catch these and only these: a provider adapter maps its own
failures (Meta's Graph error codes, another API's answers) onto them, so that the inbox, the
campaign engine and the assistants decide about retries, pacing and what to tell the agent
without knowing which provider answered. ``permanent`` is the one question every caller asks:
True when repeating the same call cannot succeed (fix the request, the credentials or the
account first), False when a later retry may work (``retry_after`` says how much later when the
provider told us).

The provider's own code and words stay on the error (``code``, ``title``, ``details``) for the
agent and the logs; nothing above ``integrations`` should branch on ``code``.
"""

from __future__ import annotations

from typing import Any


class IntegrationError(Exception):
    """Base error for every provider integration (channels and the AI client alike)."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = True,
        code: int | None = None,
        title: str = "",
        details: str = "",
        http_status: int | None = None,
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retryable = not permanent
        self.code = code
        self.title = title
        self.details = details
        self.http_status = http_status
        self.retry_after = retry_after
        # True when the request may have reached the provider although no answer came back (a
        # read timeout on a send): retrying could deliver the message twice.
        self.ambiguous = ambiguous

    def __str__(self) -> str:
        label = f"#{self.code} " if self.code is not None else ""
        text = f"{label}{self.title or self.message}"
        if self.details and self.details != self.title:
            text += f": {self.details}"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, title={self.title!r})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary for storing next to the failed message."""
        return {
            "kind": type(self).__name__,
            "code": self.code,
            "title": self.title,
            "message": self.message,
            "details": self.details,
            "http_status": self.http_status,
            "retryable": self.retryable,
            "retry_after": self.retry_after,
        }


class RateLimitedError(IntegrationError):
    """The sender (number or account) is sending too fast: pace every send of it, not just this
    one, and honour ``retry_after``."""


class RecipientRateLimitedError(RateLimitedError):
    """Too many messages to this one recipient in a short time: wait before the next to them;
    the sender's other recipients are not affected."""


class QualityLimitedError(RateLimitedError):
    """The provider restricts the sender because earlier messages were blocked or reported:
    slow down a lot, for a long time."""


class WindowClosedError(IntegrationError):
    """The provider's customer service window is closed: only a template can be sent."""


class RecipientError(IntegrationError):
    """The recipient cannot receive this message (not on WhatsApp, opted out, not allowed...)."""


class TemplateError(IntegrationError):
    """A template problem: missing, not approved, paused, parameters that do not match."""


class AuthError(IntegrationError):
    """The provider no longer accepts the number's credentials (expired, revoked, unpaired)."""


class AccountError(IntegrationError):
    """The business account is locked, restricted, or has a payment problem."""


class MediaError(IntegrationError):
    """Media could not be uploaded, downloaded or used."""


class ServerError(IntegrationError):
    """A temporary failure on the provider's side or on the network; retry with backoff."""


class InvalidRequestError(IntegrationError):
    """The provider rejected the request as malformed."""


class ContentError(IntegrationError):
    """Our own check of the content failed before any call was made; never retryable."""


class UnsupportedError(IntegrationError):
    """The number's provider cannot do this at all (see its ``Capabilities``)."""
