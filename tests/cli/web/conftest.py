"""Browser-test set-up: Debian's chromium driven by Playwright (nothing downloaded at run time).

pytest-playwright has no executable-path option, so its launch arguments are overridden here.
Without /usr/bin/chromium the browser tests skip, saying so, except in CI ($CI set), where
.ci/run installs it and its absence is a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("GOVERNANCE_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not shutil.which(CHROMIUM):
        message = f"no chromium at {CHROMIUM}: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ["--no-sandbox"]}


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where page screenshots go: test artefacts, never committed (see .gitignore)."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
