"""The split layout after one converge: gunicorn on TCP, nginx balancing, PostgreSQL open to the app hosts only."""

from __future__ import annotations

from conftest import APP, APP_HOSTS, APP_PORT, ROOT, connects, private_address, serving_hosts, through_lb
from unit_security import exposure_level

# Sends the PostgreSQL SSLRequest, wraps the socket in TLS, and sends a StartupMessage for the database and role
# that the second argument names. Prints the server's first message: an ErrorResponse's text, else the message type.
PG_PROBE = r"""
import socket, ssl, struct, sys
sock = socket.create_connection((sys.argv[1], 5432), timeout=10)
sock.sendall(struct.pack("!ii", 8, 80877103))
if sock.recv(1) != b"S":
    print("SSL refused"); sys.exit()
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
tls = context.wrap_socket(sock)
name = sys.argv[2].encode()
body = struct.pack("!i", 196608) + b"user\0" + name + b"\0database\0" + name + b"\0\0"
tls.sendall(struct.pack("!i", len(body) + 4) + body)
kind = tls.recv(1)
length = struct.unpack("!i", tls.recv(4))[0]
payload = b""
while len(payload) < length - 4:
    payload += tls.recv(length - 4 - len(payload))
if kind != b"E":
    print("message " + kind.decode()); sys.exit()
fields = {part[:1]: part[1:].decode() for part in payload.split(b"\0") if part}
print(fields.get(b"M", ""))
"""


def test_tcp_socket_listens_on_private_address(apps):
    for name, host in apps.items():
        socket = host.socket(f"tcp://{private_address(host)}:{APP_PORT}")
        assert socket.is_listening, f"{name} does not listen on its private address"


def test_tcp_socket_unit_is_enabled(apps):
    for name, host in apps.items():
        unit = host.service(f"{APP}-gunicorn-tcp.socket")
        assert unit.is_enabled, name
        assert unit.is_running, name


def test_tcp_proxy_is_sandboxed(apps):
    for name, host in apps.items():
        unit = f"{APP}-gunicorn-tcp.service"
        assert host.run("systemctl show --property DynamicUser --value %s", unit).stdout.strip() == "yes", name
        level = exposure_level(host, unit)
        assert level <= 2.0, f"{unit} on {name}: exposure {level}"


def test_upstream_lists_both_app_hosts(lb, apps):
    upstream = lb.file(f"/etc/nginx/conf.d/{APP}-upstream.conf").content_string
    for host in apps.values():
        assert f"server {private_address(host)}:{APP_PORT} max_fails=1 fail_timeout=10s;" in upstream
    assert "unix:" not in upstream
    assert " down;" not in upstream


def test_both_app_hosts_serve_through_lb(lb):
    assert set(serving_hosts(lb)) == set(APP_HOSTS)


def test_health_through_lb_reports_database_up(lb):
    response = through_lb(lb, "/api/health")
    assert response.status == 200, response.body
    assert response.json()["database"] == "up"


def test_lb_serves_the_spa(lb):
    response = through_lb(lb, "/cuenta")
    assert response.status == 200
    assert '<div id="app">' in response.body


def test_lb_serves_static_files_of_the_release(lb, apps):
    response = through_lb(lb, "/static/auxiliares/edition.txt")
    assert response.status == 200
    assert response.body.strip() == "stand-in"


def test_lb_release_matches_first_app_host(lb, apps):
    assert lb.file(f"{ROOT}/current").linked_to == apps[APP_HOSTS[0]].file(f"{ROOT}/current").linked_to


def test_lb_static_files_are_readable_by_nginx(lb):
    result = lb.run("runuser -u www-data -- cat %s/current/frontend/dist/index.html", ROOT)
    assert result.rc == 0, result.stderr


def test_postgresql_listens_on_private_address(db):
    assert db.socket(f"tcp://{private_address(db)}:5432").is_listening


def test_pg_hba_admits_app_hosts_over_tls(db, apps):
    hba = db.run("runuser -u postgres -- psql --no-psqlrc --tuples-only --no-align -c 'SHOW hba_file'").stdout.strip()
    lines = [line.split() for line in db.file(hba).content_string.splitlines() if line and not line.startswith("#")]
    # The standby's replication line is checked in test_40_replica.py.
    remote = [
        line
        for line in lines
        if line[0] != "local" and line[1] != "replication" and line[3] not in ("127.0.0.1/32", "::1/128")
    ]
    expected = sorted(["hostssl", APP, APP, f"{private_address(host)}/32", "scram-sha-256"] for host in apps.values())
    assert sorted(remote) == expected


def test_app_connections_use_tls(db, lb):
    # Django keeps its connections for up to 60 s (conn_max_age), so fresh requests leave some open.
    serving_hosts(lb, requests=6)
    rows = db.run(
        "runuser -u postgres -- psql --no-psqlrc --tuples-only --no-align -c %s",
        f"SELECT host(a.client_addr), s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
        f"WHERE a.usename = '{APP}' AND a.client_addr IS NOT NULL",
    ).stdout.split()
    assert rows, "no network connection of the app's role"
    assert all(row.endswith("|t") for row in rows), rows


def test_firewall_drops_database_connections_from_outside_app_group(db, lb):
    assert not connects(lb, private_address(db), 5432)


def test_pg_hba_rejects_address_outside_app_group(db):
    # The database host's own private address is not an app host's. The connection comes in on the loopback
    # interface, which the firewall accepts, so pg_hba.conf is what refuses it.
    answer = db.run("python3 -c %s %s %s", PG_PROBE, private_address(db), APP)
    assert answer.rc == 0, answer.stderr
    assert "no pg_hba.conf entry for host" in answer.stdout
    assert private_address(db) in answer.stdout


def test_firewall_admits_app_port_from_web_servers_only(db, lb, apps):
    for name, host in apps.items():
        assert connects(lb, private_address(host), APP_PORT), f"the load balancer cannot reach {name}"
        assert not connects(db, private_address(host), APP_PORT), f"the database host reaches {name}'s app port"


def test_database_accepts_app_host_to_password_step(db, apps):
    # The same probe from an app host passes pg_hba and reaches the scram-sha-256 exchange (message R).
    answer = apps[APP_HOSTS[0]].run("python3 -c %s %s %s", PG_PROBE, private_address(db), APP)
    assert answer.rc == 0, answer.stderr
    assert answer.stdout.strip() == "message R"
