"""Base settings from the common role: time zone, locale, CA certificates and the app user."""

import glob
import os

import pytest

from conftest import APP, ROOT

EXTRA_CAS = sorted(glob.glob("/usr/local/share/ca-certificates/*.crt"))


def test_timezone_is_set(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Europe/Madrid"
    assert host.file("/etc/timezone").content_string.strip() == "Europe/Madrid"


def test_locale_is_generated(host):
    assert "es_ES.utf8" in host.run("locale -a").stdout.split()


def test_default_locale_is_set(host):
    assert "LANG=es_ES.UTF-8" in host.file("/etc/default/locale").content_string.splitlines()


@pytest.mark.parametrize("path", EXTRA_CAS, ids=os.path.basename)
def test_extra_ca_certificate_is_in_bundle(host, path):
    with open(path, encoding="ascii") as pem:
        body = "".join(line.strip() for line in pem if not line.startswith("-----"))
    bundle_lines = host.file("/etc/ssl/certs/ca-certificates.crt").content_string.splitlines()
    bundle = "".join(line.strip() for line in bundle_lines)
    assert body in bundle


def test_app_user_is_system_user(host):
    user = host.user(APP)
    assert user.uid < 1000
    assert user.group == APP
    assert user.home == ROOT
    assert user.password == "!"
