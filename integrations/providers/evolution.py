"""WhatsApp Web numbers through Evolution API v2 (github.com/EvolutionAPI/evolution-api), an
open-source server that runs WhatsApp Web sessions: one Evolution *instance* per number, paired
by scanning a QR code with the phone.

Calls are Evolution's REST routes with the server's global key in the ``apikey`` header, made
through ``integrations.egress`` (an organization's server must be public unless the operator
lists it in ``EVOLUTION_PRIVATE_URLS``; the installation's own ``EVOLUTION_API_URL`` may be
private). Webhooks carry no signature, so each number has a secret that Porfin puts in the
webhook URL it gives the instance (``/webhooks/evolution/<key>/<secret>/``); a delivery without
it is refused before anything is stored.

Evolution's messages (Baileys' ``proto.IMessage``: ``conversation``, ``imageMessage``...) are
translated to the Cloud API's shapes, the neutral inbox model (``integrations.events``).
Group chats are ignored unless ``EVOLUTION_GROUPS`` is on.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import mimetypes
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import requests
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from integrations import egress
from integrations.errors import (
    AccountError,
    AuthError,
    IntegrationError,
    InvalidRequestError,
    MediaError,
    RecipientError,
    ServerError,
)
from integrations.events import (
    ConnectionUpdate,
    InboundMessage,
    OwnMessage,
    PayloadError,
    RejectedItem,
    StatusUpdate,
)
from integrations.providers.base import (
    Capabilities,
    ChannelProvider,
    ConnectionInfo,
    MediaInfo,
    WebhookVerdict,
)
from integrations.providers.registry import register

logger = logging.getLogger(__name__)

WEBHOOK_EVENTS = [
    "QRCODE_UPDATED",
    "CONNECTION_UPDATE",
    "MESSAGES_UPSERT",
    "MESSAGES_UPDATE",
    "MESSAGES_DELETE",
    "SEND_MESSAGE",
]
TIMEOUT = (5, 30)
OUTBOX = "evolution-outbox"  # files uploaded for sending, until the send reads them
# Baileys' WAMessageStatus, as Evolution sends it (names in v2, numbers in older versions).
STATUSES = {
    "SERVER_ACK": "sent",
    "DELIVERY_ACK": "delivered",
    "READ": "read",
    "PLAYED": "read",
    "ERROR": "failed",
    2: "sent",
    3: "delivered",
    4: "read",
    5: "read",
    0: "failed",
}
MEDIA_KEYS = {
    "imageMessage": "image",
    "videoMessage": "video",
    "audioMessage": "audio",
    "documentMessage": "document",
    "stickerMessage": "sticker",
}


@dataclass(frozen=True)
class Server:
    url: str
    api_key: str
    private_ok: bool  # the operator named it: it may be on a private network


def server_for(number) -> Server:
    """The Evolution server of ``number``: its organization's, or the installation's
    (``EVOLUTION_API_URL``), or the embedded emulator when the sandbox is on."""
    own = number.evolution_server
    if own is not None:
        allowed = own.base_url.rstrip("/") in [
            u.rstrip("/") for u in settings.EVOLUTION_PRIVATE_URLS
        ]
        return Server(own.base_url.rstrip("/"), own.api_key, allowed)
    if settings.EVOLUTION_API_URL:
        return Server(settings.EVOLUTION_API_URL.rstrip("/"), settings.EVOLUTION_API_KEY, True)
    if settings.SANDBOX_ENABLED:
        return Server(
            settings.SANDBOX_EVOLUTION_URL.rstrip("/"), settings.SANDBOX_EVOLUTION_KEY, True
        )
    raise AccountError(
        "No Evolution API server is configured for WhatsApp Web numbers.",
        title="No Evolution API server",
        details="Set EVOLUTION_API_URL and EVOLUTION_API_KEY, or add a server in Settings.",
    )


def webhook_url(number) -> str:
    """Where the number's instance sends its events: the secret travels in the path."""
    base = settings.EVOLUTION_WEBHOOK_BASE_URL.rstrip("/")
    return f"{base}/webhooks/evolution/{number.webhook_key}/{number.webhook_secret}/"


