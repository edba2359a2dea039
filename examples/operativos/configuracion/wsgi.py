"""WSGI entry point, served by gunicorn as configuracion.wsgi:application."""

import os
import time

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "configuracion.settings")

# Benchmarks set OPERATIVOS_STARTUP_DELAY_SECONDS to make start-up as slow as a larger application's.
_startup_delay = float(os.environ.get("OPERATIVOS_STARTUP_DELAY_SECONDS", "0") or "0")
if _startup_delay > 0:
    time.sleep(_startup_delay)

application = get_wsgi_application()
