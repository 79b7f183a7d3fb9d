"""Logging helpers named in ``settings.LOGGING``: secrets kept out of log lines, request and task
ids on every line, and one JSON object per line when ``LOG_FORMAT=json`` (for log shippers).
Times are UTC in both formats."""

import json
import logging
import re
import time
from datetime import UTC, datetime

# Webhook URLs carry the number's secret key (/webhooks/whatsapp/<key>/): an access log line
# must never hand it to whoever reads the logs.
_SECRET_PATHS = re.compile(r"(/webhooks/[\w-]+/)[^/\s\"?]+")
_BEARER = re.compile(r"(?i)(bearer\s+|api[_-]?key[=:]\s*)[\w.\-]+")


def scrub(text: str) -> str:
    return _BEARER.sub(r"\1[redacted]", _SECRET_PATHS.sub(r"\1[redacted]", text))


class UTCFormatter(logging.Formatter):
    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


class ScrubSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):  # logger.info("%(name)s", {...})
            record.args = {k: scrub(v) if isinstance(v, str) else v for k, v in record.args.items()}
        elif record.args:
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        return True


class Context(logging.Filter):
    """The request id, task id and organization id of the work that logs (``kernel.tracing``),
    on every record; plain lines show the request or task id in brackets."""

    def filter(self, record: logging.LogRecord) -> bool:
        from kernel import tracing

        ids = tracing.fields()
        for key, value in ids.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        trace = ids.get("task_id") or ids.get("request_id")
        record.trace = f" [{trace[:12]}]" if trace else ""
        return True


# Extra fields a log call may pass that JSON lines keep (``extra={...}``).
EXTRA = (
    "request_id", "task_id", "organization_id", "method", "path", "status", "user_id", "task",
    "success",
)  # fmt: skip


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in EXTRA:
            value = getattr(record, key, None)
            if value is not None and value != "":
                entry[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def sentry_init(dsn: str, *, environment: str, traces_sample_rate: float) -> None:
    """Errors (uncaught, and ``logger.error``/``exception`` lines) to Sentry, with the request
    and task ids as tags and webhook keys scrubbed from URLs and messages; no personal data."""
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        before_send=_sentry_before_send,
    )


def _sentry_before_send(event: dict, hint) -> dict:
    from kernel import tracing

    request = event.get("request") or {}
    if isinstance(request.get("url"), str):
        request["url"] = scrub(request["url"])
    for key in ("message", "transaction"):
        if isinstance(event.get(key), str):
            event[key] = scrub(event[key])
    logentry = event.get("logentry") or {}
    if isinstance(logentry.get("message"), str):
        logentry["message"] = scrub(logentry["message"])
    for exception in (event.get("exception") or {}).get("values") or []:
        if isinstance(exception.get("value"), str):
            exception["value"] = scrub(exception["value"])
    event.setdefault("tags", {}).update({k: str(v) for k, v in tracing.fields().items()})
    return event
