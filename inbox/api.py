"""Integrator API for chats, messages and media (``/api/v1/``; see ``accounts.api_auth``).

One view per operation, each reusing the inbox's selectors, access functions and services:
what an API call can do is exactly what a member can do in the inbox.
"""

import hashlib
from datetime import UTC

import phonenumbers
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from accounts.api_auth import (
    CURSOR_PARAMETERS,
    IDEMPOTENCY_HEADER,
    ApiIn,
    ApiView,
    ErrorBody,
    idempotent,
    json_page_response,
    keyset_order,
    keyset_page,
    page_limit,
    page_next,
    page_response,
    paginated,
    query_data,
)
from accounts.models import ApiKey, User
from inbox import access, selectors, services
from inbox.media import clean_filename, media_file_save
from inbox.models import Chat, Contact, Media, Message
from integrations.errors import IntegrationError
from integrations.models import WhatsAppNumber
from integrations.providers import provider_for
from integrations.whatsapp import validation
from kernel.sql import CompiledQuery, fetchall_prepared

ERRORS = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody}
SEND_TYPES = (
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "template",
)
MEDIA_MAX_BYTES = 16 * 1024 * 1024


# --- Shared output shapes ---------------------------------------------------------------------


def message_author(view: ApiView) -> dict:
    """Keyword arguments for ``message_send``: who wrote a message sent through the API (an
    API key is an automation; a signed-in member is that person)."""
    if isinstance(view.request.auth, ApiKey):
        return {
            "author_type": Message.Author.AUTOMATION,
            "author_ref": f"api:{view.request.auth.prefix}",
        }
    return {"author_type": Message.Author.USER, "author_user": view.actor}


class ContactRefOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    phone = serializers.CharField(help_text="E.164")
    name = serializers.CharField(source="display_name")


class NumberRefOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    display_phone_number = serializers.CharField()


