"""Benchmark of a deletion request: retrain without the subject, then the exact invalidation check.

Time per request (retrain plus check) with 100,000 training rows and 10,000 open recourses,
and the fragility search per recourse, approximate against exact (ratio), in the same run.
Built on the pure core (:mod:`governance.deletion`), no store and no Prefect:

1. A registry in a temporary folder holds model ``v1`` trained on ``--n-train`` rows of the
   synthetic lending population (``governance.data.synthetic``, one row per subject), once per
   recipe in ``--recipes``: ``hgb`` is the demo recipe (``governance.demo.DEMO_RECIPE``,
   histogram gradient boosting, 150 trees), ``lr`` an L2 logistic regression.
2. ``--n-recourse`` open recourse points issued under ``v1``. ``--recourse boundary``
   (default): fresh applicants whose ``v1`` score lies in [threshold, threshold + --width],
   which is where issued recourse lands (the cheapest action just clears the threshold).
   ``--recourse find`` runs ``governance.recourse.find_recourse`` (synthetic action set,
   percentile-shift cost) on denied applicants and keeps the issued points: the real thing,
   but about 0.07 s (LR) to 0.35 s (HGB) per person on one core here, so 10,000 take 12 to 60
   minutes; the check itself costs the same either way.
3. ``--requests`` deletion requests, each for one random training subject, one after the other
   against ``v1``: ``retrain_without`` (read and hash-check the training Parquet, drop the rows,
   write and hash the new file, refit the recipe, register the candidate), then the exact check
   (load the candidate from the registry and re-score every recourse point under ``v1`` and the
   candidate with ``recourse_validity``), then ``purge_training_files`` (rewrite ``v1``'s
   training file without the subject). Seconds are reported per step, median over requests.
4. The worst-case fragility search per recourse, approximate against exact, through
   ``bench/deletion_fragility.py``'s ``main`` (its own seeded population of the same size;
   ``--frag-*`` flags pass through; ``--frag-recourse 0`` skips it).
5. The shared deletion screen at demo scale (every open recourse of the demo's v1 under the
   demo recipe, beside the per-recourse search) and its agreement with the exact greedy on a
   small sample, through ``bench/fragility_screen.py``'s ``main`` (``--screen-*`` flags pass
   through; ``--screen-recourse 0`` skips it).

``--parts`` picks the parts: ``requests`` (1-3), ``fragility`` (4), ``screen`` (5).

Usage:
    .venv/bin/python bench/deletion.py [--n-train 100000] [--n-recourse 10000] [--requests 3]
        [--recipes hgb,lr] [--recourse boundary|find] [--width 0.05] [--threads 1]
        [--frag-recourse 10000] [--frag-exact 20] [--frag-exact-flipped 10] [--frag-K 5]
        [--frag-family lr] [--screen-recourse 10556] [--screen-train 30000] [--screen-jobs 2]
        [--screen-small-train 200] [--screen-small-recourse 100] [--screen-small-K 1]
        [--parts requests,fragility,screen] [--seed 0] [--out bench/out/deletion.json]

Prints one table per part and writes every number as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import deletion_fragility  # noqa: E402
import fragility_screen  # noqa: E402

from governance.data.synthetic import (  # noqa: E402
    FAVOURABLE,
    LABEL,
    SYNTHETIC_SCHEMA,
    generate_population,
)
from governance.deletion.purge import purge_training_files  # noqa: E402
from governance.deletion.retrain import (  # noqa: E402
    next_candidate_version,
    recourse_validity,
    retrain_without,
)
from governance.demo import ACTION_SETS, DEMO_RECIPE  # noqa: E402
from governance.hashing import sha256_file  # noqa: E402
from governance.recourse.action_set import ActionSet  # noqa: E402
from governance.recourse.costs import PercentileShiftCost  # noqa: E402
from governance.recourse.search import find_recourse  # noqa: E402
from governance.registry.model import DecisionModel  # noqa: E402
from governance.registry.model_registry import ModelRegistry, TrainingData  # noqa: E402
from governance.registry.training import TrainingRecipe  # noqa: E402

RECIPES = {
    "hgb": DEMO_RECIPE,
    "lr": TrainingRecipe("logistic_regression", {"C": 1.0, "max_iter": 1000}, seed=0,
                         label=LABEL),
}
THRESHOLD = 0.5
NAME = "credit-default"


def issue_boundary(model: DecisionModel, n: int, width: float, seed: int, start: int) -> tuple:
    """``n`` fresh applicants whose score lies in [threshold, threshold + width]."""
    picked, got, block = [], 0, 0
    while got < n:
        pool = generate_population(max(50_000, 10 * n), seed=seed + 1,
                                   start_id=start + block * max(50_000, 10 * n))
        s = model.score(pool)
        ok = pool[(s >= model.threshold) & (s < model.threshold + width)]
        picked.append(ok)
        got += len(ok)
        block += 1
        if block > 40:
            raise RuntimeError(f"only {got} applicants in the score band; widen --width")
    return pd.concat(picked, ignore_index=True).iloc[:n], {"source": "boundary",
                                                            "band": [model.threshold,
                                                                     model.threshold + width]}


def issue_found(model: DecisionModel, train: pd.DataFrame, n: int, seed: int, start: int) -> tuple:
    """Recourse points issued by ``find_recourse`` to denied fresh applicants."""
    aset = ActionSet.from_json(ACTION_SETS / "synthetic_lending.json")
    cost = PercentileShiftCost.fit(train, SYNTHETIC_SCHEMA)
    points, tried, block = [], 0, 0
    t0 = time.perf_counter()
    while sum(len(p) for p in points) < n:
        pool = generate_population(20_000, seed=seed + 1, start_id=start + block * 20_000)
        denied = pool[model.score(pool) < model.threshold]
        need = n - sum(len(p) for p in points)
        chunk = denied.iloc[: max(need + need // 5, 50)]
        r = find_recourse(model, aset, model.matrix(chunk), cost)
        tried += len(chunk)
        ok = r.status == "recourse"
        points.append(model.frame(r.x_after[ok]))
        block += 1
        if block > 40:
            raise RuntimeError("find_recourse issued too few recourses; lower --n-recourse")
    X = pd.concat(points, ignore_index=True).iloc[:n]
    return X, {"source": "find_recourse", "denied_searched": tried,
               "seconds": round(time.perf_counter() - t0, 2)}


def run_recipe(key: str, a: argparse.Namespace, pop: pd.DataFrame, home: Path) -> dict:
    recipe = RECIPES[key]
    train = pop.iloc[: a.n_train].reset_index(drop=True)
    reg = ModelRegistry(home / key / "registry")
    data = home / key / "training-data"
    data.mkdir(parents=True)
    path = data / f"{NAME}-v1.parquet"
    train.to_parquet(path, index=False)
    t0 = time.perf_counter()
    est = recipe.fit(SYNTHETIC_SCHEMA, train, train[LABEL].to_numpy())
    fit_s = time.perf_counter() - t0
    aset = ACTION_SETS / "synthetic_lending.json"
    reg.register(NAME, "v1", est, SYNTHETIC_SCHEMA, recipe, favourable_class=FAVOURABLE,
                 threshold=THRESHOLD,
                 training_data=TrainingData(str(path), sha256_file(path), len(train), LABEL,
                                            "subject_id"),
                 action_set_path=aset if aset.exists() else None)
    current = reg.load(NAME, "v1")
    t0 = time.perf_counter()
    if a.recourse == "find":
        X_rec, how = issue_found(current, train, a.n_recourse, a.seed, 5_000_000)
    else:
        X_rec, how = issue_boundary(current, a.n_recourse, a.width, a.seed, 5_000_000)
    issue_s = time.perf_counter() - t0
    rng = np.random.default_rng(a.seed)
    subjects = rng.choice(train["subject_id"].to_numpy(), size=a.requests, replace=False)
    steps: dict[str, list[float]] = {"retrain": [], "check": [], "purge_training": []}
    invalidated, removed, moved = [], [], []
    for i, subject in enumerate(subjects):
        version = next_candidate_version(reg, NAME, "v1", f"req{i:04d}")
        t0 = time.perf_counter()
        cand = retrain_without(reg, NAME, "v1", [str(subject)], candidate_version=version)
        t1 = time.perf_counter()
        candidate = reg.load(NAME, cand.version)
        check = recourse_validity(current, candidate, X_rec)
        t2 = time.perf_counter()
        purge_training_files(reg, NAME, [str(subject)], request_id=f"req{i:04d}",
                             erased_at=pd.Timestamp.now(tz="UTC").to_pydatetime())
        t3 = time.perf_counter()
        steps["retrain"].append(t1 - t0)
        steps["check"].append(t2 - t1)
        steps["purge_training"].append(t3 - t2)
        invalidated.append(int(check["invalidated"].sum()))
        moved.append((check["score_after"] - check["score_before"]).abs())
        removed.append(cand.rows_removed)
    med = {k: statistics.median(v) for k, v in steps.items()}
    return {
        "recipe": recipe.to_dict(),
        "n_train": len(train),
        "n_recourse": len(X_rec),
        "recourse": how | {"seconds_to_issue": round(issue_s, 2)},
        "v1_fit_seconds": round(fit_s, 3),
        "requests": len(subjects),
        "rows_removed": removed,
        "seconds": {k: [round(x, 3) for x in v] for k, v in steps.items()},
        "median_seconds": {k: round(v, 3) for k, v in med.items()},
        "median_seconds_per_request_retrain_plus_check": round(med["retrain"] + med["check"], 3),
        "check_seconds_per_recourse": med["check"] / max(len(X_rec), 1),
        "invalidated_per_request": invalidated,
        "abs_score_change_median": [round(float(m.median()), 6) for m in moved],
        "abs_score_change_max": [round(float(m.max()), 6) for m in moved],
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n-train", type=int, default=100_000)
    ap.add_argument("--n-recourse", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=3)
    ap.add_argument("--recipes", default="hgb,lr", help="comma-separated: " + ",".join(RECIPES))
    ap.add_argument("--recourse", choices=["boundary", "find"], default="boundary")
    ap.add_argument("--width", type=float, default=0.05)
    ap.add_argument("--frag-recourse", type=int, default=10_000, help="0 skips the fragility part")
    ap.add_argument("--frag-exact", type=int, default=20)
    ap.add_argument("--frag-exact-flipped", type=int, default=10)
    ap.add_argument("--frag-K", type=int, default=5)
    ap.add_argument("--frag-family", choices=sorted(deletion_fragility.RECIPES), default="lr")
    ap.add_argument("--screen-recourse", type=int, default=10_556,
                    help="0 skips the screen part")
    ap.add_argument("--screen-train", type=int, default=30_000)
    ap.add_argument("--screen-jobs", type=int, default=2)
    ap.add_argument("--screen-small-train", type=int, default=200)
    ap.add_argument("--screen-small-recourse", type=int, default=100)
    ap.add_argument("--screen-small-K", type=int, default=1)
    ap.add_argument("--parts", default="requests,fragility,screen")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS/OpenMP threads (1 avoids oversubscription)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "deletion.json")
    a = ap.parse_args(argv)
    keys = [k.strip() for k in a.recipes.split(",") if k.strip()]
    unknown = [k for k in keys if k not in RECIPES]
    if unknown or not keys:
        ap.error(f"--recipes {a.recipes!r}: unknown {unknown}; choose from {', '.join(RECIPES)}")
    parts = {p.strip() for p in a.parts.split(",") if p.strip()}
    if not parts or parts - {"requests", "fragility", "screen"}:
        ap.error(f"--parts {a.parts!r}: choose from requests, fragility, screen")
    out: dict = {}
    if parts & {"requests", "fragility"}:
        if "fragility" not in parts:
            a.frag_recourse = 0
        with threadpool_limits(a.threads):
            out = _run(a, keys)
    if "screen" in parts and a.screen_recourse > 0:
        print()
        out["screen"] = fragility_screen.main([
            "--n-train", str(a.screen_train), "--n-recourse", str(a.screen_recourse),
            "--jobs", str(a.screen_jobs), "--small-train", str(a.screen_small_train),
            "--small-recourse", str(a.screen_small_recourse),
            "--small-K", str(a.screen_small_K), "--width", str(a.width), "--seed", str(a.seed),
            "--out", str(a.out.with_name(a.out.stem + "_screen.json")),
        ])
    return out


def _run(a: argparse.Namespace, keys: list[str]) -> dict:
    pop = generate_population(a.n_train, seed=a.seed)
    out: dict = {"threads": a.threads, "n_train": a.n_train, "n_recourse": a.n_recourse,
                 "requests": {}}
    with tempfile.TemporaryDirectory(prefix="bench-deletion-") as tmp:
        for key in keys:
            out["requests"][key] = run_recipe(key, a, pop, Path(tmp))
    print(f"deletion requests: n_train={a.n_train} open recourses={a.n_recourse} "
          f"({a.recourse}) requests={a.requests} threads={a.threads}")
    print(f"{'median seconds':30s}" + "".join(f"{k:>12s}" for k in keys))
    rows = [
        ("v1 fit (reference)", lambda r: r["v1_fit_seconds"]),
        ("retrain_without", lambda r: r["median_seconds"]["retrain"]),
        ("check (load + re-score)", lambda r: r["median_seconds"]["check"]),
        ("retrain + check", lambda r: r["median_seconds_per_request_retrain_plus_check"]),
        ("purge training file", lambda r: r["median_seconds"]["purge_training"]),
        ("check per recourse (us)", lambda r: 1e6 * r["check_seconds_per_recourse"]),
    ]
    for label, get in rows:
        print(f"{label:30s}" + "".join(f"{get(out['requests'][k]):>12.3f}" for k in keys))
    for label, field in [("invalidated per request", "invalidated_per_request"),
                         ("median |score change|", "abs_score_change_median")]:
        print(f"{label:30s}" + "  ".join(f"{k}: {out['requests'][k][field]}" for k in keys))
    if len(keys) > 1:
        base = out["requests"][keys[0]]["median_seconds_per_request_retrain_plus_check"]
        for k in keys[1:]:
            other = out["requests"][k]["median_seconds_per_request_retrain_plus_check"]
            print(f"ratio retrain+check {keys[0]}/{k}: {base / other:.1f}x")
    if a.frag_recourse > 0:
        print()
        frag_out = a.out.with_name(a.out.stem + "_fragility.json")
        frag = deletion_fragility.main([
            "--n-train", str(a.n_train), "--n-recourse", str(a.frag_recourse),
            "--n-exact", str(a.frag_exact), "--n-exact-flipped", str(a.frag_exact_flipped),
            "--K", str(a.frag_K), "--family", a.frag_family, "--width", str(a.width),
            "--seed", str(a.seed), "--threads", str(a.threads), "--out", str(frag_out),
        ])
        out["fragility"] = frag
        print()
        print("per recourse, seconds:")
        print(f"{'exact invalidation check':34s}" + "".join(
            f"{k + ' ' + format(out['requests'][k]['check_seconds_per_recourse'], '.2e'):>18s}"
            for k in keys))
        per_a = frag["approximate"]["seconds_per_recourse"]
        per_e = frag["exact"]["seconds_per_recourse"]
        print(f"{'fragility approximate (' + a.frag_family + ')':34s}{per_a:>18.2e}")
        print(f"{'fragility exact (' + a.frag_family + ')':34s}{per_e:>18.2e}")
        print(f"ratio exact/approximate: {frag['ratio_exact_over_approximate']:.1f}x")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2, default=str))
    return out


if __name__ == "__main__":
    main()