class EvolutionClient:
    """Evolution API v2 calls for one instance."""

    def __init__(self, server: Server, instance: str) -> None:
        self.server = server
        self.instance = instance
        allow = [server.url] if server.private_ok else []
        self.session = egress.session(allow=allow)
        self.session.headers.update({"apikey": server.api_key})

    def call(self, method: str, path: str, payload: Any = None, *, sends: bool = False) -> Any:
        url = f"{self.server.url}/{path.lstrip('/')}"
        try:
            response = self.session.request(
                method, url, json=payload, timeout=TIMEOUT, allow_redirects=False
            )
        except egress.UnsafeURL as error:
            raise AccountError(str(error), title="Server not allowed", details=url) from error
        except requests.Timeout as error:
            raise ServerError(
                "Evolution API did not answer in time.",
                title="Timeout",
                details=type(error).__name__,
                permanent=False,
                ambiguous=sends and isinstance(error, requests.ReadTimeout),
            ) from error
        except requests.RequestException as error:
            raise ServerError(
                "Could not reach the Evolution API server. Try again in a few minutes.",
                title="Connection error",
                details=type(error).__name__,
                permanent=False,
            ) from error
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = {"raw": response.text[:500]}
        if response.status_code >= 400:
            raise _error(response.status_code, data)
        return data


def _error(status: int, data: Any) -> IntegrationError:
    """An Evolution error answer (``{"status", "error", "response": {"message": [...]}}``)."""
    message = data.get("response", {}).get("message") if isinstance(data, dict) else None
    details = json.dumps(message if message is not None else data, ensure_ascii=False)[:1000]
    if status in (401, 403) and "in use" not in details:
        return AuthError(
            "Evolution API refused the API key.",
            title="Unauthorized",
            details=details,
            http_status=status,
        )
    if status == 404:
        return AccountError(
            "This WhatsApp Web number's session does not exist on the Evolution server; "
            "connect it again.",
            title="Instance not found",
            details=details,
            http_status=status,
        )
    if status == 400 and '"exists": false' in details:
        return RecipientError(
            "This phone number is not on WhatsApp.",
            title="Not a WhatsApp number",
            details=details,
            http_status=status,
        )
    if status == 429 or status >= 500:
        return ServerError(
            "The Evolution API server failed; the message will be retried.",
            title=f"Evolution API error {status}",
            details=details,
            http_status=status,
            permanent=False,
        )
    return InvalidRequestError(
        "Evolution API refused the request.",
        title=f"Evolution API error {status}",
        details=details,
        http_status=status,
    )


def _jid(wa_id: str) -> str:
    return wa_id if "@" in wa_id else f"{''.join(c for c in wa_id if c.isdigit())}@s.whatsapp.net"


def _digits(jid: str) -> str:
    return jid.split("@", 1)[0].split(":", 1)[0]


