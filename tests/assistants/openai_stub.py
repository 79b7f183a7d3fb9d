"""A real local HTTP server speaking the OpenAI protocol: chat completions (with tool calls),
embeddings and audio transcriptions. Tests and benchmarks point the official ``openai`` client
at ``stub.base_url``; nothing patches the client.

Script answers with ``stub.script(...)``: each chat-completion request takes the next item, one of
``{"content": str}``, ``{"tool_calls": [{"name": ..., "arguments": {...}}]}`` or
``{"status": 500, "error": "..."}``, optionally with ``"delay"`` seconds. With the script empty,
``default`` (a function of the request body, by default echoing the last user message) answers.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import unicodedata
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIMENSIONS = 256


def fake_embedding(text: str) -> list[float]:
    """Deterministic bag-of-word-stems vector: similar words give similar vectors."""
    folded = "".join(
        c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c)
    )
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"\w{4,}", folded):
        digest = hashlib.sha256(word[:5].encode()).digest()
        vector[digest[0] % DIMENSIONS] += 1.0 if digest[1] % 2 else -1.0
    return vector


def echo(body: dict) -> dict:
    last = next((m for m in reversed(body["messages"]) if m["role"] == "user"), {})
    return {"content": f"stub answer to: {last.get('content', '')}"}


class OpenAIStub:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str] = []  # each request's Authorization header, in order
        self.queue: deque[dict] = deque()
        self.default = echo
        self.delay = 0.0
        self.transcript = "quero marcar uma consulta amanhã"
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- control -----------------------------------------------------------------------------

    def script(self, *answers: dict) -> None:
        with self.lock:
            self.queue.extend(answers)

    def chat_requests(self) -> list[dict]:
        return [r["body"] for r in self.requests if r["path"].endswith("/chat/completions")]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> OpenAIStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm holds the
            # body until the client's delayed ACK (~40 ms per answer), which no real server adds.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                stub.authorizations.append(self.headers.get("Authorization", ""))
                if self.path.endswith("/chat/completions"):
                    body = json.loads(raw)
                    stub.requests.append({"path": self.path, "body": body})
                    self._chat(body)
                elif self.path.endswith("/embeddings"):
                    body = json.loads(raw)
                    stub.requests.append({"path": self.path, "body": body})
                    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                    self._json(
                        200,
                        {
                            "object": "list",
                            "model": body["model"],
                            "data": [
                                {"object": "embedding", "index": i, "embedding": fake_embedding(t)}
                                for i, t in enumerate(inputs)
                            ],
                            "usage": {"prompt_tokens": 1, "total_tokens": 1},
                        },
                    )
                elif self.path.endswith("/audio/transcriptions"):
                    stub.requests.append({"path": self.path, "body": {"size": len(raw)}})
                    self._json(200, {"text": stub.transcript})
                else:
                    self._json(404, {"error": {"message": "not found", "type": "invalid"}})

            def _chat(self, body):
                with stub.lock:
                    answer = stub.queue.popleft() if stub.queue else None
                if answer is None:
                    answer = stub.default(body)
                delay = answer.get("delay", stub.delay)
                if delay:
                    time.sleep(delay)
                if "status" in answer:
                    self._json(
                        answer["status"],
                        {"error": {"message": answer.get("error", "error"), "type": "server"}},
                    )
                    return
                message: dict[str, Any] = {"role": "assistant", "content": answer.get("content")}
                if answer.get("tool_calls"):
                    message["tool_calls"] = [
                        {
                            "id": f"call_{i}",
                            "type": "function",
                            "function": {
                                "name": call["name"],
                                "arguments": json.dumps(call.get("arguments", {})),
                            },
                        }
                        for i, call in enumerate(answer["tool_calls"])
                    ]
                prompt = sum(len(str(m.get("content") or "")) // 4 for m in body["messages"])
                self._json(
                    200,
                    {
                        "id": "chatcmpl-stub",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": message,
                                "finish_reason": "tool_calls"
                                if answer.get("tool_calls")
                                else "stop",
                            }
                        ],
                        "usage": {
                            "prompt_tokens": answer.get("prompt_tokens", prompt),
                            "completion_tokens": answer.get("completion_tokens", 20),
                            "total_tokens": prompt + 20,
                        },
                    },
                )

            def _json(self, status, data):
                payload = json.dumps(data).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
