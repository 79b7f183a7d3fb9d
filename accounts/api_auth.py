"""Shared plumbing of the integrator API (``/api/v1/``): API keys, scopes, throttles, the one
error body, cursor pagination, request size limits and ``Idempotency-Key`` replays.

Every endpoint subclasses :class:`ApiView`. A request is authenticated either by an API key
(``Authorization: Bearer pfk_…``, scoped per resource) or by the browser session (the browsable
API; the member's role decides, as in the HTML pages). Either way it is bound to exactly one
organization: ``self.organization`` and ``self.membership``, and every object is looked up
through queries scoped to it (another organization's objects answer 404).
"""

import base64
import binascii
import copy
import hashlib
import json
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from accounts import access
from accounts.models import (
    API_KEY_PREFIX,
    API_RESOURCES,
    ApiIdempotencyKey,
    ApiKey,
    Membership,
    Role,
)
from kernel.cache import count_hit
from kernel.memo import ProcessMemo
from kernel.sql import CompiledQuery, fetchall_prepared

# --- Keys -------------------------------------------------------------------------------------

LAST_USED_RESOLUTION = timedelta(minutes=1)  # at most one write per key per minute


def _hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def api_key_create(*, organization, name: str, scopes: list[str], created_by) -> tuple[ApiKey, str]:
    """A new key; returns it and its secret, which is never shown again."""
    valid = {f"{r}:{a}" for r in API_RESOURCES for a in ("read", "write")}
    plaintext = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        organization=organization,
        name=name,
        prefix=plaintext[:12],
        key_hash=_hash(plaintext),
        scopes=sorted(s for s in set(scopes) if s in valid),
        created_by=created_by,
    )
    return key, plaintext


