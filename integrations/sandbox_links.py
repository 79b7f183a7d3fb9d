"""Where the in-product sandbox is, and how Porfin proves it may drive it.

The sandbox is served by the web process itself (``/sandbox/graph``), and it posts sandbox
numbers' webhooks back to that same process. Both addresses are, in order: the settings
(``SANDBOX_URL``, ``SANDBOX_WEBHOOK_BASE_URL``) when set; the address this server is listening
on, learned from the first HTTP request it serves (so a second copy on another port talks to
itself, not to the first one); ``PUBLIC_BASE_URL``; and last ``http://127.0.0.1:$PORT`` (8000).
A separate worker process that never serves a request needs one of the settings.

The sandbox's control API (act as a customer, register numbers, read conversations) answers only
requests carrying ``X-Sandbox-Token``: ``SANDBOX_CONTROL_TOKEN``, or one derived from
``SECRET_KEY`` so that every process of one installation agrees without configuration.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from django.conf import settings

_server_base = ""


def note_server(scope) -> None:
    """Remember the address this process serves HTTP on (from an ASGI scope's ``server``)."""
    global _server_base
    if _server_base:
        return
    server = scope.get("server")
    if not server or len(server) != 2 or server[1] is None:
        return  # a unix socket: nothing we can call
    host, port = server
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 (a wildcard bind: call loopback)
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    _server_base = f"http://{host}:{port}"


def forget_server() -> None:
    """For tests: act as a process that has not served a request yet."""
    global _server_base
    _server_base = ""


def own_base_url() -> str:
    return (
        _server_base
        or settings.PUBLIC_BASE_URL.rstrip("/")
        or f"http://127.0.0.1:{os.environ.get('PORT') or 8000}"
    )


def sandbox_url() -> str:
    """The sandbox's Graph API base (``…/sandbox/graph``)."""
    return settings.SANDBOX_URL.rstrip("/") or own_base_url() + "/sandbox/graph"


def webhook_base_url() -> str:
    """Where the sandbox sends sandbox numbers' webhooks (this server, unless set)."""
    return settings.SANDBOX_WEBHOOK_BASE_URL.rstrip("/") or own_base_url()


def control_token() -> str:
    configured = getattr(settings, "SANDBOX_CONTROL_TOKEN", "")
    if configured:
        return configured
    return hmac.new(
        settings.SECRET_KEY.encode(), b"porfin-sandbox-control", hashlib.sha256
    ).hexdigest()


def control_headers() -> dict[str, str]:
    return {"X-Sandbox-Token": control_token()}
