"""Benchmark of the shared deletion screen: every open recourse of a demo night, and its
agreement with the exact greedy on a small sample, in one run.

1. Demo scale: the demo recipe (``governance.demo.DEMO_RECIPE``, histogram gradient boosting)
   trained on ``--n-train`` rows of the synthetic lending population (the demo trains v1 on
   30,000), and ``--n-recourse`` open recourse points: fresh applicants whose score lies in
   [threshold, threshold + --width], where issued recourse lands (the demo's v1 holds 10,556
   issued recourses). ``fragility(method="screen")`` screens all of them with ``--jobs``
   retrains at once (wall and CPU seconds). Beside it, in the same run, the per-recourse search
   (``method="approximate"``, which ``govern fragility`` used for this model before) on
   ``--n-per-recourse`` of the points: seconds per recourse and the extrapolated time for all.
2. Small sample: the same recipe on ``--small-train`` rows, ``--small-recourse`` boundary points;
   the screen against ``exhaustive_greedy`` (a retrain without each remaining row at every step,
   per recourse) with ``--small-K`` steps: verdict agreement, same k, and the recourses the
   greedy breaks that the screen misses. With ``--small-K 1`` the greedy is the exact minimum
   over single deletions.

Usage:
    .venv/bin/python bench/fragility_screen.py [--n-train 30000] [--n-recourse 10556]
        [--K 5] [--jobs 2] [--n-per-recourse 3] [--small-train 200] [--small-recourse 100]
        [--small-K 1] [--small-width 0.05] [--width 0.05] [--seed 0]
        [--out bench/out/fragility_screen.json]

``--n-recourse 0`` runs the small sample only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from governance.data.synthetic import (  # noqa: E402
    FAVOURABLE,
    LABEL,
    SYNTHETIC_SCHEMA,
    generate_population,
)
from governance.deletion.fragility_search import fragility  # noqa: E402
from governance.deletion.shared_screen import agreement, exhaustive_greedy  # noqa: E402
from governance.demo import DEMO_RECIPE  # noqa: E402
from governance.registry.model import DecisionModel  # noqa: E402

THRESHOLD = 0.5


def boundary_points(model: DecisionModel, n: int, width: float, seed: int) -> pd.DataFrame:
    """``n`` fresh applicants whose score lies in [threshold, threshold + width]."""
    picked, got, block = [], 0, 0
    while got < n:
        pool = generate_population(50_000, seed=seed + 1, start_id=5_000_000 + block * 50_000)
        s = model.score(pool)
        ok = pool[(s >= model.threshold) & (s < model.threshold + width)]
        picked.append(ok)
        got += len(ok)
        block += 1
        if block > 60:
            raise RuntimeError(f"only {got} applicants in the score band; widen --width")
    return pd.concat(picked, ignore_index=True).iloc[:n].reset_index(drop=True)


def trained(n: int, seed: int) -> tuple[DecisionModel, pd.DataFrame, np.ndarray, float]:
    train = generate_population(n, seed=seed)
    y = train[LABEL].to_numpy()
    t0 = time.perf_counter()
    with threadpool_limits(1):
        pipe = DEMO_RECIPE.fit(SYNTHETIC_SCHEMA, train, y)
    fit_s = time.perf_counter() - t0
    model = DecisionModel(pipe, SYNTHETIC_SCHEMA, favourable_class=FAVOURABLE, threshold=THRESHOLD,
                          category_input=DEMO_RECIPE.category_input)
    return model, train[SYNTHETIC_SCHEMA.names], y, fit_s


def shares(k: np.ndarray, K: int) -> dict[str, int]:
    return {
        "recourses": int(len(k)),
        "already_rejected": int((k == 0).sum()),
        "broken_by_1_or_2": int(((k >= 1) & (k <= 2)).sum()),
        "broken_within_K": int(((k >= 1) & (k <= K)).sum()),
        "not_broken_by_any_tried_set": int((k == -1).sum()),
    }


def demo_scale(a: argparse.Namespace, out: dict) -> None:
    """Every open recourse at demo scale, and the per-recourse search beside it."""
    model, X, y, fit_s = trained(a.n_train, a.seed)
    Xr = boundary_points(model, a.n_recourse, a.width, a.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    res = fragility(model, DEMO_RECIPE, X, y, Xr, K=a.K, method="screen", n_jobs=a.jobs)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out["screen"] = {"n_train": a.n_train, "fit_seconds_one_core": round(fit_s, 3),
                     "seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
                     "sets_retrained": res.refits, **shares(res.k, a.K)}
    t0 = time.perf_counter()
    with threadpool_limits(1):
        per = fragility(model, DEMO_RECIPE, X, y, Xr.iloc[: a.n_per_recourse], K=a.K,
                        method="approximate")
    per_s = (time.perf_counter() - t0) / max(a.n_per_recourse, 1)
    out["per_recourse"] = {"recourses": a.n_per_recourse, "seconds_per_recourse": round(per_s, 2),
                           "retrains": per.refits,
                           "extrapolated_seconds_all": round(per_s * len(Xr))}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n-train", type=int, default=30_000)
    ap.add_argument("--n-recourse", type=int, default=10_556)
    ap.add_argument("--K", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--n-per-recourse", type=int, default=3)
    ap.add_argument("--small-train", type=int, default=200)
    ap.add_argument("--small-recourse", type=int, default=100)
    ap.add_argument("--small-K", type=int, default=1)
    ap.add_argument("--small-width", type=float, default=0.05,
                    help="score band of the small sample (wider: more recourses hold)")
    ap.add_argument("--width", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "fragility_screen.json")
    a = ap.parse_args(argv)
    out: dict = {"args": {k: str(v) for k, v in vars(a).items()},
                 "load_average_at_start": os.getloadavg()}

    if a.n_recourse > 0:
        demo_scale(a, out)

    small, Xs, ys, _ = trained(a.small_train, a.seed + 7)
    Xsr = boundary_points(small, a.small_recourse, a.small_width, a.seed + 7)
    t0 = time.perf_counter()
    with threadpool_limits(1):
        scr = fragility(small, DEMO_RECIPE, Xs, ys, Xsr, K=a.small_K, method="screen")
    scr_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    greedy = exhaustive_greedy(small, DEMO_RECIPE, Xs, ys, Xsr, K=a.small_K, n_jobs=a.jobs)
    greedy_s = time.perf_counter() - t0
    out["small_sample"] = {"n_train": a.small_train, "K": a.small_K, "width": a.small_width,
                           "screen_seconds": round(scr_s, 1), "screen_sets": scr.refits,
                           "greedy_seconds": round(greedy_s, 1), "greedy_retrains": greedy.refits,
                           **agreement(scr, greedy)}
    out["load_average_at_end"] = os.getloadavg()

    m = out["small_sample"]
    print(f"deletion fragility screen, demo recipe, K={a.K}, {a.jobs} retrains at once")
    if "screen" in out:
        s, p = out["screen"], out["per_recourse"]
        print(f"  screen: {s['recourses']:,} open recourses ({a.n_train:,} training rows) in "
              f"{s['seconds']:.0f} s ({s['cpu_seconds']:.0f} CPU s), {s['sets_retrained']} "
              "deletion sets retrained")
        print(f"    broken by a tried set of 1-2 rows: {s['broken_by_1_or_2']:,}; of <= {a.K} "
              f"rows: {s['broken_within_K']:,}; no tried set breaks: "
              f"{s['not_broken_by_any_tried_set']:,}")
        print(f"  per-recourse search (approximate): {p['seconds_per_recourse']:.2f} s per "
              f"recourse on {p['recourses']}, about {p['extrapolated_seconds_all'] / 3600:.1f} h "
              f"for all ({p['extrapolated_seconds_all'] / max(s['seconds'], 1e-9):.0f}x the "
              "screen)")
    print(f"  small sample ({m['n_train']} training rows, {m['n']} recourses in "
          f"[0.5, {0.5 + m['width']:.2f}], K={m['K']}): "
          f"screen {m['screen_sets']} sets in {m['screen_seconds']} s, exact greedy "
          f"{m['greedy_retrains']} retrains in {m['greedy_seconds']} s")
    print(f"    same verdict {m['verdicts']:.1%}, same k {m['same_k']:.1%}; greedy breaks "
          f"{m['greedy_broken']}, screen {m['screen_broken']}, missed {m['missed']}, "
          f"extra {m['extra']}; screen k <= greedy k on {m['screen_k_at_most_greedy']:.1%} "
          "of those both break")
    print(f"  load average {out['load_average_at_start'][0]:.1f} at start, "
          f"{out['load_average_at_end'][0]:.1f} at end (2 cores)")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2, default=str))
    return out


if __name__ == "__main__":
    main()
