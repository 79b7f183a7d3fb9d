"""One small interface over chat completions, embeddings and transcription.

``ChatProvider`` wraps the official ``openai`` client (any OpenAI-compatible base URL);
``OfflineProvider`` needs no key and answers by extracting the best-matching sentences from the
knowledge passages it is given, so the embedded demo shows the whole flow. Callers choose with
``provider_for(api_key, base_url)``, which falls back to ``OPENAI_API_KEY``/``OPENAI_BASE_URL``.

The platform's key only ever goes to the platform's base URL: an organization that names its
own server brings its own key. Requests to an organization's server go through
``integrations.egress`` (public addresses only, checked on every connection, unless the
operator lists the server in ``AI_PRIVATE_BASE_URLS``); the platform's own URL is trusted.
"""

from __future__ import annotations

import functools
import json
import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import openai
from django.conf import settings

from integrations import egress
from integrations.errors import IntegrationError
from kernel.admission import waiting_outside

DEFAULT_TIMEOUT = 20.0


class AIError(IntegrationError):
    """The model could not answer (timeout, refused key, server error, malformed answer)."""


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class ChatResult:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    model: str = ""
    latency_ms: int = 0
    offline: bool = False


class ChatProvider:
    """The official ``openai`` client against any OpenAI-compatible server."""

    offline = False

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        guarded: bool = False,
        allow: tuple[str, ...] = (),
    ):
        """``guarded``: ``base_url`` was typed by a user, so connect only where
        ``integrations.egress`` allows (``allow``: servers the operator named)."""
        http_client = egress.httpx_client(timeout=timeout, allow=allow) if guarded else None
        self.client = openai.OpenAI(
            api_key=api_key,
            base_url=base_url or None,
            timeout=timeout,
            max_retries=0,
            http_client=http_client,
        )

    def chat(
        self,
        *,
        model: str,
        messages: list[dict],
        tools: list[dict] | None = None,
        temperature: float = 0.3,
        max_tokens: int = 500,
        passages: list[str] | None = None,
    ) -> ChatResult:
        """``passages`` are already inside ``messages``; only the offline provider reads them."""
        started = time.monotonic()
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        if tools:
            kwargs["tools"] = tools
        try:
            with waiting_outside():
                response = self.client.chat.completions.create(**kwargs)
        except egress.UnsafeURL as error:
            raise AIError(str(error), permanent=True) from error
        except openai.APITimeoutError as error:
            raise AIError(f"The model did not answer in time: {error}", permanent=False) from error
        except openai.APIStatusError as error:
            permanent = error.status_code in (400, 401, 403, 404, 422)
            raise AIError(
                f"The model server answered {error.status_code}: {error.message}",
                permanent=permanent,
            ) from error
        except openai.APIError as error:
            raise AIError(f"The model server failed: {error}", permanent=False) from error
        if not response.choices:
            raise AIError("The model returned no answer.", permanent=False)
        message = response.choices[0].message
        calls = []
        for call in message.tool_calls or []:
            try:
                arguments = json.loads(call.function.arguments or "{}")
            except ValueError:
                arguments = {}
            calls.append(
                ToolCall(
                    id=call.id,
                    name=call.function.name,
                    arguments=arguments if isinstance(arguments, dict) else {},
                )
            )
        usage = response.usage
        return ChatResult(
            text=(message.content or "").strip(),
            tool_calls=calls,
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
            model=response.model or model,
            latency_ms=int((time.monotonic() - started) * 1000),
        )

    def embed(self, *, model: str, texts: list[str]) -> list[list[float]]:
        try:
            with waiting_outside():
                response = self.client.embeddings.create(model=model, input=texts)
        except egress.UnsafeURL as error:
            raise AIError(str(error), permanent=True) from error
        except openai.APIError as error:
            raise AIError(f"Embeddings failed: {error}", permanent=False) from error
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]

    def transcribe(self, *, model: str, filename: str, data: bytes, mime_type: str) -> str:
        try:
            with waiting_outside():
                response = self.client.audio.transcriptions.create(
                    model=model, file=(filename, data, mime_type)
                )
        except egress.UnsafeURL as error:
            raise AIError(str(error), permanent=True) from error
        except openai.APIError as error:
            raise AIError(f"Transcription failed: {error}", permanent=False) from error
        return (getattr(response, "text", "") or "").strip()


# --- Offline ------------------------------------------------------------------------------------

_STOPWORDS = """a o e as os de da do das dos em no na nos nas um uma para por com que se ao à é ou
    qual quais quanto quando onde como vocês voce você eu meu minha tem têm ter the an and or of
    to in on at for is are do does what which when where how can i you your my el la los las y
    es por para con que un una del al"""
STOPWORDS = frozenset(_STOPWORDS.split())


def normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def terms(text: str, *, fold: bool = True) -> list[str]:
    """Content words of ``text``: lowercased, accents removed (unless ``fold=False``),
    stopwords and short words out."""
    words = re.findall(r"\w+", normalize(text) if fold else text.lower())
    return [w for w in words if len(w) > 2 and normalize(w) not in STOPWORDS]


def _stem(word: str) -> str:
    return word[:5]


