#!/usr/bin/env python3
"""Measure a rolling deploy and the throughput of the load balancer, against the molecule `cluster` scenario.

Needs the scenario's containers, converged (`molecule converge -s cluster`): a database host, two app hosts and a
load balancer. The script sends its requests from this machine to the load balancer's address on the scenario's
docker network. It measures, one after the other in the same run:

1. throughput through the load balancer with both app hosts: closed-loop HTTPS requests to /api/operativos/ from
   --concurrency threads for --seconds seconds;
2. the same with one app host: the second one is marked `down` in the upstream and nginx reloaded;
3. a rolling deploy of a new commit (playbooks/deploy.yml) under open-loop load at --rate requests per second,
   alternating /api/operativos/ and /. It records the requests served and failed, and the wall time of each app
   host's turn, from taking it out of the upstream to putting it back.

Usage: benchmarks/deploy/bench_rolling.py --inventory <molecule inventory> [--prefix wt5] [--output results.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import ssl
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_deploy import APP, ROOT, SITE, STANDIN_REPO, TOP, Load, SiteConnection, in_container, measured, run

log = logging.getLogger("bench_rolling")

UPSTREAM = f"/etc/nginx/conf.d/{APP}-upstream.conf"
# profile_tasks prints this line under every task header; its last field is the time since the run started.
TASK_CLOCK = re.compile(r"^TASK \[(?P<name>[^\]]+)\].*\n.*\s(?P<elapsed>\d+:\d\d:\d\d\.\d+)\s\*+\s*$", re.MULTILINE)
# Both app hosts must build the same commit, so it gets fixed author, committer and dates.
GIT_IDENTITY = (
    "GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost GIT_AUTHOR_DATE='2026-01-02T00:00:00Z' "
    "GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost GIT_COMMITTER_DATE='2026-01-02T00:00:00Z'"
)


def container_address(container: str) -> str:
    """Return the container's address on its (only) docker network."""
    template = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    return run(["docker", "inspect", "--format", template, container]).stdout.strip()


def throughput(address: str, context: ssl.SSLContext, concurrency: int, seconds: float) -> dict[str, object]:
    """Send closed-loop HTTPS requests to /api/operativos/ from `concurrency` threads over keep-alive connections.

    Returns the rate and latencies.
    """
    latencies: list[float] = []
    failed = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        connection = SiteConnection(address, 443, SITE, context, timeout=10)
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                connection.request("GET", "/api/operativos/", headers={"Host": SITE})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                connection.close()
                connection = SiteConnection(address, 443, SITE, context, timeout=10)
                ok = False
            with lock:
                latencies.append(time.monotonic() - started)
                failed[0] += 0 if ok else 1
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "failed": failed[0],
        "requests_per_second": round(len(ordered) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 1),
    }


def host_turns(output: str) -> list[float]:
    """Return the seconds from each 'Take this app server out' task to the end of its 'Put ... back' task."""
    clocks = []
    for match in TASK_CLOCK.finditer(output):
        hours, minutes, seconds = match["elapsed"].split(":")
        clocks.append((match["name"], int(hours) * 3600 + int(minutes) * 60 + float(seconds)))
    turns, out_at, back_seen = [], None, False
    for name, clock in clocks:
        if back_seen and out_at is not None:
            turns.append(clock - out_at)
            out_at, back_seen = None, False
        if name == "Take this app server out of the load balancers":
            out_at = clock
        elif name == "Put this app server back into the load balancers":
            back_seen = True
    return turns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", required=True, help="the cluster scenario's molecule inventory")
    parser.add_argument(
        "--prefix",
        default=os.environ.get("OPERATIVOS_MOLECULE_PREFIX", "operativos"),
        help="container name prefix (default: $OPERATIVOS_MOLECULE_PREFIX or %(default)s)",
    )
    parser.add_argument("--rate", type=float, default=20, help="requests per second during the deploy (default: 20)")
    parser.add_argument("--concurrency", type=int, default=8, help="threads of the throughput test (default: 8)")
    parser.add_argument("--seconds", type=float, default=20, help="seconds of each throughput test (default: 20)")
    parser.add_argument("--output", type=Path, help="write the results as JSON to this file")
    args = parser.parse_args()
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)

    lb = f"{args.prefix}-cluster-lb"
    app_hosts = [f"{args.prefix}-cluster-app1", f"{args.prefix}-cluster-app2"]
    address = container_address(lb)
    second_app = container_address(app_hosts[1])
    # The load balancer's certificate is self-signed in the scenario, so it is its own trust anchor.
    context = ssl.create_default_context(cadata=in_container(lb, f"cat /etc/nginx/tls/{APP}.crt"))
    results: dict[str, object] = {}

    results["two app hosts"] = throughput(address, context, args.concurrency, args.seconds)
    log.info("two app hosts: %s", results["two app hosts"])
    mark_down = f"s|^\\( *server {second_app}:.*\\);$|\\1 down;|"
    in_container(lb, f"sed -i '{mark_down}' {UPSTREAM}")
    in_container(lb, "nginx -t -q && systemctl reload nginx && sleep 2")
    try:
        results["one app host"] = throughput(address, context, args.concurrency, args.seconds)
        log.info("one app host: %s", results["one app host"])
    finally:
        in_container(lb, f"sed -i 's| down;|;|' {UPSTREAM} && nginx -t -q && systemctl reload nginx", check=False)

    edition = f"bench-{int(time.time())}"
    for host in app_hosts:
        in_container(
            host,
            f"set -e; rm -rf /root/bench; git clone --quiet {STANDIN_REPO} /root/bench; cd /root/bench; "
            f"git checkout --quiet -B bench-rolling origin/main; echo {edition} > "
            "apps/auxiliares/static/auxiliares/edition.txt; "
            f"{GIT_IDENTITY} git commit --quiet --all -m 'Benchmark edition'; "
            "git push --quiet --force origin bench-rolling",
        )
    ansible = [str(TOP / ".venv/bin/ansible-playbook"), "-i", args.inventory]
    deploy_output = {}

    def rolling_deploy(window) -> None:
        started = time.monotonic()
        result = run([*ansible, "playbooks/deploy.yml", "-e", "operativos_app_version=bench-rolling"])
        window.switch_seconds.append(time.monotonic() - started)
        deploy_output["text"] = result.stdout

    window = measured(Load(address, 443, args.rate, context), "rolling deploy", rolling_deploy)
    results["rolling deploy"] = {
        **window.summary(),
        "seconds_per_host": [round(seconds, 1) for seconds in host_turns(deploy_output["text"])],
        "current": {host: in_container(host, f"basename $(readlink {ROOT}/current)") for host in app_hosts},
    }
    print(json.dumps(results, indent=2))
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
