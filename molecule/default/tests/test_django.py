"""The deployed Django release, its environment file and its own tests."""

import pytest

from conftest import APP, ROOT

MANAGE = f"{ROOT}/bin/manage"


def run_manage(host, *args: str):
    return host.run("runuser -u %s -- " + MANAGE + " " + " ".join(["%s"] * len(args)), APP, *args)


def test_migrations_are_applied(host):
    result = run_manage(host, "migrate", "--check", "--noinput")
    assert result.rc == 0, result.stdout + result.stderr


def test_django_system_check_passes(host):
    result = run_manage(host, "check")
    assert result.rc == 0, result.stderr


def test_standin_own_tests_pass(host):
    result = run_manage(host, "test", "--noinput")
    assert result.rc == 0, result.stderr


def test_environment_file_is_root_and_app_group_only(host):
    env_file = host.file(f"{ROOT}/shared/.env")
    assert env_file.user == "root"
    assert env_file.group == APP
    assert env_file.mode == 0o640


def test_environment_file_is_unreadable_for_others(host):
    assert host.run("runuser -u nobody -- cat %s", f"{ROOT}/shared/.env").rc != 0


@pytest.mark.parametrize("line", ["DEBUG='false'", "DJANGO_SETTINGS_MODULE='configuracion.settings'"])
def test_environment_file_sets(host, line):
    assert line in host.file(f"{ROOT}/shared/.env").content_string.splitlines()


def test_release_code_is_not_writable_by_app_user(host):
    release = host.file(f"{ROOT}/current").linked_to
    assert host.run("runuser -u %s -- touch %s/probe", APP, release).rc != 0


def test_release_records_its_id(host):
    release = host.file(f"{ROOT}/current").linked_to
    assert host.file(f"{release}/REVISION").content_string.strip() == release.rsplit("/", 1)[-1]


def test_app_user_has_no_login_shell(host):
    assert host.user(APP).shell == "/usr/sbin/nologin"


def test_superuser_exists(host):
    result = run_manage(
        host,
        "shell",
        "--command",
        "from django.contrib.auth import get_user_model; "
        "print(get_user_model().objects.get(username='admin').is_superuser)",
    )
    assert result.rc == 0, result.stderr
    # Django 5.2's shell first reports the objects it imported, so the result is on the last line.
    assert result.stdout.strip().splitlines()[-1] == "True"


def test_environment_file_is_unreadable_for_web_server(host):
    assert host.run("runuser -u www-data -- cat %s", f"{ROOT}/shared/.env").rc != 0
