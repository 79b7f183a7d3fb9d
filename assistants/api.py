"""Integrator API for AI assistants (see ``accounts.api_auth``): list, read and update an
assistant's instructions, manage its knowledge base, and ask it a question.

Asking runs the builder's playground turn (``assistants.services.playground_turn``): the same
retrieval, model and handoff rules as auto-replies, with tools run dry and usage recorded as
playground. Assistants sit above ``inbox``; this module lives in the project layer with the
other API modules that compose apps.
"""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from accounts.api_auth import (
    CURSOR_PARAMETERS,
    ApiIn,
    ApiView,
    ErrorBody,
    keyset_page,
    page_response,
    paginated,
    query_data,
)
from assistants import selectors, services
from assistants.models import Assistant, KnowledgeSource
from inbox.api import NumberRefOut

ERRORS = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody}
HISTORY_MAX = 20
FAQ_MAX = 500


class AssistantOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    name = serializers.CharField()
    purpose = serializers.CharField()
    instructions = serializers.CharField(help_text="The business instructions (system prompt).")
    tone = serializers.ChoiceField(choices=Assistant.Tone.choices)
    language = serializers.CharField()
    model = serializers.CharField()
    greeting = serializers.CharField()
    handoff_message = serializers.CharField()
    handoff_keywords = serializers.ListField(child=serializers.CharField())
    sensitive_topics = serializers.ListField(child=serializers.CharField())
    is_active = serializers.BooleanField()
    enable_for_new_chats = serializers.BooleanField()
    version = serializers.IntegerField(help_text="Grows with every configuration change.")
    numbers = NumberRefOut(
        source="default_for_numbers.all",
        many=True,
        help_text="Numbers whose chats it answers.",
    )
    source_count = serializers.IntegerField(source="source_total")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AssistantUpdateIn(ApiIn):
    name = serializers.CharField(required=False, max_length=120)
    purpose = serializers.CharField(required=False, allow_blank=True, max_length=255)
    instructions = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    tone = serializers.ChoiceField(choices=Assistant.Tone.values, required=False)
    language = serializers.CharField(required=False, max_length=10)
    greeting = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    handoff_message = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    handoff_keywords = serializers.ListField(
        child=serializers.CharField(max_length=60), required=False, max_length=50
    )
    sensitive_topics = serializers.ListField(
        child=serializers.CharField(max_length=60), required=False, max_length=50
    )
    is_active = serializers.BooleanField(required=False)
    enable_for_new_chats = serializers.BooleanField(required=False)


class FaqPairIn(serializers.Serializer):
    question = serializers.CharField(max_length=1000)
    answer = serializers.CharField(max_length=5000)


class SourceOut(serializers.Serializer):
    id = serializers.UUIDField(source="code")
    kind = serializers.ChoiceField(choices=KnowledgeSource.Kind.choices)
    title = serializers.CharField()
    url = serializers.CharField(help_text="Web page address (kind `url`).")
    text = serializers.CharField()
    faq = FaqPairIn(many=True, help_text="Questions and answers (kind `faq`).")
    filename = serializers.SerializerMethodField(help_text="Uploaded file (kind `file`).")
    chunk_count = serializers.IntegerField(help_text="Passages indexed for retrieval.")
    embedded = serializers.BooleanField(help_text="Also indexed by embeddings.")
    created_at = serializers.DateTimeField()

    def get_filename(self, source) -> str:
        return source.file.name.rsplit("/", 1)[-1] if source.file else ""


class SourceCreateIn(ApiIn):
    kind = serializers.ChoiceField(
        choices=["text", "faq", "url"],
        help_text="`text`: pasted text; `faq`: questions and answers; `url`: a web page's text. "
        "Files are added in the assistant builder.",
    )
    title = serializers.CharField(required=False, allow_blank=True, max_length=255)
    text = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500_000,
        help_text="The text (`text`, `url`), or `Q: …` / `A: …` lines instead of `faq`.",
    )
    faq = FaqPairIn(many=True, required=False, max_length=FAQ_MAX)
    url = serializers.URLField(required=False, allow_blank=True, max_length=200)

    def validate(self, data):
        kind = data["kind"]
        if kind == KnowledgeSource.Kind.FAQ:
            pairs = data.get("faq") or services.parse_faq(data.get("text", ""))
            if not pairs:
                raise exceptions.ValidationError(
                    {"faq": [_("Add at least one question with its answer.")]}
                )
            data["faq"] = [{"question": p["question"], "answer": p["answer"]} for p in pairs]
        elif not data.get("text", "").strip():
            raise exceptions.ValidationError({"text": [_("Paste the text.")]})
        if kind == KnowledgeSource.Kind.URL and not data.get("url"):
            raise exceptions.ValidationError({"url": [_("Give the page's address.")]})
        return data


