"""Secrets stay out of Ansible's output, process arguments, unit files and task environments.

The scenario's secrets come from molecule/shared/group_vars/all/molecule.yml.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import APP, ROOT
from playbook_checks import run_converge

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
SCENARIO_VARS = yaml.safe_load((PROJECT / "molecule" / "shared" / "group_vars" / "all" / "molecule.yml").read_text())
SECRET_NAMES = ("operativos_secret_key", "operativos_db_password", "django_app_superuser_password")
NGINX_HAS_TLS = "nginx_tls_private_key:" in (PROJECT / "roles" / "nginx" / "defaults" / "main.yml").read_text()
MANAGE = f"{ROOT}/bin/manage"
COMMAND_MODULES = ("ansible.builtin.command", "ansible.builtin.shell", "command", "shell")
# A template expression that reads a secret variable, as it would appear in a command's arguments.
SECRET_VARIABLE = re.compile(r"\{\{[^}]*(password|secret|private_key|vault_)[^}]*\}\}")
# Environment variable names whose values are secrets (a DATABASE_URL contains the password).
SECRET_ENVIRONMENT_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|DATABASE_URL|PGPASS")


def delete_superuser(host) -> None:
    """Delete the superuser, so that the next converge creates it with the password it is given."""
    result = host.run(
        "runuser -u %s -- %s shell --command %s",
        APP,
        MANAGE,
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.filter(username='{SCENARIO_VARS['django_app_superuser_username']}').delete()",
    )
    assert result.rc == 0, result.stderr


def throwaway_tls_pair(folder: Path) -> tuple[str, str]:
    """Generate a self-signed certificate and its private key with openssl; return both as PEM text."""
    key, certificate = folder / "tls.key", folder / "tls.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(certificate)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return certificate.read_text(), key.read_text()


def secret_needles(name: str, value: str) -> list[str]:
    """Return the strings whose presence in the output means the secret leaked: a PEM key's base64 lines."""
    if "PRIVATE KEY" in value:
        return [line for line in value.splitlines() if line and not line.startswith("-----")]
    return [value]


def task_blocks(output: str) -> dict[str, str]:
    """Split ansible-playbook output into the text under each TASK or RUNNING HANDLER header, by task name."""
    blocks: dict[str, str] = {}
    for block in re.split(r"\n(?=TASK \[|RUNNING HANDLER \[)", output):
        header = re.match(r"(?:TASK|RUNNING HANDLER) \[([^\]]+)\]", block)
        if header:
            blocks[header.group(1)] = blocks.get(header.group(1), "") + block
    return blocks


@pytest.mark.skipif(
    os.environ.get("MOLECULE_SCENARIO_NAME", "default") != "default",
    reason="two converges; the secret-handling tasks are the same on every Debian release",
)
def test_verbose_run_prints_no_secret(host, tmp_path):
    """Converge with new secrets at -vvv, search the captured output for them, then converge back."""
    new_secrets = {
        "operativos_secret_key": "leak-test-key-" + secrets.token_hex(32),
        "operativos_db_password": "leak-test-db-" + secrets.token_hex(16),
        "django_app_superuser_password": "leak-test-admin-" + secrets.token_hex(16),
    }
    if NGINX_HAS_TLS:
        certificate, private_key = throwaway_tls_pair(tmp_path)
        new_secrets["nginx_tls_private_key"] = private_key
        new_secrets["nginx_tls_certificate"] = certificate
        new_secrets["nginx_tls_self_signed"] = False
    # A file, not --extra-vars values, so the secrets stay out of ansible-playbook's own arguments.
    vars_file = tmp_path / "secrets.json"
    vars_file.touch(mode=0o600)
    vars_file.write_text(json.dumps(new_secrets))
    log_file = tmp_path / "verbose-run.log"

    delete_superuser(host)
    try:
        run = run_converge("-vvv", "--extra-vars", f"@{vars_file}")
        output = run.stdout + run.stderr
        # The output goes to a file only: a failure must not copy a secret into the test log.
        log_file.write_text(output)

        assert run.returncode == 0, f"the -vvv run failed; its output is in {log_file}"
        for name, value in new_secrets.items():
            if name == "nginx_tls_certificate" or not isinstance(value, str):
                continue
            lines = [
                number
                for number, line in enumerate(output.splitlines(), start=1)
                if any(needle in line for needle in secret_needles(name, value))
            ]
            assert not lines, f"{name} appears in {log_file} on lines {lines[:20]}"
        blocks = task_blocks(run.stdout)
        for task in (
            "postgresql : Create the owner role",
            "django_app : Write the environment file",
            "django_app : Create the superuser",
        ):
            assert f"changed: [{host.backend.host}]" in blocks.get(task, ""), f"{task} did not change; see {log_file}"
    finally:
        delete_superuser(host)
        back = run_converge()
        assert back.returncode == 0, back.stdout[-5000:] + back.stderr


