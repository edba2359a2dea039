"""Tests that need no database, so `manage.py test` creates no test database."""

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError
from django.test import SimpleTestCase, override_settings

from .database import MissingSchemaError
from .entorno import parse_bool, parse_int, parse_list, require_env
from .jsonlog import REQUEST_LOGGER, JsonFormatter
from .release import read_release_id


class ReadReleaseIdTests(SimpleTestCase):
    def setUp(self):
        temporary_directory = tempfile.TemporaryDirectory()
        self.addCleanup(temporary_directory.cleanup)
        self.base_dir = Path(temporary_directory.name)

    def write_revision(self, text):
        (self.base_dir / "REVISION").write_text(text, encoding="utf-8")

    def test_env_overrides_revision_file(self):
        self.write_revision("from-file\n")
        self.assertEqual(read_release_id(self.base_dir, {"OPERATIVOS_RELEASE": "from-env"}), "from-env")

    def test_blank_env_is_ignored(self):
        self.write_revision("from-file\n")
        self.assertEqual(read_release_id(self.base_dir, {"OPERATIVOS_RELEASE": "  "}), "from-file")

    def test_revision_file_first_line(self):
        self.write_revision("  3f2a9c1e  \nsecond line\n")
        self.assertEqual(read_release_id(self.base_dir, {}), "3f2a9c1e")

    def test_missing_revision_file(self):
        self.assertEqual(read_release_id(self.base_dir, {}), "unknown")

    def test_empty_revision_file(self):
        self.write_revision("")
        self.assertEqual(read_release_id(self.base_dir, {}), "unknown")


class EnvironmentParserTests(SimpleTestCase):
    def test_parse_list_drops_blanks(self):
        self.assertEqual(parse_list("a.example, ,b.example,, "), ["a.example", "b.example"])

    def test_parse_list_unset_or_empty(self):
        self.assertEqual(parse_list(None), [])
        self.assertEqual(parse_list(""), [])
        self.assertEqual(parse_list(" , "), [])

    def test_parse_bool_true_values(self):
        for value in ["true", "TRUE", "True", "1", "yes", "YES", " yes "]:
            with self.subTest(value=value):
                self.assertIs(parse_bool(value), True)

    def test_parse_bool_false_values(self):
        for value in [None, "", "false", "0", "no", "on", "y"]:
            with self.subTest(value=value):
                self.assertIs(parse_bool(value), False)

    def test_parse_int_default_and_value(self):
        self.assertEqual(parse_int("SECURE_HSTS_SECONDS", None, default=0), 0)
        self.assertEqual(parse_int("SECURE_HSTS_SECONDS", " ", default=0), 0)
        self.assertEqual(parse_int("SECURE_HSTS_SECONDS", "3600", default=0), 3600)

    def test_parse_int_invalid_names_variable(self):
        with self.assertRaisesMessage(ImproperlyConfigured, "SECURE_HSTS_SECONDS must be an integer"):
            parse_int("SECURE_HSTS_SECONDS", "one hour", default=0)

    def test_require_env_missing(self):
        with (
            mock.patch.dict(os.environ, {}, clear=True),
            self.assertRaisesMessage(ImproperlyConfigured, "SECRET_KEY is missing or empty"),
        ):
            require_env("SECRET_KEY", "x")

    def test_require_env_blank(self):
        with (
            mock.patch.dict(os.environ, {"SECRET_KEY": "  "}, clear=True),
            self.assertRaisesMessage(ImproperlyConfigured, "SECRET_KEY is missing or empty"),
        ):
            require_env("SECRET_KEY", "x")

    def test_require_env_present(self):
        with mock.patch.dict(os.environ, {"SECRET_KEY": "s3cr3t"}, clear=True):
            self.assertEqual(require_env("SECRET_KEY", "x"), "s3cr3t")


class SettingsImportTests(SimpleTestCase):
    """Import configuracion.settings in a child process, because this process has already loaded it."""

    def import_settings(self, environ, script="import configuracion.settings"):
        return subprocess.run(
            [sys.executable, "-c", script],
            check=False,
            cwd=settings.BASE_DIR,
            env={"PATH": os.environ.get("PATH", ""), **environ},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def test_missing_secret_key_fails(self):
        result = self.import_settings({"DATABASE_URL": "postgres://u:p@127.0.0.1:1/x"})
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ImproperlyConfigured: The environment variable SECRET_KEY is missing", result.stderr)

    def test_missing_database_url_fails(self):
        result = self.import_settings({"SECRET_KEY": "x"})
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ImproperlyConfigured: The environment variable DATABASE_URL is missing", result.stderr)

    def test_complete_environment_imports(self):
        result = self.import_settings({"SECRET_KEY": "x", "DATABASE_URL": "postgres://u:p@127.0.0.1:1/x"})
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_https_settings_from_environment(self):
        environ = {
            "SECRET_KEY": "x",
            "DATABASE_URL": "postgres://u:p@127.0.0.1:1/x",
            "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO",
            "SECURE_SSL_REDIRECT": "true",
            "SECURE_HSTS_SECONDS": "60",
            "SILENCED_SYSTEM_CHECKS": "security.W021",
        }
        script = (
            "from configuracion import settings as s; "
            "print(s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SILENCED_SYSTEM_CHECKS)"
        )
        result = self.import_settings(environ, script)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "('HTTP_X_FORWARDED_PROTO', 'https') True 60 ['security.W021']")

    def test_proxy_ssl_header_unset_by_default(self):
        environ = {"SECRET_KEY": "x", "DATABASE_URL": "postgres://u:p@127.0.0.1:1/x"}
        script = "from configuracion import settings as s; print(hasattr(s, 'SECURE_PROXY_SSL_HEADER'))"
        result = self.import_settings(environ, script)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "False")


