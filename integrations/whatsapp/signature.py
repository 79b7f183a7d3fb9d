"""``X-Hub-Signature-256`` signing and verification for webhook POSTs.

Meta signs the raw request body with HMAC-SHA256 keyed by the App Secret and sends
``sha256=<lowercase hex>``. Its Messenger docs also say the signature is computed over an
escaped-unicode version of the payload (``ä`` as ``\\u00e4``); when the raw bytes hold non-ASCII
characters, ``verify`` accepts either form. Always verify the exact bytes received, never
re-serialized JSON.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(body: bytes, app_secret: str) -> str:
    """The header value Meta would send for ``body``: ``"sha256=<hex>"``."""
    return PREFIX + _hexdigest(body, app_secret)


def verify(body: bytes, header: str | None, app_secret: str) -> bool:
    """True when ``header`` is a valid signature of ``body`` (constant-time comparison).

    A missing or malformed header, or an empty app secret, never verifies. The comparison is
    on bytes: ``hmac.compare_digest`` raises ``TypeError`` for a ``str`` that is not ASCII, and a
    header such as ``sha256=ééé`` must be a wrong signature (403), not a server error.
    """
    if not header or not app_secret:
        return False
    algorithm, _, received = header.strip().partition("=")
    if algorithm.lower() != "sha256" or not received or not received.isascii():
        return False
    digest = received.lower().encode("ascii")
    valid = hmac.compare_digest(_hexdigest(body, app_secret).encode("ascii"), digest)
    if not body.isascii():
        escaped = escape_unicode(body)
        if escaped is not None:
            expected = _hexdigest(escaped, app_secret).encode("ascii")
            valid = hmac.compare_digest(expected, digest) or valid
    return valid


def escape_unicode(body: bytes) -> bytes | None:
    """``body`` with every non-ASCII character written as lowercase ``\\uXXXX`` escapes.

    Characters outside the Basic Multilingual Plane become a UTF-16 surrogate pair, as in
    JavaScript and in Python's ``json.dumps(ensure_ascii=True)``. None when ``body`` is not UTF-8.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    parts: list[str] = []
    for char in text:
        point = ord(char)
        if point < 0x80:
            parts.append(char)
        elif point < 0x10000:
            parts.append(f"\\u{point:04x}")
        else:
            point -= 0x10000
            parts.append(f"\\u{0xD800 + (point >> 10):04x}\\u{0xDC00 + (point & 0x3FF):04x}")
    return "".join(parts).encode("ascii")


def _hexdigest(body: bytes, app_secret: str) -> str:
    return hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
