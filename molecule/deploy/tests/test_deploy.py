"""Deploys and rollbacks of releases A (the stand-in), B (a new edition) and C (a broken one).

The module fixture runs the whole sequence once, in order, and records what each step left behind. Each test
then checks one property of one step.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field

import pytest

from conftest import APP, ROOT, Response, curl_to_loopback, https_url, parse_curl_include

STANDIN_REPO = f"/var/lib/{APP}-standin/app.git"
WORK = "/root/standin-releases"
LOAD_LOG = "/root/deploy-load.log"
LOAD_STOP = "/root/deploy-load.stop"


@dataclass
class Step:
    """What one playbook run returned and what the site looked like right after it."""

    returncode: int
    output: str
    recap_changed: int
    current: str
    version: str
    edition: str
    releases: list[str] = field(default_factory=list)


def run_playbook(name: str, *extra: str) -> tuple[int, str, int]:
    playbook = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "playbooks", name)
    command = ["ansible-playbook", "--inventory", os.environ["MOLECULE_INVENTORY_FILE"], playbook, *extra]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    recap = run.stdout[run.stdout.rfind("PLAY RECAP") :]
    changed = sum(int(count) for count in re.findall(r"changed=(\d+)", recap))
    print(f"$ {' '.join(command)}\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}")
    # ansible-core 2.19 prints task errors, the fail module's message among them, on stderr.
    return run.returncode, run.stdout + run.stderr, changed


def fetch(host, path: str) -> Response:
    result = host.run(f"curl --silent --include --max-time 15 {curl_to_loopback()} %s", https_url(path))
    return parse_curl_include(result.stdout)


def snapshot(host, returncode: int, output: str, changed: int) -> Step:
    version = fetch(host, "/api/version")
    return Step(
        returncode=returncode,
        output=output,
        recap_changed=changed,
        current=host.file(f"{ROOT}/current").linked_to.rsplit("/", 1)[-1],
        version=version.json()["release"] if version.status == 200 else f"HTTP {version.status}",
        edition=fetch(host, "/static/auxiliares/edition.txt").body.strip(),
        releases=sorted(host.run("ls -1 %s/releases", ROOT).stdout.split()),
    )


def commit_edition(host, branch: str, base: str, edition: str, extra_command: str = "") -> str:
    """Commit a new edition of the stand-in on a branch of the host's repository; return the commit id."""
    script = (
        f"set -e; cd {WORK}; git checkout --quiet -B {branch} {base}; "
        f"echo {edition} > apps/auxiliares/static/auxiliares/edition.txt; "
        f"sed -i 's|<h1>Operativos[^<]*</h1>|<h1>Operativos {edition}</h1>|' frontend/src/App.vue; "
        f"{extra_command}"
        f"git -c user.name=molecule -c user.email=molecule@localhost commit --quiet --all -m 'Edition {edition}'; "
        f"git push --quiet --force origin {branch}; git rev-parse HEAD"
    )
    result = host.run("bash -c %s", script)
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


def start_load(host) -> None:
    """Request /api/version through nginx about 20 times a second, at most 4000 times, until the stop file exists."""
    loop = (
        f"rm -f {LOAD_STOP} {LOAD_LOG}; for i in $(seq 1 4000); do [ -e {LOAD_STOP} ] && break; "
        "curl --silent --output /dev/null --max-time 5 --write-out '%{http_code} %{time_total}\\n' "
        f"{curl_to_loopback()} {https_url('/api/operativos/')} >> {LOAD_LOG}; sleep 0.05; done"
    )
    host.run("nohup bash -c %s >/dev/null 2>&1 &", loop)


