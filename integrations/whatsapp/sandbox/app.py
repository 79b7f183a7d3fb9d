"""``SandboxApp``: a local emulator of the Graph API endpoints ``CloudAPIClient`` uses.

A plain ASGI 3 application. Graph routes live under ``/{api_version}/...``; the control API
(register numbers, inject failures, act as a customer, read what was sent) under ``/_sandbox/``;
media downloads under ``/whatsapp_business/attachments/``. State is in memory and guarded by one
lock; webhooks go out from worker threads (see ``delivery``).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import logging
import random
import re
import secrets
import threading
import time
from collections.abc import Mapping
from functools import partial
from typing import Any
from urllib.parse import urlencode

from .. import payloads as wa
from ..errors import build_error_body, spec_for
from ..validation import (
    check_message,
    check_read_receipt,
    check_template_definition,
    check_template_parameters,
    check_upload,
    is_bsuid,
    normalize_phone,
)
from .customers import build_inbound, new_wamid
from .delivery import Outcome, Scheduler, Target, WebhookSender
from .http import (
    BodyTooLarge,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    parse_multipart,
    read_request,
)
from .state import (
    STATUS_ORDER,
    ControlError,
    Failure,
    Media,
    NumberConfig,
    NumberState,
    Template,
    clinic_templates,
)

logger = logging.getLogger(__name__)

OLDEST_VERSION = (17, 0)
PHONE_FIELDS = frozenset(
    {
        "id",
        "display_phone_number",
        "verified_name",
        "quality_rating",
        "messaging_limit_tier",
        "whatsapp_business_manager_messaging_limit",
        "throughput",
        "name_status",
        "platform_type",
        "code_verification_status",
    }
)


class SandboxApp:
    """The WhatsApp Cloud API emulator (see the package docstring for the routes)."""

    def __init__(
        self,
        *,
        api_version: str = "v25.0",
        public_url: str = "",
        control_token: str = "",
        webhook_timeout: float = 10.0,
        webhook_retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
        delivery_workers: int = 16,
        seed_templates: bool = True,
        media_url_ttl: float = 300.0,
    ) -> None:
        self.api_version = api_version if api_version.startswith("v") else f"v{api_version}"
        self._newest_version = _version_tuple(self.api_version)
        if self._newest_version is None:
            raise ValueError(f"api_version must look like v25.0, not {api_version!r}")
        self.public_url = public_url.rstrip("/")
        self.control_token = control_token
        self.seed_templates = seed_templates
        self.media_url_ttl = media_url_ttl
        self._lock = threading.RLock()
        self._numbers: dict[str, NumberState] = {}
        self._media: dict[str, Media] = {}
        self._templates: dict[str, Template] = {}
        self._seeded: set[str] = set()
        self._url_key = secrets.token_bytes(32)
        self._scheduler = Scheduler(delivery_workers)
        self._sender = WebhookSender(
            self._scheduler, timeout=webhook_timeout, retry_delays=webhook_retry_delays
        )

    # --- Python API (the control endpoints call these too) --------------------------------------

    def register_number(self, config: Mapping[str, Any], *, verify: bool = True) -> dict[str, Any]:
        """Add or update a number. With a ``verify_token`` and ``verify``, run Meta's GET
        challenge against the webhook URL and report the outcome (registration stands anyway)."""
        data = dict(config)
        pnid = str(data.get("phone_number_id") or "")
        with self._lock:
            existing = self._numbers.get(pnid)
            number_config = NumberConfig.from_json(data, existing.config if existing else None)
            if existing:
                existing.config = number_config
            else:
                self._numbers[pnid] = NumberState(number_config)
            if self.seed_templates and number_config.waba_id not in self._seeded:
                self._seeded.add(number_config.waba_id)
                for template in clinic_templates(number_config.waba_id, self._new_id):
                    self._templates[template.data["id"]] = template
        verification = None
        if verify and number_config.webhook_url and number_config.verify_token:
            verification = self._sender.verify_url(
                number_config.webhook_url, number_config.verify_token, secrets.token_hex(8)
            )
        return {"number": number_config.public(), "webhook_verification": verification}

    def remove_number(self, phone_number_id: str) -> None:
        with self._lock:
            if self._numbers.pop(phone_number_id, None) is None:
                raise ControlError("Unknown phone_number_id.", 404)

    def number(self, phone_number_id: str) -> dict[str, Any]:
        with self._lock:
            state = self._state(phone_number_id)
            return {
                **state.config.public(),
                "pending_failures": sum(f.count for f in state.failures),
                "messages": len(state.log),
            }

    def numbers(self) -> list[dict[str, Any]]:
        with self._lock:
            return [state.config.public() for state in self._numbers.values()]

    def inject_failure(self, phone_number_id: str, **spec: Any) -> dict[str, Any]:
        """Fail the next ``count`` sends: ``code`` (Meta), ``http_status``, ``mode`` ("sync" or
        "status"), ``retry_after`` (a Retry-After header), ``details``, ``to`` (one recipient)."""
        failure = Failure.from_json(spec)
        with self._lock:
            self._state(phone_number_id).failures.append(failure)
        return vars(failure).copy()

    def clear_failures(self, phone_number_id: str) -> None:
        with self._lock:
            self._state(phone_number_id).failures.clear()

    def messages(
        self, phone_number_id: str, *, wa_id: str = "", direction: str = ""
    ) -> list[dict[str, Any]]:
        """The conversation log of a number (oldest first), optionally for one customer."""
        with self._lock:
            entries = list(self._state(phone_number_id).log)
            if wa_id:
                entries = [e for e in entries if wa_id in (e.get("wa_id"), e.get("to"))]
            if direction:
                entries = [e for e in entries if e["direction"] == direction]
            return copy.deepcopy(entries)

    def deliveries(self, phone_number_id: str = "") -> list[dict[str, Any]]:
        return self._sender.deliveries(phone_number_id or None)

    def templates(self, waba_id: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(t.data)
                for t in self._templates.values()
                if not waba_id or t.waba_id == waba_id
            ]

    def set_template_status(
        self, template_id: str, status: str, *, reason: str = "NONE"
    ) -> dict[str, Any]:
        """Change a template's status and send ``message_template_status_update``."""
        status = str(status).upper()
        if status not in (
            "APPROVED",
            "REJECTED",
            "PENDING",
            "PAUSED",
            "DISABLED",
            "IN_APPEAL",
            "REINSTATED",
            "FLAGGED",
        ):
            raise ControlError(f"Unsupported template status {status!r}.")
        with self._lock:
            template = self._templates.get(str(template_id))
            if template is None:
                raise ControlError("Unknown template id.", 404)
            template.data["status"] = status
            data = copy.deepcopy(template.data)
            targets = self._waba_targets(template.waba_id)
        change = wa.build_template_status_change(
            template_id=data["id"],
            name=data["name"],
            language=data["language"],
            event=status,
            category=data.get("category", ""),
            reason=reason,
        )
        body = wa.build_webhook(template.waba_id, [change], entry_time=int(time.time()))
        for target in targets:
            self._sender.deliver_async(target, body, kind=f"template:{status}")
        return data

    def send_inbound(
        self, phone_number_id: str, spec: Mapping[str, Any], *, wait: bool = True
    ) -> dict[str, Any]:
        """Act as a customer: build the Meta-shaped message(s), sign and POST the webhook.

        ``spec`` is one message (``from``, ``profile_name``, ``type`` and the type's fields) or
        ``{"messages": [...]}`` for several in one webhook body. With ``wait`` it blocks for the
        first delivery attempt and returns the webhook's HTTP status (None when unreachable);
        without, the webhook goes out from a worker and ``webhook_status`` is None.
        """
        if not isinstance(spec, Mapping):
            raise ControlError("Send a JSON object.")
        items = spec.get("messages") if "messages" in spec else [spec]
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(i, Mapping) for i in items)
        ):
            raise ControlError("messages must be a non-empty list of objects.")
        with self._lock:
            number = self._state(phone_number_id)
            config = number.config
            messages, contacts, media_ids = [], {}, []
            for item in items:
                message, contact, media_id = build_inbound(number, dict(item), self._store_media)
                messages.append(message)
                if contact:
                    contacts.setdefault(contact["wa_id"], contact)
                if media_id:
                    media_ids.append(media_id)
            change = wa.build_messages_change(
                phone_number_id=config.phone_number_id,
                display_phone_number=config.display_phone_number,
                contacts=contacts.values(),
                messages=messages,
            )
            body = wa.build_webhook(config.waba_id, [change])
            target = self._target(config)
        wamids = [m["id"] for m in messages]
        on_result = partial(self._note_delivery, phone_number_id, wamids)
        status = None
        if target is not None and wait:
            status = self._sender.deliver(target, body, kind="inbound", on_result=on_result)
        elif target is not None:
            self._sender.deliver_async(target, body, kind="inbound", on_result=on_result)
        else:
            on_result(Outcome("failed", None, "the number has no webhook URL", 0))
        return {
            "wamid": wamids[0],
            "wamids": wamids,
            "media_ids": media_ids,
            "webhook_status": status,
        }

    def _note_delivery(self, phone_number_id: str, wamids: list[str], outcome: Outcome) -> None:
        """Record on the customer's messages whether the business's webhook took them, so the
        phone shows a refused or abandoned message as failed, with the reason."""
        with self._lock:
            number = self._numbers.get(phone_number_id)
            if number is None:
                return
            for wamid in wamids:
                entry = number.by_wamid.get(wamid)
                if entry is not None:
                    entry["delivery"] = {
                        "state": outcome.state,
                        "status_code": outcome.status_code,
                        "reason": outcome.reason,
                        "attempts": outcome.attempts,
                    }

    def reset(self, *, keep_numbers: bool = False) -> None:
        """Forget messages, media, templates, failures and pending webhooks."""
        self._scheduler.clear()
        self._sender.clear_log()
        with self._lock:
            self._media.clear()
            self._templates.clear()
            self._seeded.clear()
            configs = [s.config for s in self._numbers.values()] if keep_numbers else []
            self._numbers.clear()
        for config in configs:
            self.register_number(vars(config), verify=False)

    def close(self) -> None:
        """Stop the background workers (pending webhooks are dropped)."""
        self._scheduler.close()
        self._sender.close()

    # --- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        try:
            request = await read_request(scope, receive)
        except BodyTooLarge:
            response = _graph_error(100, "The request body is too large.", status=413)
        else:
            response = await self._dispatch(request)
        if response.hold:
            await asyncio.sleep(response.hold)
        await response.send(send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _dispatch(self, request: Request) -> Response:
        path = request.path
        if path == "/_sandbox" or path.startswith("/_sandbox/"):
            return await self._control(request)
        if path.rstrip("/") == "/whatsapp_business/attachments":
            return self._download(request)
        if path in ("", "/"):
            return Response.json(
                {
                    "sandbox": "WhatsApp Cloud API emulator",
                    "api_version": self.api_version,
                    "control": f"{request.base_url}/_sandbox/",
                }
            )
        try:
            return self._graph(request)
        except Exception:
            logger.exception("whatsapp sandbox failed on %s %s", request.method, path)
            return _graph_error(1, "The sandbox failed on this request.", status=500)

    # --- Graph API ------------------------------------------------------------------------------

    def _graph(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        version = _version_tuple(parts[0])
        if version is None or not OLDEST_VERSION <= version <= self._newest_version:
            return _graph_error(
                2500,
                f"Unknown path components: {request.path} (this sandbox serves Graph API "
                f"v17.0 to {self.api_version})",
                message=f"Unknown path components: {request.path}",
            )
        token = request.bearer_token
        if not token:
            return _graph_error(
                190, "An access token is required to request this resource.", status=401
            )
        owned = self._numbers_for_token(token)
        if not owned:
            return _graph_error(
                190,
                "Invalid OAuth access token - Cannot parse access token",
                message="Invalid OAuth access token - Cannot parse access token",
                status=401,
            )
        rest, method = parts[1:], request.method
        if len(rest) == 1:
            node = rest[0]
            if method == "GET":
                return self._get_node(request, node, owned)
            if method == "DELETE":
                return self._delete_media(request, node, owned)
        elif len(rest) == 2:
            node, edge = rest
            if edge == "messages" and method == "POST" and node in owned:
                return self._send(request, node)
            if edge == "media" and method == "POST" and node in owned:
                return self._upload(request, node)
            if edge == "message_templates" and self._owns_waba(node, owned):
                if method == "GET":
                    return self._list_templates(request, node)
                if method == "POST":
                    return self._create_template(request, node, owned)
                if method == "DELETE":
                    return self._delete_template(request, node)
        return _no_object(method, rest[0] if rest else "")

    def _numbers_for_token(self, token: str) -> set[str]:
        with self._lock:
            return {
                pnid
                for pnid, state in self._numbers.items()
                if hmac.compare_digest(state.config.access_token.encode(), token.encode())
            }

    def _owns_waba(self, waba_id: str, owned: set[str]) -> bool:
        with self._lock:
            return any(
                self._numbers[p].config.waba_id == waba_id for p in owned if p in self._numbers
            )

    def _get_node(self, request: Request, node: str, owned: set[str]) -> Response:
        if node in owned:
            return self._phone_number(request, node)
        with self._lock:
            media = self._media.get(node)
            template = self._templates.get(node)
            if media is not None and media.owner in owned:
                if request.query.get("phone_number_id", media.owner) != media.owner:
                    return _no_object("GET", node)
                return Response.json(
                    {
                        "messaging_product": "whatsapp",
                        "url": self._media_url(request, media),
                        "mime_type": media.mime_type,
                        "sha256": media.sha256,
                        "file_size": len(media.data),
                        "id": media.id,
                    }
                )
            if template is not None and self._owns_waba(template.waba_id, owned):
                return Response.json(copy.deepcopy(template.data))
        return _no_object("GET", node)

    def _phone_number(self, request: Request, pnid: str) -> Response:
        with self._lock:
            config = self._numbers[pnid].config
        info = {
            "id": config.phone_number_id,
            "display_phone_number": _format_display(config.display_phone_number),
            "verified_name": config.verified_name,
            "quality_rating": config.quality_rating,
            "messaging_limit_tier": config.messaging_limit_tier,
            "whatsapp_business_manager_messaging_limit": config.messaging_limit_tier,
            "throughput": {"level": "STANDARD" if config.throughput_cap <= 80 else "HIGH"},
            "name_status": "APPROVED",
            "platform_type": "CLOUD_API",
            "code_verification_status": "VERIFIED",
        }
        requested = [f.strip() for f in request.query.get("fields", "").split(",") if f.strip()]
        if not requested:
            return Response.json(info)
        for name in requested:
            if name not in PHONE_FIELDS:
                return _graph_error(
                    100,
                    f"Tried accessing nonexisting field ({name}) on node type "
                    "(WhatsAppBusinessPhoneNumber)",
                    message=f"(#100) Tried accessing nonexisting field ({name}) on node type "
                    "(WhatsAppBusinessPhoneNumber)",
                )
        return Response.json({k: info[k] for k in ["id", *requested] if k in info})

    # Sending

    def _send(self, request: Request, pnid: str) -> Response:
        try:
            payload = request.json()
        except ValueError:
            return _graph_error(100, "The request body is not valid JSON.")
        if isinstance(payload, dict) and "status" in payload:
            return self._mark_read(pnid, payload)
        payload = _tolerate_string_action(payload)
        problem = check_message(payload)
        if problem is not None:
            return _graph_error(problem.code, problem.details, subcode=problem.subcode)
        message_type = payload.get("type", "text")
        to, recipient = str(payload.get("to") or ""), str(payload.get("recipient") or "")
        user = normalize_phone(to) or to or recipient
        # A BSUID in "to" is accepted and then silently dropped (Chatwoot's warning).
        dropped = bool(to) and is_bsuid(to)
        with self._lock:
            number = self._numbers.get(pnid)
            if number is None:
                return _no_object("POST", pnid)
            config = number.config
            if config.allowed_recipients is not None and not recipient:
                allowed = {normalize_phone(n) for n in config.allowed_recipients}
                if user not in allowed:
                    return _graph_error(131030)
            failure = number.next_failure(user)
            if failure is not None and failure.mode == "sync":
                return _failure_response(failure)
            now = time.monotonic()
            refusal, category = None, "service"
            if number.throughput_exceeded(now):
                refusal = _graph_error(130429)
            elif message_type == "template":
                refusal, category = self._check_template_send(config.waba_id, payload["template"])
            window_open = number.window_open(user, time.time())
            window_closed = (
                config.enforce_window
                and message_type != "template"
                and not window_open
                and not dropped
            )
            if refusal is None and window_closed and config.window_error_mode == "sync":
                refusal = _graph_error(131047)
            if refusal is None and not number.take_pair_token(user, now):
                refusal = _graph_error(131056)
            if refusal is not None:
                if failure is not None:
                    number.restore_failure(failure)  # it applies to the next accepted send
                return refusal
            number.count_message(now)
            wamid = new_wamid(user)
            free = window_open and category in ("service", "utility")
            entry = {
                "direction": "outbound",
                "wamid": wamid,
                "to": normalize_phone(to) or to,
                "recipient": recipient,
                "type": message_type,
                "message": {k: v for k, v in payload.items() if k != "messaging_product"},
                "timestamp": int(time.time()),
                "status": "accepted",
                "statuses": [],
                "pricing": wa.build_pricing(
                    category=category,
                    pricing_type="free_customer_service" if free else "regular",
                    billable=not free,
                ),
                "callback_data": str(payload.get("biz_opaque_callback_data") or ""),
            }
            number.remember(entry)
            failed_status = failure if failure is not None and failure.mode == "status" else None
            plan = _status_plan(config, failed_status, window_closed, dropped)
        self._run_status_plan(pnid, wamid, plan, time.monotonic())
        if failure is not None and failure.mode == "accept_fail":
            return _failure_response(failure)  # sent, but the caller is told it failed
        if failure is not None and failure.mode == "accept_timeout":
            response = _failure_response(failure)
            response.hold = failure.hang_seconds
            return response
        contact = (
            {"input": recipient, "user_id": recipient}
            if recipient
            else {"input": to, "wa_id": normalize_phone(to) or to}
        )
        sent: dict[str, Any] = {"id": wamid}
        if message_type == "template":
            sent["message_status"] = "accepted"
        return Response.json(
            {"messaging_product": "whatsapp", "contacts": [contact], "messages": [sent]}
        )

    def _mark_read(self, pnid: str, payload: dict) -> Response:
        problem = check_read_receipt(payload)
        if problem is not None:
            return _graph_error(problem.code, problem.details, subcode=problem.subcode)
        with self._lock:
            entry = self._numbers[pnid].by_wamid.get(payload["message_id"])
            if entry is None or entry["direction"] != "inbound":
                return _graph_error(100, f"Message {payload['message_id']} was not found.")
            entry["read_by_business"] = True
            if payload.get("typing_indicator"):
                entry["typing_indicator_at"] = int(time.time())
        return Response.json({"success": True})

    def _check_template_send(self, waba_id: str, body: dict) -> tuple[Response | None, str]:
        name, language = body.get("name"), (body.get("language") or {}).get("code")
        template = next(
            (
                t
                for t in self._templates.values()
                if t.waba_id == waba_id
                and t.data["name"] == name
                and t.data["language"] == language
            ),
            None,
        )
        if template is None or template.data["status"] not in ("APPROVED", "PAUSED", "DISABLED"):
            detail = f"template name ({name}) does not exist in {language}"
            return _graph_error(132001, detail), ""
        if template.data["status"] == "PAUSED":
            return _graph_error(132015), ""
        if template.data["status"] == "DISABLED":
            return _graph_error(132016), ""
        problem = check_template_parameters(template.data, body.get("components"))
        if problem is not None:
            return _graph_error(problem.code, problem.details), ""
        return None, str(template.data.get("category", "marketing")).lower()

    def _run_status_plan(
        self, pnid: str, wamid: str, plan: list[tuple[str, float, dict | None]], started: float
    ) -> None:
        """Emit the statuses one after another: each is scheduled once the previous one's first
        delivery attempt finished, so a healthy receiver sees them in order."""
        if not plan:
            return
        status, delay, error = plan[0]

        def step() -> None:
            self._emit_status(pnid, wamid, status, error)
            self._run_status_plan(pnid, wamid, plan[1:], started)

        self._scheduler.call_at(started + delay, step)

    def _emit_status(self, pnid: str, wamid: str, status: str, error: dict | None) -> None:
        with self._lock:
            number = self._numbers.get(pnid)
            entry = number.by_wamid.get(wamid) if number else None
            if number is None or entry is None:
                return
            timestamp = wa.unix_now()
            entry["statuses"].append({"status": status, "timestamp": int(timestamp)})
            if entry["status"] != "failed":
                entry["status"] = status
            if error:
                entry["error"] = error
            item = wa.build_status(
                wamid=wamid,
                status=status,
                recipient_id=entry["to"] if not entry["recipient"] else "",
                recipient_user_id=entry["recipient"],
                timestamp=timestamp,
                pricing=None if status == "failed" else entry["pricing"],
                errors=[error] if error else None,
                biz_opaque_callback_data=entry["callback_data"],
            )
            config = number.config
            body = wa.build_webhook(
                config.waba_id,
                [
                    wa.build_messages_change(
                        phone_number_id=pnid,
                        display_phone_number=config.display_phone_number,
                        statuses=[item],
                    )
                ],
            )
            target = self._target(config)
        if target is not None:
            self._sender.deliver(target, body, kind=f"status:{status}")

    # Media

    def _upload(self, request: Request, pnid: str) -> Response:
        try:
            form = parse_multipart(request.body, request.headers.get("content-type", ""))
        except ValueError as exc:
            return _graph_error(100, f"Upload media as multipart/form-data: {exc}.")
        product = form.get("messaging_product")
        if product is None or product.data.decode("utf-8", "replace") != "whatsapp":
            return _graph_error(100, 'The parameter messaging_product is required ("whatsapp").')
        file = form.get("file")
        if file is None:
            return _graph_error(100, "The parameter file is required.")
        type_field = form.get("type")
        mime_type = (
            type_field.data.decode("utf-8", "replace") if type_field else file.content_type or ""
        )
        problem = check_upload(mime_type, len(file.data))
        if problem is not None:
            return _graph_error(problem.code, problem.details)
        media = self._store_media(pnid, file.data, mime_type, file.filename or "")
        return Response.json({"id": media.id})

    def _store_media(self, owner: str, data: bytes, mime_type: str, filename: str) -> Media:
        with self._lock:
            media = Media(
                id=self._new_id(),
                owner=owner,
                data=data,
                mime_type=mime_type,
                sha256=hashlib.sha256(data).hexdigest(),
                filename=filename,
            )
            self._media[media.id] = media
        return media

    def _delete_media(self, request: Request, node: str, owned: set[str]) -> Response:
        with self._lock:
            media = self._media.get(node)
            if media is None or media.owner not in owned:
                return _no_object("DELETE", node)
            if request.query.get("phone_number_id", media.owner) != media.owner:
                return _no_object("DELETE", node)
            del self._media[node]
        return Response.json({"success": True})

    def _media_url(self, request: Request, media: Media) -> str:
        expires = int(time.time() + self.media_url_ttl)
        signature = self._url_signature(media.id, expires)
        base = self.public_url or request.base_url
        query = urlencode({"mid": media.id, "ext": expires, "hash": signature})
        return f"{base}/whatsapp_business/attachments/?{query}"

    def _url_signature(self, media_id: str, expires: int) -> str:
        message = f"{media_id}:{expires}".encode()
        return hmac.new(self._url_key, message, hashlib.sha256).hexdigest()[:40]

    def _download(self, request: Request) -> Response:
        if request.method != "GET":
            return _no_object(request.method, "attachments")
        media_id = request.query.get("mid", "")
        expires = request.query.get("ext", "")
        signature = request.query.get("hash", "")
        if not expires.isdigit() or not hmac.compare_digest(
            self._url_signature(media_id, int(expires)), signature
        ):
            return Response.json({"error": "Invalid media URL signature"}, 404)
        if int(expires) < time.time():
            return Response.json({"error": "URL signature expired"}, 404)
        owned = self._numbers_for_token(request.bearer_token) if request.bearer_token else set()
        with self._lock:
            media = self._media.get(media_id)
        if media is None:
            return Response.json({"error": "Media not found"}, 404)
        if media.owner not in owned:
            return _graph_error(
                190, "Invalid OAuth access token - Cannot parse access token", status=401
            )
        return Response(200, media.data, content_type=media.mime_type)

    # Templates

    def _list_templates(self, request: Request, waba_id: str) -> Response:
        query = request.query
        try:
            limit = max(1, min(int(query.get("limit") or 25), 250))
            start = (
                int(base64.urlsafe_b64decode(query["after"]).decode()) if query.get("after") else 0
            )
        except (ValueError, UnicodeDecodeError):
            return _graph_error(100, "Invalid limit or after cursor.")
        with self._lock:
            rows = [
                copy.deepcopy(t.data)
                for t in self._templates.values()
                if t.waba_id == waba_id
                and (not query.get("status") or t.data["status"] == query["status"].upper())
                and (not query.get("name") or query["name"] in t.data["name"])
            ]
        page = rows[start : start + limit]
        fields = [f.strip() for f in query.get("fields", "").split(",") if f.strip()]
        if fields:
            page = [{k: row[k] for k in ["id", *fields] if k in row} for row in page]
        end = start + len(page)
        paging: dict[str, Any] = {
            "cursors": {"before": _cursor(start), "after": _cursor(end)},
        }
        if end < len(rows):
            next_query = {k: v for k, v in query.items() if k != "after"}
            next_query["after"] = _cursor(end)
            paging["next"] = f"{request.base_url}{request.path}?{urlencode(next_query)}"
        return Response.json({"data": page, "paging": paging})

    def _create_template(self, request: Request, waba_id: str, owned: set[str]) -> Response:
        try:
            body = request.json()
        except ValueError:
            return _graph_error(100, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _graph_error(100, "The request body must be a JSON object.")
        name, language = body.get("name"), body.get("language")
        category = str(body.get("category") or "")
        problem = check_template_definition(
            name, language, category, body.get("components"), body.get("parameter_format")
        )
        if problem is not None:
            return _graph_error(problem.code, problem.details, subcode=problem.subcode)
        with self._lock:
            duplicate = any(
                t.waba_id == waba_id and t.data["name"] == name and t.data["language"] == language
                for t in self._templates.values()
            )
            if duplicate:
                return _graph_error(
                    100,
                    f"Content in this language ({language}) already exists for {name}.",
                    subcode=2388024,
                )
            template = Template(
                waba_id=waba_id,
                data={
                    "id": self._new_id(),
                    "name": name,
                    "language": language,
                    "status": "PENDING",
                    "category": category.upper(),
                    "parameter_format": body.get("parameter_format") or "POSITIONAL",
                    "components": copy.deepcopy(body["components"]),
                },
            )
            self._templates[template.data["id"]] = template
            config = next(
                (
                    self._numbers[p].config
                    for p in sorted(owned)
                    if p in self._numbers and self._numbers[p].config.waba_id == waba_id
                ),
                None,
            )
        if config is not None and config.template_review_outcome != "PENDING":
            template_id, outcome = template.data["id"], config.template_review_outcome
            reason = "NONE" if outcome == "APPROVED" else "INVALID_FORMAT"
            self._scheduler.call_later(
                config.template_review_delay,
                lambda: self.set_template_status(template_id, outcome, reason=reason),
            )
        return Response.json(
            {"id": template.data["id"], "status": "PENDING", "category": category.upper()}
        )

    def _delete_template(self, request: Request, waba_id: str) -> Response:
        name, hsm_id = request.query.get("name"), request.query.get("hsm_id")
        if not name:
            return _graph_error(100, "The parameter name is required.")
        with self._lock:
            doomed = [
                key
                for key, t in self._templates.items()
                if t.waba_id == waba_id and t.data["name"] == name and (not hsm_id or key == hsm_id)
            ]
            for key in doomed:
                del self._templates[key]
        if not doomed:
            return _graph_error(100, f"Message template {name!r} was not found.")
        return Response.json({"success": True})

    # --- Control API ----------------------------------------------------------------------------

    async def _control(self, request: Request) -> Response:
        if self.control_token and not hmac.compare_digest(
            request.headers.get("x-sandbox-token", "").encode(), self.control_token.encode()
        ):
            return Response.json(
                {"error": "Send the sandbox control token in X-Sandbox-Token."}, 401
            )
        parts = [p for p in request.path.split("/") if p][1:]
        method = request.method
        try:
            return await self._control_route(request, method, parts)
        except ControlError as exc:
            return Response.json({"error": str(exc)}, exc.status)

    async def _control_route(self, request: Request, method: str, parts: list[str]) -> Response:
        # ("POST", "templates", "<id>", "status") is matched as ("POST", "templates", "*", ...).
        route = (method, *parts[:1], *(["*"] if len(parts) > 1 else []), *parts[2:])
        if route == ("GET",):
            return Response.json(
                {
                    "api_version": self.api_version,
                    "graph_url": f"{request.base_url}/{self.api_version}",
                    "numbers": self.numbers(),
                    "templates": len(self.templates()),
                }
            )
        if route == ("GET", "numbers"):
            return Response.json({"numbers": self.numbers()})
        if route == ("POST", "numbers"):
            data = _control_json(request)
            return Response.json(await asyncio.to_thread(self.register_number, data))
        if route == ("POST", "reset"):
            data = _control_json(request) if request.body else {}
            self.reset(keep_numbers=bool(data.get("keep_numbers")))
            return Response.json({"ok": True})
        if route == ("GET", "templates"):
            return Response.json({"templates": self.templates(request.query.get("waba_id", ""))})
        if route == ("POST", "templates", "*", "status"):
            data = _control_json(request)
            template = self.set_template_status(
                parts[1], data.get("status", ""), reason=str(data.get("reason") or "NONE")
            )
            return Response.json({"template": template})
        if len(parts) >= 2 and parts[0] == "numbers":
            return await self._number_route(request, method, parts[1], parts[2:])
        raise ControlError("Unknown sandbox control endpoint.", 404)

    async def _number_route(
        self, request: Request, method: str, pnid: str, rest: list[str]
    ) -> Response:
        route = (method, *rest)
        if route == ("GET",):
            return Response.json(self.number(pnid))
        if route == ("DELETE",):
            self.remove_number(pnid)
            return Response.json({"ok": True})
        if route == ("GET", "messages"):
            messages = self.messages(
                pnid,
                wa_id=request.query.get("wa_id", ""),
                direction=request.query.get("direction", ""),
            )
            return Response.json({"messages": messages})
        if route == ("GET", "deliveries"):
            self._state_checked(pnid)
            return Response.json({"deliveries": self.deliveries(pnid)})
        if route == ("GET", "failures"):
            with self._lock:
                failures = [vars(f).copy() for f in self._state(pnid).failures]
            return Response.json({"failures": failures})
        if route == ("POST", "failures"):
            return Response.json({"failure": self.inject_failure(pnid, **_control_json(request))})
        if route == ("DELETE", "failures"):
            self.clear_failures(pnid)
            return Response.json({"ok": True})
        if route == ("POST", "inbound"):
            data = _control_json(request)
            wait = request.query.get("wait", "1") not in ("0", "false")
            result = await asyncio.to_thread(self.send_inbound, pnid, data, wait=wait)
            return Response.json(result)
        raise ControlError("Unknown sandbox control endpoint.", 404)

    # --- Helpers --------------------------------------------------------------------------------

    def _state(self, phone_number_id: str) -> NumberState:
        state = self._numbers.get(str(phone_number_id))
        if state is None:
            raise ControlError("Unknown phone_number_id.", 404)
        return state

    def _state_checked(self, phone_number_id: str) -> None:
        with self._lock:
            self._state(phone_number_id)

    @staticmethod
    def _target(config: NumberConfig) -> Target | None:
        if not config.webhook_url:
            return None
        return Target(config.phone_number_id, config.webhook_url, config.app_secret)

    def _waba_targets(self, waba_id: str) -> list[Target]:
        """One target per distinct webhook (URL and secret) among the WABA's numbers."""
        targets: dict[tuple[str, str], Target] = {}
        for state in self._numbers.values():
            target = self._target(state.config)
            if target and state.config.waba_id == waba_id:
                targets.setdefault((target.url, target.app_secret), target)
        return list(targets.values())

    def _new_id(self) -> str:
        """A fresh numeric Graph ID (media, templates)."""
        while True:
            candidate = str(10**15 + secrets.randbelow(9 * 10**15))
            if candidate not in self._media and candidate not in self._templates:
                return candidate


# --- Module helpers -----------------------------------------------------------------------------


def _version_tuple(value: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"v(\d+)\.(\d+)", value or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _graph_error(
    code: int,
    details: str | None = None,
    *,
    status: int | None = None,
    subcode: int | None = None,
    message: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    spec = spec_for(code)
    body = build_error_body(code, details=details, message=message, error_subcode=subcode)
    return Response.json(body, status or (spec.http_status if spec else 400), headers)


def _no_object(method: str, node: str) -> Response:
    text = (
        f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation."
    )
    return _graph_error(100, text, subcode=33, message=text)


def _failure_response(failure: Failure) -> Response:
    headers = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after else None
    code = failure.code
    if code is None:
        code = 2 if failure.http_status == 503 else (1 if failure.http_status >= 500 else 100)
    return _graph_error(code, failure.details or None, status=failure.http_status, headers=headers)


def _status_plan(
    config: NumberConfig, failure: Failure | None, window_closed: bool, dropped: bool
) -> list[tuple[str, float, dict | None]]:
    """(status, seconds after the send, error) for each status webhook of an accepted send."""
    if dropped:
        return []
    first_delay = config.delays.get("sent") or 0.0
    if failure is not None:
        error = wa.build_event_error(failure.code or 131000, details=failure.details)
        return [("failed", first_delay, error)]
    if window_closed:
        return [("failed", first_delay, wa.build_event_error(131047))]
    steps = [(s, float(config.delays[s])) for s in STATUS_ORDER if config.delays.get(s) is not None]
    names = [name for name, _ in steps]
    if config.shuffle_statuses:
        random.shuffle(names)
    plan: list[tuple[str, float, dict | None]] = []
    for name, (_, delay) in zip(names, steps, strict=True):
        plan.append((name, delay, None))
        if config.duplicate_statuses:
            plan.append((name, delay, None))
    return plan


def _tolerate_string_action(payload: Any) -> Any:
    """Chatwoot sends ``interactive.action`` as a JSON string; Meta accepts it, and so do we."""
    if not isinstance(payload, dict):
        return payload
    interactive = payload.get("interactive")
    if isinstance(interactive, dict) and isinstance(interactive.get("action"), str):
        try:
            action = json.loads(interactive["action"])
        except ValueError:
            return payload
        payload = {**payload, "interactive": {**interactive, "action": action}}
    return payload


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(str(index).encode()).decode()


def _format_display(digits: str) -> str:
    """Meta shows display numbers formatted, e.g. ``+55 11 4000-0000``."""
    if digits.startswith("55") and len(digits) in (12, 13):
        return f"+55 {digits[2:4]} {digits[4:-4]}-{digits[-4:]}"
    return f"+{digits}"


def _control_json(request: Request) -> dict[str, Any]:
    try:
        data = request.json()
    except ValueError as exc:
        raise ControlError("The body must be JSON.") from exc
    if not isinstance(data, dict):
        raise ControlError("Send a JSON object.")
    return data
