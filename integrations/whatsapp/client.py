"""``CloudAPIClient``: the Graph API calls the product makes for one business phone number.

- Every payload is checked against the Cloud API limits before the call (``ValidationError``).
- One module-level pooled ``requests.Session`` serves every client, so connections are reused
  across numbers and threads; the access token travels per request and is never logged.
- Retries (exponential backoff with jitter) happen only for retryable errors: 5xx and temporary
  Graph errors, connection failures, and throttling (honouring ``Retry-After``). A wait longer
  than ``max_retry_delay`` is not slept inline: the error is raised with ``retry_after`` so a task
  queue can reschedule. A send whose answer was lost (read timeout) or that failed with a 5xx is
  not retried inline because Meta may have accepted it before failing; the error says so
  (``ambiguous=True``) and the caller holds the message as unknown until a status webhook (which
  echoes ``biz_opaque_callback_data``) proves it went out or a reconcile window passes.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from kernel.admission import waiting_outside

from . import validation
from .errors import (
    AuthError,
    MediaError,
    ServerError,
    ValidationError,
    WhatsAppError,
    error_from_response,
)

logger = logging.getLogger(__name__)

POOL_SIZE = 64
USER_AGENT = "porfin-whatsapp/1.0"
DEFAULT_MAX_DOWNLOAD = validation.MEDIA_LIMITS["document"][1]
TEMPLATE_FIELDS = "id,name,language,status,category,components,parameter_format,quality_score"
PHONE_FIELDS = (
    "id,display_phone_number,verified_name,quality_rating,messaging_limit_tier,"
    "whatsapp_business_manager_messaging_limit,throughput,name_status,platform_type"
)
PHONE_FIELDS_BASIC = "id,display_phone_number,verified_name,quality_rating,throughput"

_session: requests.Session | None = None
_session_lock = threading.Lock()


def shared_session() -> requests.Session:
    """The process-wide pooled session (created on first use)."""
    global _session
    with _session_lock:
        if _session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=16, pool_maxsize=POOL_SIZE, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers["User-Agent"] = USER_AGENT
            _session = session
        return _session


@dataclass(frozen=True)
class MediaInfo:
    id: str
    url: str
    mime_type: str
    sha256: str
    file_size: int


@dataclass(frozen=True)
class PhoneNumberInfo:
    id: str
    display_phone_number: str
    verified_name: str
    quality_rating: str
    messaging_limit_tier: str
    throughput_level: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


class CloudAPIClient:
    """Calls the WhatsApp Cloud API on behalf of one business phone number."""

    def __init__(
        self,
        *,
        base_url: str,
        api_version: str,
        phone_number_id: str,
        access_token: str,
        waba_id: str = "",
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = (3.05, 15.0),
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_delay: float = 5.0,
    ) -> None:
        if not phone_number_id or not access_token:
            raise ValueError("phone_number_id and access_token are required")
        version = api_version if api_version.startswith("v") else f"v{api_version}"
        self.graph_url = f"{base_url.rstrip('/')}/{version}"
        self.api_version = version
        self.phone_number_id = str(phone_number_id)
        self.waba_id = str(waba_id or "")
        self._access_token = access_token
        self._session = session or shared_session()
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_delay = max_retry_delay

    def __repr__(self) -> str:
        return f"CloudAPIClient(phone_number_id={self.phone_number_id!r}, url={self.graph_url!r})"

    # --- Sending --------------------------------------------------------------------------------

    def send_message(
        self,
        to: str,
        message_type: str,
        content: Any,
        *,
        reply_to: str | None = None,
        callback_data: str | None = None,
    ) -> str:
        """Send any message type with a Meta-shaped ``content``; return its wamid.

        ``to`` is a phone number (any formatting) or a business-scoped user ID (BSUID, such as
        ``US.13491208655302741918``), which goes in ``recipient``: a BSUID in ``to`` is accepted
        by Meta and then silently dropped.
        """
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            **_recipient(to),
            "type": message_type,
            message_type: content,
        }
        if reply_to:
            payload["context"] = {"message_id": reply_to}
        if callback_data:
            payload["biz_opaque_callback_data"] = callback_data
        _raise_problem(validation.check_message(payload))
        data = self._post_json(f"{self.phone_number_id}/messages", payload).json()
        try:
            wamid = str(data["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise WhatsAppError(
                "WhatsApp accepted the request but returned no message ID.",
                title="Unexpected response",
                details=json.dumps(data)[:500],
            ) from exc
        logger.info(
            "whatsapp sent type=%s pnid=%s wamid=%s", message_type, self.phone_number_id, wamid
        )
        return wamid

    def send_text(
        self,
        to: str,
        body: str,
        *,
        preview_url: bool = False,
        reply_to: str | None = None,
        callback_data: str | None = None,
    ) -> str:
        content = {"preview_url": preview_url, "body": body}
        return self.send_message(
            to, "text", content, reply_to=reply_to, callback_data=callback_data
        )

    def send_media(
        self,
        to: str,
        kind: str,
        *,
        media_id: str | None = None,
        link: str | None = None,
        caption: str | None = None,
        filename: str | None = None,
        voice: bool | None = None,
        reply_to: str | None = None,
        callback_data: str | None = None,
    ) -> str:
        """Send an image, video, audio, document or sticker by uploaded ``media_id`` or ``link``."""
        if kind not in validation.MEDIA_KINDS:
            raise ValidationError(
                f"Media kind {kind!r} is not one of {', '.join(validation.MEDIA_KINDS)}."
            )
        content: dict[str, Any] = {"id": media_id} if media_id else {}
        if link:
            content["link"] = link
        if caption:
            content["caption"] = caption
        if filename:
            content["filename"] = filename
        if voice is not None:
            content["voice"] = voice
        return self.send_message(to, kind, content, reply_to=reply_to, callback_data=callback_data)

    def send_location(
        self,
        to: str,
        *,
        latitude: float,
        longitude: float,
        name: str = "",
        address: str = "",
        reply_to: str | None = None,
    ) -> str:
        content: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
        if name:
            content["name"] = name
        if address:
            content["address"] = address
        return self.send_message(to, "location", content, reply_to=reply_to)

    def send_contacts(
        self, to: str, contacts: Sequence[Mapping[str, Any]], *, reply_to: str | None = None
    ) -> str:
        """Send contact cards (Meta's shape: ``name.formatted_name``, ``phones``, ``emails``...)."""
        return self.send_message(to, "contacts", [dict(c) for c in contacts], reply_to=reply_to)

    def send_interactive(
        self,
        to: str,
        interactive: Mapping[str, Any],
        reply_to: str | None = None,
        *,
        callback_data: str | None = None,
    ) -> str:
        """Send reply buttons, a list, a CTA URL button (or another interactive type)."""
        return self.send_message(
            to, "interactive", dict(interactive), reply_to=reply_to, callback_data=callback_data
        )

    def send_template(
        self,
        to: str,
        name: str,
        language: str,
        components: Sequence[Mapping[str, Any]] | None = None,
        *,
        definition: Mapping[str, Any] | None = None,
        callback_data: str | None = None,
    ) -> str:
        """Send an approved template. With ``definition`` (the template as listed by the API),
        the parameters are checked against its variables first (as Meta's 132000/132012)."""
        content: dict[str, Any] = {"name": name, "language": {"code": language}}
        if components:
            content["components"] = [dict(c) for c in components]
        if definition is not None:
            problem = validation.check_template_parameters(
                dict(definition), content.get("components")
            )
            _raise_problem(problem)
        return self.send_message(to, "template", content, callback_data=callback_data)

    def send_reaction(self, to: str, message_id: str, emoji: str) -> str:
        """React to a message with one emoji; an empty ``emoji`` removes the reaction."""
        return self.send_message(to, "reaction", {"message_id": message_id, "emoji": emoji})

    def mark_read(self, message_id: str, typing: bool = False) -> bool:
        """Mark an inbound message as read (blue ticks), optionally showing "typing..."."""
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message_id,
        }
        if typing:
            payload["typing_indicator"] = {"type": "text"}
        _raise_problem(validation.check_read_receipt(payload))
        # Marking read twice is harmless: retried like a GET.
        data = self._request(
            "POST", f"{self.phone_number_id}/messages", json=payload, idempotent=True
        ).json()
        return bool(data.get("success"))

    # --- Media ----------------------------------------------------------------------------------

    def upload_media(self, data: bytes, mime_type: str, filename: str) -> str:
        """Upload a file for sending; return its media ID (valid 30 days)."""
        _raise_problem(validation.check_upload(mime_type, len(data)))
        response = self._request(
            "POST",
            f"{self.phone_number_id}/media",
            files={"file": (filename or "file", data, mime_type)},
            data={"messaging_product": "whatsapp", "type": mime_type},
            idempotent=True,
        )
        media_id = str(response.json().get("id") or "")
        if not media_id:
            raise MediaError("WhatsApp did not return a media ID.", title="Unexpected response")
        logger.info("whatsapp uploaded media pnid=%s media_id=%s", self.phone_number_id, media_id)
        return media_id

    def get_media(self, media_id: str) -> MediaInfo:
        """The download URL (valid about 5 minutes), MIME type, hex sha256 and size."""
        data = self._request(
            "GET", str(media_id), params={"phone_number_id": self.phone_number_id}
        ).json()
        try:
            return MediaInfo(
                id=str(data.get("id") or media_id),
                url=str(data["url"]),
                mime_type=str(data.get("mime_type") or ""),
                sha256=str(data.get("sha256") or ""),
                file_size=int(data.get("file_size") or 0),  # a number or a string
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MediaError(
                "WhatsApp returned no usable media URL.",
                title="Unexpected response",
                details=str(exc),
            ) from exc

    def download_media(self, url: str, *, max_bytes: int = DEFAULT_MAX_DOWNLOAD) -> bytes:
        """Download a media URL from ``get_media`` (sends the bearer token; follows redirects)."""
        if not url.startswith(("https://", "http://")):
            raise ValidationError("The media URL must be an http(s) URL from get_media().")
        response = self._request("GET", url=url, stream=True, expected_media=True)
        try:
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise _too_large(declared, max_bytes)
            chunks, size = [], 0
            for chunk in response.iter_content(chunk_size=64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(size, max_bytes)
                chunks.append(chunk)
            return b"".join(chunks)
        except requests.RequestException as exc:
            raise ServerError(
                "The media download was interrupted.",
                title="Download failed",
                details=type(exc).__name__,
                retryable=True,
            ) from exc
        finally:
            response.close()

    def fetch_media(
        self, media_id: str, *, max_bytes: int = DEFAULT_MAX_DOWNLOAD
    ) -> tuple[MediaInfo, bytes]:
        """``get_media`` then ``download_media``: the info and the bytes of one media ID."""
        info = self.get_media(media_id)
        if info.file_size > max_bytes:
            raise _too_large(info.file_size, max_bytes)
        return info, self.download_media(info.url, max_bytes=max_bytes)

    def delete_media(self, media_id: str) -> bool:
        data = self._request(
            "DELETE", str(media_id), params={"phone_number_id": self.phone_number_id}
        ).json()
        return bool(data.get("success") or data.get("deleted"))

    # --- Templates and number -------------------------------------------------------------------

    def list_templates(self, *, status: str | None = None, page_size: int = 100) -> list[dict]:
        """Every template of the WABA (all pages), as Meta returns them."""
        params: dict[str, Any] = {"fields": TEMPLATE_FIELDS, "limit": page_size}
        if status:
            params["status"] = status
        templates: list[dict] = []
        for _page in range(1000):
            data = self._request(
                "GET", f"{self._require_waba()}/message_templates", params=params
            ).json()
            templates.extend(t for t in data.get("data") or [] if isinstance(t, dict))
            paging = data.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                break
            params = {**params, "after": after}
        return templates

    def create_template(
        self,
        name: str,
        language: str,
        category: str,
        components: Sequence[Mapping[str, Any]],
        *,
        parameter_format: str | None = None,
    ) -> dict:
        """Submit a template for review; return ``{"id", "status", "category"}``."""
        components = [dict(c) for c in components]
        _raise_problem(
            validation.check_template_definition(
                name, language, category, components, parameter_format
            )
        )
        payload: dict[str, Any] = {
            "name": name,
            "language": language,
            "category": category.upper(),
            "components": components,
        }
        if parameter_format:
            payload["parameter_format"] = parameter_format
        return self._post_json(f"{self._require_waba()}/message_templates", payload).json()

    def delete_template(self, name: str, *, template_id: str | None = None) -> bool:
        params = {"name": name}
        if template_id:
            params["hsm_id"] = template_id
        data = self._request(
            "DELETE", f"{self._require_waba()}/message_templates", params=params
        ).json()
        return bool(data.get("success"))

    def get_phone_number(self) -> PhoneNumberInfo:
        """Display number, quality rating and messaging limit tier of this number."""
        try:
            data = self._request(
                "GET", self.phone_number_id, params={"fields": PHONE_FIELDS}
            ).json()
        except WhatsAppError as exc:
            # Newer limit fields are not served on every version: ask for the basic set.
            if exc.code != 100:
                raise
            data = self._request(
                "GET", self.phone_number_id, params={"fields": PHONE_FIELDS_BASIC}
            ).json()
        throughput = data.get("throughput") if isinstance(data.get("throughput"), dict) else {}
        return PhoneNumberInfo(
            id=str(data.get("id") or self.phone_number_id),
            display_phone_number=str(data.get("display_phone_number") or ""),
            verified_name=str(data.get("verified_name") or ""),
            quality_rating=str(data.get("quality_rating") or "UNKNOWN"),
            messaging_limit_tier=str(
                data.get("whatsapp_business_manager_messaging_limit")
                or data.get("messaging_limit_tier")
                or ""
            ),
            throughput_level=str(throughput.get("level") or ""),
            raw=data,
        )

    # --- HTTP -----------------------------------------------------------------------------------

    def _require_waba(self) -> str:
        if not self.waba_id:
            raise ValidationError("This call needs the WhatsApp Business Account ID (waba_id).")
        return self.waba_id

    def _post_json(self, path: str, payload: dict) -> requests.Response:
        return self._request("POST", path, json=payload)

    def _request(
        self,
        method: str,
        path: str = "",
        *,
        url: str | None = None,
        idempotent: bool | None = None,
        expected_media: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        url = url or f"{self.graph_url}/{path}"
        if idempotent is None:
            idempotent = method in ("GET", "DELETE")
        label = f"{method} {path or 'media-url'}"
        attempt = 0
        while True:
            try:
                with waiting_outside():
                    response = self._session.request(
                        method,
                        url,
                        headers={"Authorization": f"Bearer {self._access_token}"},
                        timeout=self.timeout,
                        **kwargs,
                    )
            except requests.RequestException as exc:
                error = _transport_error(exc, idempotent)
            else:
                if response.ok:
                    return response
                error = self._response_error(response, expected_media)
                if not idempotent and response.status_code >= 500 and error.retryable:
                    # Meta may have accepted the request before failing: a blind retry could
                    # send the message twice.
                    error.ambiguous = True
            delay = self._retry_delay(error, attempt)
            logger.warning(
                "whatsapp %s failed pnid=%s status=%s code=%s attempt=%d%s",
                label,
                self.phone_number_id,
                error.http_status,
                error.code,
                attempt + 1,
                f" retry_in={delay:.2f}s" if delay is not None else "",
            )
            if delay is None:
                raise error
            with waiting_outside():
                time.sleep(delay)
            attempt += 1

    @staticmethod
    def _response_error(response: requests.Response, expected_media: bool) -> WhatsAppError:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        finally:
            response.close()
        error = error_from_response(response.status_code, body, headers=response.headers)
        if (
            expected_media
            and response.status_code in (404, 410)
            and not isinstance(error, AuthError)
        ):
            return MediaError(
                "The media link expired or is invalid; fetch a fresh one with get_media().",
                title="Media URL expired",
                http_status=response.status_code,
            )
        return error

    def _retry_delay(self, error: WhatsAppError, attempt: int) -> float | None:
        """Seconds to sleep before the next attempt, or None to raise now."""
        if not error.retryable or error.ambiguous or attempt >= self.max_retries:
            return None
        backoff = min(self.backoff_max, self.backoff_base * 2**attempt)
        delay = backoff / 2 + random.uniform(0, backoff / 2)  # "equal jitter"
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay if delay <= self.max_retry_delay else None


def _recipient(to: str) -> dict[str, str]:
    if not isinstance(to, str) or not to.strip():
        raise ValidationError("The recipient is missing.")
    to = to.strip()
    if validation.is_bsuid(to):
        return {"recipient": to}
    digits = validation.normalize_phone(to)
    if digits is None:
        raise ValidationError(
            f"{to!r} is not a phone number with country code (e.g. +55 11 98888-7777) nor a "
            "WhatsApp user ID."
        )
    return {"to": digits}


def _raise_problem(problem: validation.Problem | None) -> None:
    if problem is not None:
        raise ValidationError(problem.details)


def _too_large(size: int, limit: int) -> MediaError:
    return MediaError(
        f"The file is too large to download ({size} bytes; the limit is {limit}).",
        title="Media too large",
    )


def _transport_error(exc: requests.RequestException, idempotent: bool) -> WhatsAppError:
    """Classify a network failure. A failure to connect never reached WhatsApp, so it is safe to
    retry; a lost answer to a send may hide a delivered message."""
    never_sent = isinstance(exc, requests.ConnectTimeout) or _is_connect_refused(exc)
    name = type(exc).__name__
    if never_sent or idempotent:
        return ServerError(
            "Could not reach WhatsApp. Try again in a few minutes.",
            title="Connection error",
            details=name,
            retryable=True,
        )
    return ServerError(
        "WhatsApp did not answer; the message may or may not have been sent.",
        title="No response",
        details=name,
        retryable=True,
        ambiguous=True,
    )


def _is_connect_refused(exc: requests.RequestException) -> bool:
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)