class UserRefOut(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField(source="display_name")


class ChatOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    status = serializers.ChoiceField(choices=Chat.Status.choices)
    contact = ContactRefOut()
    number = NumberRefOut()
    assignee = UserRefOut(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    ai_enabled = serializers.BooleanField()
    unread_count = serializers.IntegerField()
    last_message_at = serializers.DateTimeField(allow_null=True)
    last_message_preview = serializers.CharField()
    window_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="After this, only approved templates may be sent."
    )
    sequence = serializers.IntegerField(
        source="seq", help_text="Last live-event number of the chat."
    )
    created_at = serializers.DateTimeField()

    def to_representation(self, chat):
        """The declared fields (they stay the schema), built by hand: a page of 50 chats spent
        a third of its time in DRF's field-by-field rendering. ``chat`` is a Chat or a row of
        ``CHAT_OUT_VALUES`` (the list reads rows: building 150 model instances per page was a
        sixth of its time)."""
        if isinstance(chat, dict):
            return _chat_row_out(chat)
        contact, number, assignee = chat.contact, chat.number, chat.assignee
        return _chat_row_out(
            {
                "code": chat.code,
                "status": chat.status,
                "contact__code": contact.code,
                "contact__phone": contact.phone,
                "contact__name": contact.display_name,
                "contact__profile_name": "",
                "number__code": number.code,
                "number__display_phone_number": number.display_phone_number,
                "assignee__email": None if assignee is None else assignee.email,
                "assignee__name": None if assignee is None else assignee.name,
                "tags": chat.tags,
                "ai_enabled": chat.ai_enabled,
                "unread_count": chat.unread_count,
                "last_message_at": chat.last_message_at,
                "last_message_preview": chat.last_message_preview,
                "window_expires_at": chat.window_expires_at,
                "seq": chat.seq,
                "created_at": chat.created_at,
            }
        )


def _chat_row_out(row: dict) -> dict:
    """``ChatOut`` of one row; names as Contact.display_name and User.display_name do."""
    email = row["assignee__email"]
    return {
        "id": str(row["code"]),
        "status": row["status"],
        "contact": {
            "id": str(row["contact__code"]),
            "phone": str(row["contact__phone"]),
            "name": str(
                row["contact__name"] or row["contact__profile_name"] or row["contact__phone"]
            ),
        },
        "number": {
            "id": str(row["number__code"]),
            "display_phone_number": str(row["number__display_phone_number"]),
        },
        "assignee": None
        if email is None
        else {"email": str(email), "name": str(row["assignee__name"] or email.split("@")[0])},
        "tags": [str(tag) for tag in row["tags"]],
        "ai_enabled": bool(row["ai_enabled"]),
        "unread_count": int(row["unread_count"]),
        "last_message_at": _datetime(row["last_message_at"]),
        "last_message_preview": str(row["last_message_preview"]),
        "window_expires_at": _datetime(row["window_expires_at"]),
        "sequence": int(row["seq"]),
        "created_at": _datetime(row["created_at"]),
    }


def _datetime(value):
    """As DRF's DateTimeField in the API's time zone (UTC): ISO-8601 with ``Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


class MediaOut(serializers.Serializer):
    id = serializers.CharField(
        source="meta_media_id", help_text='WhatsApp media id: send it as {"id": "…"}.'
    )
    mime_type = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    filename = serializers.CharField()


class MessageErrorOut(serializers.Serializer):
    code = serializers.IntegerField(source="error_code", allow_null=True)
    title = serializers.CharField(source="error_title")
    details = serializers.CharField(source="error_details")


class MessageOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    chat = serializers.UUIDField(source="chat.code")
    direction = serializers.ChoiceField(choices=Message.Direction.choices)
    type = serializers.CharField(help_text="text, image, template, interactive, note, activity…")
    text = serializers.CharField()
    content = serializers.JSONField(help_text="The WhatsApp Cloud API object of the message.")
    status = serializers.ChoiceField(choices=Message.Status.choices)
    wamid = serializers.CharField(allow_null=True)
    author_type = serializers.ChoiceField(choices=Message.Author.choices)
    timestamp = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    read_at = serializers.DateTimeField(allow_null=True)
    failed_at = serializers.DateTimeField(allow_null=True)
    error = serializers.SerializerMethodField()
    media = MediaOut(many=True)

    @extend_schema_field(MessageErrorOut(allow_null=True))
    def get_error(self, message):
        if message.status != Message.Status.FAILED:
            return None
        return MessageErrorOut(message).data

    def to_representation(self, message):
        """The declared fields (they stay the schema), built by hand as ``ChatOut`` does: DRF
        copied and bound sixteen fields per message, a tenth of a send's time."""
        failed = message.status == Message.Status.FAILED
        return {
            "id": str(message.code),
            "chat": str(message.chat.code),
            "direction": message.direction,
            "type": message.type,
            "text": str(message.text),
            "content": message.content,
            "status": message.status,
            "wamid": message.wamid,
            "author_type": message.author_type,
            "timestamp": _datetime(message.timestamp),
            "sent_at": _datetime(message.sent_at),
            "delivered_at": _datetime(message.delivered_at),
            "read_at": _datetime(message.read_at),
            "failed_at": _datetime(message.failed_at),
            "error": {
                "code": message.error_code,
                "title": str(message.error_title),
                "details": str(message.error_details),
            }
            if failed
            else None,
            "media": [
                {
                    "id": str(media.meta_media_id),
                    "mime_type": str(media.mime_type),
                    "size": int(media.size),
                    "sha256": str(media.sha256),
                    "filename": str(media.filename),
                }
                for media in _media_of(message)
            ],
        }


def _media_of(message: Message):
    """The message's media, from its prefetch when there is one (without a new queryset)."""
    prefetched = getattr(message, "_prefetched_objects_cache", {}).get("media")
    return message.media.all() if prefetched is None else prefetched


def phone_e164(value: str) -> str | None:
    """``value`` as E.164 if it is a valid international number (``+`` and country code)."""
    value = (value or "").strip()
    if not value.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _number_for(organization, code) -> WhatsAppNumber:
    """The organization's number ``code``, or its only active number when none is named."""
    numbers = WhatsAppNumber.objects.filter(organization=organization)
    if code:
        number = numbers.filter(code=code).first()
        if number is None:
            raise exceptions.ValidationError({"number": [_("Unknown number.")]})
        return number
    active = list(numbers.filter(is_active=True)[:2])
    if len(active) != 1:
        raise exceptions.ValidationError(
            {"number": [_("This organization has several numbers (or none): name one.")]}
        )
    return active[0]


# The columns ChatOut shows, so that a page of chats loads nothing else (contacts' attributes and
# notes, numbers' encrypted credentials): a third of the list's cost was building those.
CHAT_OUT_COLUMNS = (
    *("organization", "code", "status", "tags", "ai_enabled", "unread_count", "seq"),
    *("last_message_at", "last_message_preview", "window_expires_at", "created_at"),
    *("contact__code", "contact__phone", "contact__name", "contact__profile_name"),
    *("number__code", "number__display_phone_number", "assignee__email", "assignee__name"),
)


# The same columns as a row (dict) per chat, for the list.
CHAT_OUT_VALUES = (
    *("id", "code", "status", "tags", "ai_enabled", "unread_count", "seq"),
    *("last_message_at", "last_message_preview", "window_expires_at", "created_at"),
    *("contact__code", "contact__phone", "contact__name", "contact__profile_name"),
    *("number__code", "number__display_phone_number", "assignee__email", "assignee__name"),
)


def _chat_queryset(membership):
    return (
        selectors.chats_visible_to(membership)
        .select_related("contact", "number", "assignee")
        .only(*CHAT_OUT_COLUMNS)
    )


def _chat_out(membership, chat: Chat) -> dict:
    """A chat as the API shows it, read back after a change (so every field is current)."""
    return ChatOut(get_object_or_404(_chat_queryset(membership), pk=chat.pk)).data


# --- Chats ------------------------------------------------------------------------------------


CHAT_ORDERING_DEFAULT = "-last_message_at"
CHAT_NO_FILTERS = selectors.ChatFilters(view="all", status="any")  # the list's, none given


class ChatListApi(ApiView):
    resource = "chats"

    class ChatFilterIn(serializers.Serializer):
        status = serializers.ChoiceField(choices=Chat.Status.values, required=False)
        assignee = serializers.CharField(
            required=False,
            max_length=254,
            help_text="A teammate's email, or `none` for unassigned.",
        )
        number = serializers.UUIDField(required=False, help_text="A number's id.")
        tag = serializers.CharField(required=False, max_length=40)
        ai = serializers.ChoiceField(choices=["true", "false"], required=False)
        q = serializers.CharField(
            required=False, max_length=100, help_text="Contact name or phone, or message text."
        )
        ordering = serializers.ChoiceField(
            choices=["-last_message_at", "last_message_at", "-created_at", "created_at"],
            default=CHAT_ORDERING_DEFAULT,
            help_text="Chats without messages yet come first in `-last_message_at`.",
        )

    @extend_schema(
        operation_id="chats_list",
        summary="List chats",
        parameters=[ChatFilterIn, *CURSOR_PARAMETERS],
        responses={200: paginated(ChatOut), **ERRORS},
    )
    def get(self, request):
        query = query_data(request)
        if query.keys() <= {"limit", "cursor"}:
            # No filter to check (keyset_page checks these two): validating seven absent
            # fields was a tenth of a page's time.
            data = {"ordering": CHAT_ORDERING_DEFAULT}
        else:
            params = self.ChatFilterIn(data=query)
            params.is_valid(raise_exception=True)
            data = params.validated_data
        ordering = data["ordering"]
        field, descending = ordering.lstrip("-"), ordering.startswith("-")
        if connection.vendor == "postgresql" and query.keys() <= {"limit"}:
            # The usual poll, the first page without filters: its SQL is compiled once per
            # role and shape, so no queryset is built (that was a fifth of the poll's CPU).
            limit = page_limit(request)
            rows = _chat_rows_json_first(self.membership, field, descending, limit + 1)
            rows, next_url = page_next(request, rows, limit, field)
            return json_page_response([row["json"] for row in rows], next_url)
        filters = selectors.ChatFilters(
            view="all",
            status=data.get("status", "any"),
            number=str(data.get("number") or ""),
            tag=data.get("tag", "").strip().lower(),
            ai={"true": "on", "false": "off"}.get(data.get("ai", ""), ""),
            q=data.get("q", "").strip(),
        )
        chats = selectors._apply_filters(
            selectors.chats_visible_to(self.membership), filters, self.membership
        )
        assignee = data.get("assignee", "").strip()
        if assignee.lower() == "none":
            chats = chats.filter(assignee__isnull=True)
        elif assignee:
            chats = chats.filter(assignee__email__iexact=assignee)
        if connection.vendor == "postgresql":
            rows, next_url = keyset_page(
                request,
                chats.values("id", field),
                field,
                descending=descending,
                fetch=lambda page: _page_rows_json(page, field, descending),
            )
            return json_page_response([row["json"] for row in rows], next_url)
        rows, next_url = keyset_page(
            request, chats.values(*CHAT_OUT_VALUES), field, descending=descending
        )
        return page_response(request, rows, next_url, ChatOut)


def _iso_sql(column: str) -> str:
    """PostgreSQL: ``column`` (timestamptz) as ``_datetime`` writes it: ISO-8601 in UTC with
    ``Z``, microseconds only when there are some (as Python's ``isoformat``)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"to_char({utc}, CASE WHEN extract(microseconds FROM {utc})::bigint %% 1000000 = 0 "
        """THEN 'YYYY-MM-DD"T"HH24:MI:SS"Z"' ELSE 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' END)"""
    )


