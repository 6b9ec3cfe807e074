"""Benchmark: stability scores per second for the demo model.

The demo model is rebuilt exactly as ``governance.demo.prepare_demo`` trains v1 (the
synthetic population, seed 0, the first 50,000 of 60,000 rows, ``DEMO_RECIPE``: histogram
gradient boosting, 150 trees of 31 leaves); the points are people of a fresh population.
For each thread count it measures:

- ``stability``: ``R`` at ``k = 1000``, ``sigma = 0.05`` for ``--points`` distinct points;
  points per second, model rows per second, and the share of wall time inside predict
  (``DecisionModel.stats``). The demo model is a tree ensemble, so the samples are replayed
  from its parsed trees (see :mod:`governance.stability`) and predict sees only the points and
  a few check rows;
- ``plain``: the same for the first ``--plain`` points with the replay turned off (every
  sample scored by ``predict_proba``, as before the replay), the speed-up over it, and
  whether both give bit-identical ``R``;
- ``bar``: the staged exact test ``R >= 0.75`` (:func:`governance.stability.stability_at_least`)
  on the same points, which is what robust recourse runs on candidates;
- ``robust``: robust recourse (``tau = 0.75``) for ``--robust`` denied applicants with the
  synthetic lending action set and the percentile-shift cost, persons per second, beside the
  minimal-cost search alone.

Usage:
    .venv/bin/python bench/stability.py [--points 2000] [--plain 300] [--robust 20]
        [--threads 1 2] [--out bench/out]

Writes ``stability.json`` in ``--out`` and prints one line per measurement.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import governance.retraining.stability_score as stability_module  # noqa: E402
from governance.data.synthetic import FAVOURABLE, SYNTHETIC_SCHEMA, generate_population  # noqa: E402
from governance.demo import ACTION_SETS, DEMO_RECIPE  # noqa: E402
from governance.recourse.action_set import ActionSet  # noqa: E402
from governance.recourse.costs import PercentileShiftCost  # noqa: E402
from governance.recourse.search import find_recourse  # noqa: E402
from governance.registry.model import DecisionModel  # noqa: E402
from governance.retraining.robust import robust_recourse  # noqa: E402
from governance.retraining.stability_score import feature_scale, stability, stability_at_least  # noqa: E402

K, SIGMA, TAU = 1000, 0.05, 0.75


def demo_model() -> tuple[DecisionModel, np.ndarray]:
    """The demo's v1 model and its training rows (as prepare_demo builds them)."""
    pop = generate_population(60_000, seed=0)
    train = pop.iloc[:50_000]
    est = DEMO_RECIPE.fit(SYNTHETIC_SCHEMA, train, train[DEMO_RECIPE.label].to_numpy())
    model = DecisionModel(est, SYNTHETIC_SCHEMA, FAVOURABLE, 0.5, name="credit-default",
                          version="v1")
    return model, model.matrix(train)


def timed(model: DecisionModel, fn):
    model.stats.reset()
    t0 = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    return out, wall, model.stats.seconds, model.stats.rows


def run(threads: int, model: DecisionModel, train: np.ndarray, points: np.ndarray,
        n_robust: int, n_plain: int) -> list[dict]:
    scale = feature_scale(SYNTHETIC_SCHEMA, train)
    rows = []
    with threadpool_limits(threads):
        model.score(points[:10])  # warm the fast path outside the timings
        R, wall, pred, n_rows = timed(model, lambda: stability(model, points, scale, k=K,
                                                              sigma=SIGMA))
        rows.append({"what": "stability", "threads": threads, "points": len(points),
                     "seconds": wall, "points_per_s": len(points) / wall,
                     "model_rows_per_s": n_rows / pred, "predict_share": pred / wall,
                     "mean_R": float(R.mean()), "share_R_ge_tau": float(np.mean(R >= TAU))})
        if n_plain:
            sub = points[:n_plain]
            stability_module._REPLAY = False  # score every sample with the model
            try:
                R_plain, wall_p, pred, n_rows = timed(
                    model, lambda: stability(model, sub, scale, k=K, sigma=SIGMA)
                )
            finally:
                stability_module._REPLAY = True
            rate = len(sub) / wall_p
            rows.append({"what": "plain", "threads": threads, "points": len(sub),
                         "seconds": wall_p, "points_per_s": rate,
                         "model_rows_per_s": n_rows / pred, "predict_share": pred / wall_p,
                         "speedup": rows[0]["points_per_s"] / rate,
                         "bit_identical": bool(np.array_equal(R_plain, R[:n_plain]))})
        (passes, _), wall, pred, n_rows = timed(
            model, lambda: stability_at_least(model, points, scale, TAU, k=K, sigma=SIGMA)
        )
        rows.append({"what": "bar", "threads": threads, "points": len(points),
                     "seconds": wall, "points_per_s": len(points) / wall,
                     "model_rows_per_s": n_rows / pred, "predict_share": pred / wall,
                     "rows_vs_full": n_rows / (len(points) * (K + 1)),
                     "agrees_with_full": bool(np.array_equal(passes, R >= TAU))})
        if n_robust:
            A = ActionSet.from_json(ACTION_SETS / "synthetic_lending.json")
            cost = PercentileShiftCost.fit(train, SYNTHETIC_SCHEMA)
            fresh = model.matrix(generate_population(5_000, seed=7, start_id=20_000_000))
            denied = fresh[~model.approve(fresh)][:n_robust]
            minimal, wall_min, _, _ = timed(model, lambda: find_recourse(model, A, denied, cost))
            r, wall, pred, n_rows = timed(
                model, lambda: robust_recourse(model, A, denied, cost, scale, tau=TAU, k=K,
                                               sigma=SIGMA, minimal=minimal)
            )
            s = r.summary()
            rows.append({"what": "robust", "threads": threads, "points": len(denied),
                         "seconds": wall, "points_per_s": len(denied) / wall,
                         "minimal_seconds": wall_min, "model_rows_per_s": n_rows / pred,
                         "predict_share": pred / wall, **s})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--plain", type=int, default=300, help="points without replay; 0 skips")
    ap.add_argument("--robust", type=int, default=20, help="denied applicants; 0 skips")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with threadpool_limits(max(args.threads)):
        model, train = demo_model()
    print(f"demo model trained in {time.perf_counter() - t0:.1f} s")
    points = model.matrix(generate_population(args.points, seed=1, start_id=30_000_000))
    results = []
    for threads in args.threads:
        for row in run(threads, model, train, points, args.robust, args.plain):
            results.append(row)
            print(
                f"{row['what']:>9} threads={threads} n={row['points']}: "
                f"{row['points_per_s']:.1f}/s, {row['seconds']:.1f} s, "
                f"predict {row['predict_share']:.0%} at {row['model_rows_per_s']:,.0f} rows/s"
                + (f", rows vs full {row['rows_vs_full']:.2f}" if "rows_vs_full" in row else "")
                + (f", replay {row['speedup']:.1f}x faster, bit-identical {row['bit_identical']}"
                   if row["what"] == "plain" else "")
                + (f", cost +{row['mean_cost_increase']:.3f}" if row["what"] == "robust" else "")
            )
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"k": K, "sigma": SIGMA, "tau": TAU, "model": "demo v1 (DEMO_RECIPE)",
            "results": results}
    (args.out / "stability.json").write_text(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
