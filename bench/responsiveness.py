"""Side-by-side benchmark: our responsiveness scores and recourse verdicts against reachml.

For each case (German credit with logistic regression and a random forest; HELOC with logistic
regression and a gradient-boosting ensemble; the synthetic lending population with a
gradient-boosting model) it trains a seeded model, samples denied rows, runs our
``responsiveness`` + ``find_recourse`` on them, then reachml 0.2.0a1 on the same model file,
action set and rows (bench/reachml/runner.py in bench/.reachml-venv, one subprocess per case and
semantics), and prints one table per semantics:

    persons, persons/s (ours, reachml), ratio of seconds per person (reachml / ours), share of our
    wall time inside the model's predict (DecisionModel.stats), agreement of mu (max |diff|, share
    of entries equal to 1e-9) and of fixed flags (share of rows equal), fixed counts.

reachml's time is its own per-person loop (scores + reachable-set enumeration), without process
start-up or model loading. Aims: identical verdicts, >= 50x faster per person, >= half
of our wall time inside model calls.

HELOC: every actionable feature is an integer, so reachml enumerates each single-feature set
exactly and the scores must agree exactly. reachml cannot give verdicts there: its
``ReachableSetEnumerator`` materialises the product of the per-part reachable sets (about 10^15
points per person for this action set), so the runner is asked for scores only, and the
verdict check is the one reachml's scores imply: a feature with mu > 0 proves that an approved
point is reachable, so every such person must get ``recourse`` from our search ("implied").
The ratio is then taken on scores alone (reachml's scores against our ``responsiveness``).

Usage:
    .venv/bin/python bench/responsiveness.py [--n-rows 40] [--n-heloc-rows 12]
        [--n-synthetic-rows 10] [--cases ...] [--reachml-solver cplex]
        [--semantics paper,release] [--reachml-python PATH] [--no-reachml] [--out FILE]

Needs bench/reachml/setup_env.sh for the reachml side (run automatically when missing; or
``--reachml-python`` / $REACHML_PYTHON naming another such venv's python) and
$GOVERNANCE_SHARED_DATA (or ../shared/data) for German credit and HELOC.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from governance.registry.model import DecisionModel  # noqa: E402
from governance.registry.training import TrainingRecipe  # noqa: E402

RUNNER = ROOT / "bench" / "reachml" / "runner.py"
SETUP = ROOT / "bench" / "reachml" / "setup_env.sh"
VENV_PY = ROOT / "bench" / ".reachml-venv" / "bin" / "python"
ACTION_SETS = ROOT / "governance" / "recourse" / "action_sets"
SEED = 2338
RECIPES = {
    "lr": TrainingRecipe("logistic_regression", {"C": 1.0, "max_iter": 5000}, seed=SEED),
    "rf": TrainingRecipe(
        "random_forest", {"n_estimators": 100, "min_samples_leaf": 5, "n_jobs": 1}, seed=SEED
    ),
    "hgb": TrainingRecipe("hist_gradient_boosting", {"max_iter": 100}, seed=SEED),
}
CASES = ("german_lr", "german_rf", "heloc_lr", "heloc_hgb", "synthetic_hgb")


@dataclass
class Case:
    """One model, its action set and the denied rows both tools score."""

    name: str
    model: DecisionModel
    action_set_path: Path
    X: np.ndarray
    row_ids: np.ndarray
    reference: np.ndarray  # training rows, for the cost
    reachml_what: str = "both"  # "scores" where reachml cannot enumerate full reachable sets
    notes: list[str] = field(default_factory=list)


# -- cases ---------------------------------------------------------------------------------------


def _denied_sample(model: DecisionModel, M: np.ndarray, n: int, seed: int) -> np.ndarray:
    denied = np.flatnonzero(~model.approve(M))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(denied, size=min(n, len(denied)), replace=False))


def real_case(
    name: str, ds: Any, action_set: str, kind: str, n_rows: int, **extra: Any
) -> Case:
    """A real data set's case: the recipe fitted on a seeded 80% split, a seeded sample of the
    rows it denies."""
    rng = np.random.default_rng(SEED)
    train = np.sort(rng.permutation(len(ds.X))[: int(0.8 * len(ds.X))])
    pipe = RECIPES[kind].fit(ds.schema, ds.X.iloc[train], ds.y[train])
    model = DecisionModel(pipe, ds.schema, favourable_class=1, threshold=0.5, name=f"{name}_{kind}")
    M = model.matrix(ds.X)
    rows = _denied_sample(model, M, n_rows, SEED)
    return Case(f"{name}_{kind}", model, ACTION_SETS / action_set, M[rows], rows, M[train],
                **extra)


def german_case(kind: str, n_rows: int) -> Case:
    from governance.data.real import load_german

    return real_case("german", load_german("processed"), "german_credit.json", kind, n_rows)


def heloc_case(kind: str, n_rows: int) -> Case:
    from governance.data.real import load_heloc

    return real_case("heloc", load_heloc(), "heloc.json", kind, n_rows, reachml_what="scores")


def synthetic_case(kind: str, n_rows: int, n_train: int) -> Case:
    from governance.data.synthetic import LABEL, SYNTHETIC_SCHEMA, generate_population

    df = generate_population(n_train, seed=SEED)
    pipe = RECIPES[kind].fit(SYNTHETIC_SCHEMA, df, df[LABEL])
    model = DecisionModel(pipe, SYNTHETIC_SCHEMA, favourable_class=1, threshold=0.5,
                          name=f"synthetic_{kind}")
    fresh = generate_population(20 * n_rows, seed=SEED, start_id=n_train)  # unseen applicants
    M = model.matrix(fresh)
    rows = _denied_sample(model, M, n_rows, SEED)
    return Case(f"synthetic_{kind}", model, ACTION_SETS / "synthetic_lending.json", M[rows],
                rows + n_train, model.matrix(df))


# -- the two tools ---------------------------------------------------------------------------------


def run_ours(case: Case, n_samples: int, max_points: int, seed: int,
             semantics: str = "paper") -> dict:
    """Our scores and verdicts, timed, with the share of time inside the model's predict."""
    # imported by name: governance.recourse may not exist yet when this script is written
    ActionSet = importlib.import_module("governance.recourse.action_set").ActionSet
    PercentileShiftCost = importlib.import_module("governance.recourse.costs").PercentileShiftCost
    find_recourse = importlib.import_module("governance.recourse.search").find_recourse
    responsiveness = importlib.import_module("governance.recourse.scoring").responsiveness

    A = ActionSet.from_json(case.action_set_path)
    cost = PercentileShiftCost.fit(case.reference, case.model.schema)
    warm = case.X[:2]  # first calls pay one-off costs (compilation caches, lazy imports)
    responsiveness(case.model, A, warm, n_samples=n_samples, seed=seed, semantics=semantics)
    find_recourse(case.model, A, warm, cost, max_points=max_points)
    case.model.stats.reset()
    t0 = time.perf_counter()
    r = responsiveness(case.model, A, case.X, n_samples=n_samples, seed=seed,
                       semantics=semantics)
    t1 = time.perf_counter()
    rc = find_recourse(case.model, A, case.X, cost, max_points=max_points)
    t2 = time.perf_counter()
    wall = t2 - t0
    return {
        "feature_names": list(r.feature_names),
        "mu": np.asarray(r.mu, dtype=float),
        "status": np.asarray(rc.status).astype(str),
        "seconds": wall,
        "seconds_scores": t1 - t0,
        "seconds_verdicts": t2 - t1,
        "predict_seconds": case.model.stats.seconds,
        "predict_calls": case.model.stats.calls,
        "predict_rows": case.model.stats.rows,
    }


