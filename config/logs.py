"""Logging helpers named in ``settings.LOGGING``: secrets kept out of log lines, and one JSON
object per line when ``LOG_FORMAT=json`` (for log shippers)."""

import json
import logging
import re
from datetime import UTC, datetime

# Webhook URLs carry the number's secret key (/webhooks/whatsapp/<key>/): an access log line
# must never hand it to whoever reads the logs.
_SECRET_PATHS = re.compile(r"(/webhooks/[\w-]+/)[^/\s\"?]+")
_BEARER = re.compile(r"(?i)(bearer\s+|api[_-]?key[=:]\s*)[\w.\-]+")


def scrub(text: str) -> str:
    return _BEARER.sub(r"\1[redacted]", _SECRET_PATHS.sub(r"\1[redacted]", text))


class ScrubSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):  # logger.info("%(name)s", {...})
            record.args = {k: scrub(v) if isinstance(v, str) else v for k, v in record.args.items()}
        elif record.args:
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