class _Json(str):
    """A piece of JSON text, written into the SQL as a literal."""


def _concat_sql(parts: list) -> str:
    """SQL: the text concatenation of ``parts``, ``_Json`` pieces (each run of them one literal)
    and SQL expressions of text."""
    merged: list = []
    for part in parts:
        if isinstance(part, _Json) and merged and isinstance(merged[-1], _Json):
            merged[-1] = _Json(merged[-1] + part)
        else:
            merged.append(part)
    pieces = [f"'{p}'" if isinstance(p, _Json) else p for p in merged]
    return "(" + " || ".join(pieces) + ")"


def _json_object(*members: tuple[str, list]) -> list:
    """A JSON object as parts for ``_concat_sql``, from (key, the member's JSON parts)."""
    parts: list = [_Json("{")]
    for index, (key, value) in enumerate(members):
        parts += [_Json(f'{"," if index else ""}"{key}":'), *value]
    return [*parts, _Json("}")]


def _json_text(value: str) -> list:
    """``value`` (SQL text) as a JSON string, or ``null``: a NULL would void the whole text."""
    return [f"COALESCE(to_json({value})::text, 'null')"]


def _json_uuid(column: str) -> list:
    return [_Json('"'), f"{column}::text", _Json('"')]


def _json_iso(column: str) -> list:
    """``column`` (timestamptz) as ``_iso_sql`` writes it, as a JSON string, or ``null``."""
    return [f"""COALESCE('"' || {_iso_sql(column)} || '"', 'null')"""]


