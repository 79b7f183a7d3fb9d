"""In-memory state of the sandbox: numbers and their settings, media, templates, rate limits."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import spec_for

DEFAULT_DELAYS = {"sent": 0.2, "delivered": 0.5, "read": 1.0}
STATUS_ORDER = ("sent", "delivered", "read")
LOG_SIZE = 2000


class ControlError(Exception):
    """A bad request to the control API (answered as ``{"error": ...}``)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class NumberConfig:
    """One emulated business phone number and how it behaves."""

    phone_number_id: str
    display_phone_number: str
    waba_id: str
    access_token: str
    app_secret: str
    webhook_url: str = ""
    verify_token: str = ""
    verified_name: str = "Porfin Sandbox"
    quality_rating: str = "GREEN"
    messaging_limit_tier: str = "TIER_2K"
    # Seconds after an accepted send for each status webhook; None skips that status.
    delays: dict[str, float | None] = field(default_factory=lambda: dict(DEFAULT_DELAYS))
    duplicate_statuses: bool = False
    shuffle_statuses: bool = False
    throughput_cap: int = 80  # messages per second, inbound and outbound
    pair_rate_burst: int = 45  # messages to one user in a burst...
    pair_rate_interval: float = 6.0  # ...then one per this many seconds
    enforce_window: bool = True
    window_seconds: float = 24 * 3600
    window_error_mode: str = "status"  # 131047 as a failed status webhook, or "sync" (HTTP 400)
    allowed_recipients: list[str] | None = None  # a test number's allow-list (131030)
    template_review_delay: float = 2.0
    template_review_outcome: str = "APPROVED"  # APPROVED, REJECTED, or PENDING (stays pending)

    _REQUIRED = ("phone_number_id", "display_phone_number", "waba_id", "access_token", "app_secret")

    @classmethod
    def from_json(cls, data: Any, existing: NumberConfig | None = None) -> NumberConfig:
        """A config from control-API JSON; with ``existing``, only the given keys change."""
        if not isinstance(data, dict):
            raise ControlError("Send a JSON object.")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ControlError(f"Unknown number settings: {', '.join(unknown)}.")
        values = asdict(existing) if existing else {}
        for key, value in data.items():
            values[key] = _coerce(key, value)
        missing = [key for key in cls._REQUIRED if not values.get(key)]
        if missing:
            raise ControlError(f"Missing number settings: {', '.join(missing)}.")
        delays = dict(DEFAULT_DELAYS)
        delays.update(values.get("delays") or {})
        values["delays"] = delays
        return cls(**values)

    def public(self) -> dict[str, Any]:
        """The settings without secrets (safe to show on a page)."""
        data = asdict(self)
        data["access_token"] = _mask(self.access_token)
        data["app_secret"] = _mask(self.app_secret)
        data["verify_token"] = _mask(self.verify_token)
        return data


def _mask(secret: str) -> str:
    return f"...{secret[-4:]}" if len(secret) > 8 else ("***" if secret else "")


