"""Minimal ASGI HTTP plumbing for the sandbox: requests, responses, multipart bodies, mounting."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 110 * 1024 * 1024  # the largest upload (100 MB documents) plus multipart overhead


class BodyTooLarge(Exception):
    pass


@dataclass
class Request:
    method: str
    path: str  # relative to where the sandbox is mounted, always starting with "/"
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    base_url: str  # scheme://host plus the mount prefix, no trailing slash

    def json(self) -> Any:
        """The decoded JSON body; ``ValueError`` when it is not JSON."""
        return json.loads(self.body or b"null")

    @property
    def bearer_token(self) -> str:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    hold: float = 0.0  # seconds to wait before answering (an accepted send that times out)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(status, body, headers=dict(headers or {}))

    async def send(self, send: Send) -> None:
        headers = [
            (b"content-type", self.content_type.encode("latin-1")),
            (b"content-length", str(len(self.body)).encode("latin-1")),
        ]
        headers += [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def split_mount(scope: Scope) -> tuple[str, str]:
    """(prefix, path relative to it) for a scope, wherever the app is mounted.

    Handles ``root_path`` (ASGI servers and ``mount``) and Channels' ``URLRouter``, which leaves
    ``root_path`` alone and passes the unmatched rest in ``path_remaining``.
    """
    path = scope.get("path") or "/"
    root = scope.get("root_path") or ""
    if "path_remaining" in scope:
        remaining = "/" + str(scope["path_remaining"]).lstrip("/")
        consumed = path[: len(path) - len(remaining)] if path.endswith(remaining) else root
        return consumed.rstrip("/"), remaining
    if root and path.startswith(root):
        return root.rstrip("/"), path[len(root) :] or "/"
    return root.rstrip("/"), path


async def read_request(scope: Scope, receive: Receive) -> Request:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    headers: dict[str, str] = {}
    for key, value in scope.get("headers") or []:
        headers[key.decode("latin-1").lower()] = value.decode("latin-1")
    prefix, path = split_mount(scope)
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    query = dict(
        parse_qsl((scope.get("query_string") or b"").decode("latin-1"), keep_blank_values=True)
    )
    return Request(
        method=scope.get("method", "GET").upper(),
        path=path,
        query=query,
        headers=headers,
        body=b"".join(chunks),
        base_url=f"{scope.get('scheme', 'http')}://{host}{prefix}",
    )


@dataclass
class FormPart:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None


def parse_multipart(body: bytes, content_type: str) -> dict[str, FormPart]:
    """Parse a ``multipart/form-data`` body; ``ValueError`` when it is malformed."""
    boundary = _header_param(content_type, "boundary")
    if not content_type.lower().startswith("multipart/form-data") or not boundary:
        raise ValueError("expected multipart/form-data with a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    parts: dict[str, FormPart] = {}
    sections = body.split(delimiter)
    if len(sections) < 3:
        raise ValueError("no parts in the multipart body")
    for section in sections[1:]:
        if section.startswith(b"--"):
            break
        section = section.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, separator, data = section.partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("a multipart part has no header/body separator")
        part_headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            part_headers[key.strip().lower()] = value.strip()
        disposition = part_headers.get("content-disposition", "")
        name = _header_param(disposition, "name")
        if not name:
            raise ValueError("a multipart part has no name")
        parts[name] = FormPart(
            name=name,
            data=data,
            filename=_header_param(disposition, "filename"),
            content_type=part_headers.get("content-type"),
        )
    return parts


def _header_param(header: str, name: str) -> str | None:
    for piece in header.split(";")[1:]:
        key, _, value = piece.strip().partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"')
    return None


def mount(prefix: str, app: ASGIApp, fallback: ASGIApp) -> ASGIApp:
    """An ASGI app sending HTTP requests under ``prefix`` (e.g. ``"/sandbox"``) to ``app``, with
    ``root_path`` extended so it builds correct absolute URLs, and everything else to ``fallback``.
    """
    prefix = "/" + prefix.strip("/")

    async def dispatcher(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            root = scope.get("root_path") or ""
            path = scope.get("path") or "/"
            relative = path[len(root) :] if root and path.startswith(root) else path
            if relative == prefix or relative.startswith(prefix + "/"):
                if not (root and path.startswith(root)):
                    # Servers that strip root_path from path: keep the convention.
                    scope = dict(scope, path=root + path)
                await app(dict(scope, root_path=root + prefix), receive, send)
                return
        await fallback(scope, receive, send)

    return dispatcher