# ChatOut of one chat, as JSON text concatenated by PostgreSQL (c: the chat, ct: its contact, n:
# its number, u: the assignee); names as Contact.display_name and User.display_name give them.
# The same JSON as ``_chat_row_out`` (tests/api/test_hot_paths.py compares them). Text, not
# ``json_build_object``, which works out each argument's type again at every row: a page of
# 50 chats cost PostgreSQL 530-575 µs of CPU against 670-785 (bench/README.md).
_ASSIGNEE_JSON = _json_object(
    ("email", _json_text("u.email")),
    ("name", _json_text("COALESCE(NULLIF(u.name, ''), split_part(u.email, '@', 1))")),
)
CHAT_OUT_JSON_SQL = _concat_sql(
    _json_object(
        ("id", _json_uuid("c.code")),
        ("status", _json_text("c.status")),
        (
            "contact",
            _json_object(
                ("id", _json_uuid("ct.code")),
                ("phone", _json_text("ct.phone")),
                (
                    "name",
                    _json_text(
                        "COALESCE(NULLIF(ct.name, ''), NULLIF(ct.profile_name, ''), ct.phone)"
                    ),
                ),
            ),
        ),
        (
            "number",
            _json_object(
                ("id", _json_uuid("n.code")),
                ("display_phone_number", _json_text("n.display_phone_number")),
            ),
        ),
        (
            "assignee",
            [f"CASE WHEN u.id IS NULL THEN 'null' ELSE {_concat_sql(_ASSIGNEE_JSON)} END"],
        ),
        ("tags", ["c.tags::text"]),
        ("ai_enabled", ["c.ai_enabled::text"]),
        ("unread_count", ["c.unread_count::text"]),
        ("last_message_at", _json_iso("c.last_message_at")),
        ("last_message_preview", _json_text("c.last_message_preview")),
        ("window_expires_at", _json_iso("c.window_expires_at")),
        ("sequence", ["c.seq::text"]),
        ("created_at", _json_iso("c.created_at")),
    )
)


_first_pages: dict[tuple, CompiledQuery] = {}


