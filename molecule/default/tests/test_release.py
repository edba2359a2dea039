"""After the side effect committed to the stand-in repository, the new commit is what users get."""

from conftest import ROOT

STANDIN_REPO = "/var/lib/operativos-standin/app.git"


def test_version_endpoint_reports_new_commit(host, http):
    head = host.run("git -C %s rev-parse refs/heads/main", STANDIN_REPO).stdout.strip()
    assert http("/api/version").json()["release"] == head[:12]


def test_new_commit_is_on_top_of_standin(host):
    subject = host.run("git -C %s log -1 --format=%%s refs/heads/main", STANDIN_REPO).stdout.strip()
    assert subject == "Side effect change"


def test_current_points_at_new_release(host):
    head = host.run("git -C %s rev-parse refs/heads/main", STANDIN_REPO).stdout.strip()
    assert host.file(f"{ROOT}/current").linked_to == f"{ROOT}/releases/{head[:12]}"


def test_previous_release_is_kept(host):
    releases = host.run("ls -1 %s/releases", ROOT).stdout.split()
    assert len(releases) >= 2
