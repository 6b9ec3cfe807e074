"""Fail CI on any skipped test whose reason is not in .ci/allowed-skips; print every skip and
the allow-list.

Reads the summary JSON that tests/conftest.py writes at the end of a pytest run
($PYTEST_SUMMARY_FILE): counts per outcome and, per skipped test, its node id and reason.

Usage: python3 .ci/check_skips.py SUMMARY_JSON [ALLOWED_FILE]
Exit status: 0 when every skip is allowed, 1 otherwise (or when the summary is unreadable).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def allowed_patterns(path: Path) -> list[re.Pattern[str]]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [re.compile(line) for line in lines if line and not line.startswith("#")]


def check(summary: dict, patterns: list[re.Pattern[str]]) -> tuple[list[dict], list[dict]]:
    """The summary's skips split into (allowed, unexpected)."""
    allowed, unexpected = [], []
    for skip in summary.get("skips", []):
        ok = any(p.match(skip.get("reason", "")) for p in patterns)
        (allowed if ok else unexpected).append(skip)
    return allowed, unexpected


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 1
    try:
        summary = json.loads(Path(argv[0]).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"ci: cannot read the pytest summary {argv[0]}: {exc}", file=sys.stderr)
        return 1
    patterns = allowed_patterns(Path(argv[1]) if len(argv) > 1 else HERE / "allowed-skips")
    allowed, unexpected = check(summary, patterns)
    n_skipped = summary.get("skipped", 0)
    if n_skipped != len(allowed) + len(unexpected):
        print(f"ci: pytest counted {n_skipped} skips but reported {len(allowed) + len(unexpected)}"
              " reasons", file=sys.stderr)
        return 1
    for title, skips in (("allowed skips", allowed), ("UNEXPECTED skips", unexpected)):
        if skips:
            print(f"ci: {len(skips)} {title}:")
            for s in skips:
                print(f"  {s['nodeid']}: {s['reason']}")
    # the allow-list itself, so a reader of the log sees what a skip may be for
    print(f"ci: skip reasons allowed ({len(patterns)}):")
    for p in patterns:
        print(f"  {p.pattern}")
    if unexpected:
        print(f"ci: {len(unexpected)} test(s) skipped for a reason not in .ci/allowed-skips",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