def api_key_revoke(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    # Every process checks this mark on each request (in the throttle's round trip), so a
    # memoised key stops working at once everywhere, not when its memo runs out.
    cache.set(_revoked_key(key.pk), 1, timeout=int(KEY_MEMO_SECONDS * 2))
    _keys.forget(key.key_hash)


# Keys are looked up once per KEY_MEMO_SECONDS per process, not on every request (the lookup was
# a quarter of a request); revocation is seen at once through ``_revoked_key``.
KEY_MEMO_SECONDS = 60.0
_keys = ProcessMemo(ttl=KEY_MEMO_SECONDS)
_last_used = ProcessMemo(ttl=LAST_USED_RESOLUTION.total_seconds())  # key id → written


def _revoked_key(key_id: int) -> str:
    return f"api:key-revoked:{key_id}"


@receiver([post_save, post_delete], sender=ApiKey, dispatch_uid="api-key-memo")
def _on_api_key_changed(sender, instance, **kwargs):
    """A key revoked or deleted elsewhere (the admin): stop it at once in every process."""
    if kwargs.get("signal") is post_delete or instance.revoked_at is not None:
        cache.set(_revoked_key(instance.pk), 1, timeout=int(KEY_MEMO_SECONDS * 2))
    _keys.forget(instance.key_hash)


# A key looked up by its hash with its organization, compiled once per thread and connection
# and run as a prepared statement: each process looks up every key it serves once a minute,
# so right after a deploy, with many integrators, this runs for a good share of requests (the
# ORM compiled it at every call: a fifth of such a request's time).
_key_lookup = CompiledQuery(
    lambda digest: ApiKey.objects.select_related("organization").filter(
        key_hash=digest, revoked_at__isnull=True
    ),
    "0" * 64,
)


def _key_for(plaintext: str) -> ApiKey | None:
    digest = _hash(plaintext)
    key = _keys.get(digest, lambda: _key_lookup.first(digest))
    if key is None:
        _keys.discard(digest)  # unknown keys are not remembered (guessing must not fill memory)
    return key


def _last_used_touch(key: ApiKey) -> None:
    """Record that ``key`` was used, at most once a minute per key (per process through the
    memo, and in the database across processes)."""
    _last_used.get(key.pk, lambda: _last_used_write(key))


def _last_used_write(key: ApiKey) -> bool:
    """One prepared statement (the ORM's UPDATE, compiled at every call, was a twelfth of a
    key's first request in a process); it writes only when the stored time is a minute old, so
    the other processes' first use of the key in that minute changes nothing."""
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    fetchall_prepared(
        f"UPDATE {ApiKey._meta.db_table} SET last_used_at = %s WHERE id = %s "  # noqa: S608
        "AND (last_used_at IS NULL OR last_used_at < %s) RETURNING id",
        [adapt(now), key.pk, adapt(now - LAST_USED_RESOLUTION)],
    )
    return True


def api_keys_of(organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(organization=organization).select_related("created_by")


# --- Errors -----------------------------------------------------------------------------------


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state of the resource."


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "unprocessable"
    default_detail = "The request is well formed but cannot be carried out."

    def __init__(self, detail=None, code=None, details=None):
        super().__init__(detail, code)
        self.extra_details = details or {}


def _flatten(detail):
    """DRF error details → plain JSON (strings, lists, dicts)."""
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail) if isinstance(detail, str) else detail


def api_exception_handler(exc, context):
    """Every error answers ``{"error": {"code", "message", "details"}}`` with its status."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, DjangoValidationError):  # a service refused: well formed, not doable
        message = " ".join(exc.messages)
        code = "send_refused" if type(exc).__name__ == "SendRefused" else "unprocessable"
        exc = Unprocessable(detail=message, code=code)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        code, message, details = (
            "invalid",
            _("The request has invalid fields."),
            _flatten(exc.detail),
        )
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        if isinstance(exc.detail, dict | list):
            message, details = str(exc.default_detail), _flatten(exc.detail)
        else:
            message, details = str(exc.detail), getattr(exc, "extra_details", {})
        if isinstance(exc, exceptions.Throttled):
            details = {"retry_after": exc.wait and int(exc.wait + 0.999)}
            message = _("Too many requests. Retry after %(seconds)s seconds.") % {
                "seconds": details["retry_after"]
            }
    response.data = {"error": {"code": code, "message": message, "details": details}}
    return response


class ErrorBody(serializers.Serializer):
    class Error(serializers.Serializer):
        code = serializers.CharField()
        message = serializers.CharField()
        details = serializers.JSONField()

    error = Error()


# --- Input -------------------------------------------------------------------------------------


def _json_type_errors(field, value):
    """Why ``value`` (parsed JSON) is not of the JSON type the schema gives ``field``, or None.
    DRF alone would take 0 for "0", 1 or "true" for true and "5" for 5."""
    if value is None or isinstance(field, serializers.JSONField | serializers.FileField):
        return None  # null is the field's own rule (allow_null)
    if isinstance(field, serializers.BooleanField):
        ok = isinstance(value, bool)
    elif isinstance(field, serializers.IntegerField):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(field, serializers.FloatField):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif isinstance(field, serializers.ListField | serializers.ListSerializer):
        if not isinstance(value, list):
            return [_("Expected a list.")]
        errors = {i: e for i, v in enumerate(value) if (e := _json_type_errors(field.child, v))}
        return errors or None
    elif isinstance(field, serializers.DictField):
        if not isinstance(value, dict):
            return [_("Expected an object.")]
        errors = {k: e for k, v in value.items() if (e := _json_type_errors(field.child, v))}
        return errors or None
    elif isinstance(field, serializers.Serializer):
        if not isinstance(value, dict):
            return [_("Expected an object.")]
        return json_type_errors(field, value) or None
    elif isinstance(field, serializers.MultipleChoiceField):
        ok = isinstance(value, list)
    elif isinstance(
        field,
        serializers.CharField
        | serializers.ChoiceField
        | serializers.UUIDField
        | serializers.DateField
        | serializers.DateTimeField
        | serializers.TimeField,
    ):
        ok = isinstance(value, str)
    else:
        return None
    return None if ok else [_("Wrong type: see the schema.")]


def json_type_errors(serializer: serializers.Serializer, data: dict) -> dict:
    """Values of the wrong JSON type, and names the serializer does not know (the schema
    says ``additionalProperties: false``: a misspelt field is an error, not ignored)."""
    fields = {name: field for name, field in serializer.fields.items() if not field.read_only}
    errors = {name: [_("Unknown field.")] for name in data if name not in fields}
    for name, field in fields.items():
        if name in data and (error := _json_type_errors(field, data[name])):
            errors[name] = error
    return errors


NESTING_FIELDS = (serializers.BaseSerializer, serializers.ListField, serializers.DictField)


# Base of the API's JSON body serializers: each value must already have the JSON type the
# schema documents ("notes": 0 is refused, not stored as "0"). A comment, not a docstring: the
# schema would show it as every input's description.
class ApiIn(serializers.Serializer):
    def get_fields(self):
        # Plain fields are copied shallowly (each copy is bound on its own): DRF deep-copies
        # every declared field, rebuilding it from its arguments, which was most of
        # validating a send's body. Fields holding other fields keep the deep copy.
        return {
            name: copy.deepcopy(field) if isinstance(field, NESTING_FIELDS) else copy.copy(field)
            for name, field in self._declared_fields.items()
        }

    def to_internal_value(self, data):
        if isinstance(data, dict) and (errors := json_type_errors(self, data)):
            raise exceptions.ValidationError(errors)
        return super().to_internal_value(data)


def error_body(*, code: str, message: str, details=None) -> dict:
    """The error body outside DRF views (unknown /api/ paths, Django's own error handlers)."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


# Every operation may answer these (bodies only where a request has one); ``ApiSchema``
# documents them, so that clients and schemathesis know each status the API can return.
SHARED_ERRORS = {
    400: "Invalid fields or parameters; `details` names each one.",
    401: "Missing, invalid or revoked API key.",
    403: "The key lacks the scope (or the member's role the permission).",
    404: "Not found: an unknown id, or another organization's object.",
    413: "The request body is too large (1 MB of JSON, 16 MB of media).",
    415: "Unsupported `Content-Type`: JSON (multipart/form-data for media uploads).",
    429: "Too many requests: wait `Retry-After` seconds.",
}
BODY_ERRORS = (413, 415)
NO_NUL = r"^[^\x00]*$"
NOT_BLANK_NO_NUL = r"^[^\x00]*[^\s\x00][^\x00]*$"


class ApiSchema(AutoSchema):
    """drf-spectacular's schema for ``ApiView``: each operation lists the shared error
    responses with the one error body, and a 429's ``Retry-After`` header."""

    def _get_response_bodies(self, direction="response"):
        # Not get_response_serializers(): @extend_schema(responses=…) replaces that one.
        responses = super()._get_response_bodies(direction)
        with_body = self.method in ("POST", "PUT", "PATCH")
        for code, description in SHARED_ERRORS.items():
            if code in BODY_ERRORS and not with_body:
                continue
            key = str(code)
            if key not in responses:
                responses[key] = self._get_response_for_code(
                    OpenApiResponse(ErrorBody, description=description), key, direction=direction
                )
            elif not responses[key].get("description"):
                responses[key]["description"] = description
        return responses

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and schema.get("type") == "object":
            schema.setdefault("additionalProperties", False)  # as ApiIn enforces
        return schema

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        """Strings in requests say what DRF accepts: no NUL character, and for a field that
        may not be blank, something besides whitespace (DRF trims it first)."""
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and not {"pattern", "format", "enum"} & set(schema)
        ):
            blank_ok = field.allow_blank or not field.trim_whitespace
            schema["pattern"] = NO_NUL if blank_ok else NOT_BLANK_NO_NUL
        return schema

    def _get_response_headers_for_code(self, status_code, direction="response"):
        headers = super()._get_response_headers_for_code(status_code, direction)
        if str(status_code) == "429":
            headers["Retry-After"] = {
                "schema": {"type": "integer", "minimum": 0},
                "description": "Seconds to wait before retrying.",
            }
        return headers


def schema_links(result, generator, request, public):
    """drf-spectacular hook: what a create answers leads to its object's operations (OpenAPI
    links: ``POST /contacts/`` → ``GET /contacts/{code}/`` with ``code`` = the new ``id``), so
    clients and schemathesis' stateful tests can follow them."""
    paths = result.get("paths", {})
    for path, operations in paths.items():
        created = operations.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        links = {}
        for other_path, other_operations in paths.items():
            match = re.fullmatch(re.escape(path) + r"\{(\w+)\}/.*", other_path)
            if match is None:
                continue
            parameters = {name: f"$request.path.{name}" for name in re.findall(r"\{(\w+)\}", path)}
            parameters[match.group(1)] = "$response.body#/id"
            for operation in other_operations.values():
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": parameters,
                }
        if links:
            created["links"] = links
    return result


