"""Stopping gunicorn on one app host: the load balancer sends every request to the other one."""

from __future__ import annotations

import time

import pytest

from conftest import APP, APP_HOSTS, serving_hosts, through_lb

STOPPED, RUNNING = APP_HOSTS[1], APP_HOSTS[0]
SOCKETS = (f"{APP}-gunicorn@blue.socket", f"{APP}-gunicorn@green.socket", f"{APP}-gunicorn-tcp.socket")


@pytest.fixture(scope="module")
def outage(lb, apps):
    """Stop every gunicorn socket and service on one app host, request through the load balancer, start again."""
    host = apps[STOPPED]
    stop = host.run("systemctl stop %s", f"{APP}-gunicorn*")
    assert stop.rc == 0, stop.stderr
    try:
        return {"names": serving_hosts(lb, requests=30), "spa": through_lb(lb, "/")}
    finally:
        start = host.run("systemctl start " + " ".join(SOCKETS))
        assert start.rc == 0, start.stderr


def test_site_stays_up_with_one_host_stopped(outage):
    assert len(outage["names"]) == 30
    assert outage["spa"].status == 200


def test_stopped_host_gets_no_request(outage):
    assert set(outage["names"]) == {RUNNING}


def test_stopped_host_serves_again_after_start(lb, outage):
    # nginx skips a failed server for fail_timeout (10 s) before it tries it again.
    time.sleep(11)
    assert set(serving_hosts(lb, requests=20)) == set(APP_HOSTS)
