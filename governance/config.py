"""Where things live: data folder, store URL and Dask address, from flags or environment."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

import governance

ENV_HOME = "GOVERNANCE_HOME"
ENV_DB_URL = "GOVERNANCE_DB_URL"
ENV_DASK_ADDRESS = "GOVERNANCE_DASK_ADDRESS"
DEFAULT_HOME = "governance-data"


def home(path: str | Path | None = None) -> Path:
    """The data folder: ``path``, else $GOVERNANCE_HOME, else ./governance-data."""
    return Path(path or os.environ.get(ENV_HOME) or DEFAULT_HOME).resolve()


def registry_dir(base: str | Path | None = None) -> Path:
    return home(base) / "registry"


def decision_log_dir(base: str | Path | None = None) -> Path:
    return home(base) / "decision-logs"


def staging_dir(base: str | Path | None = None) -> Path:
    """Where a running nightly flow stages the night's validated rows for its chunk tasks."""
    return home(base) / "staging"


def db_url(url: str | None = None, base: str | Path | None = None) -> str:
    """The store URL: ``url``, else $GOVERNANCE_DB_URL, else SQLite in the data folder."""
    if url:
        return url
    if os.environ.get(ENV_DB_URL):
        return os.environ[ENV_DB_URL]
    return f"sqlite:///{home(base) / 'governance.db'}"


def dask_address(address: str | None = None) -> str | None:
    """An existing Dask scheduler to use, or None for a local cluster."""
    return address or os.environ.get(ENV_DASK_ADDRESS) or None


@cache
def code_version() -> str:
    """Package version plus the git commit (and '-dirty') when run from a checkout."""
    root = Path(governance.__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return governance.__version__
    return f"{governance.__version__}+g{sha}{'-dirty' if dirty else ''}"


ENV_SALT_FILE = "GOVERNANCE_SALT_FILE"


def salt_path(base: str | Path | None = None) -> Path:
    """The tombstone salt: $GOVERNANCE_SALT_FILE, else secrets/ in the data folder.

    Keep it outside the ledger and its backups: with it, a tombstone can be matched to a
    person's id; without it, nobody can.
    """
    return Path(os.environ.get(ENV_SALT_FILE) or home(base) / "secrets" / "tombstone.salt")