def stop_load(host) -> list[tuple[str, float]]:
    host.run("touch %s; sleep 1", LOAD_STOP)
    lines = host.file(LOAD_LOG).content_string.split("\n")
    return [(line.split()[0], float(line.split()[1])) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def flow(host):
    """Run A → B (under load) → B again → C (fails at warm-up) → C (fails at the gate) → rollback to A."""
    steps: dict[str, Step] = {}
    release_a = host.file(f"{ROOT}/current").linked_to.rsplit("/", 1)[-1]
    clone = host.run("rm -rf %s && git clone --quiet %s %s", WORK, STANDIN_REPO, WORK)
    assert clone.rc == 0, clone.stderr
    commits = {"B": commit_edition(host, "release-b", "main", "B")}
    broken = 'sed -i \'s|"cuenta")|"cuenta", "inexistente")|\' apps/auxiliares/database.py; '
    commits["C"] = commit_edition(host, "release-c", "release-b", "C", broken)

    start_load(host)
    steps["B"] = snapshot(host, *run_playbook("deploy.yml", "-e", "operativos_app_version=release-b"))
    load = stop_load(host)
    steps["B again"] = snapshot(host, *run_playbook("deploy.yml", "-e", "operativos_app_version=release-b"))
    steps["C at warm-up"] = snapshot(
        host,
        *run_playbook("deploy.yml", "-e", "operativos_app_version=release-c", "-e", "gunicorn_warmup_retries=5"),
    )
    # With the warm-up reduced to /api/version, C takes traffic and only the health gate through nginx fails.
    steps["C at gate"] = snapshot(
        host,
        *run_playbook(
            "deploy.yml",
            "-e",
            "operativos_app_version=release-c",
            "-e",
            "gunicorn_warmup_health_path=/api/version",
            "-e",
            "deploy_gate_timeout=5",
        ),
    )
    steps["rollback to A"] = snapshot(host, *run_playbook("rollback.yml", "-e", f"rollback_release={release_a}"))
    return {"steps": steps, "load": load, "commits": commits, "release_a": release_a}


def test_deploy_b_succeeds(flow):
    assert flow["steps"]["B"].returncode == 0, flow["steps"]["B"].output[-3000:]


def test_deploy_b_serves_b(flow):
    step = flow["steps"]["B"]
    assert step.current.endswith("-" + flow["commits"]["B"][:12])
    assert step.version == step.current
    assert step.edition == "B"


def test_deploy_b_drops_no_request(flow):
    failures = [code for code, _ in flow["load"] if code != "200"]
    assert len(flow["load"]) > 100, "the load loop made too few requests"
    assert failures == []


def test_deploy_same_version_changes_nothing(flow):
    step = flow["steps"]["B again"]
    assert step.returncode == 0, step.output[-3000:]
    assert step.recap_changed == 0
    assert step.releases == flow["steps"]["B"].releases


@pytest.mark.parametrize("name", ["C at warm-up", "C at gate"])
def test_broken_release_fails_the_deploy(flow, name):
    assert flow["steps"][name].returncode != 0


@pytest.mark.parametrize("name", ["C at warm-up", "C at gate"])
def test_broken_release_leaves_b_serving(flow, name):
    step = flow["steps"][name]
    assert step.current == flow["steps"]["B"].current
    assert step.version == flow["steps"]["B"].current
    assert step.edition == "B"


@pytest.mark.parametrize("name", ["C at warm-up", "C at gate"])
def test_broken_release_is_removed(flow, name):
    assert not any(release.endswith(flow["commits"]["C"][:12]) for release in flow["steps"][name].releases)


def test_gate_failure_message_names_rollback(flow):
    # The YAML callback wraps long messages, so whitespace is normalised before searching.
    output = " ".join(flow["steps"]["C at gate"].output.split())
    assert "Rolled back to " + flow["steps"]["B"].current in output


def test_rollback_to_a_serves_a(flow):
    step = flow["steps"]["rollback to A"]
    assert step.returncode == 0, step.output[-3000:]
    assert step.current == flow["release_a"]
    assert step.version == flow["release_a"]
    assert step.edition == "stand-in"


def test_rollback_warns_about_migrations(flow):
    assert "migrations are not reversed" in flow["steps"]["rollback to A"].output


def test_previous_link_names_b_after_rollback(host, flow):
    assert host.file(f"{ROOT}/previous").linked_to.rsplit("/", 1)[-1] == flow["steps"]["B"].current


def test_safety_dump_was_taken_before_b(host, flow):
    listing = host.run("runuser -u postgres -- /usr/local/sbin/%s-backup list", APP)
    assert listing.rc == 0, listing.stderr
    assert "pre-deploy-" + flow["steps"]["B"].current in listing.stdout
