"""Health and version endpoints, mounted at the root of the API."""

import logging
import socket

from django.conf import settings
from django.db import Error as DatabaseError
from ninja import Router, Schema

from .database import MissingSchemaError, check_database

logger = logging.getLogger(__name__)

router = Router(tags=["auxiliares"])


class HealthOk(Schema):
    status: str
    database: str
    release: str


class HealthError(Schema):
    status: str
    database: str
    detail: str


class Version(Schema):
    release: str
    host: str


@router.get("/health", response={200: HealthOk, 503: HealthError})
def health(request):
    """Check the database connection and schemas, and return 503 with the error class name when that fails."""
    try:
        check_database()
    except (DatabaseError, MissingSchemaError) as error:
        logger.error("Health check failed: %s: %s", type(error).__name__, error)
        return 503, {"status": "error", "database": "down", "detail": type(error).__name__}
    return 200, {"status": "ok", "database": "up", "release": settings.OPERATIVOS_RELEASE}


@router.get("/version", response=Version)
def version(request):
    return {"release": settings.OPERATIVOS_RELEASE, "host": socket.gethostname()}