def _assistants(organization):
    return selectors.assistant_list(organization)


def _assistant_in(organization, code) -> Assistant:
    return get_object_or_404(_assistants(organization), code=code)


class AssistantListApi(ApiView):
    resource = "assistants"

    class AssistantFilterIn(serializers.Serializer):
        is_active = serializers.ChoiceField(choices=["true", "false"], required=False)
        ordering = serializers.ChoiceField(
            choices=["name", "-name", "-created_at", "created_at"], default="name"
        )

    @extend_schema(
        operation_id="assistants_list",
        summary="List assistants",
        parameters=[AssistantFilterIn, *CURSOR_PARAMETERS],
        responses={200: paginated(AssistantOut), **ERRORS},
    )
    def get(self, request):
        params = self.AssistantFilterIn(data=query_data(request))
        params.is_valid(raise_exception=True)
        data = params.validated_data
        assistants = _assistants(self.organization)
        if data.get("is_active"):
            assistants = assistants.filter(is_active=data["is_active"] == "true")
        ordering = data["ordering"]
        field = ordering.lstrip("-")
        rows, next_url = keyset_page(
            request,
            assistants,
            field,
            descending=ordering.startswith("-"),
            is_datetime=field == "created_at",
        )
        return page_response(request, rows, next_url, AssistantOut)


class AssistantDetailApi(ApiView):
    resource = "assistants"

    @extend_schema(
        operation_id="assistants_retrieve",
        summary="Get an assistant",
        responses={200: AssistantOut, **ERRORS},
    )
    def get(self, request, code):
        return Response(AssistantOut(_assistant_in(self.organization, code)).data)

    @extend_schema(
        operation_id="assistants_update",
        summary="Update an assistant's instructions and settings",
        description="Only the fields given change. Each change records a new version, as in "
        "the builder; replies after it use the new configuration.",
        request=AssistantUpdateIn,
        responses={200: AssistantOut, **ERRORS},
        examples=[
            OpenApiExample(
                "New instructions",
                value={
                    "instructions": "Offer the first visit for free. Never quote prices of "
                    "treatments; book an evaluation instead.",
                    "handoff_keywords": ["atendente", "humano", "emergência"],
                },
                request_only=True,
            )
        ],
    )
    def patch(self, request, code):
        assistant = _assistant_in(self.organization, code)
        data = AssistantUpdateIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        for field, value in data.validated_data.items():
            setattr(assistant, field, value)
        services.assistant_save(assistant=assistant, user=self.actor)
        return Response(AssistantOut(_assistant_in(self.organization, code)).data)


class AssistantSourceListApi(ApiView):
    """An assistant's knowledge base: list sources (GET) or add one (POST, indexed at once)."""

    resource = "assistants"

    class SourceFilterIn(serializers.Serializer):
        kind = serializers.ChoiceField(choices=KnowledgeSource.Kind.values, required=False)

    @extend_schema(
        operation_id="assistants_sources_list",
        summary="List an assistant's knowledge sources",
        parameters=[SourceFilterIn, *CURSOR_PARAMETERS],
        responses={200: paginated(SourceOut), **ERRORS},
    )
    def get(self, request, code):
        assistant = _assistant_in(self.organization, code)
        params = self.SourceFilterIn(data=query_data(request))
        params.is_valid(raise_exception=True)
        sources = assistant.sources.all()
        if params.validated_data.get("kind"):
            sources = sources.filter(kind=params.validated_data["kind"])
        rows, next_url = keyset_page(request, sources, "created_at", descending=True)
        return page_response(request, rows, next_url, SourceOut)

    @extend_schema(
        operation_id="assistants_sources_create",
        summary="Add a knowledge source (pasted text, FAQ or web page text)",
        request=SourceCreateIn,
        responses={201: SourceOut, 422: ErrorBody, **ERRORS},
        examples=[
            OpenApiExample(
                "FAQ",
                value={
                    "kind": "faq",
                    "title": "Opening hours",
                    "faq": [
                        {
                            "question": "When are you open?",
                            "answer": "Monday to Friday, 8:00 to 18:00.",
                        }
                    ],
                },
                request_only=True,
            ),
            OpenApiExample(
                "Pasted text",
                value={
                    "kind": "text",
                    "title": "Parking",
                    "text": "Free parking for patients at Rua das Flores 120.",
                },
                request_only=True,
            ),
        ],
    )
    def post(self, request, code):
        assistant = _assistant_in(self.organization, code)
        data = SourceCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        source = services.knowledge_add(
            assistant=assistant,
            kind=values["kind"],
            title=values.get("title", ""),
            text=values.get("text", ""),
            faq=values.get("faq"),
            url=values.get("url", ""),
        )
        return Response(SourceOut(source).data, status=status.HTTP_201_CREATED)


