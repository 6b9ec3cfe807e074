"""Run the reachml peer (responsiveness scores, recourse verification) on rows exchanged as files.

This script runs INSIDE bench/.reachml-venv (see setup_env.sh), never in the project's .venv:
reachml pins numpy ~2.1.3 and pandas ~2.2.3. It imports nothing from the project.

Input folder:
    data.csv          rows to score, columns named as the model's features; an optional ``row``
                      column is carried through as the row id (default 0..n-1)
    action_set.json   the project's action-set format ("governance.action_set/1")
    model.skops       a fitted scikit-learn Pipeline that takes a frame of the model's features
    model.json        {"features": [...], "favourable_class": 1, "threshold": 0.5,
                      "schema": [FeatureSpec dicts]}; category features (immutable only) travel
                      in data.csv as integer codes into their schema categories

Output folder:
    scores.csv        row, feature, mu: reachml's responsiveness score of every feature
    verdicts.csv      row, pred, status (recourse | fixed | undetermined | not_run),
                      n_reachable, n_approved, complete
    timing.json       seconds in total and per person, split into scoring and verification,
                      time inside the model's predict, solver and package versions

Method, all through reachml's own API:
    scores:   ``ResponsivenessScorer(action_set, method="enumerate")`` when every actionable
              feature is discrete (else ``method="sample"``, seeded), ``scorer.score(x, predict)``
    verdicts: ``ReachableSetEnumerator(action_set, x, solver).enumerate(max_points)``; status is
              ``recourse`` when some reachable point other than x is approved, ``fixed`` when the
              enumeration is complete and none is, else ``undetermined``. Action sets with
              actionable float features cannot be enumerated; reachml would sample them with
              ``ReachableSetSampler``, whose rejection sampler for a joint discrete part draws
              every feature (immutable linkage targets included) uniformly over its whole grid
              and checks each draw with a MIP, so a linked part almost never accepts a draw.
              ``--sample-verdicts`` tries it anyway; by default verdicts are skipped there
              (status ``not_run``) and only scores are computed.

Solver: reachml chooses CPLEX whenever ``cplex`` is importable, and its SCIP backend itself needs
``cplex`` importable (a type check). For ``--solver scip`` the runner hides cplex while reachml is
imported, so SCIP becomes reachml's default everywhere (including calls that take no solver
argument), and lets the later type-check import succeed. The default is CPLEX: reachml 0.2.0a1's
SCIP backend keeps only the last DirectionalLinkage into a target that two linkages share.

Semantics: ``--semantics paper`` (default) restores the early stop of the single-feature action
search that 0.2.0a1 comments out (see ``use_paper_semantics``); ``release`` runs it as shipped.

Usage:
    python runner.py IN_DIR OUT_DIR [--solver cplex|scip] [--semantics paper|release]
                     [--max-points N] [--n-samples N] [--seed S] [--what both|scores|verdicts]
                     [--sample-verdicts]
    python runner.py --check [--solver ...] [--semantics ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

FORMAT = "governance.action_set/1"
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


class RunnerError(RuntimeError):
    """Raised when the inputs cannot be run through reachml as asked."""


# -- reachml import with a chosen default solver ----------------------------------------------


def import_reachml(solver: str):
    """Import reachml so that ``solver`` is its default MIP solver; return the module."""
    if solver not in ("scip", "cplex"):
        raise RunnerError(f"solver {solver!r} is not supported; expected 'scip' or 'cplex'")
    original = importlib.util.find_spec
    if solver == "scip":
        # reachml.utils picks CPLEX when find_spec("cplex") succeeds; hide it only for the import.
        def _find_spec(name, *args, **kwargs):
            return None if name == "cplex" else original(name, *args, **kwargs)

        importlib.util.find_spec = _find_spec
    try:
        import reachml
        from reachml import utils as rutils
    finally:
        importlib.util.find_spec = original
    if solver != rutils.DEFAULT_SOLVER:
        raise RunnerError(
            f"reachml chose solver {rutils.DEFAULT_SOLVER!r}, expected {solver!r}; "
            "is the solver package installed in this venv?"
        )
    return reachml


def use_paper_semantics(reachml) -> None:
    """Restore the early stop of reachml's single-feature action search (``--semantics paper``).

    In reachml 0.2.0a1 ``ResponsivenessScorer._find_actions`` has the line that stops the search
    once an action changes feature j alone commented out ("TODO: check if this is what we want"),
    so A_j(x) holds every feasible joint action with c_j = a_j. The code behind the ICLR 2025
    paper stopped there, and reachml's own tests/test_scorer.py still expect it (four thermometer
    dummies at 0: mu_1 = 1 with the stop, 0.5 without). This replacement is the released method
    with that one line active again; everything else is reachml's code path.
    """
    from reachml.mip import EnumeratorMIP
    from reachml.scoring import ResponsivenessScorer

    def _find_actions(self, x, aj, j, find_all=True):
        j_part = self.action_set.constraints.get_associated_features(j)
        if len(j_part) == 1:
            return aj * np.eye(len(x))[j]
        j_idx = np.where(np.array(j_part) == j)[0].item()
        R = EnumeratorMIP(action_set=self.action_set[j_part], x=x[j_part])
        R.add_linear_constraint(
            name=f"match_c[{j_idx}]", terms=[("c", j_idx, 1.0)], sense="E", rhs=float(aj)
        )
        R.solve_model()
        found = []
        while R.solution_exists:
            acts = R.current_solution
            if acts is None:
                break
            found.append(list(acts))
            if sum(map(bool, acts)) == 1 or not find_all:  # the line 0.2.0a1 comments out
                break
            R.remove_actions([acts])
        if not found:
            return np.array([])
        out = np.zeros((len(found), len(x)))
        out[:, j_part] = np.vstack(found)
        return out

    ResponsivenessScorer._find_actions = _find_actions


# -- model --------------------------------------------------------------------------------------


class Predictor:
    """Binary decision of the exchanged model as reachml expects: ``predict(X) -> {0, 1}``.

    1 means approved (P(favourable) >= threshold). Counts calls, rows and seconds inside the
    estimator so that the share of time spent in the model can be reported.
    """

    def __init__(self, estimator, features: list[str], favourable_class, threshold: float,
                 categories: dict[str, list[str]] | None = None):
        self.estimator = estimator
        self.features = list(features)
        self.threshold = float(threshold)
        # category features arrive as integer codes into these lists (the project's matrix form)
        self.categories = {k: np.asarray(v, dtype=object) for k, v in (categories or {}).items()}
        classes = [c.item() if hasattr(c, "item") else c for c in estimator.classes_]
        if favourable_class not in classes:
            raise RunnerError(
                f"favourable class {favourable_class!r} not in estimator classes {classes}"
            )
        self.index = classes.index(favourable_class)
        self.calls = 0
        self.rows = 0
        self.seconds = 0.0

    def predict(self, X) -> np.ndarray:
        M = np.atleast_2d(np.asarray(X, dtype=float))
        frame = pd.DataFrame(M, columns=self.features)
        for name, cats in self.categories.items():
            frame[name] = cats[frame[name].to_numpy().astype(np.int64)]
        t0 = time.perf_counter()
        p = self.estimator.predict_proba(frame)[:, self.index]
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.rows += len(frame)
        return (p >= self.threshold).astype(int)


def load_model(folder: Path) -> tuple[Predictor, dict]:
    """Load model.skops (types limited to scikit-learn/numpy/scipy) and model.json."""
    from skops.io import get_untrusted_types, load

    meta = json.loads((folder / "model.json").read_text())
    path = folder / "model.skops"
    untrusted = get_untrusted_types(file=path)
    bad = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if bad:
        raise RunnerError(f"model.skops holds types outside scikit-learn/numpy/scipy: {bad}")
    estimator = load(path, trusted=untrusted)
    cats = {f["name"]: f["categories"] for f in meta.get("schema", [])
            if f.get("dtype") == "category"}
    pred = Predictor(
        estimator, meta["features"], meta.get("favourable_class", 1), meta.get("threshold", 0.5),
        cats,
    )
    return pred, meta


# -- action set translation ---------------------------------------------------------------------


def _element(reachml, feat: dict):
    from reachml.action_element import (
        BooleanActionElement,
        FloatActionElement,
        IntegerActionElement,
    )

    name, kind = feat["name"], feat["type"]
    if kind == "bool":
        e = BooleanActionElement(name=name)
    elif kind == "int":
        e = IntegerActionElement(name=name, lb=float(feat["lb"]), ub=float(feat["ub"]))
        step = feat.get("step_size") or 1
        if step != int(step) or step < 1:
            raise RunnerError(
                f"feature {name!r}: reachml integer grids need a whole step_size >= 1, got {step}"
            )
        e.step_size = int(step)  # grid lb, lb + step, ..., as reachml's IntegerActionElement.grid
    elif kind == "float":
        # reachml fixes the float grid at 1e-4; step_size of our format is not used here.
        e = FloatActionElement(name=name, lb=float(feat["lb"]), ub=float(feat["ub"]))
    elif kind == "category" and not feat.get("actionable", True):
        # reachml has no categorical type; an immutable category travels as its integer code
        # (data.csv holds codes, Predictor decodes them) and never enters the enumeration.
        e = IntegerActionElement(name=name, lb=0.0, ub=float(len(feat["categories"]) - 1))
    else:
        raise RunnerError(f"feature {name!r}: type {kind!r} has no reachml equivalent")
    e.actionable = bool(feat.get("actionable", True))
    e.step_direction = int(feat.get("step_direction", 0) or 0)
    step_lb, step_ub = feat.get("step_lb"), feat.get("step_ub")
    e.step_lb = -float("inf") if step_lb is None else float(step_lb)
    e.step_ub = float("inf") if step_ub is None else float(step_ub)
    return e


_SENSE = {"==": "E", ">=": "G"}


def _constraint(reachml, con: dict):
    from reachml.constraints import (
        Condition,
        DirectionalLinkage,
        IfThenConstraint,
        OneHotEncoding,
        OrdinalEncoding,
        ThermometerEncoding,
    )

    kind = con["type"]
    if kind == "one_hot":
        return OneHotEncoding(
            names=con["names"], limit=int(con.get("limit", 1)),
            limit_type=con.get("limit_type", "equal"),
        )
    if kind == "ordinal":
        return OrdinalEncoding(
            names=con["names"], exhaustive=bool(con.get("exhaustive", True)),
            step_direction=int(con.get("step_direction", 0)),
        )
    if kind == "thermometer":
        return ThermometerEncoding(
            names=con["names"], step_direction=int(con.get("step_direction", 0))
        )
    if kind == "directional_linkage":
        return DirectionalLinkage(
            names=con["names"], scales=con.get("scales"),
            keep_bounds=bool(con.get("keep_bounds", False)),
        )
    if kind == "if_then":
        conds = []
        for part in ("if", "then"):
            c = con[part]
            if c["op"] not in _SENSE:
                raise RunnerError(
                    f"if_then {part} op {c['op']!r} has no reachml equivalent; expected one of "
                    f"{sorted(_SENSE)}"
                )
            conds.append(Condition(name=c["name"], sense=_SENSE[c["op"]], value=c["value"]))
        return IfThenConstraint(if_condition=conds[0], then_condition=conds[1])
    raise RunnerError(f"constraint type {kind!r} has no reachml equivalent")


def build_action_set(reachml, spec: dict, features: list[str]):
    """Translate the project's action-set JSON into a reachml ActionSet in model feature order.

    Returns the ActionSet and the constraints left out because they involve no actionable feature.
    """
    if spec.get("format") != FORMAT:
        raise RunnerError(f"action set format {spec.get('format')!r}; expected {FORMAT!r}")
    by_name = {f["name"]: f for f in spec["features"]}
    missing = [n for n in features if n not in by_name]
    if missing:
        raise RunnerError(f"action set lacks model features: {missing}")
    elements = {n: _element(reachml, by_name[n]) for n in features}
    A = reachml.ActionSet(
        X=None, names=list(features), indices={n: j for j, n in enumerate(features)},
        elements=elements,
    )
    actionable = {n for n, e in elements.items() if e.actionable}
    skipped = []
    for con in spec.get("constraints", []):
        if not actionable.intersection(con["names"]) and not (
            con["type"] == "if_then" and {con["if"]["name"], con["then"]["name"]} & actionable
        ):
            # Constraints among immutable features never enter reachml's enumeration (their
            # partition has no actionable feature), and ActionSet.validate checks them with the
            # immutable values zeroed, which fails an "equal" one-hot: leave them out.
            skipped.append(con["type"] + ":" + ",".join(con.get("names", [])))
            continue
        A.constraints.add(constraint=_constraint(reachml, con))
    return A, skipped


# -- the two computations -----------------------------------------------------------------------


def run_scores(reachml, A, X: np.ndarray, pred: Predictor, n_samples: int, seed: int):
    """Responsiveness scores, shape (n, d), and seconds per row."""
    method = "enumerate" if A.can_enumerate else "sample"
    scorer = reachml.ResponsivenessScorer(A, method=method)
    np.random.seed(seed)  # reachml's samplers draw from numpy's global state
    mu = np.zeros(X.shape, dtype=float)
    secs = np.zeros(len(X))
    kwargs = {} if method == "enumerate" else {"n": n_samples}
    for i, x in enumerate(X):
        t0 = time.perf_counter()
        mu[i] = scorer.score(x, pred.predict, target=1, **kwargs)
        secs[i] = time.perf_counter() - t0
    return mu, secs, method


def run_verdicts(reachml, A, X, pred, solver, max_points, n_samples, seed, sample=False):
    """Recourse verdict per row from reachml's reachable-set enumeration (or sampling)."""
    from reachml.sampling import ReachableSetSampler

    rows = []
    secs = np.zeros(len(X))
    if any(A.actionable) and not A.can_enumerate and not sample:
        fx = pred.predict(X)
        rows = [{"pred": int(f), "status": "not_run", "n_reachable": 0, "n_approved": 0,
                 "complete": False} for f in fx]
        return rows, secs
    for i, x in enumerate(X):
        t0 = time.perf_counter()
        if not any(A.actionable):
            P, complete = x.reshape(1, -1), True
        elif A.can_enumerate:
            E = reachml.ReachableSetEnumerator(action_set=A, x=x, solver=solver)
            E.enumerate(max_points=max_points)
            P, complete = E.reachable_points, bool(E.complete)
        else:
            S = ReachableSetSampler(action_set=A, x=x, solver=solver, seed=seed + i)
            P, complete = np.vstack([x, S.sample(n_samples)]), False
        moved = np.any(x != P, axis=1)
        approved = pred.predict(P).astype(bool)
        n_approved = int(np.sum(approved & moved))
        if n_approved > 0:
            status = "recourse"
        elif complete:
            status = "fixed"
        else:
            status = "undetermined"
        fx = int(pred.predict(x.reshape(1, -1))[0])
        secs[i] = time.perf_counter() - t0
        rows.append(
            {"pred": fx, "status": status, "n_reachable": len(P), "n_approved": n_approved,
             "complete": complete}
        )
    return rows, secs


