"""The socket-activated gunicorn units and who may use the socket."""

import pytest

from conftest import APP, ROOT, SOCKET, unit_journal

SERVICE = f"{APP}-gunicorn.service"
SOCKET_UNIT = f"{APP}-gunicorn.socket"


def unit_property(host, unit: str, name: str) -> str:
    return host.run("systemctl show --property %s --value %s", name, unit).stdout.strip()


def test_socket_unit_is_enabled_and_listening(host):
    socket_unit = host.service(SOCKET_UNIT)
    assert socket_unit.is_enabled
    assert socket_unit.is_running, unit_journal(host, SOCKET_UNIT)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("SocketGroup", "www-data"), ("SocketMode", "0660"), ("Listen", f"{SOCKET} (Stream)")],
)
def test_socket_unit_property(host, name, expected):
    assert unit_property(host, SOCKET_UNIT, name) == expected


def test_socket_file_is_group_www_data_0660(host):
    socket_file = host.file(SOCKET)
    assert socket_file.is_socket
    assert socket_file.group == "www-data"
    assert socket_file.mode == 0o660


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Type", "notify"), ("Restart", "on-failure"), ("User", APP), ("UMask", "0027")],
)
def test_service_unit_property(host, name, expected):
    assert unit_property(host, SERVICE, name) == expected


def test_service_is_triggered_by_socket(host):
    assert SERVICE in unit_property(host, SOCKET_UNIT, "Triggers").split()


def test_service_is_running(host):
    assert host.service(SERVICE).is_running, unit_journal(host, SERVICE)


def test_www_data_can_use_socket(host):
    result = host.run(
        "runuser -u www-data -- curl --silent --output /dev/null --write-out '%%{http_code}' "
        "--unix-socket %s -H 'Host: localhost' http://localhost/api/health",
        SOCKET,
    )
    assert result.rc == 0, result.stderr
    assert result.stdout == "200"


def test_nobody_cannot_use_socket(host):
    connect = f"import socket; socket.socket(socket.AF_UNIX).connect({SOCKET!r})"
    result = host.run("runuser -u nobody -- python3 -c %s", connect)
    assert result.rc != 0
    assert "PermissionError" in result.stderr


def test_master_runs_in_current_release(host):
    pid = unit_property(host, SERVICE, "MainPID")
    assert pid not in ("", "0")
    # Only the process's own user may read its cwd: root in the container lacks CAP_SYS_PTRACE.
    cwd = host.run("runuser -u %s -- readlink /proc/%s/cwd", APP, pid).stdout.strip()
    assert cwd == host.file(f"{ROOT}/current").linked_to


def test_journal_has_no_tracebacks(host):
    journal = host.run("journalctl --no-pager --unit %s", SERVICE).stdout
    assert "Traceback" not in journal