# The deployed environment turns SECURE_SSL_REDIRECT on, which would redirect the test client's plain requests
# with 301.
@override_settings(ALLOWED_HOSTS=["testserver"], SECURE_SSL_REDIRECT=False)
class ApiTests(SimpleTestCase):
    def test_unknown_api_path_is_json_404(self):
        response = self.client.get("/api/does-not-exist")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(response.json(), {"detail": "Not Found"})

    def test_unknown_path_post_is_json_404(self):
        response = self.client.post("/api/operativos/1/nope", data="{}", content_type="application/json")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json(), {"detail": "Not Found"})

    @override_settings(OPERATIVOS_RELEASE="3f2a9c1e")
    def test_version_returns_release_and_host(self):
        response = self.client.get("/api/version")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"release": "3f2a9c1e", "host": socket.gethostname()})

    @override_settings(OPERATIVOS_RELEASE="3f2a9c1e")
    def test_health_ok(self):
        with mock.patch("apps.auxiliares.api.check_database") as check_database:
            response = self.client.get("/api/health")
        check_database.assert_called_once_with()
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"status": "ok", "database": "up", "release": "3f2a9c1e"})

    def test_health_database_error_is_503(self):
        error = OperationalError("connection refused")
        with (
            mock.patch("apps.auxiliares.api.check_database", side_effect=error),
            self.assertLogs("apps.auxiliares.api", level="ERROR") as logs,
        ):
            response = self.client.get("/api/health")
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json(), {"status": "error", "database": "down", "detail": "OperationalError"})
        self.assertIn("connection refused", logs.output[0])

    def test_health_missing_schema_is_503(self):
        error = MissingSchemaError(["historico"])
        with (
            mock.patch("apps.auxiliares.api.check_database", side_effect=error),
            self.assertLogs("apps.auxiliares.api", level="ERROR") as logs,
        ):
            response = self.client.get("/api/health")
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["detail"], "MissingSchemaError")
        self.assertIn("historico", logs.output[0])

    def test_endpoint_database_error_is_503(self):
        error = OperationalError("connection refused")
        with (
            mock.patch("apps.operativos.api.Operativo.objects.order_by", side_effect=error),
            self.assertLogs("configuracion.api", level="ERROR") as logs,
        ):
            response = self.client.get("/api/operativos/")
        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json(), {"detail": "Database unavailable"})
        self.assertIn("GET /api/operativos/", logs.output[0])


class JsonLogTests(SimpleTestCase):
    def make_record(self, **extra):
        record = logging.LogRecord("app", logging.ERROR, __file__, 1, "failed on %s", ("x",), None)
        record.__dict__.update(extra)
        return record

    def test_line_carries_message_and_release(self):
        entry = json.loads(JsonFormatter(release="r1").format(self.make_record()))
        self.assertEqual(entry["message"], "failed on x")
        self.assertEqual(entry["release"], "r1")
        self.assertEqual(entry["level"], "ERROR")
        self.assertEqual(entry["logger"], "app")

    def test_extra_fields_are_written(self):
        entry = json.loads(JsonFormatter().format(self.make_record(status=502, path="/api/x")))
        self.assertEqual(entry["status"], 502)
        self.assertEqual(entry["path"], "/api/x")

    def test_traceback_stays_on_one_line(self):
        try:
            raise ValueError("boom")
        except ValueError:
            record = self.make_record(exc_info=sys.exc_info())
        line = JsonFormatter().format(record)
        self.assertNotIn("\n", line)
        self.assertIn("ValueError: boom", json.loads(line)["exception"])

    def test_middleware_logs_each_request(self):
        with self.assertLogs(REQUEST_LOGGER, level="INFO") as logs:
            self.client.get("/api/version", secure=True)
        self.assertEqual(len(logs.records), 1)
        record = logs.records[0]
        self.assertEqual((record.method, record.path, record.status), ("GET", "/api/version", 200))
        self.assertGreaterEqual(record.duration_ms, 0)
