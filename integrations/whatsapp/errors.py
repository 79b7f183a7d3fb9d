"""Typed errors for the WhatsApp Cloud API and the mapping from Graph error codes to them.

One table (``ERROR_SPECS``) holds what we know about each Meta error code: the exception class,
Meta's title and details text, a message an agent can read, whether a later retry can succeed,
a default wait, and the HTTP status Meta answers with. The client uses it to classify responses,
the webhook parser to classify ``failed`` statuses, and the sandbox to emit the same errors.

Agent messages are wrapped in ``gettext_noop`` so ``makemessages`` extracts them; translate them at
display time with ``gettext(error.message)``.
"""

from __future__ import annotations

import email.utils
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from integrations import errors


def gettext_noop(message: str) -> str:
    """Mark a string for translation without importing Django (``makemessages`` finds it)."""
    return message


class WhatsAppError(errors.IntegrationError):
    """An error from the WhatsApp Cloud API, or from our own checks before calling it."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        title: str = "",
        details: str = "",
        http_status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        error_subcode: int | None = None,
        fbtrace_id: str = "",
        ambiguous: bool = False,
    ) -> None:
        super().__init__(
            message,
            permanent=not retryable,
            code=code,
            title=title,
            details=details,
            http_status=http_status,
            retry_after=retry_after,
            ambiguous=ambiguous,
        )
        self.error_subcode = error_subcode
        self.fbtrace_id = fbtrace_id


# Each Cloud API class is also the provider-neutral class callers above ``integrations`` catch.


class ThrottledError(WhatsAppError, errors.RateLimitedError):
    """A rate limit of the app, the WABA or the number's throughput."""


class PairThrottledError(ThrottledError, errors.RecipientRateLimitedError):
    """Too many messages from this number to the same customer (131056)."""


class SpamThrottledError(ThrottledError, errors.QualityLimitedError):
    """The number is limited because earlier messages were blocked or flagged (131048)."""


class WindowClosedError(WhatsAppError, errors.WindowClosedError):
    """More than 24 h since the customer last wrote: only a template can be sent."""


class RecipientError(WhatsAppError, errors.RecipientError):
    """The recipient cannot receive this message (not on WhatsApp, opted out, not allowed...)."""


class TemplateError(WhatsAppError, errors.TemplateError):
    """A template problem: missing, not approved, paused, parameters that do not match."""


class AuthError(WhatsAppError, errors.AuthError):
    """The access token is invalid or expired, or lacks a permission."""


class AccountError(WhatsAppError, errors.AccountError):
    """The business account is locked, restricted, or has a payment problem."""


class MediaError(WhatsAppError, errors.MediaError):
    """Media could not be uploaded, downloaded or used."""


class ServerError(WhatsAppError, errors.ServerError):
    """A temporary failure on WhatsApp's side or on the network; retry with backoff."""


class InvalidRequestError(WhatsAppError, errors.InvalidRequestError):
    """Meta rejected the request as malformed (codes 100, 131008, 131009, 131051)."""


class ValidationError(WhatsAppError, errors.ContentError):
    """Our own check failed before any call was made. Never retryable; ``code`` is None."""

    def __init__(self, message: str) -> None:
        super().__init__(message, title="Invalid message", details=message, retryable=False)


@dataclass(frozen=True)
class ErrorSpec:
    cls: type[WhatsAppError]
    title: str
    details: str
    agent_message: str
    retryable: bool = False
    retry_after: float | None = None
    http_status: int = 400


HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

_AUTH = gettext_noop(
    "The WhatsApp connection is no longer authorized. Reconnect the number in the settings."
)
_PERMISSION = gettext_noop(
    "The WhatsApp connection lacks a required permission. Reconnect the number in the settings."
)
_SERVER = gettext_noop("WhatsApp is temporarily unavailable. Try again in a few minutes.")
_INVALID = gettext_noop("WhatsApp rejected the message as invalid.")
_THROTTLED = gettext_noop("Too many messages are being sent right now. Try again shortly.")

