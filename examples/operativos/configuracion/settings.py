"""Django settings for the operativos project.

Every deploy-specific value comes from an environment variable, listed in README.md.
"""

import os
from pathlib import Path

import dj_database_url

from apps.auxiliares.entorno import parse_bool, parse_int, parse_list, require_env
from apps.auxiliares.release import read_release_id

# resolve() follows symlinks, so with a "current" symlink to a release folder BASE_DIR is that release folder.
BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = require_env(
    "SECRET_KEY", "a long random string from python -c 'import secrets; print(secrets.token_urlsafe(50))'"
)

DEBUG = parse_bool(os.environ.get("DEBUG"))

ALLOWED_HOSTS = parse_list(os.environ.get("ALLOWED_HOSTS"))
CSRF_TRUSTED_ORIGINS = parse_list(os.environ.get("CSRF_TRUSTED_ORIGINS"))

# Read once at start-up, so a running process keeps reporting the release it was started from.
OPERATIVOS_RELEASE = read_release_id(BASE_DIR)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Listed so that collectstatic copies the Swagger UI files that /api/docs loads.
    "ninja",
    "apps.auxiliares",
    "apps.operativos",
    "apps.historico",
    "apps.cuenta",
]

MIDDLEWARE = [
    # First, so the logged duration covers every other middleware.
    "apps.auxiliares.jsonlog.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "configuracion.urls"
WSGI_APPLICATION = "configuracion.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The database role's search_path is "operativos, historico, cuenta, public", so tables without a schema in
# db_table (Django's own) are created in the operativos schema.
DATABASES = {
    "default": dj_database_url.parse(
        require_env("DATABASE_URL", "postgres://operativos:PASSWORD@127.0.0.1:5432/operativos"),
        conn_max_age=60,
        conn_health_checks=True,
    ),
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "es"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or BASE_DIR / "media")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Behind a TLS-terminating proxy, SECURE_PROXY_SSL_HEADER names the request header (as a META key, such as
# HTTP_X_FORWARDED_PROTO) whose value "https" marks a request that reached the proxy over HTTPS. Only set it when
# the proxy always overwrites that header, as this project's nginx does.
if os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip():
    SECURE_PROXY_SSL_HEADER = (os.environ["SECURE_PROXY_SSL_HEADER"].strip(), "https")
SECURE_SSL_REDIRECT = parse_bool(os.environ.get("SECURE_SSL_REDIRECT"))
SESSION_COOKIE_SECURE = parse_bool(os.environ.get("SESSION_COOKIE_SECURE"))
CSRF_COOKIE_SECURE = parse_bool(os.environ.get("CSRF_COOKIE_SECURE"))
SECURE_HSTS_SECONDS = parse_int("SECURE_HSTS_SECONDS", os.environ.get("SECURE_HSTS_SECONDS"), default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = parse_bool(os.environ.get("SECURE_HSTS_INCLUDE_SUBDOMAINS"))
SECURE_HSTS_PRELOAD = parse_bool(os.environ.get("SECURE_HSTS_PRELOAD"))
SILENCED_SYSTEM_CHECKS = parse_list(os.environ.get("SILENCED_SYSTEM_CHECKS"))

# One JSON line per record on stderr, which journald collects and timestamps. Each line carries the release id.
# RequestLogMiddleware adds one line per request (method, path, status, duration_ms).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "apps.auxiliares.jsonlog.JsonFormatter", "release": OPERATIVOS_RELEASE},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "json",
        },
        "disallowed_host": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "json",
            "filters": ["drop_traceback"],
        },
    },
    "filters": {
        "drop_traceback": {"()": "apps.auxiliares.filtros.DropTraceback"},
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        # Replaces the handlers of Django's default "django" logger, so each record is written once.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # WARNING keeps 4xx lines and the ERROR records with tracebacks of 500 responses.
        "django.request": {"level": "WARNING"},
        # A request with a Host outside ALLOWED_HOSTS gets 400. Django logs it with a full traceback, which any
        # client can trigger at will, so only the one-line message is kept.
        "django.security.DisallowedHost": {"handlers": ["disallowed_host"], "level": "WARNING", "propagate": False},
    },
}