def _first_page_sql(membership, field: str, descending: bool, rows: int) -> tuple[str, list]:
    """The SQL of the first ``rows`` chats ``membership`` sees without filters, in the order
    (``field``, ``descending``): what ``ChatListApi.get`` builds, compiled once per role and
    shape (compiling it was a fifth of a page's time)."""
    shape = (membership.role, field, descending, rows)
    compiled = _first_pages.get(shape)
    if compiled is None:
        role = membership.role

        def build(organization_id, user_id):
            member = selectors.member_stand_in(role, organization_id, user_id)
            chats = selectors._apply_filters(
                selectors.chats_visible_to(member), CHAT_NO_FILTERS, member
            )
            order = keyset_order(field, descending)
            return chats.values("id", field).order_by(*order)[:rows]

        compiled = _first_pages[shape] = CompiledQuery(build, -7351, -7352)
    return compiled.sql(membership.organization_id, membership.user_id)


def _chat_rows_json_first(membership, field: str, descending: bool, rows: int) -> list[dict]:
    """``_chat_rows_json`` of the first ``rows`` chats ``membership`` sees without filters."""
    sql, params = _first_page_sql(membership, field, descending, rows)
    return _chat_rows_json(sql, params, field, descending)


def _chat_rows_json(sql: str, params, field: str, descending: bool) -> list[dict]:
    """A page of chats (``sql``: their ids and ``field``, ordered and sliced) with each one's
    JSON built by PostgreSQL: turning 50 rows of columns into Python values and then into JSON
    was most of the list's time. Rows: ``id``, ``field`` (as ISO text, for the next cursor) and
    ``json``."""
    order = "DESC NULLS FIRST" if descending else "ASC NULLS LAST"
    direction = "DESC" if descending else "ASC"
    # The ordering value as ISO text, for the next page's cursor (_decode_cursor reads it
    # back): no datetime is built per row. Prepared: planning it cost as much as running it.
    rows = fetchall_prepared(
        f"SELECT t.id, {_iso_sql('t.' + field)}, {CHAT_OUT_JSON_SQL} FROM ({sql}) t "  # noqa: S608
        f"JOIN {Chat._meta.db_table} c ON c.id = t.id "
        f"JOIN {Contact._meta.db_table} ct ON ct.id = c.contact_id "
        f"JOIN {WhatsAppNumber._meta.db_table} n ON n.id = c.number_id "
        f"LEFT JOIN {User._meta.db_table} u ON u.id = c.assignee_id "
        f"ORDER BY t.{field} {order}, t.id {direction}",
        list(params),
    )
    return [{"id": pk, field: value, "json": text} for pk, value, text in rows]


def _page_rows_json(page, field: str, descending: bool) -> list[dict]:
    """``_chat_rows_json`` of a page's queryset; none when its filters can match nothing (a
    search with no hit is an empty ``IN``, which Django answers without a statement)."""
    try:
        sql, params = page.query.sql_with_params()
    except EmptyResultSet:
        return []
    return _chat_rows_json(sql, params, field, descending)


class ChatDetailApi(ApiView):
    resource = "chats"

    @extend_schema(
        operation_id="chats_retrieve", summary="Get a chat", responses={200: ChatOut, **ERRORS}
    )
    def get(self, request, code):
        chat = access.get_chat_for_member(self.membership, code)
        return Response(_chat_out(self.membership, chat))


