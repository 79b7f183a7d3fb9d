"""Small sample files for simulated customer media when the caller sends no bytes."""

from __future__ import annotations

import base64
import struct
import zlib

# A 1x1 lossless WebP, the smallest valid sticker.
_WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")


def png(width: int = 16, height: int = 16, rgb: tuple[int, int, int] = (37, 211, 102)) -> bytes:
    """A solid-colour PNG (WhatsApp green by default)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def pdf(text: str = "Sandbox document") -> bytes:
    """A one-page PDF showing ``text`` (ASCII)."""
    safe = text.encode("ascii", "replace").decode().replace("(", "[").replace(")", "]")
    stream = f"BT /F1 18 Tf 72 720 Td ({safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def sample_media(kind: str) -> tuple[bytes, str, str]:
    """(bytes, mime type, filename) of a placeholder file of that kind."""
    if kind == "image":
        return png(), "image/png", "image.png"
    if kind == "sticker":
        return _WEBP, "image/webp", "sticker.webp"
    if kind == "document":
        return pdf(), "application/pdf", "documento.pdf"
    if kind == "audio":
        # An Ogg page header followed by silence: enough for the product to store and serve.
        return b"OggS\x00\x02" + bytes(200), "audio/ogg; codecs=opus", "audio.ogg"
    if kind == "video":
        return (
            struct.pack(">I", 24) + b"ftypmp42" + bytes(12) + bytes(200),
            "video/mp4",
            "video.mp4",
        )
    raise ValueError(f"no sample for {kind!r}")
