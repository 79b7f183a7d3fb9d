"""Knowledge base: text extraction, chunking, indexing and retrieval.

The lexical index is always there (SQLite FTS5 or PostgreSQL full-text, created in migration
0002); embeddings are added when the organization's provider offers them, and retrieval then
fuses both rankings.
"""

import hashlib
import io
import logging
import os
import re
import threading
import time
import uuid
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BooleanField, Count, ExpressionWrapper, Max, Q
from django.utils.translation import gettext as _

from assistants import textsearch
from assistants.models import Assistant, KnowledgeChunk, KnowledgeSource
from integrations.ai import AIError
from kernel.memo import ProcessMemo

logger = logging.getLogger(__name__)

CHUNK_CHARS = 700
MAX_SOURCE_CHARS = 400_000
TEXT_EXTENSIONS = (".txt", ".md", ".markdown")


# --- Extraction ---------------------------------------------------------------------------------


def extract_text(name: str, data: bytes) -> str:
    """Plain text of an uploaded PDF, DOCX, TXT or Markdown file; ``ValidationError`` if not."""
    lowered = name.lower()
    try:
        if lowered.endswith(".pdf"):
            from pypdf import PdfReader

            reader = PdfReader(io.BytesIO(data))
            text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
        elif lowered.endswith(".docx"):
            import docx

            document = docx.Document(io.BytesIO(data))
            text = "\n\n".join(p.text for p in document.paragraphs)
        elif lowered.endswith(TEXT_EXTENSIONS):
            text = data.decode("utf-8", errors="replace")
        else:
            raise ValidationError(_("Upload a PDF, DOCX, TXT or Markdown file."))
    except ValidationError:
        raise
    except Exception as error:  # a broken file: say so instead of failing later
        raise ValidationError(
            _("This file could not be read: %(error)s") % {"error": error}
        ) from error
    text = text.replace("\x00", "").strip()
    if not text:
        raise ValidationError(_("No text was found in this file."))
    return text[:MAX_SOURCE_CHARS]


