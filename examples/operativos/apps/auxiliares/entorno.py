"""Parsers for the environment variables read by configuracion.settings.

This module imports nothing from Django apps, so settings can import it before the app registry is ready.
"""

import os

from django.core.exceptions import ImproperlyConfigured

TRUE_VALUES = frozenset({"true", "1", "yes"})


def parse_bool(value: str | None) -> bool:
    """Return True for "true", "1" or "yes" in any letter case, and False for anything else or None."""
    if value is None:
        return False
    return value.strip().lower() in TRUE_VALUES


def parse_list(value: str | None) -> list[str]:
    """Split a comma-separated value into stripped items, dropping blank items."""
    if not value:
        return []
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_int(name: str, value: str | None, default: int) -> int:
    """Return value as an int, or default when value is unset or blank.

    Raises ImproperlyConfigured naming the variable when value is not an integer.
    """
    if value is None or not value.strip():
        return default
    try:
        return int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}.") from None


def require_env(name: str, example: str) -> str:
    """Return the environment variable name, or raise ImproperlyConfigured when it is unset or blank."""
    value = os.environ.get(name, "")
    if not value.strip():
        raise ImproperlyConfigured(
            f"The environment variable {name} is missing or empty. Set it, for example to {example}."
        )
    return value