# --- Authentication ---------------------------------------------------------------------------


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer pfk_…``. Failed attempts count per client address: past the
    ``auth`` rate its bad keys answer 429 with ``Retry-After`` instead of 401. Valid keys are
    never held back (clients behind one NAT share an address; 256-bit keys cannot be guessed)."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith(self.keyword + " "):
            return None
        plaintext = header[len(self.keyword) + 1 :].strip()
        key = _key_for(plaintext) if plaintext.startswith(API_KEY_PREFIX) else None
        if key is None:
            self._failed(request)
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."))
        _last_used_touch(key)
        request._request.api_key = key  # so that the audit log can name the key
        return AnonymousUser(), key

    @staticmethod
    def _failed(request) -> None:
        failures_key = f"api:auth-failures:{_client_ip(request)}"
        limit, period = parse_rate(throttle_rates()["auth"])
        now = timezone.now().timestamp()
        failures = [t for t in cache.get(failures_key, []) if t > now - period]
        if len(failures) >= limit:
            raise exceptions.Throttled(wait=failures[0] + period - now)
        cache.set(failures_key, [*failures, now], timeout=period)

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api_auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from Settings › API keys.",
        }


# Resource → role-matrix section, for requests made with a browser session.
SESSION_SECTIONS = {
    "numbers": "settings",
    "templates": "chats",
    "contacts": "chats",
    "chats": "chats",
    "messages": "chats",
    "media": "chats",
    "webhooks": "settings",
    "assistants": "assistants",
    "campaigns": "campaigns",
    "segments": "campaigns",
    "reports": "dashboard",
    "privacy": "settings",
    "appointments": "chats",  # the agenda's own access (appointments.access) narrows it further
    "flows": "assistants",
}