def test_no_secret_in_process_arguments(host, http):
    assert http("/api/health").status == 200
    result = host.run("for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done 2>/dev/null")
    commands = result.stdout.splitlines()
    assert any("gunicorn" in command for command in commands), "no gunicorn process is running"
    assert any("postgres" in command for command in commands), "no postgres process is running"
    for name in SECRET_NAMES:
        leaking = [command.split()[0] for command in commands if SCENARIO_VARS[name] in command]
        assert not leaking, f"{name} is in the arguments of {leaking}"


def test_unit_files_contain_no_secret(host):
    units = host.run("systemctl cat %s-gunicorn@blue.service postgresql@*-main.service", APP)
    assert units.rc == 0, units.stderr
    for name in SECRET_NAMES:
        assert SCENARIO_VARS[name] not in units.stdout, f"{name} is in a unit file"


def tasks_in(node):
    """Yield every task found in parsed YAML: each mapping that names a command, shell or environment."""
    if isinstance(node, list):
        for item in node:
            yield from tasks_in(item)
    elif isinstance(node, dict):
        if "environment" in node or any(key in node for key in COMMAND_MODULES):
            yield node
        for value in node.values():
            yield from tasks_in(value)


def task_files() -> list[Path]:
    return [
        *PROJECT.glob("roles/*/tasks/*.yml"),
        *PROJECT.glob("roles/*/handlers/*.yml"),
        *PROJECT.glob("playbooks/**/*.yml"),
    ]


def test_commands_template_no_secret_into_arguments():
    files = task_files()
    found = []
    for path in files:
        for task in tasks_in(yaml.safe_load(path.read_text())):
            arguments = [task[module] for module in COMMAND_MODULES if module in task]
            # stdin travels inside the module's payload, not on a command line.
            arguments = [
                {key: value for key, value in item.items() if key != "stdin"} if isinstance(item, dict) else item
                for item in arguments
            ]
            if SECRET_VARIABLE.search(json.dumps(arguments)):
                found.append(f"{path.relative_to(PROJECT)}: {task.get('name')}")
    assert len(files) > 20
    assert not found, f"command or shell arguments template a secret in {found}"


def test_task_environment_carries_no_secret():
    """Ansible writes a task's environment into the remote command line, so it must contain no secret."""
    found = []
    for path in task_files():
        for task in tasks_in(yaml.safe_load(path.read_text())):
            environment = task.get("environment")
            if not isinstance(environment, dict):
                continue
            if any(SECRET_ENVIRONMENT_NAME.search(name) for name in environment) or SECRET_VARIABLE.search(
                json.dumps(environment)
            ):
                found.append(f"{path.relative_to(PROJECT)}: {task.get('name')}")
    assert not found, f"a task environment carries a secret in {found}; pass it on standard input instead"


@pytest.mark.skipif(not NGINX_HAS_TLS, reason="the nginx role has no TLS settings")
def test_tls_private_key_is_root_only(host):
    key = host.file(f"/etc/nginx/tls/{APP}.key")
    assert key.user == "root"
    assert key.mode == 0o600
