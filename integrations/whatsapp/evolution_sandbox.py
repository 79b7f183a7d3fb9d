"""A local Evolution API v2 emulator (WhatsApp Web numbers), as a plain ASGI 3 application.

Enough of Evolution's REST API for Porfin's client to run against it unchanged (header
``apikey``: the global key), with webhooks POSTed in Evolution's shapes
(``{"event": "messages.upsert", "instance", "data", "destination", "date_time", "sender",
"server_url", "apikey"}``):

- ``POST /instance/create``, ``GET /instance/connect/{i}``, ``GET /instance/connectionState/{i}``,
  ``DELETE /instance/logout/{i}``, ``POST /webhook/set/{i}``
- ``POST /message/sendText|sendMedia|sendWhatsAppAudio|sendSticker|sendLocation|sendContact|
  sendReaction/{i}``
- ``POST /chat/markMessageAsRead/{i}``, ``/chat/getBase64FromMediaMessage/{i}``,
  ``/chat/sendPresence/{i}``

Control API (the sandbox phone page, tests):

- ``GET /_sandbox/instances``; ``POST /_sandbox/instances/{i}/pair`` (a phone scans the QR)
- ``POST /_sandbox/instances/{i}/inbound`` (a customer writes: ``{"from", "name", "type", ...}``
  or a raw Baileys ``message``), ``POST /_sandbox/instances/{i}/event`` (any webhook as given)
- ``GET /_sandbox/instances/{i}/sent`` (what Porfin sent), ``POST /_sandbox/reset``
- ``POST /_sandbox/instances/{i}/slow`` ``{"seconds"}``: sends still go out (and echo), but
  their answers come that late (a client's read timeout: an ambiguous send)

Served by the web process at ``/sandbox/evolution`` when the sandbox is on (embedded default),
or by ``SandboxServer(EvolutionSandboxApp())`` in tests.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from .sandbox.delivery import Scheduler
from .sandbox.http import BodyTooLarge, Request, Response, read_request

logger = logging.getLogger(__name__)

DEFAULT_KEY = "sandbox-evolution-key"
SEND_ROUTES = {
    "sendText",
    "sendMedia",
    "sendWhatsAppAudio",
    "sendSticker",
    "sendLocation",
    "sendContact",
    "sendReaction",
}


def qr_data_uri(text: str) -> str:
    """A real, scannable QR code of ``text`` as an SVG ``data:`` URI."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


@dataclass
class Instance:
    name: str
    token: str
    instance_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: str = "connecting"
    webhook: dict = field(default_factory=dict)
    qr_code: str = ""
    qr_count: int = 0
    phone: str = ""
    profile_name: str = "Porfin Sandbox"
    sent: list[dict] = field(default_factory=list)  # what the business sent (API)
    messages: dict[str, dict] = field(default_factory=dict)  # key id -> message record
    media: dict[str, tuple[str, str]] = field(default_factory=dict)  # key id -> (mime, b64)
    read: list[str] = field(default_factory=list)
    presence: list[dict] = field(default_factory=list)
    slow_answers: float = 0.0  # seconds each send's answer waits (the send itself goes out)

    def summary(self) -> dict:
        return {
            "instanceName": self.name,
            "instanceId": self.instance_id,
            "state": self.state,
            "phone": self.phone,
            "webhook": self.webhook.get("url", ""),
            "sent": len(self.sent),
        }


def _now() -> int:
    return int(time.time())


def _key_id() -> str:
    return "3EB0" + secrets.token_hex(8).upper()


