"""One JSON object per log line, and a middleware that logs one such line per request.

journald stores each line of a unit's stderr as one entry, so a traceback inside the JSON object (newlines
escaped) stays in the entry of the error that caused it.
"""

import json
import logging
import time

REQUEST_LOGGER = "operativos.request"

# Attributes that every LogRecord has. Any other attribute came from `extra=` and is written as a field.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line with the level, logger, message, release id and `extra` fields."""

    def __init__(self, release: str = "unknown") -> None:
        super().__init__()
        self.release = release

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "release": self.release,
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class RequestLogMiddleware:
    """Log each request's method, path, status and duration at INFO on the operativos.request logger.

    Django's own django.request logger still writes the 4xx and 5xx records, with the traceback of an
    unhandled exception, so an error gives one request line and one error line.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.logger = logging.getLogger(REQUEST_LOGGER)

    def __call__(self, request):
        started = time.monotonic()
        response = self.get_response(request)
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        self.logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
            },
        )
        return response
