"""Bad inventory values stop site.yml in the validate play, with a message that names the fix, and change nothing.

Each case runs the whole converge playbook against the converged host with one bad value, then compares the
host's state with the state before the run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import APP, ROOT
from playbook_checks import recap_changed_counts, run_converge

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
SHARED_GROUP_VARS = PROJECT / "molecule" / "shared" / "group_vars" / "all"
NGINX_HAS_TLS = "nginx_tls_enabled:" in (PROJECT / "roles" / "nginx" / "defaults" / "main.yml").read_text()

# Checksums of files a converge rewrites, the release links and the owner role's password hash.
STATE_COMMAND = (
    f"sha256sum {ROOT}/shared/.env /etc/nginx/sites-available/{APP}.conf /etc/nftables.conf; "
    f"readlink {ROOT}/current {ROOT}/instances/active.sock; "
    f"runuser -u postgres -- psql --no-psqlrc --tuples-only --no-align -c "
    f"\"SELECT md5(rolpassword) FROM pg_authid WHERE rolname = '{APP}'\""
)

CASES = [
    pytest.param(
        {"operativos_environment": "production", "django_app_debug": True},
        ["django_app_debug", "Set django_app_debug to false"],
        id="debug-in-production",
    ),
    pytest.param(
        {"operativos_domains": []},
        ["django_app_allowed_hosts", "Set operativos_domains"],
        id="empty-allowed-hosts",
    ),
    pytest.param(
        {"operativos_secret_key": ""},
        ["django_app_secret_key", "Set operativos_secret_key"],
        id="missing-secret-key",
    ),
    pytest.param(
        {"operativos_secret_key": "x" * 49},
        ["django_app_secret_key", "shorter than 50 characters", "Set operativos_secret_key"],
        id="short-secret-key",
    ),
    pytest.param(
        {"operativos_db_schemas": ["operativos", "Historico-2"]},
        ["postgresql_db_schemas", "Historico-2", "use lower-case letters"],
        id="invalid-schema-name",
    ),
    pytest.param(
        {"operativos_db_owner": "Operativos-Owner"},
        ["postgresql_db_owner", "Operativos-Owner", "use lower-case letters"],
        id="invalid-role-name",
    ),
    pytest.param(
        {
            "nginx_tls_enabled": True,
            "nginx_tls_self_signed": False,
            "nginx_tls_certificate": "",
            "nginx_tls_private_key": "",
            "nginx_tls_certificate_file": "",
            "nginx_tls_private_key_file": "",
        },
        ["nginx_tls_certificate", "nginx_tls_private_key"],
        id="tls-without-certificate",
        marks=pytest.mark.skipif(not NGINX_HAS_TLS, reason="the nginx role has no TLS settings"),
    ),
]


def host_state(host) -> str:
    result = host.run(STATE_COMMAND)
    assert result.rc == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(("extra_vars", "expected"), CASES)
def test_bad_value_stops_run(host, tmp_path, extra_vars, expected):
    before = host_state(host)
    vars_file = tmp_path / "bad.json"
    vars_file.write_text(json.dumps(extra_vars))

    run = run_converge("--extra-vars", f"@{vars_file}")
    output = run.stdout + run.stderr

    assert run.returncode == 2, output[-5000:]
    for text in expected:
        assert text in output, f"{text!r} is not in the output:\n{output[-5000:]}"
    assert max(recap_changed_counts(run.stdout), default=-1) == 0, run.stdout[-3000:]
    assert host_state(host) == before


def write_inventory_without_vault_value(folder: Path, password_file: Path) -> Path:
    """Copy the scenario's inventory, make vars.yml read both secrets from vault_* names, leave one out of vault.yml."""
    inventory = folder / "inventory"
    group_vars = inventory / "group_vars" / "all"
    group_vars.mkdir(parents=True)
    shutil.copy(os.environ["MOLECULE_INVENTORY_FILE"], inventory / "hosts.yml")
    for source in SHARED_GROUP_VARS.glob("*.yml"):
        shutil.copy(source, group_vars / source.name)
    # vars.yml sorts after molecule.yml, so its values win.
    (group_vars / "vars.yml").write_text(
        "---\n"
        'operativos_secret_key: "{{ vault_operativos_secret_key }}"\n'
        'operativos_db_password: "{{ vault_operativos_db_password }}"\n'
    )
    vault_file = group_vars / "vault.yml"
    vault_file.write_text("---\nvault_operativos_db_password: molecule-db-password-0123456789\n")
    subprocess.run(
        ["ansible-vault", "encrypt", "--vault-password-file", str(password_file), str(vault_file)],
        check=True,
        capture_output=True,
    )
    return inventory


def test_missing_vault_value_stops_run(host, tmp_path):
    password_file = tmp_path / "vault-password"
    password_file.write_text("throwaway-vault-password\n")
    password_file.chmod(0o600)
    inventory = write_inventory_without_vault_value(tmp_path, password_file)
    before = host_state(host)

    run = run_converge("--vault-password-file", str(password_file), inventory=str(inventory))
    output = run.stdout + run.stderr

    assert run.returncode == 2, output[-5000:]
    assert "vault_operativos_secret_key" in output, output[-5000:]
    assert f"{inventory}/group_vars/all/vars.yml" in output, output[-5000:]
    assert f"ansible-vault edit {inventory}/group_vars/all/vault.yml" in output, output[-5000:]
    assert "is undefined" not in output, output[-5000:]
    assert max(recap_changed_counts(run.stdout), default=-1) == 0, run.stdout[-3000:]
    assert host_state(host) == before