class ChatAssignApi(ApiView):
    resource = "chats"

    class ChatAssignIn(ApiIn):
        assignee = serializers.EmailField(
            allow_null=True, help_text="A teammate's email; null unassigns."
        )

    @extend_schema(
        operation_id="chats_assign",
        summary="Assign or unassign a chat",
        request=ChatAssignIn,
        responses={200: ChatOut, **ERRORS},
        examples=[
            OpenApiExample("Assign", value={"assignee": "ana@clinic.example"}, request_only=True)
        ],
    )
    def post(self, request, code):
        chat = access.get_chat_for_member(self.membership, code)
        data = self.ChatAssignIn(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data["assignee"]
        assignee = None
        if email:
            assignee = User.objects.filter(
                memberships__organization=self.organization, email__iexact=email
            ).first()
            if assignee is None:
                raise exceptions.ValidationError({"assignee": [_("No teammate has this email.")]})
        services.chat_assign(chat=chat, assignee=assignee, actor=self.actor)
        return Response(_chat_out(self.membership, chat))


class ChatStatusApi(ApiView):
    resource = "chats"

    class ChatStatusIn(ApiIn):
        status = serializers.ChoiceField(choices=Chat.Status.values)

    @extend_schema(
        operation_id="chats_set_status",
        summary="Open, hold or resolve a chat",
        request=ChatStatusIn,
        responses={200: ChatOut, **ERRORS},
        examples=[OpenApiExample("Resolve", value={"status": "resolved"}, request_only=True)],
    )
    def post(self, request, code):
        chat = access.get_chat_for_member(self.membership, code)
        data = self.ChatStatusIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.chat_set_status(chat=chat, status=data.validated_data["status"], actor=self.actor)
        return Response(_chat_out(self.membership, chat))


class ChatAiApi(ApiView):
    resource = "chats"

    class ChatAiIn(ApiIn):
        enabled = serializers.BooleanField()
        reason = serializers.CharField(required=False, allow_blank=True, max_length=200)

    @extend_schema(
        operation_id="chats_set_ai",
        summary="Turn the AI assistant on or off for a chat",
        request=ChatAiIn,
        responses={200: ChatOut, **ERRORS},
        examples=[
            OpenApiExample("Hand over to a human", value={"enabled": False}, request_only=True)
        ],
    )
    def post(self, request, code):
        chat = access.get_chat_for_member(self.membership, code)
        data = self.ChatAiIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.chat_set_ai(
            chat=chat,
            enabled=data.validated_data["enabled"],
            actor=self.actor,
            reason=data.validated_data.get("reason", ""),
        )
        return Response(_chat_out(self.membership, chat))


class ChatTagsApi(ApiView):
    resource = "chats"

    class ChatTagsIn(ApiIn):
        tags = serializers.ListField(
            child=serializers.CharField(max_length=40),
            max_length=30,
            help_text="Replaces the tags.",
        )

    @extend_schema(
        operation_id="chats_set_tags",
        summary="Set a chat's tags",
        request=ChatTagsIn,
        responses={200: ChatOut, **ERRORS},
        examples=[OpenApiExample("Tags", value={"tags": ["billing", "vip"]}, request_only=True)],
    )
    def post(self, request, code):
        chat = access.get_chat_for_member(self.membership, code)
        data = self.ChatTagsIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.chat_set_tags(chat=chat, tags=data.validated_data["tags"], actor=self.actor)
        return Response(_chat_out(self.membership, chat))


# --- Messages ---------------------------------------------------------------------------------


def _messages_of(chat: Chat, *, include_internal: bool):
    messages = (
        Message.objects.filter(chat=chat)
        .select_related("chat")
        .prefetch_related(Prefetch("media", queryset=Media.objects.order_by("id")))
    )
    if not include_internal:
        messages = messages.exclude(direction=Message.Direction.INTERNAL)
    return messages


class MessageSendIn(ApiIn):
    """The WhatsApp Cloud API message shape: ``type`` and the object named after it."""

    type = serializers.ChoiceField(choices=SEND_TYPES)
    text = serializers.JSONField(required=False, help_text='{"body": "…", "preview_url": false}')
    image = serializers.JSONField(
        required=False,
        help_text='{"link": "https://…"} or {"id": "<media id from POST /media/>"}, plus "caption".',
    )
    video = serializers.JSONField(required=False)
    audio = serializers.JSONField(required=False)
    document = serializers.JSONField(required=False, help_text='Media object plus "filename".')
    sticker = serializers.JSONField(required=False)
    location = serializers.JSONField(required=False)
    contacts = serializers.JSONField(required=False)
    interactive = serializers.JSONField(required=False)
    template = serializers.JSONField(
        required=False, help_text='{"name": "…", "language": {"code": "pt_BR"}, "components": […]}'
    )
    reply_to = serializers.UUIDField(required=False, help_text="Id of the message answered.")

    @classmethod
    def plain(cls, data) -> dict | None:
        """What validation returns for the usual send, ``{"type": "<type>", "<type>": {…}}``,
        checked without binding the thirteen fields (7% of a send's CPU); None for any
        other body, which the serializer checks and explains."""
        if type(data) is not dict or len(data) != 2:
            return None
        kind = data.get("type")
        if type(kind) is not str or kind not in SEND_TYPES or kind not in cls._declared_fields:
            return None
        value = data.get(kind)
        return {"type": kind, kind: value} if type(value) is _object_type(kind) else None

    def validate(self, data):
        kind = data["type"]
        if kind not in data:
            raise exceptions.ValidationError(
                {kind: [_("Give the %(type)s object.") % {"type": kind}]}
            )
        if not isinstance(data[kind], _object_type(kind)):
            raise exceptions.ValidationError({kind: [_("Must be a JSON object.")]})
        return data


def _object_type(kind: str) -> type:
    return list if kind == "contacts" else dict


SEND_EXAMPLES = [
    OpenApiExample(
        "Text",
        value={"type": "text", "text": {"body": "Your appointment is confirmed."}},
        request_only=True,
    ),
    OpenApiExample(
        "Template",
        value={
            "type": "template",
            "template": {
                "name": "appointment_reminder",
                "language": {"code": "pt_BR"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
            },
        },
        request_only=True,
    ),
    OpenApiExample(
        "Image by link",
        value={
            "type": "image",
            "image": {"link": "https://example.com/map.png", "caption": "Our address"},
        },
        request_only=True,
    ),
    OpenApiExample(
        "Reply buttons",
        value={
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "Confirm your visit tomorrow at 10:00?"},
                "action": {
                    "buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Confirm"}}]
                },
            },
        },
        request_only=True,
    ),
]
SEND_RESPONSES = {201: MessageOut, 409: ErrorBody, 422: ErrorBody, 429: ErrorBody, **ERRORS}


