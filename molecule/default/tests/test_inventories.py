"""The inventories resolve their secrets on the controller, without a managed host.

Staging and production read vault_* variables from an encrypted vault.yml. Each test copies the inventory to
a temporary folder and encrypts a vault.yml with every name of vault.yml.example and a throwaway password.
It then resolves the secrets through tools/vault-pass-client.sh with a stand-in `pass`. The local inventory
generates its secrets on the first run into its git-ignored secrets/ folder.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
VAULT_PASSWORD = "throwaway-vault-password"
# Each inventory secret and the vault_* variable it reads.
SECRETS = {
    "operativos_secret_key": "vault_operativos_secret_key",
    "operativos_db_password": "vault_operativos_db_password",
}


def resolve(inventory: Path, names: list[str], *options: str, env: dict[str, str] | None = None) -> dict[str, dict]:
    """Template variables for every host with the debug action, which never connects; return host -> values."""
    playbook = inventory.parent / "resolve.yml"
    msg = "{{ {" + ", ".join(f"'{name}': {name}" for name in names) + "} }}"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Resolve the secrets",
                    "hosts": "all",
                    "gather_facts": False,
                    "tasks": [{"name": "Print the secrets", "ansible.builtin.debug": {"msg": msg}}],
                }
            ]
        )
    )
    run = subprocess.run(
        ["ansible-playbook", "--inventory", str(inventory), *options, str(playbook)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={
            **os.environ,
            **(env or {}),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json",
            "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"),
        },
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]
    return {host: result["msg"] for host, result in results.items()}


def fake_pass(folder: Path, password: str) -> dict[str, str]:
    """Put a `pass` on PATH that prints the vault password and its entry name; return the environment."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pass"
    script.write_text(f"#!/bin/sh\n[ \"$1\" = show ] || exit 2\nprintf '%s\\n' '{password}' \"$2\"\n")
    script.chmod(stat.S_IRWXU)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.mark.parametrize("name", ["staging", "production"])
def test_vault_example_lists_every_vault_name(name):
    group_vars = PROJECT / "inventories" / name / "group_vars" / "all"
    used = set(re.findall(r"\{\{\s*(vault_[a-z0-9_]+)", (group_vars / "vars.yml").read_text()))
    listed = set(yaml.safe_load((group_vars / "vault.yml.example").read_text()))
    assert used
    assert used <= listed


@pytest.mark.parametrize("name", ["staging", "production"])
def test_inventory_resolves_secrets_from_vault(name, tmp_path):
    inventory = tmp_path / name
    shutil.copytree(PROJECT / "inventories" / name, inventory)
    group_vars = inventory / "group_vars" / "all"
    assert not (group_vars / "vault.yml").exists(), "an unencrypted vault.yml would be copied"
    values = {key: secrets.token_urlsafe(48) for key in yaml.safe_load((group_vars / "vault.yml.example").read_text())}
    vault_file = group_vars / "vault.yml"
    vault_file.write_text(yaml.safe_dump(values))
    env = fake_pass(tmp_path, VAULT_PASSWORD)
    client = f"{name}@{PROJECT}/tools/vault-pass-client.sh"
    subprocess.run(
        ["ansible-vault", "encrypt", "--vault-id", client, "--encrypt-vault-id", name, str(vault_file)],
        check=True,
        capture_output=True,
        env={**os.environ, **env},
    )
    assert vault_file.read_text().startswith(f"$ANSIBLE_VAULT;1.2;AES256;{name}\n")

    resolved = resolve(inventory, list(SECRETS), "--vault-id", client, env=env)

    assert resolved
    for host, host_values in resolved.items():
        for variable, vault_name in SECRETS.items():
            assert host_values[variable] == values[vault_name], f"{host}: {variable}"


def test_vault_client_reads_the_named_entry(tmp_path):
    env = fake_pass(tmp_path, VAULT_PASSWORD)
    run = subprocess.run(
        [str(PROJECT / "tools" / "vault-pass-client.sh"), "--vault-id", "production"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )
    assert run.returncode == 0, run.stderr
    # The stand-in prints the password, then the entry it was asked for; the client keeps the first line.
    assert run.stdout == f"{VAULT_PASSWORD}\n"


def test_local_inventory_generates_secrets_once(tmp_path):
    inventory = tmp_path / "local"
    shutil.copytree(PROJECT / "inventories" / "local", inventory, ignore=shutil.ignore_patterns("secrets"))
    names = [*SECRETS, "django_app_superuser_password"]

    first = resolve(inventory, names)
    second = resolve(inventory, names)

    assert first == second
    # The secrets/ folder inside the inventory folder is not read as an inventory source.
    assert list(second) == ["operativos-local"]
    files = sorted(path.name for path in (inventory / "secrets").iterdir())
    assert files == ["admin_password", "db_password", "django_secret_key"]
    stored = {path.read_text().split()[0] for path in (inventory / "secrets").iterdir()}
    for values in first.values():
        assert set(values.values()) == stored
        assert len(values["operativos_secret_key"]) >= 50


def test_local_secrets_folder_is_git_ignored():
    run = subprocess.run(
        ["git", "-C", str(PROJECT), "check-ignore", "--quiet", "inventories/local/secrets/django_secret_key"],
        check=False,
    )
    assert run.returncode == 0
    vars_text = (PROJECT / "inventories" / "local" / "group_vars" / "all" / "vars.yml").read_text()
    paths = re.findall(r"ansible\.builtin\.password',\s*(\S+ ~ '[^']+')", vars_text)
    assert len(paths) == 3
    assert all(path.startswith("inventory_dir ~ '/secrets/") for path in paths), paths