class AssistantSourceDetailApi(ApiView):
    resource = "assistants"

    def _source(self, code, source_code) -> KnowledgeSource:
        assistant = _assistant_in(self.organization, code)
        return get_object_or_404(assistant.sources.all(), code=source_code)

    @extend_schema(
        operation_id="assistants_sources_retrieve",
        summary="Get a knowledge source",
        responses={200: SourceOut, **ERRORS},
    )
    def get(self, request, code, source_code):
        return Response(SourceOut(self._source(code, source_code)).data)

    @extend_schema(
        operation_id="assistants_sources_delete",
        summary="Remove a knowledge source",
        description="Its passages stop being used in answers at once.",
        responses={204: None, **ERRORS},
    )
    def delete(self, request, code, source_code):
        self._source(code, source_code).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class AskIn(ApiIn):
    class TurnIn(serializers.Serializer):
        role = serializers.ChoiceField(choices=["user", "assistant"])
        content = serializers.CharField(max_length=4000)

    question = serializers.CharField(max_length=2000)
    history = TurnIn(
        many=True,
        required=False,
        max_length=HISTORY_MAX,
        help_text="Earlier turns of this conversation, oldest first.",
    )


class AskOut(serializers.Serializer):
    class SourceRefOut(serializers.Serializer):
        id = serializers.UUIDField(source="source_code", help_text="The knowledge source.")
        title = serializers.CharField(source="source")
        text = serializers.CharField(help_text="The passage used (first 300 characters).")

    class HandoffOut(serializers.Serializer):
        reason = serializers.CharField()

    answer = serializers.CharField(
        help_text="What the customer would read (the handoff message when it hands off)."
    )
    sources = SourceRefOut(many=True, help_text="Knowledge passages retrieved for the answer.")
    handoff = HandoffOut(
        allow_null=True,
        help_text="Set when the assistant would hand the chat over to a person.",
    )
    tool_calls = serializers.ListField(
        child=serializers.DictField(), help_text="Tools it would have called (not run)."
    )
    version = serializers.IntegerField(help_text="The configuration version that answered.")
    offline = serializers.BooleanField(
        help_text="True when no AI model is configured and the offline provider answered."
    )
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    latency_ms = serializers.IntegerField()


class AssistantAskApi(ApiView):
    """Ask a question as a customer would, without a chat (the builder's playground)."""

    resource = "assistants"
    action = "read"
    throttle_scope = "ask"

    @extend_schema(
        operation_id="assistants_ask",
        summary="Ask the assistant a question",
        description="Answers from the knowledge base with its sources, applying the handoff "
        "rules. Nothing is sent to any customer; tools are not run. Usage counts towards the "
        "assistant's costs. Needs `assistants:read`; limited to 60 questions per minute.",
        request=AskIn,
        responses={200: AskOut, 429: ErrorBody, **ERRORS},
        examples=[
            OpenApiExample(
                "Question",
                value={"question": "Do you have parking?"},
                request_only=True,
            ),
            OpenApiExample(
                "Answer",
                value={
                    "answer": "Yes, free parking for patients at Rua das Flores 120.",
                    "sources": [
                        {
                            "id": "0b7f2d1e-5c55-4c1d-9a43-2f0e6d7b8a10",
                            "title": "Parking",
                            "text": "Parking\nFree parking for patients at Rua das Flores 120.",
                        }
                    ],
                    "handoff": None,
                    "tool_calls": [],
                    "version": 3,
                    "offline": False,
                    "tokens_in": 412,
                    "tokens_out": 18,
                    "latency_ms": 840,
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request, code):
        assistant = _assistant_in(self.organization, code)
        data = AskIn(data=request.data)
        data.is_valid(raise_exception=True)
        history = [dict(turn) for turn in data.validated_data.get("history", [])]
        turn = services.playground_turn(
            assistant=assistant, history=history, text=data.validated_data["question"]
        )
        version = services.current_version(assistant)
        return Response(
            AskOut(
                {
                    "answer": assistant.handoff_message if turn.handoff_reason else turn.text,
                    "sources": turn.sources,
                    "handoff": {"reason": str(turn.handoff_reason)}
                    if turn.handoff_reason
                    else None,
                    "tool_calls": turn.tool_calls,
                    "version": version.number,
                    "offline": turn.offline,
                    "tokens_in": turn.tokens_in,
                    "tokens_out": turn.tokens_out,
                    "latency_ms": turn.latency_ms,
                }
            ).data
        )