# Abbreviations a sentence does not end on ("Dra. Paula", "Av. Paulista", "nº. 12").
_ABBREVIATION_TEXT = """dr dra drs dras sr sra srs sras srta prof profa av avda r rua n nº tel cel ed
    edif apto sta sto etc ex obs aprox min max mr mrs ms st vs"""
_ABBREVIATIONS = frozenset(_ABBREVIATION_TEXT.split())


def sentences(text: str) -> list[str]:
    """Whole sentences of ``text``, not cut after an abbreviation or inside a number."""
    pieces: list[str] = []
    for line in re.split(r"\n+", text or ""):
        current = ""
        for piece in re.split(r"(?<=[.!?])\s+", line.strip()):
            current = f"{current} {piece}".strip() if current else piece
            last = re.findall(r"(\w+)\.$", current)
            if last and normalize(last[0]) in _ABBREVIATIONS:
                continue  # "Dra." ends no sentence: keep going
            pieces.append(current)
            current = ""
        if current:
            pieces.append(current)
    return [p.strip(" -*#\t") for p in pieces if p.strip(" -*#\t")]


class OfflineProvider:
    """No model: answers with whole sentences of the best knowledge passage.

    Retrieval sends only passages that clear the assistant's relevance threshold, best first;
    without one (nothing in the knowledge answers) it calls the ``handoff`` tool when offered,
    so the customer hears that a person will answer instead of a confident guess. Passages
    arrive without their source titles (``passages``), so no title dangles in an answer.
    """

    offline = True
    MAX_SENTENCES = 2

    def chat(
        self,
        *,
        model: str = "offline",
        messages: list[dict],
        tools: list[dict] | None = None,
        temperature: float = 0.0,
        max_tokens: int = 500,
        passages: list[str] | None = None,
    ) -> ChatResult:
        started = time.monotonic()
        question = next(
            (m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), ""
        )
        tokens_in = sum(len(str(m.get("content") or "").split()) for m in messages)
        best = next((p for p in passages or [] if p.strip()), "")
        tool_names = {(t.get("function") or {}).get("name") for t in tools or []}
        if not best:
            if "handoff" in tool_names:
                return ChatResult(
                    text="",
                    tool_calls=[ToolCall("offline-1", "handoff", {"reason": "low confidence"})],
                    model="offline",
                    latency_ms=int((time.monotonic() - started) * 1000),
                    offline=True,
                    tokens_in=tokens_in,
                )
            return ChatResult(text="", model="offline", offline=True, tokens_in=tokens_in)
        wanted = {_stem(t) for t in terms(question)}
        found = sentences(best)
        score = [len(wanted & {_stem(t) for t in terms(s)}) for s in found]
        ranked = sorted(range(len(found)), key=lambda i: (-score[i], i))
        # No sentence shares a word: the passage matched on its title or a synonym; its first
        # sentence is what it is about.
        chosen = [i for i in ranked if score[i]][: self.MAX_SENTENCES] or [0]
        text = " ".join(found[i] for i in sorted(chosen))
        return ChatResult(
            text=text,
            model="offline",
            latency_ms=int((time.monotonic() - started) * 1000),
            offline=True,
            tokens_in=tokens_in,
            tokens_out=len(text.split()),
        )

    def embed(self, *, model: str, texts: list[str]) -> list[list[float]]:
        raise AIError("Embeddings need an API key.", permanent=True)

    def transcribe(self, *, model: str, filename: str, data: bytes, mime_type: str) -> str:
        raise AIError("Transcription needs an API key.", permanent=True)


OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"


def _same_server(a: str, b: str) -> bool:
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def is_platform_server(base_url: str) -> bool:
    """Whether ``base_url`` is the server the operator configured (``OPENAI_BASE_URL``, or
    OpenAI's own when that is empty): the only one the platform key may go to."""
    return _same_server(base_url, settings.OPENAI_BASE_URL or OPENAI_DEFAULT_BASE_URL)


def provider_for(
    api_key: str = "", base_url: str = "", *, timeout: float = DEFAULT_TIMEOUT
) -> ChatProvider | OfflineProvider:
    """The organization's key and base URL, else the environment's, else the offline provider.

    An organization's own server (a base URL other than the platform's) is used only with the
    organization's own key (without one the offline provider answers: the platform's key
    never goes there), and only at addresses ``integrations.egress`` allows."""
    if base_url and not is_platform_server(base_url):
        if not api_key:
            return OfflineProvider()
        allow = tuple(settings.AI_PRIVATE_BASE_URLS)
        return _cached_provider(api_key, base_url, float(timeout), allow, egress.allow_private())
    key = api_key or settings.OPENAI_API_KEY
    if not key:
        return OfflineProvider()
    return _cached_provider(key, settings.OPENAI_BASE_URL, float(timeout), None, False)


@functools.lru_cache(maxsize=64)
def _cached_provider(
    key: str, url: str, timeout: float, allow: tuple[str, ...] | None, allow_private: bool
) -> ChatProvider:
    """One client (and its connection pool) per server and key: building one costs ~10 ms, and
    the ``openai`` client is safe to share between threads. ``allow`` is None for the
    platform's server; ``allow_private`` is in the key so that pooled connections opened while
    private addresses were allowed are never reused once they are not."""
    return ChatProvider(
        api_key=key, base_url=url, timeout=timeout, guarded=allow is not None, allow=allow or ()
    )