@register("evolution")
class EvolutionProvider(ChannelProvider):
    """A WhatsApp Web number: no service window, no templates, no official rate tier (a
    conservative pace and a daily cap instead, see ``integrations.web``)."""

    capabilities = Capabilities(
        service_window=None,
        templates=False,
        interactive=False,
        reactions=True,
        read_receipts=True,
        media=True,
        max_per_second=1.0,
        daily_cap=200,  # the default; a number's own ``daily_cap`` or EVOLUTION_DAILY_CAP wins
    )

    @cached_property
    def client(self) -> EvolutionClient:
        return EvolutionClient(server_for(self.number), self.number.evolution_instance)

    @property
    def instance(self) -> str:
        return self.number.evolution_instance

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
        route, payload = self._send_request(to, message_type, content)
        if reply_to and message_type != "reaction":
            payload["quoted"] = {"key": {"remoteJid": _jid(to), "fromMe": False, "id": reply_to}}
        data = self.client.call("POST", f"/message/{route}/{self.instance}", payload, sends=True)
        key_id = (data.get("key") or {}).get("id") if isinstance(data, dict) else None
        if not key_id:
            raise ServerError(
                "Evolution API did not return the message's id.",
                title="Unexpected response",
                details=json.dumps(data)[:500],
                ambiguous=True,
            )
        return str(key_id)

    def _send_request(self, to: str, message_type: str, content: dict) -> tuple[str, dict]:
        number = _digits(to)
        if message_type == "text":
            return "sendText", {
                "number": number,
                "text": content.get("body", ""),
                "linkPreview": bool(content.get("preview_url")),
            }
        if message_type in ("image", "video", "document"):
            media, mime_type = self._media_source(content)
            payload = {"number": number, "mediatype": message_type, "mimetype": mime_type}
            payload["media"] = media
            if content.get("caption"):
                payload["caption"] = content["caption"]
            if content.get("filename"):
                payload["fileName"] = content["filename"]
            return "sendMedia", payload
        if message_type == "audio":
            media, _mime_type = self._media_source(content)
            return "sendWhatsAppAudio", {"number": number, "audio": media}
        if message_type == "sticker":
            media, _mime_type = self._media_source(content)
            return "sendSticker", {"number": number, "sticker": media}
        if message_type == "location":
            return "sendLocation", {
                "number": number,
                "latitude": float(content.get("latitude")),
                "longitude": float(content.get("longitude")),
                "name": content.get("name") or "",
                "address": content.get("address") or "",
            }
        if message_type == "contacts":
            cards = []
            given = content if isinstance(content, list) else content.get("contacts") or []
            for card in given:
                phones = card.get("phones") or [{}]
                cards.append(
                    {
                        "fullName": (card.get("name") or {}).get("formatted_name", ""),
                        "wuid": phones[0].get("wa_id") or _digits(phones[0].get("phone", "")),
                        "phoneNumber": phones[0].get("phone", ""),
                        "organization": (card.get("org") or {}).get("company", ""),
                        "email": ((card.get("emails") or [{}])[0]).get("email", ""),
                    }
                )
            return "sendContact", {"number": number, "contact": cards}
        if message_type == "reaction":
            return "sendReaction", {
                "key": {"remoteJid": _jid(to), "fromMe": False, "id": content["message_id"]},
                "reaction": content.get("emoji") or "",
            }
        raise self.unsupported(f"{message_type} messages")

    def _media_source(self, content: dict) -> tuple[str, str]:
        """The media to send (base64 of a file uploaded here, or a public link) and its type."""
        if content.get("link"):
            link = content["link"]
            return link, mimetypes.guess_type(link)[0] or "application/octet-stream"
        media_id = str(content.get("id") or "")
        path = f"{OUTBOX}/{media_id}"
        if "/" in media_id or not media_id or not default_storage.exists(path):
            raise MediaError(
                "The file to send is no longer available; attach it again.",
                title="Media not found",
                details=media_id,
            )
        with default_storage.open(path, "rb") as handle:
            data = handle.read()
        mime_type = mimetypes.guess_type(media_id)[0] or "application/octet-stream"
        return base64.b64encode(data).decode(), mime_type

    def upload_media(self, *, data: bytes, mime_type: str, filename: str) -> str:
        """Evolution has no upload: keep the file here until the send reads it (as base64)."""
        extension = mimetypes.guess_extension(mime_type.split(";")[0].strip()) or ".bin"
        media_id = f"{uuid.uuid4().hex}{extension}"
        default_storage.save(f"{OUTBOX}/{media_id}", ContentFile(data))
        return media_id

    def mark_read(self, message_id: str, *, to: str = "") -> None:
        self.client.call(
            "POST",
            f"/chat/markMessageAsRead/{self.instance}",
            {"readMessages": [{"remoteJid": _jid(to), "fromMe": False, "id": message_id}]},
        )

    def send_presence(self, *, to: str, presence: str = "composing", delay_ms: int = 1200) -> None:
        """Show "typing…" (``composing``) or "recording audio…" to the customer for a while."""
        self.client.call(
            "POST",
            f"/chat/sendPresence/{self.instance}",
            {"number": _digits(to), "presence": presence, "delay": delay_ms},
        )

    def download_media(
        self,
        media_id: str,
        *,
        max_bytes: int,
        check: Callable[[MediaInfo], None] | None = None,
    ) -> tuple[MediaInfo, bytes]:
        """The file of the message whose key id is ``media_id``: from the webhook's own base64
        when the instance sends it (``webhook.base64``), else ``getBase64FromMediaMessage``."""
        data = _base64_from_log(self.number, media_id)
        if data is None:
            data = self.client.call(
                "POST",
                f"/chat/getBase64FromMediaMessage/{self.instance}",
                {"message": {"key": {"id": media_id}}, "convertToMp4": False},
            )
        mime_type = str(data.get("mimetype") or "application/octet-stream").split(";")[0]
        encoded = str(data.get("base64") or "")
        if encoded.startswith("data:"):
            encoded = encoded.partition(",")[2]
        size = len(encoded) * 3 // 4
        info = MediaInfo(id=media_id, mime_type=mime_type, file_size=size)
        if check is not None:
            check(info)
        if size > max_bytes + 3:
            raise MediaError("The file is too large.", title="Media too large")
        try:
            raw = base64.b64decode(encoded, validate=False)
        except (binascii.Error, ValueError) as error:
            raise MediaError("The file could not be read.", title="Bad media") from error
        if not raw:
            raise MediaError(
                "Evolution API returned no file.", title="Media not available", permanent=False
            )
        return info, raw

    # --- Connection -----------------------------------------------------------------------------

    def connect(self) -> ConnectionInfo:
        """Create the instance (with its webhook) the first time; afterwards point its webhook
        at Porfin again and ask for a fresh QR code."""
        create = {
            "instanceName": self.instance,
            "qrcode": True,
            "integration": "WHATSAPP-BAILEYS",
            "groupsIgnore": not settings.EVOLUTION_GROUPS,
            "webhook": self._webhook_config(),
        }
        try:
            data = self.client.call("POST", "/instance/create", create)
        except (AuthError, InvalidRequestError) as error:
            if "in use" not in (error.details or "") and "already" not in (error.details or ""):
                raise
            self.client.call(
                "POST", f"/webhook/set/{self.instance}", {"webhook": self._webhook_config()}
            )
            data = self.client.call("GET", f"/instance/connect/{self.instance}")
            return _connection_info(data)
        return _connection_info(data.get("qrcode") or {}, data.get("instance") or {})

    def _webhook_config(self) -> dict:
        return {
            "enabled": True,
            "url": webhook_url(self.number),
            "byEvents": False,
            # Media is fetched with getBase64FromMediaMessage: base64 bodies would pass
            # WEBHOOK_MAX_BODY_BYTES for large files (refused, so lost).
            "base64": False,
            "events": WEBHOOK_EVENTS,
        }

    def connection_state(self) -> ConnectionInfo:
        data = self.client.call("GET", f"/instance/connectionState/{self.instance}")
        state = ((data.get("instance") or {}).get("state")) or data.get("state") or "close"
        return ConnectionInfo(state=str(state))

    def logout(self) -> None:
        self.client.call("DELETE", f"/instance/logout/{self.instance}")

    # --- Webhooks -------------------------------------------------------------------------------

    def verify_webhook(self, *, headers: Mapping[str, str], body: bytes) -> WebhookVerdict:
        """The number's secret, from the URL's path (``x-porfin-path-secret``, set by our view)
        or an ``apikey`` / ``x-webhook-secret`` header."""
        given = (
            headers.get("x-porfin-path-secret")
            or headers.get("x-webhook-secret")
            or headers.get("apikey")
            or ""
        )
        if not given:
            return WebhookVerdict.UNSIGNED
        expected = self.number.webhook_secret or ""
        if expected and hmac.compare_digest(given.encode(), expected.encode()):
            return WebhookVerdict.AUTHENTIC
        return WebhookVerdict.FORGED

    def parse_webhook(self, body: bytes) -> list:
        try:
            delivery = json.loads(body)
        except (ValueError, RecursionError) as error:
            raise PayloadError(f"not JSON: {error}") from error
        if not isinstance(delivery, dict) or not isinstance(delivery.get("event"), str):
            raise PayloadError("an Evolution webhook is an object with an event name")
        event = delivery["event"].upper().replace(".", "_").replace("-", "_")
        data = delivery.get("data")
        items = data if isinstance(data, list) else [data]
        parsed: list = []
        for index, item in enumerate(items):
            where = f"{event.lower()}[{index}]"
            if not isinstance(item, dict):
                parsed.append(RejectedItem(where=where, reason="not an object", raw=item))
                continue
            try:
                parsed += self._parse_item(event, item, where)
            except (PayloadError, KeyError, TypeError, ValueError, AttributeError) as error:
                parsed.append(RejectedItem(where=where, reason=str(error), raw=item))
        return parsed

    def _parse_item(self, event: str, data: dict, where: str) -> list:
        if event in ("MESSAGES_UPSERT", "SEND_MESSAGE"):
            message = self._message(data, where)
            if message is None:
                return []
            from_me = bool((data.get("key") or {}).get("fromMe")) or event == "SEND_MESSAGE"
            return [OwnMessage(message=message) if from_me else message]
        if event == "MESSAGES_UPDATE":
            return self._status(data)
        if event == "MESSAGES_DELETE":
            key = data.get("key") if isinstance(data.get("key"), dict) else data
            jid = str(key.get("remoteJid") or "")
            if not key.get("id") or self._ignored_chat(jid):
                return []
            return [self._inbound(data, key, "revoke", {"original_message_id": key["id"]})]
        if event == "CONNECTION_UPDATE":
            return [
                ConnectionUpdate(
                    state=str(data.get("state") or "close"),
                    phone=_digits(str(data.get("wuid") or "")),
                    profile_name=str(data.get("profileName") or "")[:200],
                    reason=str(data.get("statusReason") or ""),
                )
            ]
        if event == "QRCODE_UPDATED":
            qrcode = data.get("qrcode") if isinstance(data.get("qrcode"), dict) else data
            return [ConnectionUpdate(state="connecting", qr=str(qrcode.get("base64") or ""))]
        return []  # chats, contacts, presence...: not used

    def _ignored_chat(self, jid: str) -> bool:
        if jid.endswith("@g.us"):
            return not settings.EVOLUTION_GROUPS
        return jid.endswith("@broadcast") or jid.endswith("@newsletter") or not jid

    def _status(self, data: dict) -> list:
        key = data.get("key") if isinstance(data.get("key"), dict) else {}
        key_id = data.get("keyId") or key.get("id")
        jid = str(data.get("remoteJid") or key.get("remoteJid") or "")
        from_me = data.get("fromMe", key.get("fromMe"))
        raw_status = data.get("status")
        if raw_status is None and isinstance(data.get("update"), dict):
            raw_status = data["update"].get("status")
        if raw_status == "DELETED":
            return [
                self._inbound(
                    data,
                    {"id": key_id, "remoteJid": jid},
                    "revoke",
                    {"original_message_id": key_id},
                )
            ]
        status = STATUSES.get(raw_status)
        if not key_id or not from_me or status is None or self._ignored_chat(jid):
            return []
        return [
            StatusUpdate(
                phone_number_id=self.number.phone_number_id,
                display_phone_number=self.number.display_phone_number,
                waba_id="",
                wamid=str(key_id),
                status=status,
                timestamp=_timestamp(data.get("messageTimestamp") or data.get("date_time")),
                recipient_id=_digits(jid),
                raw=data,
            )
        ]

    def _message(self, data: dict, where: str) -> InboundMessage | None:
        key = data.get("key")
        if not isinstance(key, dict) or not key.get("id"):
            raise PayloadError(f"{where} has no key.id")
        jid = _customer_jid(key)
        if self._ignored_chat(jid):
            logger.debug("Evolution message in %s ignored (groups and broadcasts)", jid)
            return None
        message = data.get("message")
        if not isinstance(message, dict):
            raise PayloadError(f"{where} has no message object")
        message_type, content, context = _content(message, key["id"])
        if data.get("contextInfo") and not context:
            context = _context(data["contextInfo"])
        return self._inbound(data, {**key, "remoteJid": jid}, message_type, content, context)

    def _inbound(self, data, key, message_type, content, context=None) -> InboundMessage:
        wamid = str(key.get("id") or data.get("keyId") or "")
        if message_type in ("revoke", "edit"):
            # A change is a message of its own in WhatsApp: keep its id apart from its target's.
            wamid = f"{wamid}:{message_type}:{data.get('messageTimestamp') or ''}"
        return InboundMessage(
            phone_number_id=self.number.phone_number_id,
            display_phone_number=self.number.display_phone_number,
            waba_id="",
            wa_id=_digits(str(key.get("remoteJid") or "")),
            user_id="",
            profile_name=str(data.get("pushName") or "")[:256] if not key.get("fromMe") else "",
            wamid=wamid[:128],
            timestamp=_timestamp(data.get("messageTimestamp")),
            type=message_type,
            content=content,
            context=context,
            raw=data,
        )


