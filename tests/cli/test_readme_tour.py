"""The README's tour, verbatim, in a fresh folder after a small `govern demo`: every line runs
in one shell, in order, and ends with the exit code its comment announces (0 otherwise).

The tour's commands start their own Prefect servers, as they do on a fresh clone; only the
demo that prepares the folder shares the session's server. Each line's seconds are printed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.test_cli import check_json
from tests.conftest import DEMO_NIGHT, DEMO_ROWS

README = Path(__file__).resolve().parents[2] / "README.md"
MARK = "@@tour"


def tour_lines() -> list[str]:
    """The command lines of the first bash block under "## A tour of the outputs"."""
    text = README.read_text()
    section = text[text.index("## A tour of the outputs") :]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def expected_exit(line: str) -> int:
    found = re.search(r"#.*\bexits (\d+)", line)
    return int(found.group(1)) if found else 0


def test_the_readme_tour_runs_as_written_on_a_fresh_folder(demo_home, prefect_server, tmp_path,
                                                          capsys):
    lines = tour_lines()
    assert lines[0].startswith("source .venv/bin/activate")
    assert any(expected_exit(line) == 3 for line in lines)  # the gate is seen failing
    folder = tmp_path / "fresh-clone"
    folder.mkdir()
    (folder / ".venv").symlink_to(Path(sys.prefix))  # the quick start's virtual environment
    shutil.copytree(demo_home, folder / "governance-data")  # its trained models, reused
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "GOV"))}
    env["COLUMNS"] = "80"
    demo = subprocess.run(
        [str(folder / ".venv" / "bin" / "govern"), "demo", "--days", "1", "--rows",
         str(DEMO_ROWS), "--start-date", DEMO_NIGHT.isoformat(), "--workers", "2", "--json"],
        cwd=folder, capture_output=True, text=True, timeout=900,
        env={**env, "PREFECT_API_URL": prefect_server},
    )
    assert demo.returncode == 0, demo.stderr
    prepared = check_json(demo.stdout)
    assert (folder / "governance-data" / "tour.env").exists()
    assert prepared["nights"][0]["counts"]["decisions"] > 0

    script = []
    for i, line in enumerate(lines):
        script += [f"echo '{MARK} start {i}' $(date +%s.%N)", line, f"echo '{MARK} rc {i}' $?"]
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=folder, capture_output=True, text=True, timeout=1800, env=env,
    )
    marks = re.findall(rf"^{MARK} (start|rc) (\d+) (\S+)$", result.stdout, flags=re.M)
    codes = {int(i): int(v) for kind, i, v in marks if kind == "rc"}
    starts = {int(i): float(v) for kind, i, v in marks if kind == "start"}
    starts[len(lines)] = time.time()
    with capsys.disabled():
        print("\nseconds per README tour line:")
        for i, line in enumerate(lines):
            if i in codes:
                print(f"  {starts[i + 1] - starts[i]:6.1f}  rc {codes[i]}  {line[:60]}")
    for i, line in enumerate(lines):
        assert codes.get(i) == expected_exit(line), (line, result.stdout[-3000:], result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert "Error logging to API" not in result.stderr
    # the last line's JSON is the last thing on stdout
    check_json(result.stdout[: result.stdout.rindex(f"{MARK} rc {len(lines) - 1}")].split(
        f"{MARK} start {len(lines) - 1}", 1)[1].split("\n", 1)[1])
