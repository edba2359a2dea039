"""Rolling deploys through the load balancer: release B under load, then a release C that fails its gate.

The module fixture runs both deploys once, in order, and records what each left behind; each test checks one
property. The load loop runs on the load balancer and requests /api/version through nginx.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field

import pytest

from conftest import APP, APP_HOSTS, ROOT, curl_to_loopback, https_url, serving_hosts, through_lb

STANDIN_REPO = f"/var/lib/{APP}-standin/app.git"
WORK = "/root/standin-releases"
LOAD_LOG = "/root/rolling-load.log"
LOAD_STOP = "/root/rolling-load.stop"
# Both app hosts must build the same commits, so every commit gets the same author, committer and dates.
GIT_IDENTITY = (
    "GIT_AUTHOR_NAME=molecule GIT_AUTHOR_EMAIL=molecule@localhost GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' "
    "GIT_COMMITTER_NAME=molecule GIT_COMMITTER_EMAIL=molecule@localhost GIT_COMMITTER_DATE='2026-01-01T00:00:00Z'"
)


@dataclass
class Step:
    """What one deploy returned and where each host stood right after it."""

    returncode: int
    output: str
    seconds: float
    current: dict[str, str] = field(default_factory=dict)
    releases: dict[str, list[str]] = field(default_factory=dict)
    upstream: str = ""


def run_deploy(*extra: str) -> tuple[int, str, float]:
    playbook = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "playbooks", "deploy.yml")
    command = ["ansible-playbook", "--inventory", os.environ["MOLECULE_INVENTORY_FILE"], playbook, *extra]
    started = time.monotonic()
    run = subprocess.run(command, capture_output=True, text=True, timeout=1200, check=False)
    seconds = time.monotonic() - started
    print(f"$ {' '.join(command)}  ({seconds:.0f} s)\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}")
    # ansible-core 2.19 prints task errors, the fail module's message among them, on stderr.
    return run.returncode, run.stdout + run.stderr, seconds


def commit_edition(host, branch: str, base: str, edition: str, extra_command: str = "") -> str:
    """Commit a new edition of the stand-in on a branch of the host's repository; return the commit id."""
    script = (
        f"set -e; rm -rf {WORK}; git clone --quiet {STANDIN_REPO} {WORK}; cd {WORK}; "
        f"git checkout --quiet -B {branch} origin/{base}; "
        f"echo {edition} > apps/auxiliares/static/auxiliares/edition.txt; "
        f"sed -i 's|<h1>Operativos[^<]*</h1>|<h1>Operativos {edition}</h1>|' frontend/src/App.vue; "
        f"{extra_command}"
        f"{GIT_IDENTITY} git commit --quiet --all -m 'Edition {edition}'; "
        f"git push --quiet --force origin {branch}; git rev-parse HEAD"
    )
    result = host.run("bash -c %s", script)
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


def start_load(lb) -> None:
    """Request /api/version over HTTPS through nginx, 20 times a second, until the stop file exists (6000 at most)."""
    loop = (
        f"rm -f {LOAD_STOP} {LOAD_LOG}; for i in $(seq 1 6000); do [ -e {LOAD_STOP} ] && break; "
        "code=$(curl --silent --output /root/rolling-load.body --max-time 5 --write-out '%{http_code}' "
        f"{curl_to_loopback()} {https_url('/api/version')}); "
        f'echo "$code $(tr -d "\\n" < /root/rolling-load.body | head -c 300)" >> {LOAD_LOG}; sleep 0.05; done'
    )
    lb.run("nohup bash -c %s >/dev/null 2>&1 &", loop)


def stop_load(lb) -> list[tuple[str, dict]]:
    """Stop the load loop; return each request's status code and, for a 200, the JSON it returned."""
    lb.run("touch %s; sleep 1", LOAD_STOP)
    entries = []
    for line in lb.file(LOAD_LOG).content_string.splitlines():
        code, _, body = line.partition(" ")
        entries.append((code, json.loads(body) if code == "200" else {}))
    return entries


def snapshot(lb, apps, returncode: int, output: str, seconds: float) -> Step:
    return Step(
        returncode=returncode,
        output=output,
        seconds=seconds,
        current={name: host.file(f"{ROOT}/current").linked_to.rsplit("/", 1)[-1] for name, host in apps.items()},
        releases={name: sorted(host.run("ls -1 %s/releases", ROOT).stdout.split()) for name, host in apps.items()},
        upstream=lb.file(f"/etc/nginx/conf.d/{APP}-upstream.conf").content_string,
    )


