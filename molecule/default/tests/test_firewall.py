"""The nftables ruleset on the converged host, and what it lets through from outside the container.

The connection tests run on the machine that runs pytest and reach only the scenario's own container.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
UNLISTED_PORT = 8765
SSH_PORT = 22


def input_chain(host) -> tuple[dict, list[list[dict]]]:
    """Return the input chain of table inet filter and the expressions of each of its rules."""
    result = host.run("nft -j list ruleset")
    assert result.rc == 0, result.stderr
    objects = json.loads(result.stdout)["nftables"]
    chains = [
        entry["chain"]
        for entry in objects
        if "chain" in entry and entry["chain"]["family"] == "inet" and entry["chain"]["table"] == "filter"
    ]
    chain = next(chain for chain in chains if chain["name"] == "input")
    rules = [
        entry["rule"]["expr"]
        for entry in objects
        if "rule" in entry and entry["rule"]["table"] == "filter" and entry["rule"]["chain"] == "input"
    ]
    return chain, rules


def matched_values(rule: list[dict], field: str) -> list:
    """Return the values a rule matches on a payload field (dport, saddr), or meta key (iif), flattened."""
    values = []
    for expression in rule:
        match = expression.get("match")
        if not match:
            continue
        left = match["left"]
        key = left.get("payload", {}).get("field") or left.get("meta", {}).get("key")
        if key != field:
            continue
        right = match["right"]
        values.extend(right["set"] if isinstance(right, dict) and "set" in right else [right])
    return values


def accepts(rule: list[dict]) -> bool:
    return any("accept" in expression for expression in rule)


def accepted_ports(host) -> dict[int, list[list[dict]]]:
    """Map each TCP destination port that some accept rule names to those rules."""
    _, rules = input_chain(host)
    ports: dict[int, list[list[dict]]] = {}
    for rule in rules:
        if accepts(rule):
            for port in matched_values(rule, "dport"):
                ports.setdefault(port, []).append(rule)
    return ports


def container_address(host) -> str:
    name = host.backend.host
    result = subprocess.run(
        ["docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()[0]


@pytest.fixture
def listener(host):
    """Start a TCP listener in the container on a port; stop it after the test."""
    units = []

    def start(port: int) -> None:
        unit = f"firewall-probe-{port}"
        result = host.run(
            "systemd-run --unit %s --property RuntimeMaxSec=300 python3 -m http.server --bind 0.0.0.0 %s",
            unit,
            str(port),
        )
        assert result.rc == 0, result.stderr
        units.append(unit)
        waited = host.run(
            "for i in $(seq 50); do ss -Hltn 'sport = :%s' | grep -q . && exit 0; sleep 0.2; done; exit 1", str(port)
        )
        assert waited.rc == 0, f"nothing listens on port {port} in the container"

    yield start
    for unit in units:
        host.run("systemctl stop %s", unit)


def test_nftables_service_is_enabled_and_active(host):
    service = host.service("nftables")
    assert service.is_enabled
    assert service.is_running


def test_ruleset_file_passes_nft_check(host):
    result = host.run("nft --check --file /etc/nftables.conf")
    assert result.rc == 0, result.stderr


def test_input_policy_is_drop(host):
    chain, _ = input_chain(host)
    assert chain["hook"] == "input"
    assert chain["policy"] == "drop"


def test_loopback_is_accepted(host):
    _, rules = input_chain(host)
    assert any(accepts(rule) and matched_values(rule, "iif") == ["lo"] for rule in rules)


def test_established_traffic_is_accepted(host):
    _, rules = input_chain(host)
    states = [
        expression["match"]["right"]
        for rule in rules
        if accepts(rule)
        for expression in rule
        if "match" in expression and expression["match"]["left"].get("ct", {}).get("key") == "state"
    ]
    assert any("established" in state and "related" in state for state in states), states


def test_neighbor_discovery_is_accepted(host):
    _, rules = input_chain(host)
    icmpv6_types = [value for rule in rules if accepts(rule) for value in matched_values(rule, "type")]
    for icmp_type in ("nd-neighbor-solicit", "nd-neighbor-advert", "nd-router-advert", "packet-too-big"):
        assert icmp_type in icmpv6_types


def test_ssh_port_is_open_to_any_source(host):
    rules = accepted_ports(host).get(SSH_PORT, [])
    assert any(not matched_values(rule, "saddr") for rule in rules), rules


@pytest.mark.parametrize("port", [80, 443])
def test_web_port_is_open_to_any_source(host, port):
    rules = accepted_ports(host).get(port, [])
    assert any(not matched_values(rule, "saddr") for rule in rules), rules


def test_postgresql_is_closed_without_other_app_hosts(host):
    assert 5432 not in accepted_ports(host)


def test_unlisted_port_is_unreachable_from_outside(host, listener):
    listener(UNLISTED_PORT)
    inside = host.run(
        "curl --silent --max-time 5 --output /dev/null --write-out %%{http_code} http://127.0.0.1:%s/",
        str(UNLISTED_PORT),
    )
    assert inside.stdout == "200", "the listener does not answer inside the container"
    with pytest.raises(TimeoutError):
        socket.create_connection((container_address(host), UNLISTED_PORT), timeout=3).close()


def test_ssh_port_is_reachable_from_outside(host, listener):
    listener(SSH_PORT)
    socket.create_connection((container_address(host), SSH_PORT), timeout=5).close()


def test_http_answers_from_outside(host):
    connection = http.client.HTTPConnection(container_address(host), 80, timeout=10)
    connection.request("GET", "/api/health", headers={"Host": "localhost"})
    # Port 80 redirects every request for the site to HTTPS.
    assert connection.getresponse().status == 301
    connection.close()


def render_ruleset(tmp_path, target: str) -> str:
    """Render the ruleset on the controller for one host of a four-host inventory and return it.

    db-1 is also an app host. app-1, app-2 (IPv6) and the load balancer lb-1 are separate hosts. lb-1 has an
    operativos_private_address that differs from its ansible_host.
    """
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        textwrap.dedent(
            """\
            all:
              vars:
                ansible_connection: local
                ansible_python_interpreter: "{{ ansible_playbook_python }}"
              children:
                dbservers:
                  hosts:
                    db-1: {ansible_host: 192.0.2.10}
                appservers:
                  hosts:
                    db-1:
                    app-1: {ansible_host: 192.0.2.11}
                    app-2: {ansible_host: "2001:db8::12"}
                webservers:
                  hosts:
                    lb-1: {ansible_host: 198.51.100.20, operativos_private_address: 192.0.2.20}
            """
        )
    )
    rendered = tmp_path / "nftables.conf"
    playbook = tmp_path / "render.yml"
    playbook.write_text(
        textwrap.dedent(
            f"""\
            - name: Render the firewall ruleset
              hosts: {target}
              gather_facts: false
              tasks:
                - name: Load the role's variables and run its checks
                  ansible.builtin.include_role:
                    name: firewall
                    tasks_from: assert
                    public: true
                - name: Render the ruleset
                  ansible.builtin.template:
                    src: {PROJECT}/roles/firewall/templates/etc/nftables.conf.j2
                    dest: {rendered}
                    mode: "0600"
            """
        )
    )
    run = subprocess.run(
        ["ansible-playbook", "--inventory", str(inventory), str(playbook)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(PROJECT / "roles")},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    return rendered.read_text()


def test_postgresql_rule_lists_other_app_hosts(tmp_path):
    ruleset = render_ruleset(tmp_path, "db-1")
    assert "ip saddr { 192.0.2.11 } tcp dport 5432 accept" in ruleset
    assert "ip6 saddr { 2001:db8::12 } tcp dport 5432 accept" in ruleset
    assert "192.0.2.10" not in ruleset


def test_app_port_rule_lists_web_servers(tmp_path):
    ruleset = render_ruleset(tmp_path, "app-1")
    # The web server's private address, not its ansible_host; no PostgreSQL rule on an app host.
    assert "ip saddr { 192.0.2.20 } tcp dport 8000 accept" in ruleset
    assert "198.51.100.20" not in ruleset
    assert "dport 5432" not in ruleset
