"""The socket-activated blue/green gunicorn instances and who may use their sockets."""

import pytest

from conftest import ACTIVE_SOCKET, APP, INSTANCES, ROOT, unit_journal


def unit_property(host, unit: str, name: str) -> str:
    return host.run("systemctl show --property %s --value %s", name, unit).stdout.strip()


def active_instance(host) -> str:
    target = host.file(ACTIVE_SOCKET).linked_to
    return target.rsplit("gunicorn-", 1)[1].removesuffix(".sock")


@pytest.mark.parametrize("instance", INSTANCES)
def test_instance_socket_is_enabled_and_listening(host, instance):
    unit = f"{APP}-gunicorn@{instance}.socket"
    assert host.service(unit).is_enabled
    assert host.service(unit).is_running, unit_journal(host, unit)


@pytest.mark.parametrize("instance", INSTANCES)
@pytest.mark.parametrize(("name", "expected"), [("SocketGroup", "www-data"), ("SocketMode", "0660")])
def test_instance_socket_property(host, instance, name, expected):
    assert unit_property(host, f"{APP}-gunicorn@{instance}.socket", name) == expected


@pytest.mark.parametrize("instance", INSTANCES)
def test_instance_socket_file_is_www_data_0660(host, instance):
    socket_file = host.file(f"/run/{APP}/gunicorn-{instance}.sock")
    assert socket_file.is_socket
    assert socket_file.group == "www-data"
    assert socket_file.mode == 0o660


def test_active_link_names_an_instance_socket(host):
    assert host.file(ACTIVE_SOCKET).linked_to in {f"/run/{APP}/gunicorn-{name}.sock" for name in INSTANCES}


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Type", "notify"), ("Restart", "on-failure"), ("User", APP), ("UMask", "0027"), ("KillMode", "mixed")],
)
def test_active_service_property(host, name, expected):
    assert unit_property(host, f"{APP}-gunicorn@{active_instance(host)}.service", name) == expected


def test_active_service_is_running(host):
    unit = f"{APP}-gunicorn@{active_instance(host)}.service"
    assert host.service(unit).is_running, unit_journal(host, unit)


def test_active_instance_serves_current_release(host):
    instance_link = host.file(f"{ROOT}/instances/{active_instance(host)}").linked_to
    assert instance_link == host.file(f"{ROOT}/current").linked_to


def test_www_data_can_use_socket(host):
    result = host.run(
        "runuser -u www-data -- curl --silent --output /dev/null --write-out '%%{http_code}' "
        "--unix-socket %s -H 'Host: localhost' -H 'X-Forwarded-Proto: https' http://localhost/api/health",
        ACTIVE_SOCKET,
    )
    assert result.rc == 0, result.stderr
    assert result.stdout == "200"


def test_nobody_cannot_use_socket(host):
    connect = f"import socket; socket.socket(socket.AF_UNIX).connect({ACTIVE_SOCKET!r})"
    result = host.run("runuser -u nobody -- python3 -c %s", connect)
    assert result.rc != 0
    assert "PermissionError" in result.stderr


def test_master_runs_in_current_release(host):
    pid = unit_property(host, f"{APP}-gunicorn@{active_instance(host)}.service", "MainPID")
    assert pid not in ("", "0")
    # Only the process's own user may read its cwd: root in the container lacks CAP_SYS_PTRACE.
    cwd = host.run("runuser -u %s -- readlink /proc/%s/cwd", APP, pid).stdout.strip()
    assert cwd == host.file(f"{ROOT}/current").linked_to


def test_journal_has_no_tracebacks(host):
    journal = host.run("journalctl --no-pager --unit %s", f"{APP}-gunicorn@*.service").stdout
    assert "Traceback" not in journal
