#!/usr/bin/env python3
"""Measure failed requests and latency while releases switch, against the local demo host.

Runs a fixed-rate load through nginx (alternating /api/operativos/ and /) during three kinds of switch, one
after the other in the same run, so their numbers compare directly:

1. blue/green: playbooks/deploy.yml switches to a new release and back (two deploys);
2. socket-activated restart: `systemctl restart` of the active gunicorn instance, three times;
3. plain restart: a gunicorn service that binds its own socket (no systemd socket), restarted three times.

The application sleeps OPERATIVOS_STARTUP_DELAY_SECONDS at start-up during the whole run, so its start is as
slow as a larger project's. Requires the demo host (`make demo`); restores its state at the end.
Usage: benchmarks/deploy/bench_deploy.py [--rate 50] [--startup-delay 1.5] [--output results.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import ssl
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("bench_deploy")

TOP = Path(__file__).resolve().parents[2]
APP = "operativos"
ROOT = f"/srv/{APP}"
# The demo host's first server name: sent as TLS SNI and Host.
SITE = "localhost"
STANDIN_REPO = f"/var/lib/{APP}-standin/app.git"
PLAIN_UNIT = f"{APP}-bench-plain.service"
PLAIN_SOCKET = f"/run/{APP}-bench-plain/gunicorn.sock"
PATHS = ("/api/operativos/", "/")
MAX_SECONDS = 600  # hard limit of one load window, whatever happens to the switch it measures


@dataclass
class Window:
    """Results of one load window: a status (0 for a connection error) and a latency per request."""

    name: str
    statuses: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    switch_seconds: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        ordered = sorted(self.latencies)
        failed = sum(1 for status in self.statuses if not 200 <= status < 300)
        return {
            "name": self.name,
            "requests": len(self.statuses),
            "failed": failed,
            "p50_ms": round(1000 * statistics.median(ordered), 1),
            "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 1),
            "max_ms": round(1000 * ordered[-1], 1),
            "switch_seconds": [round(seconds, 1) for seconds in self.switch_seconds],
        }


class SiteConnection(http.client.HTTPConnection):
    """HTTPS to an address, with the site's name in TLS SNI and the certificate checked for that name.

    nginx rejects TLS handshakes that name no known host, and Python sends no SNI to a bare IP address.
    """

    def __init__(self, address: str, port: int, site: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(address, port, timeout=timeout)
        self.site, self.context = site, context

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.site)


class Load:
    """Open-loop load: request i is sent at start + i / rate, whether earlier ones have completed or not."""

    def __init__(self, host: str, port: int, rate: float, context: ssl.SSLContext) -> None:
        self.host, self.port, self.rate, self.context = host, port, rate, context
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def request(self, window: Window, path: str) -> None:
        started = time.monotonic()
        try:
            connection = SiteConnection(self.host, self.port, SITE, self.context, timeout=10)
            connection.request("GET", path, headers={"Host": SITE})
            response = connection.getresponse()
            response.read()
            status = response.status
            connection.close()
        except OSError:
            status = 0
        with self.lock:
            window.statuses.append(status)
            window.latencies.append(time.monotonic() - started)

    def run(self, window: Window) -> None:
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=64) as pool:
            index = 0
            while not self.stop.is_set() and time.monotonic() - start < MAX_SECONDS:
                due = start + index / self.rate
                time.sleep(max(0.0, due - time.monotonic()))
                pool.submit(self.request, window, PATHS[index % len(PATHS)])
                index += 1


def run(command: list[str], check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    log.info("$ %s", " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=TOP, input=stdin)
    if check and result.returncode != 0:
        log.error("command failed (exit %d): %s\n%s", result.returncode, result.stdout[-3000:], result.stderr[-2000:])
        raise SystemExit(1)
    return result


def in_container(container: str, script: str, check: bool = True, stdin: str | None = None) -> str:
    command = ["docker", "exec", *(["--interactive"] if stdin is not None else []), container, "bash", "-c", script]
    return run(command, check=check, stdin=stdin).stdout.strip()


def measured(load: Load, name: str, action) -> Window:
    """Run `action(window)` while the load runs, with two quiet seconds on each side."""
    window = Window(name)
    load.stop.clear()
    thread = threading.Thread(target=load.run, args=(window,))
    thread.start()
    time.sleep(2)
    try:
        action(window)
    finally:
        time.sleep(2)
        load.stop.set()
        thread.join()
    log.info("%s: %s", name, window.summary())
    return window


def timed(window: Window, command: list[str] | None = None, script: str | None = None, container: str = "") -> None:
    started = time.monotonic()
    if command:
        run(command)
    else:
        in_container(container, script or "")
    window.switch_seconds.append(time.monotonic() - started)


def start_plain_service(container: str, startup_delay: float) -> None:
    """Start a gunicorn service that binds its own socket, and check that it responds on that socket."""
    unit_text = (
        # gunicorn creates the socket itself, in a runtime folder it owns; group www-data lets nginx connect.
        f"[Service]\nUser={APP}\nGroup=www-data\nRuntimeDirectory={APP}-bench-plain\n"
        f"WorkingDirectory={ROOT}/current\nEnvironmentFile={ROOT}/shared/.env\n"
        f"ExecStart={ROOT}/current/.venv/bin/gunicorn --config /etc/{APP}/gunicorn.conf.py "
        f"--bind unix:{PLAIN_SOCKET} --umask 0o007 configuracion.wsgi:application\n"
    )
    in_container(container, f"cat > /etc/systemd/system/{PLAIN_UNIT}", stdin=unit_text)
    warm_up = startup_delay + 3
    in_container(container, f"systemctl daemon-reload && systemctl start {PLAIN_UNIT} && sleep {warm_up}")
    plain_check = (
        f"runuser -u www-data -- curl -sf -o /dev/null -H 'Host: {SITE}' -H 'X-Forwarded-Proto: https' "
        f"--unix-socket {PLAIN_SOCKET} "
    )
    in_container(container, plain_check + "http://localhost/api/health")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--container", default=f"{APP}-local", help="demo host container (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8443, help="nginx HTTPS port on 127.0.0.1 (default: %(default)s)")
    parser.add_argument(
        "--inventory",
        default="inventories/local",
        help="inventory whose only host is the container (default: %(default)s)",
    )
    parser.add_argument("--rate", type=float, default=50, help="requests per second (default: %(default)s)")
    parser.add_argument("--startup-delay", type=float, default=1.5, help="app start-up seconds (default: 1.5)")
    parser.add_argument("--restarts", type=int, default=3, help="restarts per restart case (default: %(default)s)")
    parser.add_argument("--output", type=Path, help="write the summaries as JSON to this file")
    args = parser.parse_args()
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)

    container = args.container
    extra_vars = json.dumps({"django_app_extra_env": {"OPERATIVOS_STARTUP_DELAY_SECONDS": str(args.startup_delay)}})
    ansible = [str(TOP / ".venv/bin/ansible-playbook"), "-i", args.inventory, "-e", extra_vars]
    # The demo host's certificate is self-signed, so it is the only trust anchor the load needs.
    context = ssl.create_default_context(cadata=in_container(container, f"cat /etc/nginx/tls/{APP}.crt"))
    load = Load("127.0.0.1", args.port, args.rate, context)

    log.info("setting the start-up delay to %s s on %s", args.startup_delay, container)
    run([*ansible, "site.yml"])
    release_a = in_container(container, f"basename $(readlink {ROOT}/current)")
    in_container(
        container,
        f"set -e; rm -rf /root/bench; git clone --quiet {STANDIN_REPO} /root/bench; cd /root/bench; "
        "git checkout --quiet -B bench-b; echo bench > apps/auxiliares/static/auxiliares/edition.txt; "
        "git -c user.name=bench -c user.email=bench@localhost commit --quiet --all -m 'Benchmark edition'; "
        "git push --quiet --force origin bench-b",
    )

    def deploy_twice(window: Window) -> None:
        timed(window, command=[*ansible, "playbooks/deploy.yml", "-e", "operativos_app_version=bench-b"])
        timed(window, command=[*ansible, "playbooks/deploy.yml", "-e", "operativos_app_version=main"])

    def active_instance() -> str:
        target = in_container(container, f"readlink {ROOT}/instances/active.sock")
        return target.rsplit("gunicorn-", 1)[1].removesuffix(".sock")

    def socket_restarts(window: Window) -> None:
        unit = f"{APP}-gunicorn@{active_instance()}.service"
        for _ in range(args.restarts):
            timed(window, script=f"systemctl restart {unit}", container=container)
            time.sleep(5)

    def plain_restarts(window: Window) -> None:
        for _ in range(args.restarts):
            timed(window, script=f"systemctl restart {PLAIN_UNIT}", container=container)
            time.sleep(5)

    windows = [measured(load, "blue/green deploy, two switches", deploy_twice)]
    windows.append(measured(load, "socket-activated restart", socket_restarts))

    # The plain case: gunicorn binds its own socket, so connections fail while it restarts.
    previous_target = in_container(container, f"readlink {ROOT}/instances/active.sock")
    start_plain_service(container, args.startup_delay)
    in_container(
        container,
        f"ln -sfn {PLAIN_SOCKET} {ROOT}/instances/.bench.sock && "
        f"mv -T {ROOT}/instances/.bench.sock {ROOT}/instances/active.sock",
    )
    try:
        windows.append(measured(load, "plain restart, no socket activation", plain_restarts))
    finally:
        in_container(
            container,
            f"ln -sfn {previous_target} {ROOT}/instances/.bench.sock && "
            f"mv -T {ROOT}/instances/.bench.sock {ROOT}/instances/active.sock",
            check=False,
        )
        in_container(
            container,
            f"systemctl stop {PLAIN_UNIT}; rm -f /etc/systemd/system/{PLAIN_UNIT}; systemctl daemon-reload",
            check=False,
        )
        log.info("restoring the start-up delay and release %s", release_a)
        run([str(TOP / ".venv/bin/ansible-playbook"), "-i", args.inventory, "site.yml"], check=False)

    summaries = [window.summary() for window in windows]
    print(json.dumps(summaries, indent=2))
    if args.output:
        args.output.write_text(json.dumps(summaries, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