def _customer_jid(key: dict) -> str:
    """The chat's JID; a ``@lid`` (hidden number) gives way to the phone JID when Evolution
    adds it (``remoteJidAlt`` / ``senderPn``)."""
    jid = str(key.get("remoteJid") or "")
    if jid.endswith("@lid"):
        jid = str(key.get("remoteJidAlt") or key.get("senderPn") or jid)
    return jid


def _timestamp(value: Any) -> datetime:
    if isinstance(value, dict):  # protobuf Long: {"low": ..., "high": ..., "unsigned": ...}
        value = value.get("low")
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        pass
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    return timezone.now()


def _context(info: Any) -> dict | None:
    """A quoted reply's target (Baileys' ``contextInfo.stanzaId``), as Cloud API's context."""
    if not isinstance(info, dict):
        return None
    context: dict[str, Any] = {}
    if info.get("stanzaId"):
        context["id"] = str(info["stanzaId"])
        if info.get("participant"):
            context["from"] = _digits(str(info["participant"]))
    if info.get("isForwarded"):
        context["forwarded"] = True
        if int(info.get("forwardingScore") or 0) >= 5:
            context["frequently_forwarded"] = True
    return context or None


def _unwrap(message: dict) -> dict:
    """Baileys wraps some messages (view-once, ephemeral, document with caption, edited)."""
    for wrapper in (
        "ephemeralMessage",
        "viewOnceMessage",
        "viewOnceMessageV2",
        "viewOnceMessageV2Extension",
        "documentWithCaptionMessage",
        "editedMessage",
    ):
        inner = message.get(wrapper)
        if isinstance(inner, dict) and isinstance(inner.get("message"), dict):
            return _unwrap(inner["message"])
    return message


