"""Read the exposure level that `systemd-analyze security` computes for a unit, for the sandbox tests."""

from __future__ import annotations

import re

# Sandbox settings that the gunicorn instances and the backup services share, as `systemctl show` prints them.
SANDBOX_PROPERTIES = [
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"),
    ("NoNewPrivileges", "yes"),
    ("UMask", "0027"),
    ("LockPersonality", "yes"),
    ("MemoryDenyWriteExecute", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"),
    ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
]

# The summary line, for example "→ Overall exposure level for operativos-backup.service: 2.1 OK :-)".
EXPOSURE_LINE = re.compile(r"Overall exposure level for \S+: (\d+\.\d+)")


def exposure_level(host, unit: str) -> float:
    """Return the unit's overall exposure level, from 0.0 (fully sandboxed) to 10.0 (no sandbox)."""
    result = host.run("systemd-analyze security --no-pager %s", unit)
    assert result.rc == 0, f"systemd-analyze security {unit} failed: {result.stderr}"
    match = EXPOSURE_LINE.search(result.stdout)
    assert match, f"no exposure level in the output for {unit}: {result.stdout[-500:]}"
    return float(match.group(1))
