"""After the side effect committed to the stand-in repository, users get the new commit's code and files."""

import re

from conftest import APP, ROOT

STANDIN_REPO = "/var/lib/operativos-standin/app.git"


def head_commit(host) -> str:
    return host.run("git -C %s rev-parse refs/heads/main", STANDIN_REPO).stdout.strip()


def release_of(host, link: str) -> str:
    return host.file(f"{ROOT}/{link}").linked_to.rsplit("/", 1)[-1]


def test_new_commit_is_on_top_of_standin(host):
    subject = host.run("git -C %s log -1 --format=%%s refs/heads/main", STANDIN_REPO).stdout.strip()
    assert subject == "Side effect change"


def test_current_release_is_new_commit(host):
    assert re.fullmatch(r"\d{8}T\d{6}Z-" + head_commit(host)[:12], release_of(host, "current"))


def test_version_endpoint_reports_current_release(host, http):
    assert http("/api/version").json()["release"] == release_of(host, "current")


def test_static_file_is_new_releases(http):
    assert http("/static/auxiliares/edition.txt").body == "side-effect\n"


def test_spa_bundle_is_new_releases(http):
    script = re.search(r'/assets/[^"]+\.js', http("/").body).group(0)
    assert "Operativos side effect" in http(script).body


def test_previous_link_names_older_release(host):
    assert release_of(host, "previous") < release_of(host, "current")


def test_previous_release_assets_are_still_served(host, http):
    previous_index = host.file(f"{ROOT}/previous/frontend/dist/index.html").content_string
    script = re.search(r'/assets/[^"]+\.js', previous_index).group(0)
    assert not host.file(f"{ROOT}/current/frontend/dist{script}").exists
    assert http(script).status == 200


def test_retired_instance_is_stopped(host):
    active = host.file(f"{ROOT}/instances/active.sock").linked_to
    idle = "blue" if active.endswith("green.sock") else "green"
    assert not host.service(f"{APP}-gunicorn@{idle}.service").is_running