class EvolutionSandboxApp:
    """The emulator; ``api_key`` is the server's global key."""

    def __init__(
        self, *, api_key: str = DEFAULT_KEY, delivery_delay: float = 0.05, restore=None
    ) -> None:
        """``restore``: called once, at the first request, for the sessions a real server would
        have kept across a restart (``[{"name", "phone", "webhook"}]``, paired)."""
        self.api_key = api_key
        self.restore = restore
        self.delivery_delay = delivery_delay
        self.instances: dict[str, Instance] = {}
        self.lock = threading.Lock()
        self.scheduler = Scheduler(workers=4)
        self.http = requests.Session()
        self.http.trust_env = False
        self.deliveries: list[dict] = []

    def close(self) -> None:
        self.scheduler.close()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if self.restore is not None:  # off the event loop: it reads the database
            await asyncio.get_running_loop().run_in_executor(None, self._restore)
        try:
            request = await read_request(scope, receive)
        except BodyTooLarge:
            await Response.json({"error": "too large"}, 413).send(send)
            return
        try:
            response = self.handle(request)
        except (ValueError, KeyError, TypeError) as error:
            response = _error(400, f"{type(error).__name__}: {error}")
        if response.hold:  # a send that went out but whose answer is late (a read timeout)
            await asyncio.sleep(response.hold)
        await response.send(send)

    # --- Routing --------------------------------------------------------------------------------

    def _restore(self) -> None:
        with self.lock:
            restore, self.restore = self.restore, None
        if restore is None:  # another request restored them
            return
        try:
            sessions = restore()
        except Exception:  # noqa: BLE001 (no database yet: nothing to restore)
            logger.warning("Evolution emulator: sessions not restored", exc_info=True)
            return
        with self.lock:
            for session in sessions:
                if session["name"] not in self.instances:
                    self.instances[session["name"]] = Instance(
                        name=session["name"],
                        token=uuid.uuid4().hex.upper(),
                        state="open",
                        phone=session.get("phone") or "5511900000000",
                        webhook=dict(session.get("webhook") or {}),
                    )

    def handle(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] == ["_sandbox"]:
            return self.control(request, parts[1:])
        if request.headers.get("apikey") != self.api_key:
            return Response.json(
                {"status": 401, "error": "Unauthorized", "response": {"message": "Unauthorized"}},
                401,
            )
        if parts == ["instance", "create"] and request.method == "POST":
            return self.create(request)
        if len(parts) != 3:
            return _error(404, f"Cannot {request.method} {request.path}")
        group, action, name = parts
        instance = self.instances.get(name)
        if instance is None:
            return _error(404, f'The "{name}" instance does not exist')
        if group == "instance" and action == "connect":
            return self.connect(instance)
        if group == "instance" and action == "connectionState":
            return Response.json({"instance": {"instanceName": name, "state": instance.state}})
        if group == "instance" and action == "logout" and request.method == "DELETE":
            if instance.state != "open":
                return _error(400, f'The "{name}" instance is not connected')
            self._set_state(instance, "close", reason=401)
            return Response.json(
                {
                    "status": "SUCCESS",
                    "error": False,
                    "response": {"message": "Instance logged out"},
                }
            )
        if group == "webhook" and action == "set":
            instance.webhook = dict(request.json().get("webhook") or {})
            return Response.json({"webhook": {"instanceName": name, **instance.webhook}}, 201)
        if group == "message" and action in SEND_ROUTES:
            return self.send(instance, action, request.json())
        if group == "chat":
            return self.chat(instance, action, request.json())
        return _error(404, f"Cannot {request.method} {request.path}")

    def create(self, request: Request) -> Response:
        body = request.json()
        name = str(body.get("instanceName") or "")
        if not name:
            return _error(400, "instanceName is required")
        with self.lock:
            if name in self.instances:
                return Response.json(
                    {
                        "status": 403,
                        "error": "Forbidden",
                        "response": {"message": [f'This name "{name}" is already in use.']},
                    },
                    403,
                )
            instance = Instance(name=name, token=str(body.get("token") or uuid.uuid4()).upper())
            instance.webhook = dict(body.get("webhook") or {})
            self.instances[name] = instance
        qrcode = self._new_qr(instance)
        return Response.json(
            {
                "instance": {
                    "instanceName": name,
                    "instanceId": instance.instance_id,
                    "integration": "WHATSAPP-BAILEYS",
                    "webhookWaBusiness": None,
                    "accessTokenWaBusiness": "",
                    "status": "connecting",
                },
                "hash": instance.token,
                "webhook": instance.webhook,
                "websocket": {},
                "rabbitmq": {},
                "sqs": {},
                "settings": {"groupsIgnore": bool(body.get("groupsIgnore"))},
                "qrcode": qrcode,
            },
            201,
        )

    def connect(self, instance: Instance) -> Response:
        if instance.state == "open":
            return Response.json({"instance": {"instanceName": instance.name, "state": "open"}})
        instance.state = "connecting"
        return Response.json(self._new_qr(instance))

    def _new_qr(self, instance: Instance) -> dict:
        instance.qr_count += 1
        code = f"2@{secrets.token_urlsafe(48)},{instance.name},{instance.qr_count}"
        instance.qr_code = code
        qrcode = {
            "pairingCode": None,
            "code": code,
            "base64": qr_data_uri(code),
            "count": instance.qr_count,
        }
        self.webhook(instance, "qrcode.updated", {"qrcode": {"instance": instance.name, **qrcode}})
        return qrcode

    def _set_state(self, instance: Instance, state: str, *, reason: int = 200) -> None:
        instance.state = state
        data: dict[str, Any] = {"instance": instance.name, "state": state, "statusReason": reason}
        if state == "open":
            data.update(
                wuid=f"{instance.phone}@s.whatsapp.net",
                profileName=instance.profile_name,
                profilePictureUrl=None,
            )
        self.webhook(instance, "connection.update", data)

    # --- The business's sends -------------------------------------------------------------------

    def send(self, instance: Instance, route: str, body: dict) -> Response:
        if instance.state != "open":
            return _error(400, "Connection Closed")
        if route == "sendReaction":
            key = body.get("key") or {}
            jid = str(key.get("remoteJid") or "")
            message = {"reactionMessage": {"key": key, "text": body.get("reaction", "")}}
            kind = "reactionMessage"
        else:
            number = "".join(c for c in str(body.get("number") or "") if c.isdigit())
            if len(number) < 8:
                return Response.json(
                    {
                        "status": 400,
                        "error": "Bad Request",
                        "response": {
                            "message": [{"exists": False, "jid": number, "number": number}]
                        },
                    },
                    400,
                )
            jid = f"{number}@s.whatsapp.net"
            kind, message = _business_message(route, body)
            if body.get("quoted"):
                quoted_id = ((body["quoted"] or {}).get("key") or {}).get("id")
                inner = message.get(kind)
                if isinstance(inner, dict) and quoted_id:
                    inner["contextInfo"] = {"stanzaId": quoted_id, "participant": jid}
                elif kind == "conversation" and quoted_id:
                    text = message.pop("conversation")
                    kind = "extendedTextMessage"
                    message[kind] = {"text": text, "contextInfo": {"stanzaId": quoted_id}}
        key = {"remoteJid": jid, "fromMe": True, "id": _key_id()}
        record = {
            "key": key,
            "pushName": "",
            "status": "PENDING",
            "message": message,
            "messageType": kind,
            "messageTimestamp": _now(),
            "instanceId": instance.instance_id,
            "source": "unknown",
        }
        with self.lock:
            instance.sent.append({"route": route, "body": body, "record": record})
            instance.messages[key["id"]] = record
        self.webhook(instance, "send.message", {**record, "status": "SERVER_ACK"}, delay=0.3)
        answer_delay = instance.slow_answers
        for status, delay in (("DELIVERY_ACK", 0.5),):
            self.webhook(
                instance,
                "messages.update",
                {
                    "messageId": str(uuid.uuid4()),
                    "keyId": key["id"],
                    "remoteJid": jid,
                    "fromMe": True,
                    "participant": jid,
                    "status": status,
                    "instanceId": instance.instance_id,
                },
                delay=delay,
            )
        response = Response.json(record, 201)
        response.hold = answer_delay
        return response

    def chat(self, instance: Instance, action: str, body: dict) -> Response:
        if action == "markMessageAsRead":
            ids = [str(m.get("id")) for m in body.get("readMessages") or []]
            instance.read.extend(ids)
            return Response.json({"message": "Read messages", "read": "success"}, 201)
        if action == "sendPresence":
            instance.presence.append(body)
            return Response.json({"presence": body.get("presence")}, 201)
        if action == "getBase64FromMediaMessage":
            key_id = str(((body.get("message") or {}).get("key") or {}).get("id") or "")
            if key_id not in instance.media:
                return _error(400, f"Message {key_id} not found")
            mime, data = instance.media[key_id]
            record = instance.messages.get(key_id, {})
            return Response.json(
                {
                    "mediaType": record.get("messageType", ""),
                    "fileName": f"{key_id}",
                    "caption": None,
                    "size": {"fileLength": len(data) * 3 // 4},
                    "mimetype": mime,
                    "base64": data,
                },
                201,
            )
        return _error(404, f"Cannot POST /chat/{action}")

    # --- Control API ----------------------------------------------------------------------------

    def control(self, request: Request, parts: list[str]) -> Response:
        if parts == ["instances"]:
            return Response.json([i.summary() for i in self.instances.values()])
        if parts == ["reset"] and request.method == "POST":
            with self.lock:
                self.instances.clear()
                self.deliveries.clear()
            return Response.json({"reset": True})
        if parts == ["deliveries"]:
            return Response.json(self.deliveries[-200:])
        if len(parts) != 3 or parts[0] != "instances":
            return _error(404, "unknown control route")
        instance = self.instances.get(parts[1])
        if instance is None:
            return _error(404, f"no instance {parts[1]}")
        action = parts[2]
        if action == "pair" and request.method == "POST":
            body = request.json() or {}
            instance.phone = "".join(c for c in str(body.get("phone") or "") if c.isdigit())
            instance.phone = instance.phone or "5511900000000"
            instance.profile_name = str(body.get("profile_name") or instance.profile_name)
            self._set_state(instance, "open")
            return Response.json(instance.summary())
        if action == "sent":
            return Response.json([s["record"] | {"route": s["route"]} for s in instance.sent])
        if action == "slow" and request.method == "POST":
            instance.slow_answers = float((request.json() or {}).get("seconds") or 0)
            return Response.json({"slow": instance.slow_answers})
        if action == "inbound" and request.method == "POST":
            if instance.state != "open":
                return _error(409, "the instance is not paired")
            return Response.json(self.inbound(instance, request.json() or {}), 201)
        if action == "event" and request.method == "POST":
            body = request.json() or {}
            self.webhook(instance, str(body["event"]), body.get("data"), delay=0)
            return Response.json({"queued": True}, 201)
        return _error(404, "unknown control route")

    def inbound(self, instance: Instance, spec: dict) -> dict:
        """A customer's message (``spec``: ``from``, ``name``, ``type`` and its fields, or a
        raw Baileys ``message``) delivered as ``messages.upsert``."""
        phone = "".join(c for c in str(spec.get("from") or "5511999990000") if c.isdigit())
        key = {"remoteJid": f"{phone}@s.whatsapp.net", "fromMe": bool(spec.get("from_me"))}
        key["id"] = str(spec.get("id") or _key_id())
        if spec.get("group"):
            key["remoteJid"] = f"{spec['group']}@g.us"
            key["participant"] = f"{phone}@s.whatsapp.net"
        message = spec.get("message") or _customer_message(spec)
        kind = next((k for k in message if k not in ("messageContextInfo", "base64")), "unknown")
        if spec.get("data_base64"):
            mime = str(spec.get("mime_type") or "application/octet-stream")
            instance.media[key["id"]] = (mime, str(spec["data_base64"]))
        data = {
            "key": key,
            "pushName": str(spec.get("name") or "Cliente Teste"),
            "status": "DELIVERY_ACK",
            "message": message,
            "messageType": kind,
            "messageTimestamp": int(spec.get("timestamp") or _now()),
            "instanceId": instance.instance_id,
            "source": "android",
        }
        instance.messages[key["id"]] = data
        self.webhook(instance, "messages.upsert", data, delay=0)
        return data

    # --- Webhooks -------------------------------------------------------------------------------

    def webhook(self, instance: Instance, event: str, data: Any, *, delay: float | None = None):
        config = instance.webhook
        url = config.get("url")
        if not url or config.get("enabled") is False:
            return
        events = config.get("events") or []
        if events and event.upper().replace(".", "_") not in events:
            return
        body = {
            "event": event,
            "instance": instance.name,
            "data": data,
            "destination": url,
            "date_time": datetime.now(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "sender": f"{instance.phone}@s.whatsapp.net" if instance.phone else None,
            "server_url": "http://sandbox-evolution",
            "apikey": instance.token,
        }
        headers = {"content-type": "application/json", **(config.get("headers") or {})}
        self.scheduler.call_later(
            self.delivery_delay if delay is None else delay,
            lambda: self._post(url, body, headers),
        )

    def _post(self, url: str, body: dict, headers: dict) -> None:
        try:
            response = self.http.post(url, json=body, headers=headers, timeout=10)
            status = response.status_code
        except requests.RequestException as error:
            status = 0
            # The path holds the number's secret: name only the host.
            logger.warning(
                "Evolution sandbox webhook to %s failed: %s", urlsplit(url).netloc, type(error)
            )
        self.deliveries.append({"event": body["event"], "status": status})
        del self.deliveries[:-500]


def _error(status: int, message: str) -> Response:
    names = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict"}
    return Response.json(
        {"status": status, "error": names.get(status, "Error"), "response": {"message": [message]}},
        status,
    )


def _business_message(route: str, body: dict) -> tuple[str, dict]:
    if route == "sendText":
        return "conversation", {"conversation": str(body.get("text") or "")}
    if route == "sendMedia":
        kind = f"{body.get('mediatype') or 'document'}Message"
        inner = {"mimetype": body.get("mimetype"), "caption": body.get("caption")}
        if body.get("fileName"):
            inner["fileName"] = body["fileName"]
        inner["fileLength"] = len(str(body.get("media") or "")) * 3 // 4
        return kind, {kind: inner}
    if route == "sendWhatsAppAudio":
        return "audioMessage", {"audioMessage": {"mimetype": "audio/ogg; codecs=opus", "ptt": True}}
    if route == "sendSticker":
        return "stickerMessage", {"stickerMessage": {"mimetype": "image/webp"}}
    if route == "sendLocation":
        return "locationMessage", {
            "locationMessage": {
                "degreesLatitude": body.get("latitude"),
                "degreesLongitude": body.get("longitude"),
                "name": body.get("name"),
                "address": body.get("address"),
            }
        }
    if route == "sendContact":
        cards = body.get("contact") or []
        contacts = [
            {
                "displayName": c.get("fullName"),
                "vcard": (
                    "BEGIN:VCARD\nVERSION:3.0\n"
                    f"FN:{c.get('fullName')}\n"
                    f"TEL;type=CELL;waid={c.get('wuid')}:{c.get('phoneNumber')}\nEND:VCARD"
                ),
            }
            for c in cards
        ]
        if len(contacts) == 1:
            return "contactMessage", {"contactMessage": contacts[0]}
        return "contactsArrayMessage", {"contactsArrayMessage": {"contacts": contacts}}
    raise ValueError(route)


def _customer_message(spec: dict) -> dict:
    """A Baileys message for the simple spec the sandbox phone page sends."""
    kind = spec.get("type") or "text"
    text = str(spec.get("text") or "")
    context = {"stanzaId": spec["reply_to"]} if spec.get("reply_to") else None
    if kind == "text":
        if context:
            return {"extendedTextMessage": {"text": text, "contextInfo": context}}
        return {"conversation": text}
    if kind in ("image", "video", "audio", "document", "sticker"):
        inner: dict[str, Any] = {
            "url": "https://mmg.whatsapp.net/sandbox",
            "mimetype": spec.get("mime_type") or "application/octet-stream",
            "fileLength": len(str(spec.get("data_base64") or "")) * 3 // 4,
        }
        if text and kind in ("image", "video", "document"):
            inner["caption"] = text
        if kind == "document":
            inner["fileName"] = spec.get("filename") or "file"
        if kind == "audio":
            inner["ptt"] = bool(spec.get("voice", True))
        if context:
            inner["contextInfo"] = context
        return {f"{kind}Message": inner}
    if kind == "location":
        return {
            "locationMessage": {
                "degreesLatitude": spec.get("latitude"),
                "degreesLongitude": spec.get("longitude"),
                "name": spec.get("name") or text,
            }
        }
    if kind == "reaction":
        return {
            "reactionMessage": {
                "key": {"remoteJid": "", "fromMe": True, "id": spec.get("message_id")},
                "text": spec.get("emoji") or text,
            }
        }
    raise ValueError(f"unknown type {kind}")