def _send(view: ApiView, chat: Chat, data: dict) -> Response:
    """Store and queue the message (the caller runs this inside ``idempotent``)."""
    kind = data["type"]
    content = dict(data[kind]) if kind != "contacts" else data[kind]
    reply_to = None
    if data.get("reply_to"):
        reply_to = Message.objects.filter(chat=chat, code=data["reply_to"]).first()
        if reply_to is None:
            raise exceptions.ValidationError({"reply_to": [_("No such message in this chat.")]})
    message = services.message_send(
        chat=chat, message_type=kind, content=content, reply_to=reply_to, **message_author(view)
    )
    if kind in services.MEDIA_TYPES and content.get("id"):
        # Our copy of a file uploaded through the API shows in the chat.
        Media.objects.filter(
            organization=view.organization, meta_media_id=str(content["id"]), message__isnull=True
        ).update(message=message)
        message = _messages_of(chat, include_internal=False).get(pk=message.pk)
    else:
        # The message as stored (nothing else changes it before the commit; its send runs
        # after): no read back, and no media to fetch — two statements fewer per send.
        message.chat = chat
        no_media = Media.objects.none()
        # Fetched, as prefetch_related leaves it: iterating a bare none() still compiled the
        # query (8% of a send's CPU).
        no_media._result_cache, no_media._prefetch_done = [], True
        message._prefetched_objects_cache = {"media": no_media}
    return Response(MessageOut(message).data, status=status.HTTP_201_CREATED)


