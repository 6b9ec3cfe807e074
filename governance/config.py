"""Where things live: data folder, store URL and Dask address, from flags or environment."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

import governance
from governance.exceptions import ExplanationQualityError

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
    """The store URL: ``url``, else $GOVERNANCE_DB_URL, else SQLite in the data folder.

    ``postgres://`` and ``postgresql://`` (the forms Heroku, libpq and most hosting panels
    print) mean PostgreSQL through psycopg 3, the driver this package installs.
    """
    if url:
        return normalise_db_url(url)
    if os.environ.get(ENV_DB_URL):
        return normalise_db_url(os.environ[ENV_DB_URL])
    return f"sqlite:///{home(base) / 'governance.db'}"


def db_url_given(url: str | None = None) -> bool:
    """Whether the store URL was named (flag or $GOVERNANCE_DB_URL) rather than defaulted."""
    return bool(url or os.environ.get(ENV_DB_URL))


def normalise_db_url(url: str) -> str:
    """``postgres://`` and a driverless ``postgresql://`` as ``postgresql+psycopg://``."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


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


ENV_ACTOR = "GOVERNANCE_ACTOR"


def actor(name: str | None = None) -> str:
    """Who is making a change the ledger records (a deployment, say): ``name``, else
    $GOVERNANCE_ACTOR, else the operating-system login, else "unknown"."""
    if name:
        return name
    if os.environ.get(ENV_ACTOR):
        return os.environ[ENV_ACTOR]
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in containers without a passwd entry
        return "unknown"


ENV_STABILITY_SAMPLE = "GOVERNANCE_STABILITY_SAMPLE"
ENV_AGREEMENT_SAMPLE = "GOVERNANCE_AGREEMENT_SAMPLE"
DEFAULT_STABILITY_SAMPLE = 1_000
DEFAULT_AGREEMENT_SAMPLE = 100


def _sample(value: int | str | None, env: str, default: int) -> int | None:
    raw = value if value is not None else os.environ.get(env)
    label = env if value is None else "sample size"
    if raw is None or raw == "":
        return default
    if str(raw).strip().lower() == "all":
        return None
    try:
        n = int(raw)
    except ValueError:
        raise ExplanationQualityError(
            f"{label} {raw!r}: expected a number of decisions or 'all'"
        ) from None
    if n < 0:
        raise ExplanationQualityError(f"{label} {raw!r}: expected a number >= 0 or 'all'")
    return n


def stability_sample(value: int | str | None = None) -> int | None:
    """Denials per night whose explanations get RIS and ROS: ``value``, else
    $GOVERNANCE_STABILITY_SAMPLE, else 1,000; "all" (None) means every denial, 0 none."""
    return _sample(value, ENV_STABILITY_SAMPLE, DEFAULT_STABILITY_SAMPLE)


def agreement_sample(value: int | str | None = None) -> int:
    """Denials per night explained again by the permutation explainer for the agreement of
    the two: ``value``, else $GOVERNANCE_AGREEMENT_SAMPLE, else 100."""
    n = _sample(value, ENV_AGREEMENT_SAMPLE, DEFAULT_AGREEMENT_SAMPLE)
    if n is None:
        raise ExplanationQualityError("the explainer agreement sample must be a number, not 'all'")
    return n