def chunk_text(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Split on paragraphs, then sentences, packing pieces up to ``size`` characters."""
    pieces: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        if len(paragraph) <= size:
            pieces.append(paragraph)
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
            while len(sentence) > size:
                pieces.append(sentence[:size])
                sentence = sentence[size:]
            pieces.append(sentence)
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 1 + len(piece) > size:
            chunks.append(current)
            current = piece
        else:
            current = f"{current}\n{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks


def source_chunks(source: KnowledgeSource) -> list[str]:
    if source.kind == KnowledgeSource.Kind.FAQ:
        return [f"{pair['question']}\n{pair['answer']}" for pair in source.faq]
    # The title travels with every passage: it often names the topic the text never repeats.
    size = max(200, CHUNK_CHARS - len(source.title) - 1)
    return [f"{source.title}\n{chunk}" for chunk in chunk_text(source.text, size)]


# --- Indexing -----------------------------------------------------------------------------------


@transaction.atomic
def source_index(
    source: KnowledgeSource,
    provider=None,
    embedding_model: str = "",
    *,
    passage_prefix: str = "",
    timings: dict | None = None,
) -> int:
    """(Re)build a source's chunks; embed them when ``provider`` can (``passage_prefix``: what
    models such as e5 want before a passage, e.g. "passage: "). ``timings`` receives
    ``embed_ms`` and ``embed_words`` for the usage record."""
    source.chunks.all().delete()
    texts = source_chunks(source)
    vectors: list | None = None
    if provider is not None and not provider.offline and texts:
        started = time.monotonic()
        try:
            vectors = provider.embed(
                model=embedding_model, texts=[passage_prefix + text for text in texts]
            )
            if timings is not None:
                timings["embed_ms"] = int((time.monotonic() - started) * 1000)
                timings["embed_words"] = sum(len(text.split()) for text in texts)
        except AIError as error:
            logger.info("Knowledge source %s indexed without embeddings: %s", source.pk, error)
    KnowledgeChunk.objects.bulk_create(
        [
            KnowledgeChunk(
                organization_id=source.organization_id,
                source=source,
                assistant_id=source.assistant_id,
                position=i,
                text=text,
                embedding=vectors[i] if vectors else None,
            )
            for i, text in enumerate(texts)
        ]
    )
    source.chunk_count = len(texts)
    source.embedded = bool(vectors)
    source.save(update_fields=["chunk_count", "embedded"])
    knowledge_changed(source.assistant_id)
    return len(texts)


# --- Retrieval ----------------------------------------------------------------------------------


@dataclass
class Hit:
    chunk: KnowledgeChunk
    score: float
    relevance: float = 1.0  # lexical coverage or cosine similarity, 0–1

    @property
    def source_title(self) -> str:
        return self.chunk.source.title

    @property
    def body(self) -> str:
        """The passage without its heading line (the source's title, or a FAQ's question):
        what an answer may quote."""
        first, _newline, rest = self.chunk.text.partition("\n")
        source = self.chunk.source
        if rest.strip() and (source.kind == KnowledgeSource.Kind.FAQ or first == source.title):
            return rest
        return self.chunk.text


# Each assistant's knowledge, kept hot per process: its chunks (text and source, no query to
# turn ranked ids into passages), the matrix of unit vectors, and the lexical index per synonym
# list. Keyed by (chunks, highest chunk id, embedded chunks), which moves with any change:
# indexing a source replaces its chunks with new, higher ids, deleting one lowers the count.
# The key itself is memoised (``kernel.memo``): this process sees its own changes at once
# (``knowledge_changed``), others within the memo's seconds. At most this many assistants are
# kept (least recently used out).
VECTOR_CACHE_ASSISTANTS = 32
_indexes: OrderedDict = OrderedDict()
_vector_cache_lock = threading.Lock()
_keys = ProcessMemo()


@dataclass(frozen=True)
class VectorIndex:
    key: tuple  # the knowledge's key when built
    ids: np.ndarray
    vectors: np.ndarray  # float32, one unit-length row per chunk

    def top(self, query: list[float], k: int) -> list[int]:
        """Ids of the ``k`` chunks most similar (cosine) to ``query``, best first."""
        return [chunk_id for chunk_id, _similarity in self.top_scored(query, k)]

    def top_scored(self, query: list[float], k: int) -> list[tuple[int, float]]:
        """(id, cosine similarity) of the ``k`` chunks most similar to ``query``."""
        vector = np.asarray(query, dtype=np.float32)
        if vector.shape != (self.vectors.shape[1],):
            logger.info(
                "Query embedding has %s dimensions, chunks %s", vector.shape, self.vectors.shape
            )
            return []
        norm = np.linalg.norm(vector)
        scores = self.vectors @ (vector / norm if norm else vector)
        order = np.lexsort((self.ids, -scores))[:k]  # ties: lower id first
        return list(zip(self.ids[order].tolist(), scores[order].tolist(), strict=True))

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.vectors.nbytes)


@dataclass
class KnowledgeIndex:
    """One assistant's knowledge in memory."""

    key: tuple
    chunks: dict[int, KnowledgeChunk]  # with ``source`` (id, code, title, kind) attached
    vectors: VectorIndex | None
    lexical: dict[str, textsearch.LexicalIndex] = field(default_factory=dict)

    def lexical_for(self, synonyms: str) -> textsearch.LexicalIndex:
        index = self.lexical.get(synonyms)
        if index is None:
            rows = [(chunk_id, chunk.text) for chunk_id, chunk in self.chunks.items()]
            index = textsearch.LexicalIndex.build(
                rows, textsearch.synonyms_for(textsearch.parse_synonyms(synonyms))
            )
            with _vector_cache_lock:
                if len(self.lexical) >= 4:  # synonym lists change rarely: keep the latest few
                    self.lexical.pop(next(iter(self.lexical)))
                self.lexical[synonyms] = index
        return index


def _knowledge_key(assistant_id: int) -> tuple:
    return _keys.get(
        assistant_id,
        lambda: tuple(
            KnowledgeChunk.objects.filter(assistant_id=assistant_id)
            .aggregate(n=Count("id"), last=Max("id"), embedded=Count("embedding"))
            .values()
        ),
    )


def knowledge_changed(assistant_id: int) -> None:
    """A source was indexed or deleted: this process rereads the key now (others soon)."""
    _keys.forget(assistant_id)


def _vectors(key: tuple, rows: list[tuple[int, list]]) -> VectorIndex | None:
    if not rows:
        return None
    # A change of embedding model leaves vectors of two sizes until re-indexed: keep the most
    # common size.
    size = Counter(len(vector) for _id, vector in rows).most_common(1)[0][0]
    rows = [(chunk_id, vector) for chunk_id, vector in rows if len(vector) == size]
    return VectorIndex(
        key=key,
        ids=np.array([chunk_id for chunk_id, _vector in rows], dtype=np.int64),
        vectors=_unit_rows([vector for _id, vector in rows]),
    )