def _content(message: dict, key_id: str) -> tuple[str, dict, dict | None]:
    """(Cloud API type, content, context) of a Baileys message."""
    message = _unwrap(message)
    if "conversation" in message and isinstance(message["conversation"], str):
        return "text", {"body": message["conversation"]}, None
    extended = message.get("extendedTextMessage")
    if isinstance(extended, dict):
        return (
            "text",
            {"body": str(extended.get("text") or "")},
            _context(extended.get("contextInfo")),
        )
    for name, kind in MEDIA_KEYS.items():
        media = message.get(name)
        if isinstance(media, dict):
            return kind, _media_content(kind, media, key_id), _context(media.get("contextInfo"))
    for name in ("locationMessage", "liveLocationMessage"):
        location = message.get(name)
        if isinstance(location, dict):
            content = {
                "latitude": location.get("degreesLatitude"),
                "longitude": location.get("degreesLongitude"),
            }
            for field, source in (("name", "name"), ("address", "address"), ("url", "url")):
                if location.get(source):
                    content[field] = str(location[source])
            return "location", content, _context(location.get("contextInfo"))
    if isinstance(message.get("contactMessage"), dict):
        card = message["contactMessage"]
        return "contacts", {"contacts": [_card(card)]}, _context(card.get("contextInfo"))
    if isinstance(message.get("contactsArrayMessage"), dict):
        cards = message["contactsArrayMessage"].get("contacts") or []
        return "contacts", {"contacts": [_card(c) for c in cards if isinstance(c, dict)]}, None
    reaction = message.get("reactionMessage")
    if isinstance(reaction, dict):
        target = (reaction.get("key") or {}).get("id") or ""
        return (
            "reaction",
            {"message_id": str(target), "emoji": str(reaction.get("text") or "")},
            None,
        )
    protocol = message.get("protocolMessage")
    if isinstance(protocol, dict):
        target = str((protocol.get("key") or {}).get("id") or "")
        kind = protocol.get("type")
        if kind in ("REVOKE", 0):
            return "revoke", {"original_message_id": target}, None
        if kind in ("MESSAGE_EDIT", 14) and isinstance(protocol.get("editedMessage"), dict):
            inner_type, inner, _context_ = _content(protocol["editedMessage"], key_id)
            return (
                "edit",
                {
                    "original_message_id": target,
                    "message": {"type": inner_type, inner_type: inner},
                },
                None,
            )
    return "unsupported", {"type": next(iter(message), "unknown")}, None