@pytest.fixture(scope="module")
def flow(lb, apps):
    """Run A → B (under load through the load balancer) → C (fails the health gate on the first app host)."""
    release_a = apps[APP_HOSTS[0]].file(f"{ROOT}/current").linked_to.rsplit("/", 1)[-1]
    broken = 'sed -i \'s|"cuenta")|"cuenta", "inexistente")|\' apps/auxiliares/database.py; '
    commits = {}
    for name, host in apps.items():
        commits[name] = {
            "B": commit_edition(host, "release-b", "main", "B"),
            "C": commit_edition(host, "release-c", "release-b", "C", broken),
        }

    steps = {}
    start_load(lb)
    try:
        steps["B"] = snapshot(lb, apps, *run_deploy("-e", "operativos_app_version=release-b"))
    finally:
        load = stop_load(lb)

    after_b = {
        "names": serving_hosts(lb, requests=20),
        "versions": {through_lb(lb, "/api/version").json()["release"] for _ in range(10)},
        "edition": through_lb(lb, "/static/auxiliares/edition.txt").body.strip(),
        "lb_current": lb.file(f"{ROOT}/current").linked_to.rsplit("/", 1)[-1],
    }

    # With the warm-up reduced to /api/version, C starts on the first app host and only the health gate fails.
    steps["C"] = snapshot(
        lb,
        apps,
        *run_deploy(
            "-e",
            "operativos_app_version=release-c",
            "-e",
            "gunicorn_warmup_health_path=/api/version",
            "-e",
            "deploy_gate_timeout=5",
        ),
    )
    after_c = {"names": serving_hosts(lb, requests=20), "edition": through_lb(lb, "/static/auxiliares/edition.txt")}

    return {
        "release_a": release_a,
        "commits": commits,
        "steps": steps,
        "load": load,
        "after_b": after_b,
        "after_c": after_c,
    }


def test_app_hosts_build_the_same_commits(flow):
    first, second = flow["commits"].values()
    assert first == second


def test_rolling_deploy_b_succeeds(flow):
    step = flow["steps"]["B"]
    print(f"deploy of B took {step.seconds:.0f} s")
    assert step.returncode == 0, step.output[-3000:]


def test_rolling_deploy_b_switches_every_app_host(flow):
    commit = flow["commits"][APP_HOSTS[0]]["B"]
    for name, current in flow["steps"]["B"].current.items():
        assert current.endswith("-" + commit[:12]), name


def test_rolling_deploy_b_drops_no_request(flow):
    failures = [code for code, _ in flow["load"] if code != "200"]
    assert len(flow["load"]) > 100, "the load loop made too few requests"
    assert len(failures) == 0, f"{len(failures)} of {len(flow['load'])} requests failed: {failures[:20]}"


def test_rolling_deploy_switches_one_host_at_a_time(flow):
    release_b = flow["steps"]["B"].current[APP_HOSTS[0]]
    first_b = {}
    for index, (_, body) in enumerate(flow["load"]):
        if body.get("release") == release_b:
            first_b.setdefault(body["host"], index)
    assert set(first_b) == set(APP_HOSTS), f"release B seen from {sorted(first_b)} only"
    # While the first host switches it is out of the upstream, so the second one serves every request, with A.
    assert first_b[APP_HOSTS[0]] < first_b[APP_HOSTS[1]]
    between = [body for _, body in flow["load"][: first_b[APP_HOSTS[0]]] if body.get("host") == APP_HOSTS[1]]
    assert between, "the second host answered nothing before the first one switched"


def test_rolling_deploy_b_ends_with_both_hosts_in(flow):
    assert set(flow["after_b"]["names"]) == set(APP_HOSTS)
    assert " down;" not in flow["steps"]["B"].upstream


def test_lb_serves_b_static_files_after_deploy(flow):
    assert flow["after_b"]["edition"] == "B"
    assert flow["after_b"]["lb_current"] == flow["steps"]["B"].current[APP_HOSTS[0]]


def test_lb_sees_only_b_after_deploy(flow):
    assert flow["after_b"]["versions"] == {flow["steps"]["B"].current[APP_HOSTS[0]]}


def test_failed_gate_stops_the_deploy(flow):
    assert flow["steps"]["C"].returncode != 0


def test_failed_gate_rolls_first_host_back_to_b(flow):
    assert flow["steps"]["C"].current[APP_HOSTS[0]] == flow["steps"]["B"].current[APP_HOSTS[0]]
    commit_c = flow["commits"][APP_HOSTS[0]]["C"]
    assert not any(release.endswith(commit_c[:12]) for release in flow["steps"]["C"].releases[APP_HOSTS[0]])


def test_failed_gate_leaves_second_host_untouched(apps, flow):
    assert flow["steps"]["C"].current[APP_HOSTS[1]] == flow["steps"]["B"].current[APP_HOSTS[1]]
    instances = apps[APP_HOSTS[1]].run("systemctl is-active %s %s", f"{APP}-gunicorn@blue", f"{APP}-gunicorn@green")
    assert sorted(instances.stdout.split()) == ["active", "inactive"]


def test_failed_gate_puts_first_host_back(flow):
    assert " down;" not in flow["steps"]["C"].upstream
    assert set(flow["after_c"]["names"]) == set(APP_HOSTS)


def test_failed_gate_keeps_b_static_files(flow):
    assert flow["after_c"]["edition"].body.strip() == "B"


def test_failed_gate_message_names_rollback(flow):
    # The YAML callback wraps long messages, so whitespace is normalised before searching.
    output = " ".join(flow["steps"]["C"].output.split())
    assert "Rolled back to " + flow["steps"]["B"].current[APP_HOSTS[0]] in output