class ChatMessagesApi(ApiView):
    """List a chat's messages (GET) or send one to it (POST)."""

    resource = "messages"

    def get_throttle_scope(self, request):
        return "send" if request.method == "POST" else "read"

    class MessageFilterIn(serializers.Serializer):
        ordering = serializers.ChoiceField(
            choices=["-timestamp", "timestamp"], default="-timestamp"
        )
        include_internal = serializers.ChoiceField(
            choices=["true", "false"],
            default="false",
            help_text="Include private notes and activity.",
        )

    @extend_schema(
        operation_id="chats_messages_list",
        summary="List a chat's messages",
        parameters=[MessageFilterIn, *CURSOR_PARAMETERS],
        responses={200: paginated(MessageOut), **ERRORS},
    )
    def get(self, request, code):
        chat = access.get_chat_for_member(self.membership, code)
        params = self.MessageFilterIn(data=query_data(request))
        params.is_valid(raise_exception=True)
        ordering = params.validated_data["ordering"]
        messages = _messages_of(
            chat, include_internal=params.validated_data["include_internal"] == "true"
        )
        rows, next_url = keyset_page(
            request, messages, "timestamp", descending=ordering.startswith("-")
        )
        return page_response(request, rows, next_url, MessageOut)

    @extend_schema(
        operation_id="chats_messages_send",
        summary="Send a message in a chat",
        description=(
            "Where the number's provider has a customer service window (the Cloud API's 24 "
            "hours), outside it only approved templates are accepted (422)."
        ),
        request=MessageSendIn,
        parameters=[IDEMPOTENCY_HEADER],
        responses=SEND_RESPONSES,
        examples=SEND_EXAMPLES,
    )
    def post(self, request, code):
        chat = access.get_chat_for_send(self.membership, code)
        values = MessageSendIn.plain(request.data)
        if values is None:
            data = MessageSendIn(data=request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
        return idempotent(request, self.organization, lambda: _send(self, chat, values))


class MessageSendApi(ApiView):
    """Send to a phone number or contact: the chat is found or started on the chosen number."""

    resource = "messages"
    throttle_scope = "send"

    class MessageSendToIn(MessageSendIn):
        to = serializers.CharField(
            required=False, max_length=20, help_text="E.164 phone, e.g. +5511999990000."
        )
        contact = serializers.UUIDField(
            required=False, help_text="A contact's id (instead of `to`)."
        )
        number = serializers.UUIDField(
            required=False, help_text="Which of your numbers sends; optional when you have one."
        )

        def validate(self, data):
            data = super().validate(data)
            if bool(data.get("to")) == bool(data.get("contact")):
                raise exceptions.ValidationError({"to": [_("Give either to or contact.")]})
            if data.get("to"):
                data["to"] = phone_e164(data["to"])
                if data["to"] is None:
                    raise exceptions.ValidationError(
                        {"to": [_("An E.164 phone number is required.")]}
                    )
            return data

    @extend_schema(
        operation_id="messages_send",
        summary="Send a message to a phone number or contact",
        request=MessageSendToIn,
        parameters=[IDEMPOTENCY_HEADER],
        responses=SEND_RESPONSES,
        examples=[
            OpenApiExample(
                "Template to a phone",
                value={
                    "to": "+5511999990000",
                    "type": "template",
                    "template": {"name": "hello_world", "language": {"code": "en_US"}},
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        data = self.MessageSendToIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        number = _number_for(self.organization, values.get("number"))

        def work():
            chat = self._chat_for(number, values)
            return _send(self, chat, values)

        return idempotent(request, self.organization, work)

    def _chat_for(self, number, values) -> Chat:
        contacts = Contact.objects.filter(organization=self.organization)
        if values.get("contact"):
            contact = contacts.filter(code=values["contact"]).first()
            if contact is None:
                raise exceptions.ValidationError({"contact": [_("Unknown contact.")]})
        else:
            wa_id = values["to"].lstrip("+")
            contact = contacts.filter(wa_id=wa_id).first() or services.contact_for_inbound(
                number=number, wa_id=wa_id, profile_name=""
            )
        chat = services.chat_for_contact(number=number, contact=contact)
        # Agents (session) may only write in chats they can see.
        return access.get_chat_for_member(self.membership, chat.code)


# --- Media ------------------------------------------------------------------------------------


class MediaUploadApi(ApiView):
    """Upload a file to WhatsApp once and send it in messages as ``{"id": "<id>"}``."""

    resource = "media"
    parser_classes = [MultiPartParser]
    max_body_bytes = MEDIA_MAX_BYTES + 64 * 1024

    class MediaUploadIn(ApiIn):
        file = serializers.FileField()
        number = serializers.UUIDField(
            required=False, help_text="Optional when you have one number."
        )

    @extend_schema(
        operation_id="media_upload",
        summary="Upload media",
        request={"multipart/form-data": MediaUploadIn},
        responses={201: MediaOut, 413: ErrorBody, 422: ErrorBody, **ERRORS},
    )
    def post(self, request):
        data = self.MediaUploadIn(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        number = _number_for(self.organization, data.validated_data.get("number"))
        mime_type = upload.content_type or "application/octet-stream"
        problem = validation.check_upload(mime_type, upload.size)
        if problem is not None:
            raise exceptions.ValidationError({"file": [str(problem.details)]})
        content = upload.read()
        name = clean_filename(upload.name) or "file"
        try:
            meta_media_id = provider_for(number).upload_media(
                data=content, mime_type=mime_type, filename=name
            )
        except IntegrationError as error:
            raise exceptions.ValidationError({"file": [error.message]}) from error
        media = _media_store(self.organization, meta_media_id, mime_type, name, content)
        return Response(MediaOut(media).data, status=status.HTTP_201_CREATED)


def _media_store(
    organization, meta_media_id: str, mime_type: str, name: str, content: bytes
) -> Media:
    """Keep our copy of an uploaded file (the chat shows it once a message uses it)."""
    with transaction.atomic():
        media = Media(
            organization=organization,
            meta_media_id=meta_media_id,
            mime_type=mime_type,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            filename=name,
        )
        media_file_save(media, content)
        media.save()
    return media
