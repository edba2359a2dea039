#!/usr/bin/env python3
"""Check that every role documents each of its variables in both places people read.

The top-level keys of each role's defaults/main.yml must be the options of the `main` entry point in its
meta/argument_specs.yml, and the other way round. Every option needs a description. Every group of
defaults (the lines between two blank lines) must start with a comment. Exits 1 and lists each problem.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import yaml

log = logging.getLogger("check_role_docs")
TOP_LEVEL_KEY = re.compile(r"^([a-z_][a-z0-9_]*):")


def undocumented_defaults(defaults_text: str) -> list[str]:
    """Return the default keys whose block of lines does not start with a comment."""
    missing = []
    block_has_comment = False
    block_started = False
    for line in defaults_text.splitlines():
        if not line.strip():
            block_started = False
            continue
        if line.startswith("---"):
            continue
        if not block_started:
            block_started = True
            block_has_comment = line.startswith("#")
        match = TOP_LEVEL_KEY.match(line)
        if match and not block_has_comment:
            missing.append(match.group(1))
    return missing


def check_role(role: Path) -> list[str]:
    """Return the problems found in one role."""
    problems = []
    defaults_file = role / "defaults" / "main.yml"
    specs_file = role / "meta" / "argument_specs.yml"
    if not specs_file.exists():
        return [f"{role.name}: meta/argument_specs.yml is missing"]
    defaults_text = defaults_file.read_text(encoding="utf-8") if defaults_file.exists() else ""
    defaults = yaml.safe_load(defaults_text) or {}
    options = yaml.safe_load(specs_file.read_text(encoding="utf-8"))["argument_specs"]["main"].get("options", {})

    for name in sorted(set(defaults) - set(options)):
        problems.append(f"{role.name}: default {name} is missing from meta/argument_specs.yml")
    for name in sorted(set(options) - set(defaults)):
        problems.append(f"{role.name}: option {name} has no default in defaults/main.yml")
    for name, spec in sorted(options.items()):
        if not spec.get("description"):
            problems.append(f"{role.name}: option {name} has no description in meta/argument_specs.yml")
    for name in undocumented_defaults(defaults_text):
        problems.append(f"{role.name}: default {name} has no comment above it in defaults/main.yml")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roles_dir", nargs="?", default="roles", type=Path, help="folder of roles (default: roles)")
    args = parser.parse_args()
    logging.basicConfig(format="%(message)s", level=logging.INFO)

    roles = sorted(path for path in args.roles_dir.iterdir() if (path / "tasks").is_dir())
    problems = [problem for role in roles for problem in check_role(role)]
    for problem in problems:
        log.error(problem)
    log.info("checked %d roles: %d problems", len(roles), len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