def _media_content(kind: str, media: dict, key_id: str) -> dict:
    """Media as Cloud API names it; the id is the message's key id, which
    ``getBase64FromMediaMessage`` takes to fetch the file."""
    default_mime = "image/webp" if kind == "sticker" else "application/octet-stream"
    content: dict[str, Any] = {
        "id": key_id,
        "mime_type": str(media.get("mimetype") or default_mime),
    }
    if media.get("caption"):
        content["caption"] = str(media["caption"])
    if kind == "document":
        content["filename"] = str(media.get("fileName") or media.get("title") or "file")
    if kind == "audio":
        content["voice"] = bool(media.get("ptt"))
    if kind == "sticker":
        content["animated"] = bool(media.get("isAnimated"))
    return content


def _card(card: dict) -> dict:
    """A vCard (``contactMessage``) as a Cloud API contact card."""
    name = str(card.get("displayName") or "")
    phones, emails, org = [], [], ""
    for line in str(card.get("vcard") or "").splitlines():
        field, _, value = line.partition(":")
        field_name = field.split(";")[0].upper()
        if field_name == "TEL":
            wa_id = ""
            for param in field.split(";"):
                if param.lower().startswith("waid="):
                    wa_id = param[5:]
            phones.append({"phone": value.strip(), **({"wa_id": wa_id} if wa_id else {})})
        elif field_name == "EMAIL":
            emails.append({"email": value.strip()})
        elif field_name == "ORG":
            org = value.strip().strip(";")
        elif field_name == "FN" and not name:
            name = value.strip()
    result: dict[str, Any] = {"name": {"formatted_name": name or "?"}, "phones": phones}
    if emails:
        result["emails"] = emails
    if org:
        result["org"] = {"company": org}
    return result


