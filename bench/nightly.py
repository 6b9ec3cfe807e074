"""Benchmark the nightly flow: decisions/s per stage, orchestration overhead, and the explain
stage against a naive loop that calls SHAP once per row, side by side in one run.

    python bench/nightly.py --rows 100000 [--workers 2] [--naive-rows 300] [--baseline DIR]

``--baseline DIR``: a checkout of the code to compare with (e.g. ``git worktree add DIR
8a8984d`` with its own ``DIR/.venv``), run first in the same invocation on the same night
size; the last lines give the ratio of denied applicants per second, ours over its.

Figures are ratios and shares measured in the same process on the same machine; absolute
seconds depend on the box (bench/README.md records the machine).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import flows  # noqa: F401 - quiet Prefect defaults before it is imported


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000, help="decisions in the night")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--chunk-rows", type=int, default=10_000)
    ap.add_argument("--naive-rows", type=int, default=300, help="rows for the naive SHAP loop")
    ap.add_argument("--home", type=Path, default=None, help="keep the data here")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="checkout (with its .venv) whose nightly flow is run first, same rows")
    args = ap.parse_args()
    base = _baseline(args) if args.baseline else None

    from flows.nightly import nightly_governance
    from flows.runtime import prefect_api, task_runner
    from governance.demo import prepare_demo
    from governance.explain.explainer import Explainer
    from governance.registry.model_registry import ModelRegistry

    home = args.home or Path(tempfile.mkdtemp(prefix="bench-nightly-"))
    night = date(2026, 11, 2)
    t = time.perf_counter()
    setup = prepare_demo(home, rows_per_night=args.rows, nights=[night])
    print(
        f"set-up (population, model, log of {args.rows:,} rows): "
        f"{time.perf_counter() - t:.1f} s in {home}"
    )

    flow = nightly_governance.with_options(task_runner=task_runner(None, args.workers))
    with prefect_api():
        t = time.perf_counter()
        summary = flow(night=night, home=str(home), chunk_rows=args.chunk_rows, force=True)
        outer = time.perf_counter() - t
    c, s = summary["counts"], summary["timings"]
    n = c["pulled"]
    quality = sum(s.get(k, 0) for k in ("faithfulness", "stability", "agreement"))
    worker_s = s["explain"] + s.get("recourse", 0) + s["store"] + s.get("load", 0) + quality
    inside = s["pull"] + s["validate"] + worker_s / args.workers
    overhead = max(0.0, s["wall"] - inside)

    # Naive peer: one SHAP call per row, on the same model and explainer.
    reg = ModelRegistry(home / "registry")
    model = reg.load(setup.model_name, setup.version)
    explainer = Explainer(model, reg.training_frame(setup.model_name, setup.version))
    import pandas as pd

    log = pd.read_parquet(next((home / "decision-logs").glob("*/*.parquet")))
    log = log.dropna().query("revolving_utilization <= 1.5 and home_ownership != 'CASTLE'")
    sample = log.head(args.naive_rows)
    t = time.perf_counter()
    for i in range(len(sample)):
        explainer.explain(sample.iloc[i : i + 1])
    naive_per_row = (time.perf_counter() - t) / len(sample)
    t = time.perf_counter()
    explainer.explain(sample)
    batch_per_row = (time.perf_counter() - t) / len(sample)
    ours_per_row = s["explain"] / c["decisions"]  # worker-seconds per decision in the flow

    print(
        f"\nnightly flow, {n:,} decisions, {c['chunks']} chunks, {args.workers} workers "
        f"({os.cpu_count()} cores)"
    )
    print(
        f"denied {c.get('denied', 0):,}: responsiveness, verification and recourse for each "
        f"(recourse issued {c.get('recourse_issued', 'n/a')}, fixed {c.get('fixed', 'n/a')})"
    )
    print(f"{'stage':<28}{'seconds':>10}{'decisions/s':>14}")
    rows = [
        ("pull", s["pull"], n),
        ("validate (Great Expectations)", s["validate"], n),
        ("explain (worker-seconds)", s["explain"], c["decisions"]),
        ("recourse (worker-seconds)", s.get("recourse", 0), c["decisions"]),
        ("store (worker-seconds)", s["store"], c["decisions"]),
        *([("quality (worker-seconds)", quality, c["decisions"])] if quality else []),
        ("fan-out wall (all above)", s["fanout_wall"], c["decisions"]),
        ("flow wall", s["wall"], n),
    ]
    for name, sec, count in rows:
        print(f"{name:<28}{sec:>10.2f}{count / sec if sec else float('nan'):>14,.0f}")
    print(
        f"Prefect + Dask overhead: {overhead:.1f} s = {overhead / s['wall']:.0%} of flow wall "
        f"(flow call incl. cluster start/stop: {outer:.1f} s)"
    )
    print(f"\nexplain stage vs naive per-row SHAP loop ({len(sample)} rows):")
    print(f"  naive loop        {naive_per_row * 1e3:8.2f} ms/row")
    for label, per_row, note in (
        ("batched, in-proc", batch_per_row, ""),
        ("nightly flow", ours_per_row, " (worker-seconds per decision)"),
    ):
        ratio = naive_per_row / per_row
        print(f"  {label:<17} {per_row * 1e3:8.2f} ms/row  ratio {ratio:6.1f}x{note}")

    denied = c.get("denied", 0)
    if quality:
        print(
            f"explanation quality (faithfulness, stability sample, agreement): {quality:.1f} "
            f"worker-seconds = {quality / args.workers / s['wall']:.0%} of flow wall at "
            f"{args.workers} workers"
        )
    if base is not None:
        b_denied, b_wall = base
        ours, theirs = denied / s["wall"], b_denied / b_wall
        print(
            f"baseline {args.baseline}: {b_denied:,} denied in {b_wall:.1f} s "
            f"({theirs:,.1f}/s); ours {ours:,.1f}/s: ratio {ours / theirs:.2f}x"
        )
    print(f"nightly flow: {denied} denied in {s['wall']:.1f} s")


def _baseline(args: argparse.Namespace) -> tuple[int, float]:
    """Run the baseline checkout's own bench/nightly.py at the same size; (denied, flow wall)."""
    root = args.baseline.resolve()
    cmd = [str(root / ".venv/bin/python"), str(root / "bench/nightly.py"), "--rows",
           str(args.rows), "--workers", str(args.workers), "--chunk-rows", str(args.chunk_rows),
           "--naive-rows", "10"]
    print(f"baseline: {' '.join(cmd)}", flush=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    sys.stdout.write(done.stdout)
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"baseline run failed ({done.returncode})")
    denied = int(re.search(r"^denied ([\d,]+)", done.stdout, re.M).group(1).replace(",", ""))
    wall = float(re.search(r"^flow wall\s+([\d.]+)", done.stdout, re.M).group(1))
    return denied, wall


if __name__ == "__main__":
    main()
