"""A real MLflow tracking server for the tests, run from a virtualenv of its own.

Full ``mlflow`` pins ``pyarrow<26``, below the project's floor, so the project's venv holds
only the client (``mlflow-skinny``) and the server runs from ``.cache/mlflow-server-venv`` in
the repository (git-ignored), built on first use (about a minute) and reused afterwards.
``python tests/mlflow_server.py`` builds it ahead of a test run.

The server: SQLite backend and local artifact root in a temporary folder, 127.0.0.1 on a
free port, no job workers, webhooks allowed to reach 127.0.0.1 over http, webhook list cached
for 1 s (the default 60 s would hide a webhook created after the first event).
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER_VENV = ROOT / ".cache" / "mlflow-server-venv"
# A floor always: without one, pip meets pyarrow>=26 by backtracking to mlflow 1.x.
MLFLOW_REQUIREMENT = "mlflow>=3.17,<4"
START_TIMEOUT_S = 180


def server_python() -> Path:
    return SERVER_VENV / "bin" / "python"


def ensure_venv() -> Path:
    """Build the server's virtualenv unless it is there and imports mlflow; its python.

    Raises
    ------
    RuntimeError
        With pip's last lines, when it cannot be built.
    """
    SERVER_VENV.parent.mkdir(parents=True, exist_ok=True)
    lock_path = SERVER_VENV.parent / "mlflow-server-venv.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time (pytest-xdist workers)
        python = server_python()
        ok = python.exists() and subprocess.run(
            [str(python), "-c", "import mlflow.server"], capture_output=True
        ).returncode == 0
        if not ok:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(SERVER_VENV)],
                           check=True, capture_output=True)
            pip = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", MLFLOW_REQUIREMENT],
                capture_output=True, text=True,
            )
            if pip.returncode != 0:
                tail = "\n".join((pip.stderr or pip.stdout).strip().splitlines()[-5:])
                raise RuntimeError(f"pip install {MLFLOW_REQUIREMENT} failed: {tail}")
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@contextmanager
def mlflow_server(folder: Path):
    """Start the tracking server with its data in ``folder``; yield its URL; stop it."""
    python = ensure_venv()
    from cryptography.fernet import Fernet

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_CACHE_TTL": "1",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(folder / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(python), "-m", "mlflow", "server",
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--artifacts-destination", str(folder / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.time() + START_TIMEOUT_S
        while not _healthy(url):
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                tail = (folder / "server.log").read_text()[-2000:]
                raise RuntimeError(f"the MLflow server did not start:\n{tail}")
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and its workers
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


if __name__ == "__main__":
    print(ensure_venv())