def knowledge_index(assistant: Assistant | int) -> KnowledgeIndex:
    """The assistant's knowledge from this process's cache (no query while the memoised key
    holds; after a change, one to reload the chunks and, unless another worker process has
    already written them to the shared vector files, one for the vectors)."""
    assistant_id = getattr(assistant, "pk", assistant)
    key = _knowledge_key(assistant_id)
    with _vector_cache_lock:
        index = _indexes.get(assistant_id)
        if index is not None and index.key == key:
            _indexes.move_to_end(assistant_id)
            return index
    chunks: dict[int, KnowledgeChunk] = {}
    sources: dict[int, KnowledgeSource] = {}
    embedded: list[int] = []
    rows = (
        KnowledgeChunk.objects.filter(assistant_id=assistant_id)
        .order_by("id")
        .annotate(has_vector=ExpressionWrapper(Q(embedding__isnull=False), BooleanField()))
        .values_list(
            "id",
            "text",
            "has_vector",
            "position",
            "organization_id",
            "source_id",
            "source__code",
            "source__title",
            "source__kind",
        )  # fmt: skip
        if key[0]
        else []
    )
    for chunk_id, text, has_vector, position, org_id, source_id, code, title, kind in rows:
        source = sources.get(source_id)
        if source is None:
            source = sources[source_id] = KnowledgeSource(
                pk=source_id, organization_id=org_id, assistant_id=assistant_id,
                code=code, title=title, kind=kind,
            )  # fmt: skip
        chunks[chunk_id] = KnowledgeChunk(
            pk=chunk_id, organization_id=org_id, assistant_id=assistant_id,
            source=source, position=position, text=text,
        )  # fmt: skip
        if has_vector:
            embedded.append(chunk_id)
    vectors = _shared_vectors(assistant_id, key, chunks, embedded) if embedded else None
    index = KnowledgeIndex(key=key, chunks=chunks, vectors=vectors)
    with _vector_cache_lock:
        _indexes[assistant_id] = index
        _indexes.move_to_end(assistant_id)
        while len(_indexes) > VECTOR_CACHE_ASSISTANTS:
            _indexes.popitem(last=False)
    return index


def vector_dir() -> Path | None:
    """Where worker processes share the knowledge vectors (None: each keeps its own copy)."""
    configured = getattr(settings, "KNOWLEDGE_VECTOR_DIR", None)
    if configured == "":
        return None
    return Path(configured) if configured else Path(settings.VAR_DIR) / "knowledge-vectors"


def _shared_vectors(
    assistant_id: int, key: tuple, chunks: dict[int, KnowledgeChunk], embedded: list[int]
) -> VectorIndex | None:
    """The vectors of ``embedded`` chunks, memory-mapped from a file that every worker process
    on this machine maps (one copy in the page cache, however many workers), written by the
    first process that needs it. The file is named by a digest of the chunks' ids and texts, so
    a stale file is never read; without a usable directory, each process keeps its own copy."""
    directory = vector_dir()
    digest = hashlib.sha256()
    # One vector tells the embedding model apart (the same texts embedded by another model).
    first = KnowledgeChunk.objects.filter(pk=embedded[0]).values_list("embedding", flat=True)
    digest.update(repr(first.first()).encode())
    for chunk_id in embedded:
        digest.update(f"{chunk_id}\0{chunks[chunk_id].text}\0".encode())
    stem = f"{assistant_id}-{digest.hexdigest()[:32]}"
    if directory is not None:
        try:
            ids = np.load(directory / f"{stem}.ids.npy")
            return VectorIndex(key, ids, np.load(directory / f"{stem}.npy", mmap_mode="r"))
        except (OSError, ValueError):
            pass  # not written yet (or being replaced): load from the database
    rows = list(
        KnowledgeChunk.objects.filter(pk__in=embedded, embedding__isnull=False)
        .order_by("id")
        .values_list("id", "embedding")
    )
    index = _vectors(key, rows)
    if index is None or directory is None:
        return index
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for suffix, array in ((".ids.npy", index.ids), (".npy", index.vectors)):
            temporary = directory / f"{stem}.{uuid.uuid4().hex}.tmp"
            with open(temporary, "wb") as handle:
                np.save(handle, array)
            os.replace(temporary, directory / f"{stem}{suffix}")
        for old in directory.glob(f"{assistant_id}-*.npy"):
            if not old.name.startswith(stem):
                old.unlink(missing_ok=True)  # workers that mapped it keep their mapping
        mapped = np.load(directory / f"{stem}.npy", mmap_mode="r")
        return VectorIndex(key, index.ids, mapped)
    except OSError as error:
        logger.warning("Knowledge vectors not shared (%s): kept in this process", error)
        return index


def lexical_index(assistant: Assistant, synonyms: str = "") -> textsearch.LexicalIndex:
    return knowledge_index(assistant).lexical_for(synonyms)


def lexical_ranked(
    assistant: Assistant, query: str, k: int, *, context: str = "", synonyms: str = ""
) -> list[tuple[int, float]]:
    """(chunk id, relevance 0–1) of ``assistant``'s chunks for ``query``, best first."""
    index = lexical_index(assistant, synonyms)
    return [
        (chunk_id, relevance) for chunk_id, _score, relevance in index.search(query, context, k)
    ]