def _coerce(key: str, value: Any) -> Any:
    strings = {
        "phone_number_id",
        "display_phone_number",
        "waba_id",
        "access_token",
        "app_secret",
        "webhook_url",
        "verify_token",
        "verified_name",
        "quality_rating",
        "messaging_limit_tier",
    }
    if key in strings:
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ControlError(f"{key} must be a string.")
        value = str(value)
        if key == "webhook_url" and value and not value.startswith(("http://", "https://")):
            raise ControlError("webhook_url must be an http(s) URL.")
        if key in ("phone_number_id", "waba_id", "display_phone_number") and not value.isdigit():
            raise ControlError(f"{key} must contain digits only.")
        return value
    if key in ("duplicate_statuses", "shuffle_statuses", "enforce_window"):
        if not isinstance(value, bool):
            raise ControlError(f"{key} must be true or false.")
        return value
    if key in ("throughput_cap", "pair_rate_burst"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ControlError(f"{key} must be a positive integer.")
        return value
    if key in ("pair_rate_interval", "window_seconds", "template_review_delay"):
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ControlError(f"{key} must be a number of seconds.")
        return float(value)
    if key == "delays":
        if not isinstance(value, dict) or set(value) - set(STATUS_ORDER):
            raise ControlError('delays must map "sent", "delivered" and "read" to seconds.')
        for status, delay in value.items():
            if delay is not None and (
                not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0
            ):
                raise ControlError(f"delays.{status} must be seconds or null.")
        return dict(value)
    if key == "window_error_mode":
        if value not in ("status", "sync"):
            raise ControlError('window_error_mode must be "status" or "sync".')
        return value
    if key == "template_review_outcome":
        if value not in ("APPROVED", "REJECTED", "PENDING"):
            raise ControlError("template_review_outcome must be APPROVED, REJECTED or PENDING.")
        return value
    if key == "allowed_recipients":
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise ControlError("allowed_recipients must be a list of phone numbers or null.")
        return value
    return value


MODES = ("sync", "status", "accept_fail", "accept_timeout")


@dataclass
class Failure:
    """An injected failure for the next ``count`` sends of a number.

    Modes: ``sync``, an HTTP error and nothing sent; ``status``, accepted, then a failed status
    webhook; ``accept_fail``, accepted (sent, with its status webhooks) but answered with the
    HTTP error, as Meta failing after taking the message; ``accept_timeout``, accepted but the
    answer held ``hang_seconds`` (then the HTTP error, 504 by default), so the caller times out.
    """

    code: int | None
    http_status: int
    count: int = 1
    mode: str = "sync"
    retry_after: float | None = None
    details: str = ""
    to: str = ""  # only sends to this recipient
    hang_seconds: float = 30.0  # accept_timeout: how long the answer is held

    @classmethod
    def from_json(cls, data: Any) -> Failure:
        if not isinstance(data, dict):
            raise ControlError("Send a JSON object.")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ControlError(f"Unknown failure settings: {', '.join(unknown)}.")
        code, http_status = data.get("code"), data.get("http_status")
        if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
            raise ControlError("code must be a Meta error code (integer).")
        if http_status is not None and (
            not isinstance(http_status, int) or not 400 <= http_status <= 599
        ):
            raise ControlError("http_status must be an HTTP error status (400-599).")
        mode = data.get("mode", "sync")
        if mode not in MODES:
            raise ControlError(f"mode must be one of: {', '.join(MODES)}.")
        if code is None and http_status is None and mode == "accept_timeout":
            http_status = 504
        if code is None and http_status is None:
            raise ControlError("Give a Meta error code, an http_status, or both.")
        if http_status is None:
            spec = spec_for(code)
            http_status = spec.http_status if spec else 400
        count = data.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ControlError("count must be a positive integer.")
        if mode == "status" and code is None:
            raise ControlError("A failed status needs a Meta error code.")
        retry_after = data.get("retry_after")
        if retry_after is not None and (
            not isinstance(retry_after, int | float) or isinstance(retry_after, bool)
        ):
            raise ControlError("retry_after must be seconds.")
        hang = data.get("hang_seconds", 30.0)
        if not isinstance(hang, int | float) or isinstance(hang, bool) or not 0 <= hang <= 600:
            raise ControlError("hang_seconds must be seconds (0-600).")
        return cls(
            code=code,
            http_status=http_status,
            count=count,
            mode=mode,
            hang_seconds=float(hang),
            retry_after=retry_after,
            details=str(data.get("details") or ""),
            to=str(data.get("to") or ""),
        )


@dataclass
class Media:
    id: str
    owner: str  # phone_number_id
    data: bytes
    mime_type: str
    sha256: str  # hex
    filename: str = ""
    created: float = field(default_factory=time.time)


@dataclass
class Template:
    waba_id: str
    data: dict[str, Any]  # Meta's shape: id, name, language, status, category, components...


class NumberState:
    """A number's settings plus what the sandbox remembers about it."""

    def __init__(self, config: NumberConfig) -> None:
        self.config = config
        self.recent: deque[float] = deque()  # monotonic times of messages in the last second
        self.pair_tokens: dict[str, tuple[float, float]] = {}  # user -> (tokens, monotonic time)
        self.failures: deque[Failure] = deque()
        self.last_inbound: dict[str, float] = {}  # wa_id or user_id -> wall time
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self.by_wamid: dict[str, dict[str, Any]] = {}

    def remember(self, entry: dict[str, Any]) -> None:
        if len(self.log) == self.log.maxlen:
            self.by_wamid.pop(self.log[0]["wamid"], None)
        self.log.append(entry)
        self.by_wamid[entry["wamid"]] = entry

    def throughput_exceeded(self, now: float) -> bool:
        """Sliding one-second window over inbound and outbound messages."""
        while self.recent and self.recent[0] <= now - 1.0:
            self.recent.popleft()
        return len(self.recent) >= self.config.throughput_cap

    def count_message(self, now: float) -> None:
        self.recent.append(now)

    def take_pair_token(self, user: str, now: float) -> bool:
        """Token bucket per recipient: a burst of ``pair_rate_burst``, refilled one per
        ``pair_rate_interval`` seconds. False when the pair limit (131056) is hit."""
        burst = float(self.config.pair_rate_burst)
        interval = self.config.pair_rate_interval
        tokens, updated = self.pair_tokens.get(user, (burst, now))
        tokens = min(burst, tokens + (now - updated) / interval) if interval > 0 else burst
        if tokens < 1:
            self.pair_tokens[user] = (tokens, now)
            return False
        self.pair_tokens[user] = (tokens - 1, now)
        return True

    def restore_failure(self, failure: Failure) -> None:
        """Give back a failure taken by a send that was then refused for another reason."""
        failure.count += 1
        if not any(f is failure for f in self.failures):
            self.failures.appendleft(failure)

    def next_failure(self, recipient: str) -> Failure | None:
        for failure in self.failures:
            if not failure.to or failure.to == recipient:
                failure.count -= 1
                if failure.count <= 0:
                    self.failures.remove(failure)
                return failure
        return None

    def window_open(self, user: str, now: float) -> bool:
        last = self.last_inbound.get(user)
        return last is not None and now - last <= self.config.window_seconds


def clinic_templates(waba_id: str, next_id: Callable[[], str]) -> list[Template]:
    """Approved pt_BR templates a clinic would use, for a new WABA."""
    seeds: list[dict[str, Any]] = [
        {
            "name": "appointment_reminder",
            "category": "UTILITY",
            "parameter_format": "POSITIONAL",
            "components": [
                {"type": "HEADER", "format": "TEXT", "text": "Lembrete de consulta"},
                {
                    "type": "BODY",
                    "text": "Olá {{1}}, lembramos da sua consulta com {{2}} em {{3}} às {{4}}. "
                    "Podemos confirmar sua presença?",
                    "example": {"body_text": [["Maria", "Dra. Ana Souza", "12/05", "14:30"]]},
                },
                {"type": "FOOTER", "text": "Clínica Sorriso"},
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Confirmar"},
                        {"type": "QUICK_REPLY", "text": "Remarcar"},
                    ],
                },
            ],
        },
        {
            "name": "welcome",
            "category": "UTILITY",
            "parameter_format": "POSITIONAL",
            "components": [
                {
                    "type": "BODY",
                    "text": "Olá! Obrigado por falar com a Clínica Sorriso. "
                    "Como podemos ajudar você hoje?",
                },
            ],
        },
        {
            "name": "promo_header_image",
            "category": "MARKETING",
            "parameter_format": "POSITIONAL",
            "components": [
                {
                    "type": "HEADER",
                    "format": "IMAGE",
                    "example": {"header_handle": ["4::aW1hZ2UvanBlZw==:ARbSandboxExample"]},
                },
                {
                    "type": "BODY",
                    "text": "Olá {{1}}, neste mês a limpeza dental está com {{2}} de desconto. "
                    "Agende pelo WhatsApp!",
                    "example": {"body_text": [["Maria", "20%"]]},
                },
                {"type": "FOOTER", "text": "Responda SAIR para não receber promoções"},
                {
                    "type": "BUTTONS",
                    "buttons": [
                        {"type": "QUICK_REPLY", "text": "Quero agendar"},
                        {"type": "QUICK_REPLY", "text": "Parar promoções"},
                    ],
                },
            ],
        },
        {
            "name": "appointment_confirmed",
            "category": "UTILITY",
            "parameter_format": "NAMED",
            "components": [
                {
                    "type": "BODY",
                    "text": "Olá {{patient_name}}, sua consulta de {{procedure}} está confirmada "
                    "para {{date}}. Até lá!",
                    "example": {
                        "body_text_named_params": [
                            {"param_name": "patient_name", "example": "Maria"},
                            {"param_name": "procedure", "example": "limpeza"},
                            {"param_name": "date", "example": "12/05 às 14:30"},
                        ]
                    },
                },
            ],
        },
    ]
    return [
        Template(
            waba_id=waba_id,
            data={"id": next_id(), "language": "pt_BR", "status": "APPROVED", **seed},
        )
        for seed in seeds
    ]
