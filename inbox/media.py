"""Customer files: where they are stored and how they are served.

A customer chooses a file's name and declares its type; neither may decide how our origin serves
it. So a stored file's key is random and prefixed with its organization
(``org/<org code>/<yyyy>/<mm>/<random>.<ext>``), its extension comes from a short allow-list of
MIME types (anything else is stored and served as ``application/octet-stream``), and the
customer's name is only kept, cleaned, in ``Media.filename``. Files are served by one
authenticated view (``inbox.views.media_file``): streamed from the local disk, or, on S3, a
redirect to a short-lived signed URL whose response headers we set.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.http import content_disposition_header

# MIME type -> extension of the stored key. Exactly the types WhatsApp carries
# (integrations.whatsapp.validation.MEDIA_LIMITS); nothing here renders script in a browser.
SAFE_TYPES: dict[str, str] = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/ogg": ".ogg",
    "text/plain": ".txt",
    "application/pdf": ".pdf",
    "application/msword": ".doc",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
}
FALLBACK_TYPE = ("application/octet-stream", ".bin")
# Shown in the page (img/video/audio); everything else is a download.
PREVIEW_PREFIXES = ("image/", "video/", "audio/")
# On every media response: never sniffed into HTML, and no script, style or frame even if opened.
MEDIA_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_INVISIBLE_CATEGORIES = {"Cf", "Zl", "Zp"}
_UNSAFE_NAME_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')


def safe_type(mime_type: str) -> tuple[str, str]:
    """(Content-Type to serve, key extension) for a declared MIME type: from the allow-list,
    else ``application/octet-stream``."""
    base = (mime_type or "").split(";", 1)[0].strip().lower()
    if base in SAFE_TYPES:
        return base, SAFE_TYPES[base]
    return FALLBACK_TYPE


def is_preview(content_type: str) -> bool:
    return content_type.startswith(PREVIEW_PREFIXES)


def clean_filename(name: str, *, max_length: int = 200) -> str:
    """A customer's file name fit to show and to offer as a download name: no folders (``../``),
    no control or reserved characters, no leading dots; ``""`` when nothing is left."""
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/").rsplit("/", 1)[-1]
    # Invisible format characters (e.g. U+202E, which shows "fdp.exe" as "exe.pdf") are dropped.
    name = "".join(c for c in name if unicodedata.category(c) not in _INVISIBLE_CATEGORIES)
    name = _UNSAFE_NAME_CHARS.sub("_", name).strip().lstrip(".").strip()
    if len(name) > max_length:
        stem, dot, extension = name.rpartition(".")
        extension = extension[:16] if dot else ""
        name = (stem or name)[: max_length - len(extension) - 1].rstrip() + (
            f".{extension}" if extension else ""
        )
    return name


def media_upload_to(instance, filename: str) -> str:
    """The storage key of a Media row's file; the customer's ``filename`` takes no part in it."""
    _content_type, extension = safe_type(instance.mime_type)
    now = timezone.now()
    return f"org/{instance.organization.code}/{now:%Y/%m}/{uuid.uuid4().hex}{extension}"


def media_file_save(media, data: bytes) -> str:
    """Store ``data`` as ``media``'s file (not saving the row); returns the key."""
    media.file.save("upload", ContentFile(data), save=False)
    return media.file.name


def download_name(media) -> str:
    """The name offered on download: the cleaned original, with the served type's extension so
    a saved ``page.html`` served as PDF is not reopened as a web page."""
    content_type, extension = safe_type(media.mime_type)
    name = clean_filename(media.filename) or f"file-{str(media.code)[:8]}"
    if content_type == FALLBACK_TYPE[0]:
        return name
    stem, dot, current = name.rpartition(".")
    if dot and stem and f".{current.lower()}" in _extensions_for(content_type):
        return name
    return f"{name}{extension}"


def _extensions_for(content_type: str) -> set[str]:
    aliases = {"image/jpeg": {".jpeg", ".jpe"}, "audio/mpeg": {".mpga"}, "audio/ogg": {".opus"}}
    return {SAFE_TYPES[content_type], *aliases.get(content_type, set())}


def media_response(media) -> HttpResponse:
    """Serve ``media``'s file with a Content-Type from the allow-list, as an inline preview only
    for images, audio and video, and as an attachment otherwise.

    A local file is streamed by this process; a file on S3 (or any storage that is not the local
    disk) is a redirect to a signed URL valid ``MEDIA_URL_EXPIRE`` seconds, whose Content-Type and
    Content-Disposition S3 answers as we ask.
    """
    if not media.file:
        raise Http404("This file has not been stored (yet).")
    content_type, _extension = safe_type(media.mime_type)
    attachment = not is_preview(content_type)
    name = download_name(media)
    storage = media.file.storage
    if isinstance(storage, FileSystemStorage):
        try:
            handle = storage.open(media.file.name, "rb")
        except FileNotFoundError as error:
            raise Http404("The stored file is missing.") from error
        response = FileResponse(
            handle, content_type=content_type, as_attachment=attachment, filename=name
        )
        response["Cache-Control"] = "private, max-age=3600"
    else:
        url = storage.url(
            media.file.name,
            parameters={
                "ResponseContentType": content_type,
                "ResponseContentDisposition": content_disposition_header(attachment, name),
            },
            expire=settings.MEDIA_URL_EXPIRE,
        )
        response = HttpResponseRedirect(url)
        # The signed URL expires: a browser must come back here for a fresh one.
        response["Cache-Control"] = "private, no-store"
    for header, value in MEDIA_HEADERS.items():
        response[header] = value
    return response