ERROR_SPECS: dict[int, ErrorSpec] = {
    0: ErrorSpec(
        AuthError, "AuthException", "Unable to authenticate the app user.", _AUTH, http_status=401
    ),
    190: ErrorSpec(
        AuthError,
        "Access token has expired",
        "Error validating access token: the session has expired or the token is invalid.",
        _AUTH,
        http_status=401,
    ),
    3: ErrorSpec(
        AuthError, "API Method", "Capability or permissions issue.", _PERMISSION, http_status=500
    ),
    10: ErrorSpec(
        AuthError,
        "Permission Denied",
        "Permission is either not granted or has been removed.",
        _PERMISSION,
        http_status=403,
    ),
    200: ErrorSpec(
        AuthError,
        "API Permission",
        "Permission is either not granted or has been removed.",
        _PERMISSION,
        http_status=403,
    ),
    4: ErrorSpec(
        ThrottledError,
        "Too many calls",
        "The app has reached its API call rate limit.",
        _THROTTLED,
        retryable=True,
        retry_after=60,
    ),
    613: ErrorSpec(
        ThrottledError,
        "Calls to this api have exceeded the rate limit",
        "Calls to this API have exceeded the rate limit.",
        _THROTTLED,
        retryable=True,
        retry_after=60,
    ),
    80007: ErrorSpec(
        ThrottledError,
        "Rate limit issues",
        "The WhatsApp Business Account has reached its rate limit.",
        gettext_noop(
            "The WhatsApp account reached its hourly API limit. Try again within the hour."
        ),
        retryable=True,
        retry_after=3600,
    ),
    130429: ErrorSpec(
        ThrottledError,
        "Rate limit hit",
        "Message failed to send because there were too many messages sent from "
        "this phone number in a short period of time",
        _THROTTLED,
        retryable=True,
    ),
    131056: ErrorSpec(
        PairThrottledError,
        "(Business Account, Consumer Account) pair rate limit hit",
        "Message failed to send because there were too many messages sent from "
        "this phone number to the same phone number in a short period of time.",
        gettext_noop(
            "Too many messages were sent to this customer in a short time. "
            "Wait a few seconds and try again."
        ),
        retryable=True,
        retry_after=6,
    ),
    131048: ErrorSpec(
        SpamThrottledError,
        "Spam rate limit hit",
        "Message failed to send because there are restrictions on how many messages "
        "can be sent from this phone number. This may be because too many previous "
        "messages were blocked or flagged as spam.",
        gettext_noop(
            "WhatsApp is limiting this number because earlier messages were "
            "blocked or reported. Try much later and review message "
            "quality."
        ),
        retryable=True,
        retry_after=3600,
    ),
    131057: ErrorSpec(
        ThrottledError,
        "Account in maintenance mode",
        "Business Account is in maintenance mode (for example a throughput upgrade).",
        _THROTTLED,
        retryable=True,
        retry_after=60,
    ),
    1: ErrorSpec(
        ServerError,
        "API Unknown",
        "Invalid request or possible server error.",
        _SERVER,
        retryable=True,
        http_status=500,
    ),
    2: ErrorSpec(
        ServerError,
        "API Service",
        "Temporary due to downtime or due to being overloaded.",
        _SERVER,
        retryable=True,
        http_status=503,
    ),
    131000: ErrorSpec(
        ServerError,
        "Something went wrong",
        "Message failed to send due to an unknown error.",
        _SERVER,
        retryable=True,
        http_status=500,
    ),
    131016: ErrorSpec(
        ServerError,
        "Service unavailable",
        "A service is temporarily unavailable.",
        _SERVER,
        retryable=True,
        http_status=503,
    ),
    100: ErrorSpec(InvalidRequestError, "Invalid parameter", "Invalid parameter.", _INVALID),
    131008: ErrorSpec(
        InvalidRequestError,
        "Required parameter is missing",
        "The request is missing a required parameter.",
        _INVALID,
    ),
    131009: ErrorSpec(
        InvalidRequestError,
        "Parameter value is not valid",
        "One or more parameter values are invalid.",
        _INVALID,
    ),
    131051: ErrorSpec(
        InvalidRequestError,
        "Unsupported message type",
        "Message type is currently not supported.",
        gettext_noop("This message type is not supported by WhatsApp."),
    ),
    131026: ErrorSpec(
        RecipientError,
        "Message undeliverable",
        "Unable to deliver message. Reasons can include: the recipient phone number "
        "is not a WhatsApp phone number; the recipient has not accepted the new "
        "Terms of Service; the recipient is using an old WhatsApp version.",
        gettext_noop(
            "The message could not be delivered: the number may not be on "
            "WhatsApp, or the customer's app is out of date."
        ),
    ),
    131030: ErrorSpec(
        RecipientError,
        "Recipient phone number not in allowed list",
        "Recipient phone number not in allowed list: add it to the test number's "
        "allowed recipients.",
        gettext_noop("This test number may only message the numbers on its allowed list."),
    ),
    131049: ErrorSpec(
        RecipientError,
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
        gettext_noop(
            "WhatsApp chose not to deliver this marketing message to keep "
            "the customer's experience healthy. Do not resend it today."
        ),
    ),
    131050: ErrorSpec(
        RecipientError,
        "User has stopped marketing messages",
        "Unable to deliver the message. This recipient has chosen to stop receiving "
        "marketing messages on WhatsApp from your business.",
        gettext_noop("The customer chose to stop receiving marketing messages from this business."),
    ),
    130472: ErrorSpec(
        RecipientError,
        "User's number is part of an experiment",
        "Failed to send message because this user's phone number is part of an experiment",
        gettext_noop(
            "WhatsApp did not deliver this marketing message because the "
            "customer is part of a WhatsApp experiment."
        ),
    ),
    131047: ErrorSpec(
        WindowClosedError,
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the "
        "customer last replied to this number.",
        gettext_noop(
            "More than 24 hours have passed since the customer last wrote. "
            "Send an approved template to restart the conversation."
        ),
    ),
    131052: ErrorSpec(
        MediaError,
        "Media download error",
        "Unable to download the media sent by the user.",
        gettext_noop("The file the customer sent could not be downloaded."),
    ),
    131053: ErrorSpec(
        MediaError,
        "Media upload error",
        "Unable to upload the media used in the message.",
        gettext_noop("The file could not be sent: check its type and size."),
    ),
    131031: ErrorSpec(
        AccountError,
        "Account has been locked",
        "The business account has been restricted or disabled for violating a platform policy.",
        gettext_noop("The WhatsApp business account is locked. Check WhatsApp Manager."),
    ),
    368: ErrorSpec(
        AccountError,
        "Temporarily blocked for policies violations",
        "The WhatsApp Business Account associated with the app has been restricted or "
        "disabled for violating a platform policy.",
        gettext_noop(
            "The WhatsApp business account is temporarily blocked for a policy violation."
        ),
    ),
    130497: ErrorSpec(
        AccountError,
        "Business account is restricted from messaging users in this country",
        "The business account is restricted from messaging users in this country.",
        gettext_noop("This business cannot message customers in that country."),
    ),
    131042: ErrorSpec(
        AccountError,
        "Business eligibility payment issue",
        "There was an error related to your payment method.",
        gettext_noop(
            "There is a payment problem on the WhatsApp business account. "
            "Check billing in WhatsApp Manager."
        ),
    ),
    132000: ErrorSpec(
        TemplateError,
        "Number of parameters does not match the expected number of params",
        "The number of variable parameter values does not match the number of "
        "variables defined in the template.",
        gettext_noop("The template's variables do not match the values given."),
    ),
    132001: ErrorSpec(
        TemplateError,
        "Template name does not exist in the translation",
        "The template does not exist in that language or has not been approved.",
        gettext_noop("This template does not exist in that language or is not approved."),
    ),
    132005: ErrorSpec(
        TemplateError,
        "Translated text too long",
        "Translated text is too long once the variables are filled in.",
        gettext_noop("The template text is too long once the variables are filled in."),
    ),
    132007: ErrorSpec(
        TemplateError,
        "Template Format Character Policy Violated",
        "Template content violates a WhatsApp policy.",
        gettext_noop("The template content violates a WhatsApp policy."),
    ),
    132008: ErrorSpec(
        TemplateError,
        "Template Parameter Value Invalid",
        "A template parameter value is invalid.",
        gettext_noop("A template variable has an invalid value."),
    ),
    132012: ErrorSpec(
        TemplateError,
        "Template Parameter Format Mismatch",
        "Variable parameter values formatted incorrectly: they do not match the "
        "format in the created template.",
        gettext_noop("A template variable has the wrong format."),
    ),
    132015: ErrorSpec(
        TemplateError,
        "Template is Paused",
        "Template is paused due to low quality so it cannot be sent in a template message.",
        gettext_noop(
            "This template is paused by WhatsApp for low quality. Try again "
            "after it is unpaused, or use another template."
        ),
        retryable=True,
        retry_after=3 * 3600,
    ),
    132016: ErrorSpec(
        TemplateError,
        "Template is Disabled",
        "Template has been paused too many times due to low quality and is now "
        "permanently disabled.",
        gettext_noop("This template is permanently disabled. Use another template."),
    ),
    132068: ErrorSpec(
        TemplateError,
        "Flow is in blocked state",
        "Flow is in blocked state.",
        gettext_noop("The WhatsApp Flow in this message is blocked."),
    ),
    132069: ErrorSpec(
        TemplateError,
        "Flow is in throttled state",
        "Flow is in throttled state and messages with this flow were already sent "
        "in the last hour.",
        gettext_noop("The WhatsApp Flow in this message is throttled. Try later."),
        retryable=True,
        retry_after=3600,
    ),
}