def _connection_info(qrcode: dict, instance: dict | None = None) -> ConnectionInfo:
    """``/instance/connect`` answers a QR (``base64``, ``code``, ``pairingCode``) or, once
    paired, ``{"instance": {"state": "open"}}``; ``/instance/create`` nests both."""
    instance = instance or {}
    state = (qrcode.get("instance") or {}).get("state") or instance.get("state")
    state = state or instance.get("status")
    qr = str(qrcode.get("base64") or "")
    if not state:
        state = "connecting" if qr or qrcode.get("code") else "close"
    if state in ("created",):
        state = "connecting"
    return ConnectionInfo(
        state=str(state), qr=qr, pairing_code=str(qrcode.get("pairingCode") or "")
    )


def _base64_from_log(number, key_id: str) -> dict | None:
    """The file of message ``key_id`` if its webhook carried it (``webhook.base64`` on)."""
    from integrations.models import WebhookEvent

    rows = WebhookEvent.objects.filter(
        number=number, body__bytes_contains=f'"{key_id}"'.encode()
    ).order_by("-pk")[:3]
    for row in rows:
        try:
            delivery = json.loads(bytes(row.body))
        except ValueError:
            continue
        data = delivery.get("data") if isinstance(delivery, dict) else None
        if not isinstance(data, dict) or (data.get("key") or {}).get("id") != key_id:
            continue
        message = data.get("message") or {}
        if message.get("base64"):
            inner = _unwrap(message)
            mime = next(
                (inner[k].get("mimetype") for k in MEDIA_KEYS if isinstance(inner.get(k), dict)),
                None,
            )
            return {"base64": message["base64"], "mimetype": mime or "application/octet-stream"}
    return None