# -- entry points -------------------------------------------------------------------------------


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("reachml", "numpy", "pandas", "scikit-learn", "skops", "pyscipopt", "cplex"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def run(in_dir: Path, out_dir: Path, solver: str, max_points: float, n_samples: int, seed: int,
        what: str = "both", semantics: str = "paper", sample_verdicts: bool = False) -> dict:
    """Run reachml on the exchanged folder and write scores, verdicts and timing."""
    reachml = import_reachml(solver)
    if semantics == "paper":
        use_paper_semantics(reachml)
    pred, meta = load_model(in_dir)
    features = list(meta["features"])
    data = pd.read_csv(in_dir / "data.csv")
    ids = data["row"].to_numpy() if "row" in data.columns else np.arange(len(data))
    X = data.loc[:, features].to_numpy(dtype=float)
    spec = json.loads((in_dir / "action_set.json").read_text())
    A, skipped = build_action_set(reachml, spec, features)
    if not A.validate(X, warn=False):
        bad = A.validate(X, warn=False, return_df=True)
        cols = [c for c in bad.columns if not bad[c].all()]
        raise RunnerError(f"rows violate the action set: {cols}")

    out_dir.mkdir(parents=True, exist_ok=True)
    timing = {"solver": solver, "semantics": semantics, "n_rows": int(len(X)),
              "n_features": len(features), "skipped_constraints": skipped,
              "versions": _versions()}
    t_all = time.perf_counter()
    if what in ("both", "scores"):
        pred.calls = pred.rows = 0
        pred.seconds = 0.0
        mu, s_secs, method = run_scores(reachml, A, X, pred, n_samples, seed)
        long = pd.DataFrame({
            "row": np.repeat(ids, len(features)),
            "feature": np.tile(features, len(X)),
            "mu": mu.ravel(),
        })
        long.to_csv(out_dir / "scores.csv", index=False, float_format="%.17g")
        timing["scores"] = {
            "method": method, "seconds": float(s_secs.sum()),
            "seconds_per_person": float(s_secs.mean()) if len(X) else 0.0,
            "predict_seconds": pred.seconds, "predict_calls": pred.calls,
            "predict_rows": pred.rows,
        }
    if what in ("both", "verdicts"):
        pred.calls = pred.rows = 0
        pred.seconds = 0.0
        rows, v_secs = run_verdicts(reachml, A, X, pred, solver, max_points, n_samples, seed,
                                    sample_verdicts)
        v = pd.DataFrame(rows)
        v.insert(0, "row", ids)
        v.to_csv(out_dir / "verdicts.csv", index=False)
        timing["verdicts"] = {
            "seconds": float(v_secs.sum()),
            "seconds_per_person": float(v_secs.mean()) if len(X) else 0.0,
            "predict_seconds": pred.seconds, "predict_calls": pred.calls,
            "predict_rows": pred.rows,
            "max_points": None if not np.isfinite(max_points) else int(max_points),
            "method": ("enumerate" if A.can_enumerate or not any(A.actionable)
                       else "sample" if sample_verdicts else "not_run"),
        }
    timing["seconds_total"] = time.perf_counter() - t_all
    timing["seconds_per_person"] = timing["seconds_total"] / max(len(X), 1)
    (out_dir / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    return timing


def check(solver: str, semantics: str) -> None:
    """Smoke test: reachml imports with the chosen solver and reproduces its own test vectors."""
    reachml = import_reachml(solver)
    if semantics == "paper":
        use_paper_semantics(reachml)
    # tests/test_scorer.py of reachml: x1 in {0..5}, x2 in {0,1}, f = 1 iff x1 > 2; mu_1(0,0) = 0.6
    X = pd.DataFrame({"x1": [0, 5], "x2": [0, 1]})
    A = reachml.ActionSet(X)

    class _F:
        @staticmethod
        def predict(Z):
            return (np.atleast_2d(Z)[:, 0] > 2).astype(int)

    scorer = reachml.ResponsivenessScorer(A, method="enumerate")
    mu = scorer.score(np.array([0.0, 0.0]), _F.predict, target=1)
    if not np.allclose(mu, [0.6, 0.0]):
        raise RunnerError(f"reachml smoke test gave mu={mu}, expected [0.6, 0]")
    # same file: four thermometer dummies, f = 1 iff the third is 0; at x = 0 the MIP path gives
    # mu = (1, 1/3, 0, 0) with the paper's early stop, (0.5, 1/3, 0, 0) as released
    from reachml.constraints import ThermometerEncoding

    names = [f"u_geq_{t}" for t in (25, 50, 75, 100)]
    T = reachml.ActionSet(pd.DataFrame(np.tril(np.ones((5, 4)), -1), columns=names))
    T.constraints.add(constraint=ThermometerEncoding(names=names))

    class _G:
        @staticmethod
        def predict(Z):
            return (np.atleast_2d(Z)[:, 2] == 0).astype(int)

    mu2 = reachml.ResponsivenessScorer(T, method="enumerate").score(np.zeros(4), _G.predict)
    want = [1.0 if semantics == "paper" else 0.5, 1 / 3, 0.0, 0.0]
    if not np.allclose(mu2, want):
        raise RunnerError(f"reachml thermometer smoke test gave mu={mu2}, expected {want}")
    print(f"runner check: reachml {metadata.version('reachml')} imports, solver={solver}, "
          f"semantics={semantics}, test vectors reproduced "
          f"(mu={mu.tolist()}, {np.round(mu2, 4).tolist()})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("in_dir", nargs="?", type=Path)
    p.add_argument("out_dir", nargs="?", type=Path)
    p.add_argument("--solver", default="cplex", choices=("scip", "cplex"),
                   help="MIP solver (default cplex: reachml 0.2.0a1's SCIP backend keeps only "
                        "the last DirectionalLinkage into a shared target)")
    p.add_argument("--semantics", default="paper", choices=("paper", "release"),
                   help="single-feature action search: 'paper' restores the early stop that "
                        "0.2.0a1 comments out (see use_paper_semantics); 'release' runs it as is")
    p.add_argument("--max-points", type=float, default=float("inf"),
                   help="cap on enumerated points per partition (default: none, exact)")
    p.add_argument("--n-samples", type=int, default=500,
                   help="samples per feature (scores) or per person (verdicts) for float features")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--what", default="both", choices=("both", "scores", "verdicts"))
    p.add_argument("--sample-verdicts", action="store_true",
                   help="for action sets with float features, sample reachable sets with "
                        "reachml's ReachableSetSampler (may not finish; see the module doc)")
    p.add_argument("--check", action="store_true", help="smoke-test the installation and exit")
    args = p.parse_args(argv)
    try:
        if args.check:
            check(args.solver, args.semantics)
            return 0
        if args.in_dir is None or args.out_dir is None:
            p.error("IN_DIR and OUT_DIR are required unless --check is given")
        t = run(args.in_dir, args.out_dir, args.solver, args.max_points, args.n_samples,
                args.seed, args.what, args.semantics, args.sample_verdicts)
    except RunnerError as exc:
        print(f"runner: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: t[k] for k in ("solver", "semantics", "n_rows", "seconds_per_person")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