class ScopePermission(BasePermission):
    """API keys need ``<resource>:<action>``; session members need the role's section level."""

    def has_permission(self, request, view):
        action = view.get_action(request)
        if isinstance(request.auth, ApiKey):
            if not request.auth.allows(view.resource, action):
                raise exceptions.PermissionDenied(
                    _("This API key lacks the %(scope)s scope.")
                    % {"scope": f"{view.resource}:{action}"}
                )
            return True
        if not request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        membership = getattr(request._request, "membership", None)
        if membership is None:
            return False
        section = SESSION_SECTIONS[view.resource]
        edit = action == "write" or view.session_requires_edit
        allowed = access.can_edit if edit else access.can_view
        return allowed(membership, section)


# --- Throttles --------------------------------------------------------------------------------

DEFAULT_THROTTLE_RATES = {
    "read": "600/min",
    "write": "300/min",
    "send": "100/min",
    "sync": "10/min",
    "ask": "60/min",
    "auth": "10/min",
}


def throttle_rates() -> dict[str, str]:
    return {**DEFAULT_THROTTLE_RATES, **getattr(settings, "API_THROTTLE_RATES", {})}


def parse_rate(rate: str) -> tuple[int, int]:
    number, period = rate.split("/")
    return int(number), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


class ApiRateThrottle(SimpleRateThrottle):
    """Per key (or per signed-in user) and per endpoint class: read, write, send, sync, ask."""

    def __init__(self):  # rates are read per request so tests may override them
        pass

    def allow_request(self, request, view):
        """A sliding window counted in one Redis round trip (``kernel.cache.count_hit``), which
        also brings back a revoked key's mark: a key memoised by this process stops at once."""
        self.scope = view.get_throttle_scope(request)
        self.rate = throttle_rates()[self.scope]
        self.num_requests, self.duration = parse_rate(self.rate)
        key_id = request.auth.pk if isinstance(request.auth, ApiKey) else None
        current, previous, elapsed, revoked = count_hit(
            self.get_cache_key(request, view),
            self.duration,
            also_get=_revoked_key(key_id) if key_id else "",
        )
        if revoked is not None:
            _keys.forget(request.auth.key_hash)
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."))
        weight = previous * (1 - elapsed)
        if weight + current <= self.num_requests:
            return True
        # Until the previous window's share has decayed enough (or the window ends).
        if previous and current < self.num_requests:
            needed = 1 - (self.num_requests - current) / previous
            self._wait = max(0.0, (needed - elapsed) * self.duration)
        else:
            self._wait = (1 - elapsed) * self.duration
        return False

    def wait(self):
        return max(1.0, self._wait)

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            ident = f"key-{request.auth.pk}"
        elif request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"ip-{_client_ip(request)}"
        return f"api:throttle:{self.scope}:{ident}"


