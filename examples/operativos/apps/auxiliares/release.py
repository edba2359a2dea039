"""Reader for the release id that /api/version and /api/health report."""

import os
from collections.abc import Mapping
from pathlib import Path

RELEASE_ENV_VAR = "OPERATIVOS_RELEASE"
REVISION_FILE_NAME = "REVISION"
UNKNOWN_RELEASE = "unknown"


def read_release_id(base_dir: Path, environ: Mapping[str, str] = os.environ) -> str:
    """Return the release id of the code in base_dir.

    The id is the OPERATIVOS_RELEASE variable when it is set and not blank, else the first line of
    base_dir / "REVISION" (the deploy writes the commit id there), else "unknown".
    """
    from_env = environ.get(RELEASE_ENV_VAR, "").strip()
    if from_env:
        return from_env

    try:
        with open(base_dir / REVISION_FILE_NAME, encoding="utf-8", errors="replace") as revision_file:
            first_line = revision_file.readline().strip()
    except FileNotFoundError:
        return UNKNOWN_RELEASE

    return first_line or UNKNOWN_RELEASE
