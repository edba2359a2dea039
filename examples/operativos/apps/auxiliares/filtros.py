"""Logging filters used by the LOGGING setting."""

import logging


class DropTraceback(logging.Filter):
    """Filter that strips the exception from a record, so the handler writes a single line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True