def lexical_ids(assistant: Assistant, query: str, k: int) -> list[int]:
    """Chunk ids of ``assistant`` ranked by the lexical index (best first)."""
    return [chunk_id for chunk_id, _relevance in lexical_ranked(assistant, query, k)]


def _unit_rows(vectors: list[list[float]]) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


def vector_index(assistant: Assistant) -> VectorIndex | None:
    """The assistant's embedded chunks as one matrix (None when none is embedded)."""
    return knowledge_index(assistant).vectors


def vector_cache_clear() -> None:
    with _vector_cache_lock:
        _indexes.clear()
    _keys._values.clear()


def cache_bytes() -> dict[str, int]:
    """Rough size of this process's knowledge caches: texts (by length) and vectors, those
    kept in this process apart from those mapped from the shared files."""
    with _vector_cache_lock:
        indexes = list(_indexes.values())
    sizes = {"texts": 0, "vectors_own": 0, "vectors_shared": 0}
    for index in indexes:
        sizes["texts"] += sum(len(chunk.text) for chunk in index.chunks.values())
        if index.vectors is not None:
            shared = isinstance(index.vectors.vectors, np.memmap)
            sizes["vectors_shared" if shared else "vectors_own"] += index.vectors.nbytes
    return sizes


def embedding_ranked(
    assistant: Assistant,
    query: str,
    k: int,
    provider,
    embedding_model: str,
    timings: dict | None = None,
    *,
    query_prefix: str = "",
) -> list[tuple[int, float]]:
    """(chunk id, cosine similarity) ranked by the query's embedding (empty if unavailable)."""
    if provider is None or provider.offline:
        return []
    index = vector_index(assistant)
    if index is None:
        return []
    started = time.monotonic()
    try:
        (vector,) = provider.embed(model=embedding_model, texts=[query_prefix + query])
    except AIError as error:
        logger.info("Query embedding failed, lexical retrieval only: %s", error)
        return []
    finally:
        if timings is not None:
            timings["embed_ms"] = int((time.monotonic() - started) * 1000)
    return index.top_scored(vector, k)


def embedding_ids(
    assistant: Assistant,
    query: str,
    k: int,
    provider,
    embedding_model: str,
    timings: dict | None = None,
) -> list[int]:
    """Chunk ids ranked by cosine similarity to the query's embedding (empty if unavailable)."""
    ranked = embedding_ranked(assistant, query, k, provider, embedding_model, timings)
    return [chunk_id for chunk_id, _similarity in ranked]


# Below these a passage does not answer the question (lexical: share of the question's weight
# it covers; embeddings: cosine similarity). ``AISettings`` may set its own.
MIN_RELEVANCE = 0.35
MIN_SIMILARITY = 0.3


def search(
    assistant: Assistant,
    query: str,
    *,
    k: int = 3,
    mode: str = "hybrid",
    provider=None,
    embedding_model: str = "",
    timings: dict | None = None,
    context: str = "",
    synonyms: str = "",
    query_prefix: str = "",
    min_relevance: float | None = None,
    min_similarity: float | None = None,
) -> list[Hit]:
    """Up to ``k`` chunks that answer ``query`` (with ``context``, the customer's earlier
    turns, counting less): lexical, embeddings, or both fused (RRF). Passages below the
    relevance thresholds are left out, so an empty list means "the knowledge does not say".

    ``timings`` (a dict) receives ``embed_ms``, the time spent embedding the query."""
    min_relevance = MIN_RELEVANCE if min_relevance is None else min_relevance
    min_similarity = MIN_SIMILARITY if min_similarity is None else min_similarity
    rankings: list[list[tuple[int, float]]] = []
    passing: dict[int, float] = {}
    if mode in ("lexical", "hybrid"):
        ranked = lexical_ranked(assistant, query, k * 2, context=context, synonyms=synonyms)
        rankings.append(ranked)
        passing.update((cid, rel) for cid, rel in ranked if rel >= min_relevance)
    if mode in ("embedding", "hybrid"):
        text = query
        if context:  # the earlier turns first; the question itself only once
            text = context if context.rstrip().endswith(query.strip()) else f"{context}\n{query}"
        ranked = embedding_ranked(
            assistant, text, k * 2, provider, embedding_model, timings, query_prefix=query_prefix
        )
        rankings.append(ranked)
        for cid, similarity in ranked:
            if similarity >= min_similarity:
                passing[cid] = max(passing.get(cid, 0.0), similarity)
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, (chunk_id, _score) in enumerate(ranking):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (60 + rank)
    best = sorted((cid for cid in scores if cid in passing), key=lambda cid: (-scores[cid], cid))[
        :k
    ]
    if not best:
        return []
    chunks = knowledge_index(assistant).chunks
    return [
        Hit(chunks[chunk_id], scores[chunk_id], passing[chunk_id])
        for chunk_id in best
        if chunk_id in chunks
    ]
