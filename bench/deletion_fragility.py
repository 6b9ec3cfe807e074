"""Benchmark of the worst-case deletion-fragility search: approximate against exact, same run.

Trains a seeded model on a synthetic lending population of
``--n-train`` rows, draws ``--n-recourse`` issued recourse points just above the threshold
(score in [threshold, threshold + --width]), then

1. runs ``fragility(method="approximate")`` on all recourse points (seconds per recourse);
2. runs ``fragility(method="exact")`` on a seeded random sample of ``--n-exact`` of them
   (seconds per recourse, and the extrapolated time for all of them; exact cost is linear in the
   number of recourses because each one follows its own deletion sequence, apart from shared
   prefixes), and on ``--n-exact-flipped`` of those the approximate method found fragile;
3. reports the ratio of seconds per recourse (exact / approximate), the agreement of flip
   verdicts (k <= K or not) and of k on the exact subsample, refit counts and fragile shares.

Usage:
    .venv/bin/python bench/deletion_fragility.py [--n-train 100000] [--n-recourse 10000]
        [--n-exact 20] [--n-exact-flipped 10] [--K 5] [--family lr|rf] [--width 0.05]
        [--seed 0] [--threads 1] [--out FILE]

Prints one table and writes the numbers as JSON to ``--out`` (default
bench/out/deletion_fragility.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from governance.deletion.fragility_search import fragility  # noqa: E402
from governance.registry.model import DecisionModel  # noqa: E402
from governance.registry.schema import FeatureSchema  # noqa: E402
from governance.registry.training import TrainingRecipe  # noqa: E402

RECIPES = {
    "lr": TrainingRecipe("logistic_regression", {"C": 1.0, "max_iter": 1000}, seed=0),
    "rf": TrainingRecipe(
        "random_forest", {"n_estimators": 50, "min_samples_leaf": 5, "n_jobs": 1}, seed=0
    ),
}


def lending_population(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Synthetic applicants (8 numeric, 2 categorical features) and repayment labels."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.lognormal(10.5, 0.5, n),
            "debt_ratio": rng.beta(2, 5, n),
            "age": rng.integers(21, 75, n).astype(float),
            "credit_lines": rng.poisson(4, n).astype(float),
            "late_30": rng.poisson(0.4, n).astype(float),
            "utilisation": rng.uniform(0, 1, n),
            "months_employed": rng.exponential(60, n),
            "savings": rng.lognormal(8, 1.2, n),
            "housing": rng.choice(["own", "rent", "mortgage", "other"], n),
            "purpose": rng.choice(["car", "home", "education", "business", "other"], n),
        }
    )
    logit = (
        0.9 * (np.log(X.income) - 10.5)
        - 2.5 * (X.debt_ratio - 0.3)
        + 0.02 * (X.age - 45)
        - 0.6 * X.late_30
        - 1.2 * (X.utilisation - 0.5)
        + 0.004 * (X.months_employed - 60)
        + 0.2 * (np.log(X.savings) - 8)
        + 0.3 * (X.housing == "own")
        - 0.2 * (X.purpose == "business")
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def issued_recourse(model: DecisionModel, R: int, width: float, seed: int) -> pd.DataFrame:
    """R points with score in [threshold, threshold + width], as recourse generators issue."""
    picked: list[pd.DataFrame] = []
    got, round_ = 0, 0
    while got < R:
        pool, _ = lending_population(max(50_000, 20 * R), seed + 1000 + round_)
        s = model.score(pool)
        ok = pool[(s >= model.threshold) & (s < model.threshold + width)]
        picked.append(ok)
        got += len(ok)
        round_ += 1
        if round_ > 50:
            raise RuntimeError(f"found only {got} recourse points in the score band; lower R")
    return pd.concat(picked, ignore_index=True).iloc[:R]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n-train", type=int, default=100_000)
    ap.add_argument("--n-recourse", type=int, default=10_000)
    ap.add_argument("--n-exact", type=int, default=20)
    ap.add_argument("--n-exact-flipped", type=int, default=10)
    ap.add_argument("--K", type=int, default=5)
    ap.add_argument("--family", choices=sorted(RECIPES), default="lr")
    ap.add_argument("--width", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads", type=int, default=1, help="BLAS/OpenMP threads (1 avoids oversubscription)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "deletion_fragility.json")
    a = ap.parse_args(argv)
    with threadpool_limits(a.threads):
        return _run(a)


def _run(a: argparse.Namespace) -> dict:

    X, y = lending_population(a.n_train, a.seed)
    schema = FeatureSchema.from_frame(X)
    recipe = RECIPES[a.family]
    t0 = time.perf_counter()
    model = DecisionModel(recipe.fit(schema, X, y), schema)
    fit_s = time.perf_counter() - t0
    Xr = issued_recourse(model, a.n_recourse, a.width, a.seed)

    t0, c0 = time.perf_counter(), time.process_time()
    approx = fragility(model, recipe, X, y, Xr, K=a.K, method="approximate")
    approx_s, approx_cpu = time.perf_counter() - t0, time.process_time() - c0
    # Exact on a seeded random sample (timing and agreement), then on recourse points the
    # approximate method flipped (agreement where it matters; flips stop early, so these are
    # timed apart and not used for the per-recourse time).
    rng = np.random.default_rng(a.seed)
    n_exact = min(a.n_exact, len(Xr))
    sample = np.sort(rng.choice(len(Xr), size=n_exact, replace=False))
    t0, c0 = time.perf_counter(), time.process_time()
    exact = fragility(model, recipe, X, y, Xr.iloc[sample], K=a.K, method="exact")
    exact_s, exact_cpu = time.perf_counter() - t0, time.process_time() - c0
    flipped = np.setdiff1d(np.flatnonzero(approx.k != -1), sample)
    extra = np.sort(rng.choice(flipped, size=min(a.n_exact_flipped, flipped.size), replace=False))
    t1 = time.perf_counter()
    exact_f = fragility(model, recipe, X, y, Xr.iloc[extra], K=a.K, method="exact")
    exact_f_s = time.perf_counter() - t1

    flip_a, flip_e = approx.k[sample] != -1, exact.k != -1
    flip_af, flip_ef = approx.k[extra] != -1, exact_f.k != -1
    per_a, per_e = approx_s / len(Xr), exact_s / max(n_exact, 1)
    out = {
        "family": a.family,
        "threads": a.threads,
        "n_train": a.n_train,
        "n_recourse": len(Xr),
        "K": a.K,
        "score_band": [model.threshold, model.threshold + a.width],
        "fit_seconds": round(fit_s, 3),
        "approximate": {
            "seconds": round(approx_s, 3),
            "cpu_seconds": round(approx_cpu, 3),
            "seconds_per_recourse": per_a,
            "refits": approx.refits,
            "flipped_share": float(np.mean(approx.k != -1)),
            "fragile_share": approx.fragile_share,
        },
        "exact": {
            "n_recourse": n_exact,
            "seconds": round(exact_s, 3),
            "cpu_seconds": round(exact_cpu, 3),
            "seconds_per_recourse": per_e,
            "extrapolated_seconds_all": per_e * len(Xr),
            "refits": exact.refits,
            "flipped_share": float(np.mean(flip_e)) if n_exact else float("nan"),
            "fragile_share": exact.fragile_share,
        },
        "ratio_exact_over_approximate": per_e / per_a if per_a else float("nan"),
        "verdict_agreement_on_exact_subsample": (
            float(np.mean(flip_a == flip_e)) if n_exact else None
        ),
        "k_agreement_on_exact_subsample": (
            float(np.mean(approx.k[sample] == exact.k)) if n_exact else None
        ),
        "approx_flipped_checked_exactly": {
            "n_recourse": int(extra.size),
            "seconds": round(exact_f_s, 3),
            "verdict_agreement": float(np.mean(flip_af == flip_ef)) if extra.size else None,
            "k_agreement": float(np.mean(approx.k[extra] == exact_f.k)) if extra.size else None,
        },
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2))
    rows = [
        ("fit (s)", f"{fit_s:.2f}", ""),
        ("recourse points", f"{len(Xr)}", f"{n_exact}"),
        ("total wall (s)", f"{approx_s:.2f}", f"{exact_s:.2f}"),
        ("total cpu (s)", f"{approx_cpu:.2f}", f"{exact_cpu:.2f}"),
        ("s / recourse", f"{per_a:.2e}", f"{per_e:.2e}"),
        ("extrapolated all (s)", f"{approx_s:.1f}", f"{per_e * len(Xr):.1f}"),
        ("refits", f"{approx.refits}", f"{exact.refits}"),
        ("flipped share", f"{np.mean(approx.k != -1):.3f}", f"{np.mean(flip_e):.3f}"),
        ("fragile share (k<=2)", f"{approx.fragile_share:.3f}", f"{exact.fragile_share:.3f}"),
    ]
    print(f"family={a.family} n_train={a.n_train} K={a.K}")
    print(f"{'':24s}{'approximate':>14s}{'exact':>14s}")
    for name, va, ve in rows:
        print(f"{name:24s}{va:>14s}{ve:>14s}")
    print(f"ratio exact/approximate per recourse: {out['ratio_exact_over_approximate']:.1f}x")
    print(
        f"agreement on the {n_exact} random exact recourses: verdict "
        f"{out['verdict_agreement_on_exact_subsample']}, k {out['k_agreement_on_exact_subsample']}"
    )
    chk = out["approx_flipped_checked_exactly"]
    print(
        f"agreement on {chk['n_recourse']} recourses the approximate method flipped: verdict "
        f"{chk['verdict_agreement']}, k {chk['k_agreement']} ({exact_f_s:.1f} s exact)"
    )
    return out


if __name__ == "__main__":
    main()
