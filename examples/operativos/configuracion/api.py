"""The project's NinjaAPI, mounted at /api/ with its docs at /api/docs."""

import logging

from django.db import InterfaceError, OperationalError
from ninja import NinjaAPI

from apps.auxiliares.api import router as auxiliares_router
from apps.cuenta.api import router as cuenta_router
from apps.historico.api import router as historico_router
from apps.operativos.api import router as operativos_router

logger = logging.getLogger(__name__)

api = NinjaAPI(title="Operativos API", version="1.0.0")

api.add_router("", auxiliares_router)
api.add_router("/operativos/", operativos_router)
api.add_router("/historico/", historico_router)
api.add_router("/cuenta/", cuenta_router)


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def database_unavailable(request, error):
    """Return 503 JSON when an endpoint cannot reach the database, in place of Django's HTML 500 page."""
    logger.error("Database unavailable on %s %s: %s: %s", request.method, request.path, type(error).__name__, error)
    return api.create_response(request, {"detail": "Database unavailable"}, status=503)