def spec_for(code: int | None) -> ErrorSpec | None:
    """The table entry for ``code``; the 200-299 permission range shares one entry."""
    if code is None:
        return None
    if code in ERROR_SPECS:
        return ERROR_SPECS[code]
    if 200 <= code <= 299:
        return ERROR_SPECS[200]
    return None


def error_for_code(
    code: int | None,
    *,
    title: str = "",
    details: str = "",
    http_status: int | None = None,
    retry_after: float | None = None,
    error_subcode: int | None = None,
    fbtrace_id: str = "",
    is_transient: bool = False,
) -> WhatsAppError:
    """Build the typed exception for a Meta error code (from a response or a webhook)."""
    spec = spec_for(code)
    common = {
        "code": code,
        "http_status": http_status,
        "error_subcode": error_subcode,
        "fbtrace_id": fbtrace_id,
    }
    if spec is not None:
        return spec.cls(
            spec.agent_message,
            title=title or spec.title,
            details=details or spec.details,
            retryable=spec.retryable,
            retry_after=retry_after if retry_after is not None else spec.retry_after,
            **common,
        )
    title = title or "WhatsApp error"
    if code is not None and (132000 <= code <= 132999 or code >= 2388000):
        return TemplateError(
            gettext_noop("WhatsApp rejected the template."),
            title=title,
            details=details,
            retry_after=retry_after,
            **common,
        )
    if http_status in (401, 403):
        return AuthError(_AUTH, title=title, details=details, **common)
    if http_status == 429:
        return ThrottledError(
            _THROTTLED,
            title=title,
            details=details,
            retryable=True,
            retry_after=retry_after,
            **common,
        )
    if is_transient or (http_status is not None and http_status >= 500):
        return ServerError(
            _SERVER,
            title=title,
            details=details,
            retryable=True,
            retry_after=retry_after,
            **common,
        )
    return WhatsAppError(
        gettext_noop("WhatsApp could not process the request."),
        title=title,
        details=details,
        retry_after=retry_after,
        **common,
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_from_response(
    status: int, json_body: Any, *, headers: Mapping[str, str] | None = None
) -> WhatsAppError:
    """Map a failed Graph response (status and decoded body) to the right typed exception.

    ``json_body`` may be the decoded JSON, or anything else (text, None) when the body was not
    JSON, e.g. an HTML page from a proxy; the HTTP status then decides.
    """
    retry_after = parse_retry_after((headers or {}).get("Retry-After"))
    error = json_body.get("error") if isinstance(json_body, dict) else None
    if not isinstance(error, dict):
        return error_for_code(
            None,
            title=f"HTTP {status}",
            details="Unexpected response from the WhatsApp API.",
            http_status=status,
            retry_after=retry_after,
        )
    code = _as_int(error.get("code"))
    error_data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
    details = str(error_data.get("details") or error.get("error_user_msg") or "")
    title = str(error.get("error_user_title") or "")
    graph_message = str(error.get("message") or "")
    if not title:
        title = _strip_code_prefix(graph_message, code)
    if not details:
        details = graph_message
    return error_for_code(
        code,
        title=title,
        details=details,
        http_status=status,
        retry_after=retry_after,
        error_subcode=_as_int(error.get("error_subcode")),
        fbtrace_id=str(error.get("fbtrace_id") or ""),
        is_transient=bool(error.get("is_transient")),
    )


def build_error_body(
    code: int,
    *,
    details: str | None = None,
    message: str | None = None,
    error_subcode: int | None = None,
    is_transient: bool | None = None,
) -> dict[str, Any]:
    """A Graph error response body, shaped like Meta's (used by the sandbox)."""
    spec = spec_for(code)
    title = spec.title if spec else "Invalid parameter"
    error: dict[str, Any] = {
        "message": message or f"(#{code}) {title}",
        "type": "OAuthException",
        "code": code,
        "error_data": {
            "messaging_product": "whatsapp",
            "details": details or (spec.details if spec else title),
        },
        "fbtrace_id": "A" + secrets.token_urlsafe(16),
    }
    if error_subcode is not None:
        error["error_subcode"] = error_subcode
    if is_transient is None and spec is not None and spec.cls is ServerError:
        is_transient = True
    if is_transient is not None:
        error["is_transient"] = is_transient
    return {"error": error}


def _strip_code_prefix(message: str, code: int | None) -> str:
    prefix = f"(#{code}) "
    return message[len(prefix) :] if code is not None and message.startswith(prefix) else message


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
