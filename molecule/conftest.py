"""Helpers shared by every scenario's tests: HTTP requests and SQL run inside the container."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

APP = "operativos"
ROOT = f"/srv/{APP}"
ACTIVE_SOCKET = f"{ROOT}/instances/active.sock"
INSTANCES = ("blue", "green")
SCHEMAS = ("operativos", "historico", "cuenta")


@dataclass
class Response:
    """An HTTP response as curl received it inside the container."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    def json(self) -> object:
        return json.loads(self.body)


def parse_curl_include(output: str) -> Response:
    """Parse `curl --include` output: the status line, headers, a blank line and the body."""
    head, _, body = output.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Response(status=status, headers=headers, body=body)


# The certificate nginx serves; the scenarios generate it self-signed, so it is its own trust anchor.
CERTIFICATE = f"/etc/nginx/tls/{APP}.crt"
SITE = "localhost"


def https_url(path: str, site: str = SITE) -> str:
    """Return the HTTPS URL of a path on the site, for curl with the arguments of `curl_to_loopback`."""
    return f"https://{site}{path}"


def curl_to_loopback(site: str = SITE) -> str:
    """Return curl options that connect https://<site> to 127.0.0.1 and trust the site's certificate.

    The site's name goes in TLS SNI, because nginx rejects a handshake that names no known host.
    """
    return f"--resolve {site}:443:127.0.0.1 --cacert {CERTIFICATE}"


@pytest.fixture
def http(host):
    """Return a function that requests a path from nginx over HTTPS on the container's loopback.

    The TLS name is always the site's, and host_header sets the HTTP Host header.
    """

    def request(path: str, host_header: str = SITE) -> Response:
        result = host.run(
            f"curl --silent --show-error --include --max-time 15 {curl_to_loopback()} -H %s %s",
            f"Host: {host_header}",
            https_url(path),
        )
        assert result.rc == 0, f"curl {path} failed: {result.stderr}"
        return parse_curl_include(result.stdout)

    return request


@pytest.fixture
def sql(host):
    """Return a function that runs SQL as the postgres superuser in the app database; rows as lists."""

    def query(statement: str, database: str = APP) -> list[list[str]]:
        result = host.run(
            "runuser -u postgres -- psql --no-psqlrc --tuples-only --no-align --field-separator='|' "
            "-v ON_ERROR_STOP=1 -d %s -c %s",
            database,
            statement,
        )
        assert result.rc == 0, f"psql failed: {result.stderr}"
        return [line.split("|") for line in result.stdout.splitlines() if line]

    return query


def unit_journal(host, unit: str) -> str:
    """Return the last lines of a unit's journal, for failure messages."""
    return host.run("journalctl --no-pager --lines=40 --unit %s", unit).stdout