def run_reachml(case: Case, solver: str, semantics: str, timeout: float, n_samples: int,
                max_points: int, seed: int, python: Path = VENV_PY) -> dict:
    """reachml on the same model file, action set and rows; {'error': ...} when it cannot run."""
    if not python.exists():
        if python != VENV_PY:
            return {"error": f"no reachml python at {python}"}
        print("bench: reachml venv missing, running setup_env.sh", flush=True)
        subprocess.run(["bash", str(SETUP)], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        ex, out = Path(tmp) / "in", Path(tmp) / "out"
        ex.mkdir()
        sio.dump(case.model.estimator, ex / "model.skops")
        meta = {"features": case.model.schema.names,
                "favourable_class": case.model.favourable_class,
                "threshold": case.model.threshold, "schema": case.model.schema.to_list()}
        (ex / "model.json").write_text(json.dumps(meta))
        shutil.copyfile(case.action_set_path, ex / "action_set.json")
        data = pd.DataFrame(case.X, columns=case.model.schema.names)
        data.insert(0, "row", case.row_ids)
        data.to_csv(ex / "data.csv", index=False, float_format="%.17g")
        cmd = [str(python), str(RUNNER), str(ex), str(out), "--solver", solver,
               "--semantics", semantics, "--n-samples", str(n_samples), "--seed", str(seed),
               "--max-points", str(max_points), "--what", case.reachml_what]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s"}
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            return {"error": last}
        timing = json.loads((out / "timing.json").read_text())
        scores = pd.read_csv(out / "scores.csv")
        verdicts = pd.read_csv(out / "verdicts.csv") if "verdicts" in timing else None
    names = case.model.schema.names
    mu = scores.pivot(index="row", columns="feature", values="mu").loc[case.row_ids, names]
    if verdicts is None:
        timing["verdicts"] = {"method": "not_run_enumeration"}
        status = np.full(len(case.row_ids), "not_run")
    else:
        status = verdicts.set_index("row").loc[case.row_ids, "status"].to_numpy().astype(str)
    return {"timing": timing, "mu": mu.to_numpy(dtype=float), "status": status}


# -- report ----------------------------------------------------------------------------------------


def compare(case: Case, ours: dict | None, peer: dict | None) -> dict:
    n = len(case.X)
    out: dict = {"case": case.name, "persons": n}
    if ours is not None:
        out["ours_per_s"] = n / ours["seconds"] if ours["seconds"] > 0 else float("inf")
        out["predict_share"] = ours["predict_seconds"] / ours["seconds"]
        out["ours_fixed"] = int(np.sum(ours["status"] == "fixed"))
        out["ours_undetermined"] = int(np.sum(ours["status"] == "undetermined"))
    if peer is not None and "error" not in peer:
        t = peer["timing"]
        out["reachml_per_s"] = n / t["seconds_total"]
        out["reachml_method"] = t.get("scores", {}).get("method", "")
        verdicts_run = not t.get("verdicts", {}).get("method", "").startswith("not_run")
        out["reachml_verdicts"] = t.get("verdicts", {}).get("method", "")
        if verdicts_run:
            out["reachml_fixed"] = int(np.sum(peer["status"] == "fixed"))
        if ours is not None:
            out["ratio"] = (t["seconds_total"] / n) / (ours["seconds"] / n)
            order = [ours["feature_names"].index(f) for f in case.model.schema.names]
            diff = np.abs(ours["mu"][:, order] - peer["mu"])
            out["mu_max_diff"] = float(diff.max()) if diff.size else 0.0
            out["mu_share_equal"] = float(np.mean(diff <= 1e-9)) if diff.size else 1.0
            if verdicts_run:
                out["fixed_share_equal"] = float(
                    np.mean((ours["status"] == "fixed") == (peer["status"] == "fixed"))
                )
                out["status_share_equal"] = float(np.mean(ours["status"] == peer["status"]))
            else:  # reachml computed scores only: compare like with like
                out["ratio_scores_only"] = (t["seconds_total"] / n) / (ours["seconds_scores"] / n)
                # a feature reachml scores mu > 0 proves an approved reachable point exists
                implied = np.any(peer["mu"] > 0, axis=1)
                out["implied_recourse"] = int(implied.sum())
                out["implied_agree"] = int(np.sum(ours["status"][implied] == "recourse"))
                out["ours_recourse"] = int(np.sum(ours["status"] == "recourse"))
    elif peer is not None:
        out["reachml_error"] = peer["error"]
    return out


def print_table(rows: list[dict], solver: str, semantics: str) -> None:
    """One line per case for one reachml semantics."""
    def f(v, fmt):
        width = int(fmt.split(".")[0]) if fmt[0].isdigit() else 0
        return "-".rjust(width) if v is None else format(v, fmt)

    head = (f"{'case':<15} {'persons':>7} {'ours p/s':>9} {'reachml p/s':>11} {'ratio':>7} "
            f"{'predict%':>8} {'mu maxdiff':>10} {'mu =':>6} {'fixed =':>7} {'fixed o/r':>9}")
    print(f"\nreachml 0.2.0a1, solver={solver}, semantics={semantics}")
    print(head)
    print("-" * len(head))
    for r in rows:
        fixed = (f"{r.get('ours_fixed', '-')}/{r.get('reachml_fixed', '-')}")
        print(f"{r['case']:<15} {r['persons']:>7} {f(r.get('ours_per_s'), '9.1f')} "
              f"{f(r.get('reachml_per_s'), '11.2f')} {f(r.get('ratio'), '7.1f')} "
              f"{f(100 * r['predict_share'] if 'predict_share' in r else None, '7.0f')}% "
              f"{f(r.get('mu_max_diff'), '10.2g')} {f(r.get('mu_share_equal'), '6.3f')} "
              f"{f(r.get('fixed_share_equal'), '7.3f')} {fixed:>9}")
        if "ours_error" in r:
            print(f"{'':<15} ours failed: {r['ours_error']}")
        if "reachml_error" in r:
            print(f"{'':<15} reachml not run: {r['reachml_error']}")
        if r.get("reachml_method") == "sample":
            print(f"{'':<15} reachml sampled float features (its own random draws, continuous "
                  "rather than on our step grid): mu agrees only roughly")
        if r.get("reachml_verdicts") == "not_run_enumeration":
            print(f"{'':<15} reachml verdicts not run (its enumerator builds the product of the "
                  "per-part reachable sets, ~10^15 points per person); ratio on scores alone: "
                  f"{f(r.get('ratio_scores_only'), '.1f')}")
            print(f"{'':<15} implied by reachml's scores (some mu > 0): recourse for "
                  f"{r.get('implied_recourse')}; ours 'recourse' for {r.get('implied_agree')} of "
                  f"them ({r.get('ours_recourse')} of {r['persons']} in all)")
        if r.get("reachml_verdicts") == "not_run":
            print(f"{'':<15} reachml verdicts not run (float features: reachml can only sample "
                  "reachable sets, and its sampler does not finish on linked parts); ratio "
                  f"on scores alone: {f(r.get('ratio_scores_only'), '.1f')}")
        for note in r.get("notes", []):
            print(f"{'':<15} {note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES),
                    help=f"comma-separated subset of {', '.join(CASES)}")
    ap.add_argument("--n-rows", type=int, default=40, help="denied rows per German case")
    ap.add_argument("--n-heloc-rows", type=int, default=12,
                    help="denied rows per HELOC case (reachml needs seconds per person there)")
    ap.add_argument("--n-synthetic-rows", type=int, default=10)
    ap.add_argument("--n-synthetic-train", type=int, default=5000)
    ap.add_argument("--n-samples", type=int, default=500, help="draws per float feature")
    ap.add_argument("--max-points", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reachml-solver", default="cplex", choices=("cplex", "scip"))
    ap.add_argument("--semantics", "--reachml-semantics", dest="semantics", default="paper",
                    help="comma-separated: paper, release (ours and reachml's, run alike)")
    ap.add_argument("--reachml-python", type=Path,
                    default=Path(os.environ.get("REACHML_PYTHON", VENV_PY)),
                    help="python of a venv made by bench/reachml/setup_env.sh")
    ap.add_argument("--reachml-timeout", type=float, default=600.0, help="seconds per case")
    ap.add_argument("--no-reachml", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "responsiveness.json")
    args = ap.parse_args(argv)

    missing = []
    for mod in (
        "governance.recourse.scoring",
        "governance.recourse.search",
        "governance.recourse.costs",
        "governance.recourse.action_set",
    ):
        try:
            importlib.import_module(mod)
        except ImportError as exc:
            missing.append(f"{mod} ({exc})")
    if missing:
        print("bench: our implementation is not importable yet: " + "; ".join(missing))
        if args.no_reachml:
            return 2

    semantics = [m.strip() for m in args.semantics.split(",") if m.strip()]
    if not semantics or set(semantics) - {"paper", "release"}:
        raise SystemExit(f"--semantics takes paper and/or release; got {args.semantics!r}")
    rows: dict[str, list[dict]] = {m: [] for m in semantics}
    for name in [c.strip() for c in args.cases.split(",") if c.strip()]:
        if name not in CASES:
            raise SystemExit(f"unknown case {name!r}; expected one of {', '.join(CASES)}")
        source, kind = name.split("_")
        try:
            if source == "german":
                case = german_case(kind, args.n_rows)
            elif source == "heloc":
                case = heloc_case(kind, args.n_heloc_rows)
            else:
                case = synthetic_case(kind, args.n_synthetic_rows, args.n_synthetic_train)
        except Exception as exc:  # a missing data folder or action set skips the case
            print(f"bench: {name} skipped: {type(exc).__name__}: {exc}")
            continue
        if not case.action_set_path.exists():
            print(f"bench: {name} skipped: no action set {case.action_set_path}")
            continue
        print(f"bench: {name}: {len(case.X)} denied rows", flush=True)
        for sem in semantics:
            ours, ours_error = None, None
            if not missing:
                try:
                    ours = run_ours(case, args.n_samples, args.max_points, args.seed, sem)
                except Exception as exc:  # report and go on with the other cases and reachml
                    ours_error = f"{type(exc).__name__}: {exc}"
                    print(f"bench: {name}: our implementation failed: {ours_error}", flush=True)
            peer = None
            if not args.no_reachml:
                peer = run_reachml(case, args.reachml_solver, sem, args.reachml_timeout,
                                   args.n_samples, args.max_points, args.seed,
                                   args.reachml_python)
            row = compare(case, ours, peer)
            row["semantics"] = sem
            if ours_error:
                row["ours_error"] = ours_error
            row["notes"] = case.notes
            rows[sem].append(row)
            print(f"bench: {name} ({sem}) done", flush=True)
    for sem in semantics:
        print_table(rows[sem], args.reachml_solver, sem)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1, default=float) + "\n")
    print(f"\nbench: results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
