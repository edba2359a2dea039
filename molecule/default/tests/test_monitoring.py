"""Exporters, textfile metrics, the Prometheus server and its alert rules, logs, and the status and
maintenance playbooks on the converged host."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest
import yaml

from conftest import APP, ROOT, unit_journal

TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
RULES = f"/etc/prometheus/rules/{APP}.yml"
RULE_TESTS = f"/etc/prometheus/tests/{APP}.test.yml"
EXPORTERS = {
    "node": (
        9100,
        ["node_filesystem_avail_bytes", 'node_systemd_unit_state{name="nginx.service"', "node_textfile_scrape_error 0"],
    ),
    "postgres": (9187, ["pg_up 1", "pg_stat_database_xact_commit"]),
    "nginx": (9113, ["nginx_up 1", "nginx_connections_accepted"]),
    "mtail": (3903, ["nginx_http_requests_total{"]),
    "prometheus": (9090, ["prometheus_build_info"]),
}


def run_playbook(name: str, *args: str) -> subprocess.CompletedProcess:
    """Run playbooks/<name> against the scenario's inventory; print its output for failure reports."""
    playbook = os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "playbooks", name)
    run = subprocess.run(
        ["ansible-playbook", "--inventory", os.environ["MOLECULE_INVENTORY_FILE"], playbook, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    print(run.stdout[-20000:], run.stderr[-5000:])
    return run


def metrics(host, port: int) -> str:
    result = host.run("curl --silent --show-error --max-time 10 http://127.0.0.1:%s/metrics", str(port))
    assert result.rc == 0, result.stderr
    return result.stdout


def metric_value(text: str, name: str) -> float:
    """Return the value of the first sample of metric `name` (with or without labels) in exposition text."""
    for line in text.splitlines():
        if line.startswith((f"{name} ", f"{name}{{")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not found in:\n{text}")


# Exporters


@pytest.mark.parametrize("job", sorted(EXPORTERS))
def test_exporter_listens_on_loopback_only(host, job):
    port = EXPORTERS[job][0]
    assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
    assert not host.socket(f"tcp://:::{port}").is_listening


@pytest.mark.parametrize("job", sorted(EXPORTERS))
def test_exporter_serves_expected_metrics(host, http, job):
    http("/api/health")  # at least one access log line for mtail
    port, names = EXPORTERS[job]
    # mtail reads the new access log line a moment after the request.
    for _ in range(10):
        text = metrics(host, port)
        if all(name in text for name in names):
            break
        time.sleep(1)
    for name in names:
        assert name in text


def test_stub_status_answers_on_loopback(host):
    result = host.run("curl --silent --max-time 5 http://127.0.0.1:8081/stub_status")
    assert result.rc == 0
    assert "Active connections:" in result.stdout
    assert not host.socket("tcp://0.0.0.0:8081").is_listening


def test_postgres_exporter_role_is_least_privilege(sql):
    rows = sql(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, "
        "pg_has_role('prometheus', 'pg_monitor', 'member') FROM pg_roles WHERE rolname = 'prometheus'"
    )
    assert rows == [["f", "f", "f", "f", "f", "t"]]


def test_postgres_exporter_role_cannot_read_app_data(host):
    result = host.run(
        "runuser -u prometheus -- psql --no-psqlrc -h /var/run/postgresql -d %s -c %s",
        APP,
        "SELECT count(*) FROM historico.registro",
    )
    assert result.rc != 0


def test_mtail_counts_requests_by_status(host, http):
    before = metrics(host, 3903)
    count_before = sum(
        float(line.rsplit(" ", 1)[1]) for line in before.splitlines() if line.startswith("nginx_http_requests_total{")
    )
    for _ in range(3):
        http("/api/health")
    time.sleep(2)
    after = metrics(host, 3903)
    count_after = sum(
        float(line.rsplit(" ", 1)[1]) for line in after.splitlines() if line.startswith("nginx_http_requests_total{")
    )
    assert count_after >= count_before + 3
    assert 'status="200"' in after


# Textfile metrics of the backup tool and the certificate check


@pytest.fixture(scope="module")
def backup_and_drill(host):
    """Run a backup through its unit and a drill of it; return the metrics node_exporter serves then."""
    backup = host.run("systemctl start %s", f"{APP}-backup.service")
    assert backup.rc == 0, unit_journal(host, f"{APP}-backup.service")
    drill = host.run("/usr/local/sbin/%s-backup drill latest", APP)
    assert drill.rc == 0, drill.stderr
    # The path unit writes the backup metrics shortly after the set is published.
    for _ in range(20):
        text = metrics(host, 9100)
        if f"{APP}_backup_last_success_timestamp_seconds" in text:
            break
        time.sleep(1)
    return text


def test_backup_metrics_carry_the_new_set(host, backup_and_drill):
    now = int(host.run("date +%s").stdout)
    finished = metric_value(backup_and_drill, f"{APP}_backup_last_success_timestamp_seconds")
    assert now - 600 < finished <= now
    assert metric_value(backup_and_drill, f"{APP}_backup_size_bytes") > 0
    assert metric_value(backup_and_drill, f"{APP}_backup_duration_seconds") >= 0
    assert metric_value(backup_and_drill, f"{APP}_backup_sets") >= 1


def test_drill_metrics_carry_the_result(host, backup_and_drill):
    now = int(host.run("date +%s").stdout)
    assert metric_value(backup_and_drill, f"{APP}_backup_drill_success") == 1
    assert now - 600 < metric_value(backup_and_drill, f"{APP}_backup_drill_timestamp_seconds") <= now
    assert metric_value(backup_and_drill, f"{APP}_backup_drill_rpo_seconds") >= 0
    assert metric_value(backup_and_drill, f"{APP}_backup_drill_rto_seconds") > 0


def test_tls_check_reports_missing_certificate(host):
    try:
        run = host.run("/usr/local/sbin/%s-tls-metrics /root/missing.crt", APP)
        content = host.file(f"{TEXTFILE_DIR}/{APP}_tls_certificate.prom").content_string
    finally:
        host.run("systemctl start %s", f"{APP}-tls-metrics.service")
    assert run.rc == 1
    assert f'{APP}_tls_certificate_present{{path="/root/missing.crt"}} 0' in content
    assert "not_after" not in content


def test_tls_check_writes_expiry_time(host):
    created = host.run(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout /root/monitoring-test.key "
        "-out /root/monitoring-test.crt -days 30 -subj /CN=localhost"
    )
    assert created.rc == 0, created.stderr
    try:
        run = host.run("/usr/local/sbin/%s-tls-metrics /root/monitoring-test.crt", APP)
        content = host.file(f"{TEXTFILE_DIR}/{APP}_tls_certificate.prom").content_string
    finally:
        host.run("rm -f /root/monitoring-test.crt /root/monitoring-test.key")
        host.run("systemctl start %s", f"{APP}-tls-metrics.service")
    assert run.rc == 0, run.stderr
    assert f'{APP}_tls_certificate_present{{path="/root/monitoring-test.crt"}} 1' in content
    not_after = metric_value(content, f"{APP}_tls_certificate_not_after_timestamp_seconds")
    now = int(host.run("date +%s").stdout)
    assert 29 * 86400 < not_after - now <= 30 * 86400


def test_tls_check_runs_on_a_timer(host):
    assert host.service(f"{APP}-tls-metrics.timer").is_enabled
    assert host.service(f"{APP}-tls-metrics.timer").is_running


# Prometheus server and alert rules


def test_rules_pass_promtool_check(host):
    result = host.run("promtool check rules %s", RULES)
    assert result.rc == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(host):
    result = host.run("promtool test rules %s", RULE_TESTS)
    assert result.rc == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_has_firing_and_quiet_cases(host):
    rules = yaml.safe_load(host.file(RULES).content_string)
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    tests = yaml.safe_load(host.file(RULE_TESTS).content_string)
    cases = [case for group in tests["tests"] for case in group.get("alert_rule_test", [])]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert len(alerts) >= 12
    assert alerts - firing == set()
    assert alerts - quiet == set()


def test_rule_tests_fail_on_a_changed_threshold(host):
    # The same tests against rules whose backup age limit is one hour larger must fail.
    host.run("rm -rf /root/rules-mutant && mkdir -p /root/rules-mutant")
    host.run(
        "sed 's/seconds > 93600/seconds > 97200/' %s > /root/rules-mutant/rules.yml && "
        "sed 's|%s|/root/rules-mutant/rules.yml|' %s > /root/rules-mutant/test.yml",
        RULES,
        RULES,
        RULE_TESTS,
    )
    assert "97200" in host.file("/root/rules-mutant/rules.yml").content_string
    result = host.run("promtool test rules /root/rules-mutant/test.yml")
    assert result.rc != 0
    assert "BackupStale" in result.stdout + result.stderr


def test_prometheus_scrapes_every_target(host):
    expected = {"prometheus", "node", "postgres", "nginx", "mtail"}
    for _ in range(30):
        answer = host.run("curl --silent --max-time 5 http://127.0.0.1:9090/api/v1/targets")
        targets = json.loads(answer.stdout)["data"]["activeTargets"] if answer.rc == 0 else []
        up = {target["labels"]["job"] for target in targets if target["health"] == "up"}
        if up >= expected:
            break
        time.sleep(3)
    assert up >= expected, targets


def test_prometheus_loads_the_alert_rules(host):
    answer = host.run("curl --silent --max-time 5 http://127.0.0.1:9090/api/v1/rules")
    assert answer.rc == 0
    names = {rule["name"] for group in json.loads(answer.stdout)["data"]["groups"] for rule in group["rules"]}
    assert {"BackupStale", "GunicornDown", "HighServerErrorRatio", "TLSCertificateExpiringSoon"} <= names


# Logs


def test_django_logs_one_json_line_per_request(host, http):
    release = host.file(f"{ROOT}/current/REVISION").content_string.strip()
    http("/api/version?monitoring-log-test")
    time.sleep(1)
    journal = host.run("journalctl --no-pager --output=cat --unit %s --since=-5min", f"{APP}-gunicorn@*.service")
    lines = [json.loads(line) for line in journal.stdout.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("path") == "/api/version" and line.get("logger") == f"{APP}.request"]
    assert requests, journal.stdout[-3000:]
    entry = requests[-1]
    assert entry["method"] == "GET"
    assert entry["status"] == 200
    assert entry["duration_ms"] >= 0
    assert entry["release"] == release


def test_nginx_access_log_has_upstream_and_times(host, http):
    http("/api/health")
    last = host.run("tail -n 1 /var/log/nginx/access.log").stdout
    assert "rt=" in last
    assert 'upstream="unix:' in last
    assert 'upstream_status="200"' in last
    assert "urt=" in last


def test_nginx_logrotate_config_is_valid(host):
    result = host.run("logrotate --debug /etc/logrotate.d/nginx")
    assert result.rc == 0, result.stderr
    assert "rotate 14" in host.file("/etc/logrotate.d/nginx").content_string


def test_journald_retention_is_set(host):
    config = host.run("systemd-analyze cat-config systemd/journald.conf").stdout
    assert "SystemMaxUse=1G" in config
    assert "MaxRetentionSec=30day" in config
    assert host.file("/var/log/journal").is_directory


# Status and maintenance playbooks


@pytest.fixture(scope="module")
def site_certificate(host):
    """Make sure the site certificate that the TLS check reads exists, so its unit has not failed.

    A certificate made here (the nginx role installs none without TLS) is removed afterwards.
    """
    cert = f"/etc/nginx/tls/{APP}.crt"
    created = not host.file(cert).exists
    if created:
        host.run("mkdir -p /etc/nginx/tls")
        made = host.run(
            "openssl req -x509 -newkey rsa:2048 -nodes -keyout /root/site-test.key -out %s -days 90 "
            "-subj /CN=localhost",
            cert,
        )
        assert made.rc == 0, made.stderr
    run = host.run("systemctl start %s", f"{APP}-tls-metrics.service")
    assert run.rc == 0, unit_journal(host, f"{APP}-tls-metrics.service")
    yield cert
    if created:
        host.run("rm -f %s /root/site-test.key", cert)
        host.run("rmdir /etc/nginx/tls")
        host.run("systemctl start %s", f"{APP}-tls-metrics.service")


def test_status_lists_units_and_drill(backup_and_drill, site_certificate):
    run = run_playbook("status.yml")
    assert run.returncode == 0, run.stderr
    for unit in (
        "nginx.service",
        f"{APP}-gunicorn@blue.socket",
        f"{APP}-backup.timer",
        "prometheus-node-exporter.service",
        "prometheus.service",
        "mtail.service",
    ):
        assert unit in run.stdout
    # PostgreSQL 15 on Debian 12, 17 on Debian 13.
    assert re.search(r"postgresql@\d+-main\.service", run.stdout)
    assert "Last drill:  PASSED" in run.stdout
    assert "RPO" in run.stdout
    assert "Last backup:" in run.stdout
    assert re.search(r"API check: +GET https://\S+/api/operativos/ -> 200 application/json", run.stdout)
    assert "Problems: none" in run.stdout


def test_status_changes_nothing_in_check_mode(site_certificate):
    run = run_playbook("status.yml", "--check")
    assert run.returncode == 0, run.stderr
    assert "changed=0" in run.stdout
    assert "Problems: none" in run.stdout


def test_status_reports_stopped_gunicorn(host, site_certificate):
    active = os.path.basename(host.file(f"{ROOT}/instances/active.sock").linked_to)
    instance = active.removeprefix("gunicorn-").removesuffix(".sock")
    units = [f"{APP}-gunicorn@{instance}.socket", f"{APP}-gunicorn@{instance}.service"]
    host.run("systemctl stop %s %s", *units)
    try:
        run = run_playbook("status.yml")
    finally:
        host.run("systemctl start %s %s", *units)
    assert run.returncode != 0
    assert re.search(rf"{APP}-gunicorn@{instance}[.]service +loaded +inactive", run.stdout), run.stdout
    assert f"no {APP}-gunicorn@ service is active" in run.stdout + run.stderr
    assert "API smoke check /api/operativos/ failed" in run.stdout + run.stderr
    assert host.service(units[1]).is_running


def test_maintenance_refuses_outside_window(host):
    hour = int(host.run("date +%H").stdout)
    start, end = f"{(hour + 2) % 24:02d}:00", f"{(hour + 3) % 24:02d}:00"
    run = run_playbook("maintenance.yml", "-e", f"maintenance_window_start={start} maintenance_window_end={end}")
    assert run.returncode != 0
    assert "outside the maintenance window" in run.stdout + run.stderr


def test_maintenance_vacuums_when_forced(sql):
    before = sql("SELECT max(last_vacuum) FROM pg_stat_user_tables")
    run = run_playbook(
        "maintenance.yml", "-e", "maintenance_window_start=00:00 maintenance_window_end=00:01 maintenance_force=true"
    )
    assert run.returncode == 0, run.stderr
    after = sql("SELECT max(last_vacuum) FROM pg_stat_user_tables")
    assert after[0][0]
    assert after != before
