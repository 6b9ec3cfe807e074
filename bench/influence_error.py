"""Error of the one-step deletion estimate (formula (2') of governance/deletion/influence.py).

The approximate fragility search (governance/deletion/fragility_search.py) trusts the estimate
of how removing a set of training rows moves the logit at a recourse point, unless the estimate
lands within a band of the threshold: ``0.002 + 0.5 |change|`` logits. This study measures the
estimate against exact refits (``LogisticProblem.refit``) on synthetic logistic-regression
problems built with the project's training recipe:

- training sets of 60, 100, 200 and 400 rows (plus one of ``--large`` rows), 4 numeric features
  drawn Gaussian or Student t with 2 degrees of freedom (heavy tails: high-leverage rows),
  labels from a logistic model; C in 0.1, 1, 10, 100 (the recipe standardises the features);
- per problem, ``--queries`` query points drawn like the training rows, and for each the greedy
  deletion sets of 1 to 5 rows the approximate search would build (shortlist of the 20 rows with
  the largest single-removal effect; each step adds the row whose joint removal lowers the
  estimated logit most);
- per (set, query) pair: the estimated change, the exact change, the error, whether it lies
  inside the band, and the relative error ``error / |exact change|`` (pairs whose change is
  above 0.01 logit).

It prints, per training-set size, the pairs, the share inside the band and the largest relative
error, the same for the large problem, and the share inside the band per size and C; these are
the figures the docstrings of influence.py and fragility_search.py cite.

Usage:
    .venv/bin/python bench/influence_error.py [--queries 50] [--large 20000] [--seed 0]
        [--out bench/out]
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

from governance.deletion.fragility_search import MARGIN_ABS, MARGIN_REL  # noqa: E402
from governance.deletion.influence import LogisticProblem  # noqa: E402
from governance.registry.schema import FeatureSchema  # noqa: E402
from governance.registry.training import TrainingRecipe  # noqa: E402

SIZES = (60, 100, 200, 400)
CS = (0.1, 1.0, 10.0, 100.0)
DISTS = ("gaussian", "t2")
MAX_SET = 5
SHORTLIST = 20
FEATURES = ["a", "b", "c", "d"]
WEIGHTS = np.array([1.5, -1.0, 0.7, 0.3])


def draw(rng: np.random.Generator, n: int, dist: str) -> pd.DataFrame:
    X = rng.standard_t(2, size=(n, 4)) if dist == "t2" else rng.normal(size=(n, 4))
    return pd.DataFrame(X, columns=FEATURES)


def problem(n: int, C: float, dist: str, seed: int, n_queries: int):
    rng = np.random.default_rng(seed)
    X = draw(rng, n, dist)
    z = np.clip(X.to_numpy() @ WEIGHTS, -30, 30)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    if y.min() == y.max():
        y[:2] = [0, 1]
    schema = FeatureSchema.from_frame(X)
    pipe = TrainingRecipe("logistic_regression", {"C": C, "max_iter": 5000}, seed=seed).fit(
        schema, X, y
    )
    return pipe, X, y, draw(rng, n_queries, dist)


def greedy_sets(infl, terms, m: int) -> np.ndarray:
    """Per query, the greedy sets T_1 ⊂ ... ⊂ T_5 (shortlist positions), shape (R, 5, 5)."""
    R = terms["a"].shape[0]
    chosen = np.zeros((R, 0), dtype=np.int64)
    out = np.full((R, MAX_SET, MAX_SET), -1, dtype=np.int64)
    for t in range(MAX_SET):
        cand = np.arange(m)
        sets = np.concatenate(
            [np.repeat(chosen[:, None, :], m, axis=1), np.broadcast_to(cand, (R, m))[..., None]],
            axis=2,
        )
        eff = infl.set_effects(terms, sets)
        taken = (chosen[:, :, None] == cand[None, None, :]).any(axis=1)
        eff[taken] = np.inf
        best = np.argmin(eff, axis=1)
        chosen = np.concatenate([chosen, best[:, None]], axis=1)
        out[:, t, : t + 1] = chosen
    return out


def pairs(pipe, X, y, Q_frame) -> pd.DataFrame:
    """Estimated and exact logit change for every (greedy set, query) pair."""
    prob = LogisticProblem(pipe, X, y, 1)
    rows = np.arange(len(X))
    full = prob.refit(rows, prob.root())
    infl = prob.influence(full, rows)
    num, cat = prob.blocks(Q_frame)
    Q = prob.design(full, num, cat)
    m = min(SHORTLIST, len(X))
    local, _ = infl.top_removals(Q, m)
    terms = infl.shortlist_terms(Q, local)
    sets = greedy_sets(infl, terms, m)
    l0 = prob.logit(full, Q)
    out = []
    for t in range(MAX_SET):
        est = infl.set_effects(terms, sets[:, t : t + 1, : t + 1])[:, 0]
        for q in range(len(Q)):
            removed = infl.rows[local[q, sets[q, t, : t + 1]]]
            fit = prob.refit(np.setdiff1d(rows, removed), full)
            exact = float(prob.logit(fit, prob.design(fit, num[q : q + 1], cat[q : q + 1]))[0]
                          - l0[q])
            out.append((t + 1, float(est[q]), exact))
    df = pd.DataFrame(out, columns=["size", "estimate", "exact"])
    df["error"] = (df["estimate"] - df["exact"]).abs()
    df["inside"] = df["error"] <= MARGIN_ABS + MARGIN_REL * df["exact"].abs()
    big = df["exact"].abs() > 0.01
    df["relative"] = np.where(big, df["error"] / df["exact"].abs().where(big, 1.0), np.nan)
    return df


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--large", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    frames = []
    with threadpool_limits(1):
        k = 0
        for n in SIZES:
            for C in CS:
                for dist in DISTS:
                    pipe, X, y, Qf = problem(n, C, dist, args.seed + k, args.queries)
                    frames.append(pairs(pipe, X, y, Qf).assign(n=n, C=C, dist=dist))
                    k += 1
        pipe, X, y, Qf = problem(args.large, 1.0, "gaussian", args.seed + k, args.queries)
        large = pairs(pipe, X, y, Qf).assign(n=args.large, C=1.0, dist="gaussian")
    df = pd.concat(frames, ignore_index=True)
    print(f"one-step deletion estimate (2') against exact refits; band "
          f"{MARGIN_ABS} + {MARGIN_REL} |change|; {len(df):,} (set, query) pairs, "
          f"C in {list(CS)}, Gaussian and t(2) features, greedy sets of 1 to {MAX_SET} rows")
    print("rows    pairs   inside band   max relative error (|change| > 0.01)")
    summary = {}
    for n, g in [*df.groupby("n"), (args.large, large)]:
        inside = float(g["inside"].mean())
        rel = float(np.nanmax(g["relative"])) if g["relative"].notna().any() else float("nan")
        summary[int(n)] = {"pairs": len(g), "inside": inside, "max_relative": rel}
        print(f"{n:>6} {len(g):>8,} {inside:>12.2%} {rel:>12.1%}")
    inside = df.pivot_table(index="n", columns="C", values="inside", aggfunc="mean")
    print("share inside the band by rows (lines) and C (columns):")
    print(inside.map(lambda v: f"{v:.1%}").to_string())
    print(f"({time.perf_counter() - t0:.0f} s)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "influence_error.json").write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
