"""Hosts of the split layout and helpers that work through the load balancer."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest
import testinfra

# The helpers that every scenario shares are in molecule/conftest.py, which this file's name shadows.
_SPEC = importlib.util.spec_from_file_location(
    "molecule_shared", os.path.join(os.path.dirname(__file__), "..", "..", "conftest.py")
)
shared = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = shared
_SPEC.loader.exec_module(shared)
APP, ROOT, Response, parse_curl_include = shared.APP, shared.ROOT, shared.Response, shared.parse_curl_include
curl_to_loopback, https_url = shared.curl_to_loopback, shared.https_url
# molecule/unit_security.py, for the sandbox test.
sys.path.append(os.path.join(os.path.dirname(__file__), "..", ".."))

PREFIX = os.environ.get("OPERATIVOS_MOLECULE_PREFIX", "operativos")
DB = f"{PREFIX}-cluster-db"
REPLICA = f"{PREFIX}-cluster-replica"
APP1 = f"{PREFIX}-cluster-app1"
APP2 = f"{PREFIX}-cluster-app2"
LB = f"{PREFIX}-cluster-lb"
APP_HOSTS = (APP1, APP2)
APP_PORT = 8000
UNITS = f"{APP}-gunicorn*"


def connect(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


@pytest.fixture(scope="session")
def db():
    return connect(DB)


@pytest.fixture(scope="session")
def replica():
    return connect(REPLICA)


@pytest.fixture(scope="session")
def lb():
    return connect(LB)


@pytest.fixture(scope="session")
def apps():
    return {name: connect(name) for name in APP_HOSTS}


def private_address(host) -> str:
    """Return the host's address on the scenario's docker network, its only interface besides loopback."""
    return host.run("hostname -I").stdout.split()[0]


def connects(source, address: str, port: int) -> bool:
    """Return whether a TCP connection from the source host to address:port succeeds within 5 seconds."""
    probe = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)"
    return source.run("python3 -c %s %s %s", probe, address, str(port)).rc == 0


def through_lb(lb, path: str) -> Response:
    """Request a path over HTTPS from nginx on the load balancer's loopback."""
    result = lb.run(f"curl --silent --show-error --include --max-time 15 {curl_to_loopback()} %s", https_url(path))
    assert result.rc == 0, f"curl {path} through the load balancer failed: {result.stderr}"
    return parse_curl_include(result.stdout)


def serving_hosts(lb, requests: int = 20) -> list[str]:
    """Return the host name that /api/version reports for each of `requests` requests through the load balancer."""
    names = []
    for _ in range(requests):
        response = through_lb(lb, "/api/version")
        assert response.status == 200, response.body
        names.append(response.json()["host"])
    return names


def psql(host, query: str, database: str = "postgres") -> str:
    """Run one SQL statement as postgres on the host; return its unaligned output, or fail with stderr."""
    result = host.run(
        "runuser -u postgres -- psql --no-psqlrc --tuples-only --no-align --dbname %s -c %s", database, query
    )
    assert result.rc == 0, f"{query}: {result.stderr}"
    return result.stdout.strip()
