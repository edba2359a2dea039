"""The socket-activated blue/green gunicorn instances and who may use their sockets."""

import pytest

from conftest import ACTIVE_SOCKET, APP, INSTANCES, ROOT, unit_journal
from unit_security import SANDBOX_PROPERTIES, exposure_level


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


@pytest.mark.parametrize("instance", INSTANCES)
def test_instance_exposure_at_most_2(host, instance):
    unit = f"{APP}-gunicorn@{instance}.service"
    level = exposure_level(host, unit)
    assert level <= 2.0, f"{unit}: exposure {level} is above 2.0"


@pytest.mark.parametrize("instance", INSTANCES)
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        *SANDBOX_PROPERTIES,
        ("ReadWritePaths", f"{ROOT}/shared/media"),
        ("CapabilityBoundingSet", ""),
    ],
)
def test_instance_sandbox_property(host, instance, name, expected):
    assert unit_property(host, f"{APP}-gunicorn@{instance}.service", name) == expected


def test_system_call_filter_is_set(host):
    value = unit_property(host, f"{APP}-gunicorn@{active_instance(host)}.service", "SystemCallFilter")
    # systemctl expands @system-service into its system calls; mount and reboot are outside it.
    names = set(value.split())
    assert "openat" in names
    assert "mount" not in names
    assert "reboot" not in names


def sandbox_mount_options(host, path: str) -> list[str]:
    """Return the mount options in effect for `path` in the active instance's mount namespace."""
    pid = unit_property(host, f"{APP}-gunicorn@{active_instance(host)}.service", "MainPID")
    # Only the process's own user may read its mountinfo: root in the container lacks CAP_SYS_PTRACE.
    mountinfo = host.run("runuser -u %s -- cat /proc/%s/mountinfo", APP, pid)
    assert mountinfo.rc == 0, mountinfo.stderr
    # Fields 5 and 6 are the mount point and its options; the last line for the longest match is in effect.
    mounts = [line.split()[4:6] for line in mountinfo.stdout.splitlines()]
    matching = [
        (point, options) for point, options in mounts if path == point or path.startswith(point.rstrip("/") + "/")
    ]
    longest = max(len(point) for point, _ in matching)
    return [options for point, options in matching if len(point) == longest][-1].split(",")


def test_media_folder_writable_in_sandbox(host):
    assert "rw" in sandbox_mount_options(host, f"{ROOT}/shared/media/upload.txt")


@pytest.mark.parametrize("path", [f"{ROOT}/current/manage.py", f"{ROOT}/shared/.env", "/etc/passwd", "/var/lib/x"])
def test_path_read_only_in_sandbox(host, path):
    assert "ro" in sandbox_mount_options(host, path)


def test_secrets_not_in_process_arguments(host):
    """No process shows SECRET_KEY or the database password in its command line."""
    env = host.file(f"{ROOT}/shared/.env").content_string
    values = dict(line.split("=", 1) for line in env.splitlines() if "=" in line and not line.startswith("#"))
    secret_key = values["SECRET_KEY"].strip("'")
    db_password = values["DATABASE_URL"].strip("'").split("@", 1)[0].rsplit(":", 1)[1]
    assert len(secret_key) >= 16
    assert len(db_password) >= 16
    command_lines = host.run("cat /proc/[0-9]*/cmdline | tr '\\0' ' '").stdout
    assert "gunicorn" in command_lines
    assert secret_key not in command_lines
    assert db_password not in command_lines
