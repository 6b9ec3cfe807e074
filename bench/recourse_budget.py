"""The recourse search's budget: how much issued recourse is proven minimal, and at what cost.

For each data set (German credit, HELOC, Give Me Some Credit, the synthetic demo lender) it
trains the demo's model recipe (histogram gradient boosting, 100 trees of 15 leaves), takes a
seeded sample of the people the model denies, and runs ``find_recourse`` at every budget
(``max_points``) of ``--budgets``; in the same run it runs the search as it was before the
greedy fallback changed (``governance/recourse/search.py`` at ``--baseline-commit``, loaded
from git) at its default budget, 512: that is "today's time". Per data set and budget it
prints, over the denied people:

- ``rec``: share issued a recourse; ``proven``: share of those whose cost is proven minimal
  (on the candidate grid, ``complete``); ``in A``: share of those proven minimal over the
  whole action set (no float feature could move); ``fixed``, ``undet``: verdict shares;
- ``rows/p``: model rows per person; ``ms/p``: milliseconds of one core per person; ``x base``:
  time relative to the baseline in the same run; ``cost``: mean cost of the issued recourse.

Then the decision rule: the smallest budget at which every data set has at least 99% of its
issued recourse proven minimal and costs at most 1.5x the baseline's time; if there is none,
the default stays and the script says so. For the synthetic lender it also prints the figures
the search module's docstring cites (``--synthetic-rows`` denied people, default 1,000): the
share of the largest budget's proven minima that each budget reaches (same cost).

Usage:
    .venv/bin/python bench/recourse_budget.py [--rows 300] [--synthetic-rows 1000]
        [--budgets 64 128 512 2048 8192] [--cases german heloc givemecredit synthetic]
        [--baseline-commit 0137798] [--out bench/out]

Needs $GOVERNANCE_SHARED_DATA (or ../shared/data) for the real data sets; a data set whose
files are absent is left out with a note. Writes ``recourse_budget.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from governance.demo import DEMO_RECIPE  # noqa: E402
from governance.exceptions import DatasetUnavailable  # noqa: E402
from governance.recourse.action_set import BUNDLED, ActionSet  # noqa: E402
from governance.recourse.costs import PercentileShiftCost  # noqa: E402
from governance.recourse.search import MAX_POINTS, find_recourse  # noqa: E402
from governance.registry.model import DecisionModel  # noqa: E402
from governance.registry.training import TrainingRecipe  # noqa: E402

SEED = 2338
TARGET_PROVEN = 0.99
TIME_LIMIT = 1.5
# the demo's recipe without its label column: every data set gets the same model family
RECIPE = TrainingRecipe(DEMO_RECIPE.estimator, DEMO_RECIPE.params, seed=SEED)


@dataclass
class Case:
    name: str
    model: DecisionModel
    action_set: ActionSet
    X: np.ndarray  # denied people, schema order
    reference: np.ndarray  # training rows, for the cost


def _denied(model: DecisionModel, M: np.ndarray, n: int) -> np.ndarray:
    rows = np.flatnonzero(~model.approve(M))
    rng = np.random.default_rng(SEED)
    return M[np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False))]


def _real_case(name: str, ds, action_set: str, n: int) -> Case:
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(ds.X))
    cut = int(0.8 * len(order))
    train, rest = np.sort(order[:cut]), np.sort(order[cut:])
    model = DecisionModel(RECIPE.fit(ds.schema, ds.X.iloc[train], ds.y[train]), ds.schema)
    A = ActionSet.from_json(BUNDLED / action_set)
    M = model.matrix(ds.X)
    pool = rest if (~model.approve(M[rest])).sum() >= n else np.arange(len(M))
    return Case(name, model, A, _denied(model, M[pool], n), M[train])


def build_case(name: str, n: int, n_synthetic: int) -> Case:
    if name == "german":
        from governance.data.real import load_german

        return _real_case(name, load_german("processed"), "german_credit.json", n)
    if name == "heloc":
        from governance.data.real import load_heloc

        return _real_case(name, load_heloc(), "heloc.json", n)
    if name == "givemecredit":
        from governance.data.real import load_givemecredit

        return _real_case(name, load_givemecredit(n=40_000, seed=SEED), "givemecredit.json", n)
    if name == "synthetic":
        from governance.data.synthetic import LABEL, SYNTHETIC_SCHEMA, generate_population

        pop = generate_population(30_000, seed=0)  # the demo's v1 training set size
        model = DecisionModel(
            DEMO_RECIPE.fit(SYNTHETIC_SCHEMA, pop, pop[LABEL].to_numpy()), SYNTHETIC_SCHEMA
        )
        fresh = generate_population(12 * n_synthetic, seed=SEED, start_id=10_000_000)
        A = ActionSet.from_json(BUNDLED / "synthetic_lending.json")
        return Case(name, model, A, _denied(model, model.matrix(fresh), n_synthetic),
                    model.matrix(pop))
    raise SystemExit(f"unknown case {name!r}")


def baseline_module(commit: str):
    """``governance/recourse/search.py`` as it was at ``commit``, imported under another name."""
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:governance/recourse/search.py"],
        capture_output=True, text=True,
    )
    if src.returncode != 0:
        raise SystemExit(f"cannot read the baseline search at {commit}: {src.stderr.strip()}")
    path = Path(tempfile.mkdtemp()) / "search_baseline.py"
    path.write_text(src.stdout)
    spec = importlib.util.spec_from_file_location("search_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["search_baseline"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def measure(search, case: Case, cost, budget: int) -> dict:
    search(case.model, case.action_set, case.X[:2], cost, max_points=budget)  # warm caches
    t0 = time.perf_counter()
    r = search(case.model, case.action_set, case.X, cost, max_points=budget)
    seconds = time.perf_counter() - t0
    n = len(case.X)
    rec = r.status == "recourse"
    over = getattr(r, "minimal_over", None)
    in_a = int(np.sum(over == "action_set")) if over is not None else None
    return {
        "budget": budget,
        "persons": n,
        "recourse": int(rec.sum()),
        "proven": int((rec & r.complete).sum()),
        "proven_in_action_set": in_a,
        "fixed": int(np.sum(r.status == "fixed")),
        "undetermined": int(np.sum(r.status == "undetermined")),
        "rows_per_person": float(r.n_points.mean()),
        "ms_per_person": 1000 * seconds / n,
        "mean_cost": float(np.nanmean(r.cost)) if rec.any() else None,
        "cost": r.cost,
        "complete": r.complete & rec,
    }


def _share(a: int, b: int) -> str:
    return f"{a / b:6.1%}" if b else "     -"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=300, help="denied people per real data set")
    ap.add_argument("--synthetic-rows", type=int, default=1000)
    ap.add_argument("--budgets", type=int, nargs="+", default=[64, 128, 512, 2048, 8192])
    ap.add_argument("--cases", nargs="+", default=["german", "heloc", "givemecredit", "synthetic"])
    ap.add_argument("--baseline-commit", default="0137798",
                    help="commit whose search.py is today's baseline (the default budget, 512)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args(argv)
    budgets = sorted(set(args.budgets) | {MAX_POINTS})
    before = baseline_module(args.baseline_commit)
    print(f"recourse budget study, {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, "
          f"one thread; baseline: search.py at {args.baseline_commit}, budget 512")
    results: dict[str, list[dict]] = {}
    with threadpool_limits(1):
        for name in args.cases:
            try:
                case = build_case(name, args.rows, args.synthetic_rows)
            except DatasetUnavailable as exc:
                print(f"{name}: left out ({exc})")
                continue
            cost = PercentileShiftCost.fit(case.reference, case.model.schema)
            base = measure(before.find_recourse, case, cost, 512)
            rows = [dict(base, budget="before")]
            for b in budgets:
                rows.append(measure(find_recourse, case, cost, b))
            results[name] = rows
            print(f"\n{name}: {len(case.X)} denied people")
            print("budget     rec  proven   in A  fixed  undet   rows/p    ms/p  x base   cost")
            for r in rows:
                rel = r["ms_per_person"] / base["ms_per_person"]
                in_a = ("     -" if r["proven_in_action_set"] is None
                        else _share(r["proven_in_action_set"], r["recourse"]))
                print(f"{r['budget']!s:>6} {_share(r['recourse'], r['persons'])} "
                      f"{_share(r['proven'], r['recourse'])} {in_a} "
                      f"{_share(r['fixed'], r['persons'])} "
                      f"{_share(r['undetermined'], r['persons'])}"
                      f" {r['rows_per_person']:8.0f} {r['ms_per_person']:7.2f} {rel:6.2f}x "
                      f"{r['mean_cost'] if r['mean_cost'] is not None else float('nan'):6.3f}")
            # a larger budget must never do worse: budget 1 against the default, both searches
            for label, search, at_default in (
                ("before", before.find_recourse, rows[0]),
                ("now", find_recourse, next(r for r in rows if r["budget"] == MAX_POINTS)),
            ):
                one = measure(search, case, cost, 1)
                had = np.isfinite(one["cost"])
                lost = int((had & ~np.isfinite(at_default["cost"])).sum())
                dearer = int((had & (at_default["cost"] > one["cost"] + 1e-9)).sum())
                at_default[f"worse_than_budget_1_{label}"] = {"lost": lost, "costlier": dearer}
                print(f"{label}: budget {MAX_POINTS} does worse than budget 1 for {lost + dearer} "
                      f"of {len(case.X)} ({lost} lose their recourse, {dearer} get a costlier one)")
            top = rows[-1]
            for r in rows[1:]:
                same = top["complete"] & np.isclose(r["cost"], top["cost"], atol=1e-9,
                                                    equal_nan=False)
                r["reaches_top_minima"] = (float(same.sum() / top["complete"].sum())
                                           if top["complete"].any() else None)
            reached = ", ".join(
                f"{r['budget']}: {r['reaches_top_minima']:.0%}" for r in rows[1:]
                if r["reaches_top_minima"] is not None
            )
            print(f"share of the budget-{top['budget']} proven minima reached: {reached}")

    ok = []
    for b in budgets:
        fine = bool(results) and all(
            (r := next(x for x in rows if x["budget"] == b))["proven"]
            >= TARGET_PROVEN * max(r["recourse"], 1)
            and r["ms_per_person"] <= TIME_LIMIT * rows[0]["ms_per_person"]
            for rows in results.values()
        )
        if fine:
            ok.append(b)
    print()
    if ok:
        print(f"decision: budget {ok[0]} gives >= {TARGET_PROVEN:.0%} proven minimal on every data "
              f"set within {TIME_LIMIT}x today's time")
    else:
        print(f"decision: no budget gives >= {TARGET_PROVEN:.0%} proven minimal on every data set "
              f"within {TIME_LIMIT}x today's time; the default stays {MAX_POINTS}")
    args.out.mkdir(parents=True, exist_ok=True)
    clean = {k: [{kk: vv for kk, vv in r.items() if kk not in ("cost", "complete")} for r in v]
             for k, v in results.items()}
    (args.out / "recourse_budget.json").write_text(
        json.dumps({"results": clean, "decision": ok[0] if ok else None}, indent=1) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