# --- The base view ----------------------------------------------------------------------------


class JsonFirstNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answered at once for what integrators send (no ``Accept``, ``*/*``
    or ``application/json``, no ``?format=``): the first renderer, JSON, as DRF would pick.
    Parsing and ranking the header on every call was a fortieth of an API read's CPU."""

    fast_accepts = frozenset({"", "*/*", "application/json"})

    def select_renderer(self, request, renderers, format_suffix=None):
        if (
            not format_suffix
            and renderers
            and renderers[0].media_type == "application/json"
            and request.META.get("HTTP_ACCEPT", "") in self.fast_accepts
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return renderers[0], "application/json"
        return super().select_renderer(request, renderers, format_suffix)


def key_member(key: ApiKey) -> Membership:
    """The member a key acts as: organization-wide, like an admin (never saved). Built once per
    key object, which the process memoises (``_keys``): building a model instance at every
    request was a twentieth of an API read's CPU. Read-only, as the access functions use it."""
    member = key.__dict__.get("_member")
    if member is None:
        member = key.__dict__["_member"] = Membership(
            organization=key.organization, role=Role.ADMIN
        )
    return member


MAX_JSON_BYTES = 1024 * 1024


class ApiView(APIView):
    """Base of every ``/api/v1/`` endpoint (HackSoft style: one view per operation)."""

    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [ScopePermission]
    throttle_classes = [ApiRateThrottle]
    parser_classes = [JSONParser]  # JSON in and out, as the schema says
    content_negotiation_class = JsonFirstNegotiation
    schema = ApiSchema()
    resource = ""  # one of API_RESOURCES
    action = ""  # "read" / "write"; default: by HTTP method
    throttle_scope = ""  # default: read for safe methods, write otherwise
    session_requires_edit = False  # e.g. LGPD exports: admins only, as on the contact page
    max_body_bytes = MAX_JSON_BYTES

    def get_exception_handler(self):
        return api_exception_handler

    def dispatch(self, request, *args, **kwargs):
        started = time.perf_counter()
        response = super().dispatch(request, *args, **kwargs)
        response["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    def get_action(self, request) -> str:
        return self.action or ("read" if request.method in ("GET", "HEAD", "OPTIONS") else "write")

    def get_throttle_scope(self, request) -> str:
        return self.throttle_scope or self.get_action(request)

    def initial(self, request, *args, **kwargs):
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > self.max_body_bytes:
            raise PayloadTooLarge(
                _("The request body is larger than %(limit)d bytes.")
                % {"limit": self.max_body_bytes}
            )
        timezone.activate(UTC)  # the API speaks ISO-8601 in UTC, whatever the organization's zone
        super().initial(request, *args, **kwargs)
        if isinstance(request.auth, ApiKey):
            self.organization = request.auth.organization
            self.membership = key_member(request.auth)
            self.actor = None
        else:
            self.membership = request._request.membership
            self.organization = self.membership.organization
            self.actor = request.user

    def finalize_response(self, request, response, *args, **kwargs):
        timezone.deactivate()
        return super().finalize_response(request, response, *args, **kwargs)


# --- Cursor pagination ------------------------------------------------------------------------

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 200
CURSOR_PATTERN = r"[A-Za-z0-9_-]{1,1000}"  # URL-safe base64 of [value, id], unpadded

CURSOR_PARAMETERS = [
    OpenApiParameter(
        "cursor",
        {"type": "string", "pattern": f"^{CURSOR_PATTERN}$"},
        description="Opaque cursor from a previous page's `next`.",
    ),
    OpenApiParameter(
        "limit",
        {
            "type": "integer",
            "minimum": 1,
            "maximum": PAGE_SIZE_MAX,
            "default": PAGE_SIZE_DEFAULT,
        },
        description=f"Page size, 1–{PAGE_SIZE_MAX} (default {PAGE_SIZE_DEFAULT}).",
    ),
]


_CURSOR_JSON = json.JSONEncoder(separators=(",", ":"))  # one encoder, not one per cursor


def _encode_cursor(value, pk: int) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = _CURSOR_JSON.encode([value, pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, is_datetime: bool):
    """A malformed cursor is a bad request (400); a well-formed one that we never issued
    names no page (404, as an unknown id does)."""
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise exceptions.ValidationError({"cursor": [_("Invalid cursor.")]})
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if is_datetime and value is not None:
            value = parse_datetime(value)
            if value is None:
                raise ValueError
        if not isinstance(pk, int):
            raise ValueError
        return value, pk
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as error:
        raise exceptions.NotFound(
            _("Unknown cursor: follow a previous page's next."), code="unknown_cursor"
        ) from error


def _after(field: str, value, pk: int, descending: bool) -> Q:
    """Rows after (``value``, ``pk``) in the order (``field``, id), nulls first when
    descending and last when ascending (so a descending order can use a ``-field`` index)."""
    op = "lt" if descending else "gt"
    if value is None:
        following = Q(**{f"{field}__isnull": True, f"id__{op}": pk})
        return following | Q(**{f"{field}__isnull": False}) if descending else following
    following = Q(**{f"{field}__{op}": value}) | Q(**{field: value, f"id__{op}": pk})
    return following if descending else following | Q(**{f"{field}__isnull": True})


def query_data(request) -> dict:
    """The query string as a plain dict for an input serializer: ``?start=`` is then a blank
    value it rejects, as the schema does (with a QueryDict, DRF reads a blank as omitted, as
    for HTML forms). A repeated parameter counts once, its last value."""
    return request.query_params.dict()


def keyset_order(field: str, descending: bool) -> tuple:
    """The order of ``keyset_page``: (``field``, id), nulls first when descending."""
    if descending:
        return F(field).desc(nulls_first=True), F("id").desc()
    return F(field).asc(nulls_last=True), F("id").asc()


def keyset_page(
    request,
    queryset: QuerySet,
    field: str,
    *,
    descending: bool,
    is_datetime: bool = True,
    fetch=list,
):
    """One page of ``queryset`` ordered by (``field``, id); returns the rows and the URL of
    the next page (or None). Stable under inserts, unlike offsets. ``queryset`` may give
    model instances or ``values()`` rows (with ``id``); ``fetch`` turns the ordered, sliced
    queryset into those rows (by default, runs it)."""
    limit = page_limit(request)
    cursor = request.query_params.get("cursor")
    if cursor is not None:
        value, pk = _decode_cursor(cursor, is_datetime)
        queryset = queryset.filter(_after(field, value, pk, descending))
    rows = fetch(queryset.order_by(*keyset_order(field, descending))[: limit + 1])
    return page_next(request, rows, limit, field)


def page_limit(request) -> int:
    """The ``limit`` query parameter, checked."""
    raw_limit = request.query_params.get("limit", str(PAGE_SIZE_DEFAULT))
    if not re.fullmatch(r"[0-9]{1,6}", raw_limit):
        raise exceptions.ValidationError({"limit": [_("A whole number is required.")]})
    limit = int(raw_limit)
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise exceptions.ValidationError({"limit": [_("Between 1 and %d.") % PAGE_SIZE_MAX]})
    return limit


def page_next(request, rows: list, limit: int, field: str) -> tuple[list, str | None]:
    """A page's rows (fetched ``limit + 1``, ordered by ``field`` and id) cut to ``limit``,
    and the URL of the next page (or None)."""
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        value, pk = (
            (last[field], last["id"]) if isinstance(last, dict) else (getattr(last, field), last.pk)
        )
        # The request's parameters in their order, the cursor replaced or added: a plain dict,
        # as QueryDict.copy() deep-copies (a twentieth of an API read's CPU went to it).
        query = dict(request.query_params.lists())
        query["cursor"] = [_encode_cursor(value, pk)]
        next_url = request.build_absolute_uri(request.path) + "?" + urlencode(query, doseq=True)
    return rows, next_url


_paginated_cache: dict[type, type] = {}


def paginated(item_serializer: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of a page of ``item_serializer`` rows."""
    if item_serializer not in _paginated_cache:
        name = item_serializer.__qualname__.replace(".", "") + "Page"
        _paginated_cache[item_serializer] = type(
            name,
            (serializers.Serializer,),
            {
                "results": item_serializer(many=True),
                "next": serializers.URLField(allow_null=True),
            },
        )
    return _paginated_cache[item_serializer]


def page_response(request, rows, next_url, serializer_class) -> Response:
    return Response(
        {
            "results": serializer_class(rows, many=True, context={"request": request}).data,
            "next": next_url,
        }
    )


def json_page_response(rows: list[str], next_url: str | None) -> HttpResponse:
    """A page whose rows are already JSON text (built by the database): the body is joined,
    not rendered. The same JSON as ``page_response``."""
    body = f'{{"results":[{",".join(rows)}],"next":{json.dumps(next_url)}}}'
    return HttpResponse(body.encode(), content_type="application/json")


# --- Idempotency ------------------------------------------------------------------------------

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    description=(
        "Any unique string (e.g. a UUID) per intended operation. A retry with the same key and "
        "body replays the first response instead of sending again (a retry while the first is "
        "still running waits for it); the same key with a different body answers 422. Keys are "
        "kept for 24 hours."
    ),
)
IDEMPOTENCY_TTL = timedelta(hours=24)
IDEMPOTENCY_STALE = timedelta(minutes=5)


def _canonical_json(data) -> str:
    """The request's data as sorted JSON text, the same for the same request however sent. A
    JSON body's data (a dict) is JSON already; other parsers' (a form's QueryDict, files) is
    made JSON-ready first, as the renderer would."""
    if type(data) is not dict:
        data = json.loads(JSONRenderer().render(data))
    return json.dumps(data, sort_keys=True)


def idempotent(request, organization, work) -> Response:
    """Run ``work()`` (which returns a Response) at most once per ``Idempotency-Key``.

    The key's row is inserted with the answer, in the same transaction as the work and after
    it: one statement, sent with the COMMIT on PostgreSQL. A retry of an answered key runs the
    work again in its transaction, finds the key taken and rolls that back, then replays the
    stored answer; a retry that
    arrives while the first still runs waits on the key's row (PostgreSQL's unique index,
    SQLite's write lock), then replays. A crash or an error leaves nothing: a retry runs
    again. Nothing the work does outside its transaction may run before its commit (live
    events and tasks are queued on commit).
    """
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        with transaction.atomic():
            return work()
    if len(key) > 255:
        raise exceptions.ValidationError({"Idempotency-Key": [_("At most 255 characters.")]})
    body = _canonical_json(request.data)
    digest = hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()
    for _attempt in range(2):
        try:
            with transaction.atomic():
                response = work()
                if _idempotency_store(organization, key, digest, response):
                    return response
                raise _KeyTaken  # rolls the work back
        except _KeyTaken:
            pass
        except Exception:
            # Refused or failed: the answer of a key already used stands (a retry after the
            # state moved on replays what happened then); a free key lets the error through.
            if not _idempotency_taken(organization, key, digest):
                raise
        row = ApiIdempotencyKey.objects.filter(organization=organization, key=key).first()
        if row is None:
            continue  # purged meanwhile: run it again
        if row.request_hash != digest:
            raise Unprocessable(
                _("This Idempotency-Key was already used with a different request."),
                code="idempotency_key_reused",
            )
        if row.completed:
            return Response(
                row.response_body,
                status=row.response_status,
                headers={"Idempotent-Replayed": "true"},
            )
        # A claim of the two-transaction protocol before it (its own committed row): taken
        # over once stale, as that protocol did.
        stale = timezone.now() - IDEMPOTENCY_STALE
        if not ApiIdempotencyKey.objects.filter(
            pk=row.pk, completed=False, locked_at__lt=stale
        ).delete()[0]:
            break
    raise Conflict(
        _("A request with this Idempotency-Key is still being processed; retry shortly."),
        code="idempotency_key_in_progress",
    )


class _KeyTaken(Exception):
    """The work's transaction found its Idempotency-Key stored: it is rolled back."""


_IDEMPOTENCY_INSERT = (
    'INSERT INTO {table} (organization_id, "key", request_hash, completed, response_status, '
    "response_body, locked_at, created_at) VALUES (%s, %s, %s, %s, %s, {body}, %s, %s)"
)
_IDEMPOTENCY_UNLESS_TAKEN = ' ON CONFLICT (organization_id, "key") DO NOTHING RETURNING id'


def _idempotency_store(organization, key: str, digest: str, response: Response | None) -> bool:
    """Insert the key's row with ``response`` (None: an unanswered claim), or wait for a
    concurrent transaction holding it to end; False when the key is taken. One prepared
    statement, the answer rendered once."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    body = JSONRenderer().render(response.data).decode() if response is not None else None
    sql = _IDEMPOTENCY_INSERT.format(
        table=ApiIdempotencyKey._meta.db_table,
        body="CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s",
    )
    status_code = response.status_code if response is not None else None
    row = [organization.pk, key, digest, response is not None, status_code, body, now, now]
    if response is not None and _commit_rides_along():
        # The row and the COMMIT in one round trip (a send's last two): a key taken fails the
        # INSERT, which skips the COMMIT and leaves the transaction to roll back, as
        # ``idempotent`` does then. Django's own commit finds nothing left to commit.
        with connection.cursor() as cursor:
            cursor.execute(sql + "; COMMIT", row)
        return True
    return bool(fetchall_prepared(sql + _IDEMPOTENCY_UNLESS_TAKEN, row))


def _commit_rides_along() -> bool:
    """Whether the work's transaction may be committed by its last statement: PostgreSQL
    (several statements in one query string), and the block is the outermost (not a test's
    transaction or a caller's, which only its owner may commit)."""
    return (
        connection.vendor == "postgresql"
        and len(connection.atomic_blocks) == 1
        and not connection.savepoint_ids
        and not connection.needs_rollback
    )


def _idempotency_taken(organization, key: str, digest: str) -> bool:
    """Whether ``key`` is taken, once a concurrent transaction holding it has ended: a claim
    tried in a transaction of its own and rolled back."""
    try:
        with transaction.atomic():
            if _idempotency_store(organization, key, digest, None):
                raise _KeyTaken  # free: undo the claim
    except _KeyTaken:
        return False
    return True


def idempotency_keys_purge() -> int:
    """Periodic: forget keys older than 24 hours."""
    deleted, _rows = ApiIdempotencyKey.objects.filter(
        created_at__lt=timezone.now() - IDEMPOTENCY_TTL
    ).delete()
    return deleted
