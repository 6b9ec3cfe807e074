"""Benchmark explanation quality: each metric's cost per decision beside the cost of the
explanation itself, on the synthetic lender (HGB, TreeSHAP) and German credit (logistic
regression, LinearSHAP); and the nightly flow's extra wall time with faithfulness on.

    python bench/explanation_quality.py [--decisions 1000] [--night-rows 20000] [--workers 2]
        [--skip-flow] [--out bench/out/explanation_quality.json]

Per-decision costs are measured in this process, single-threaded (threadpoolctl), on the same
denied decisions for every metric. The flow comparison runs the nightly flow on one demo night
twice, recomputing every chunk each time: faithfulness off, then on (stability and explainer
agreement samples off in both, so the difference is faithfulness alone); then off again, to
show the noise of the box.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import flows  # noqa: F401 - quiet Prefect defaults before it is imported


def _per(seconds: float, n: int) -> float:
    return seconds / max(n, 1)


def metric_costs(model: Any, train: Any, rows: Any, *, perm_rows: int, stab_rows: int) -> dict:
    """Seconds per decision of the explanation and of each quality metric on ``rows``."""
    import numpy as np

    from governance.explain.agreement import agreement, ndcg_drift
    from governance.explain.explainer import Explainer, is_tree_model, top_reasons
    from governance.explain.explanation_stability import (
        StabilitySettings,
        neighbourhood_std,
        relative_stability,
    )
    from governance.explain.faithfulness import FaithfulnessSettings, faithfulness
    from governance.explain.perturbation import FeatureSpace
    from governance.retraining.stability_score import feature_scale

    explainer = Explainer(model, train, seed=0)
    keys = [f"d{i}" for i in range(len(rows))]
    X = model.matrix(rows)
    out: dict[str, Any] = {"explainer": explainer.config.explainer, "kind": explainer.kind}
    t = time.perf_counter()
    values = explainer.explain(rows).values
    out["explain"] = _per(time.perf_counter() - t, len(rows))
    reasons, _ = top_reasons(values)
    space = FeatureSpace.from_schema(model.schema, feature_scale(model.schema, train))
    bg = model.matrix(explainer.background)
    for label, settings, background in (
        ("pgi_pgu_openxai", FaithfulnessSettings(random_control=False, background=False), None),
        ("pgi_pgu_openxai_random", FaithfulnessSettings(background=False), None),
        ("pgi_pgu_all_nightly", FaithfulnessSettings(), bg),
    ):
        model.stats.reset()
        t = time.perf_counter()
        faithfulness(model.score, X, reasons, space, keys, settings, background=background)
        out[label] = _per(time.perf_counter() - t, len(rows))
        out[f"{label}_model_calls"] = model.stats.calls
    m = min(stab_rows, len(rows))
    stab = StabilitySettings(std=neighbourhood_std(is_tree_model(model)))

    def explain(M: np.ndarray) -> np.ndarray:
        return explainer.explain(model.frame(M)).values

    t = time.perf_counter()
    relative_stability(
        model.score, model.threshold, explain, X[:m], values[:m], keys[:m], space, stab
    )
    out["ris_ros"] = _per(time.perf_counter() - t, m)
    out["ris_ros_rows"] = m
    out["ris_ros_std"] = stab.std
    perm = Explainer(model, train, seed=0, kind="permutation")
    perm.explain(rows.head(1))  # shap compiles on first use; that one-off is not per decision
    k = min(perm_rows, len(rows))
    t = time.perf_counter()
    other = perm.explain(rows.head(k)).values
    out["permutation_explain"] = _per(time.perf_counter() - t, k)
    out["permutation_rows"] = k
    t = time.perf_counter()
    agreement(values[:k], other)
    agreement(-values, np.abs(values))  # the responsiveness comparison's shape, no model call
    ndcg_drift(np.abs(values).mean(axis=0), np.abs(values[::-1]).mean(axis=0))
    out["agreement_functions"] = _per(time.perf_counter() - t, len(rows) + k)
    return out


def synthetic_case(n: int, perm_rows: int, stab_rows: int) -> dict:
    from governance.data.synthetic import FAVOURABLE, LABEL, SYNTHETIC_SCHEMA, generate_population
    from governance.demo import DEMO_RECIPE
    from governance.registry.model import DecisionModel

    pop = generate_population(30_000 + 6 * n, seed=0)
    train = pop.iloc[:30_000]
    est = DEMO_RECIPE.fit(SYNTHETIC_SCHEMA, train, train[LABEL].to_numpy())
    model = DecisionModel(est, SYNTHETIC_SCHEMA, FAVOURABLE, 0.5)
    rest = pop.iloc[30_000:]
    denied = rest.loc[~model.approve(rest)].head(n).reset_index(drop=True)
    out = metric_costs(model, train, denied, perm_rows=perm_rows, stab_rows=stab_rows)
    return {"data": "synthetic lender", "model": "hist_gradient_boosting", "rows": len(denied),
            **out}  # fmt: skip


def german_case(perm_rows: int, stab_rows: int) -> dict | None:
    from governance.data.real import load_german
    from governance.exceptions import DatasetUnavailable
    from governance.registry.model import DecisionModel
    from governance.registry.training import TrainingRecipe

    try:
        data = load_german()
    except DatasetUnavailable as exc:
        print(f"German credit skipped: {exc}")
        return None
    est = TrainingRecipe("logistic_regression", {}, seed=0).fit(data.schema, data.X, data.y)
    model = DecisionModel(est, data.schema, 1, 0.5)
    denied = data.X.loc[~model.approve(data.X)].reset_index(drop=True)
    out = metric_costs(model, data.X, denied, perm_rows=perm_rows, stab_rows=stab_rows)
    return {"data": "German credit (1,000 rows)", "model": "logistic_regression",
            "rows": len(denied), **out}  # fmt: skip


def flow_overhead(rows: int, workers: int, chunk_rows: int) -> dict:
    from flows.nightly import nightly_governance
    from flows.runtime import prefect_api, task_runner
    from governance.demo import prepare_demo

    home = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    night = date(2026, 11, 2)
    prepare_demo(home, rows_per_night=rows, nights=[night])
    flow = nightly_governance.with_options(task_runner=task_runner(None, workers))
    runs = []
    with prefect_api():
        for faith in (False, True, False):
            t = time.perf_counter()
            s = flow(
                night=night, home=str(home), chunk_rows=chunk_rows, force=True,
                faithfulness=faith, stability_sample=0, agreement_sample=0, deletions=False,
            )  # fmt: skip
            runs.append(
                {
                    "faithfulness": faith,
                    "flow_call_s": time.perf_counter() - t,
                    "wall_s": s["timings"]["wall"],
                    "fanout_wall_s": s["timings"]["fanout_wall"],
                    "worker_s": {
                        k: s["timings"].get(k, 0.0)
                        for k in ("explain", "recourse", "faithfulness", "store")
                    },
                    "denied": s["counts"].get("denied"),
                }
            )
    off = min(r["fanout_wall_s"] for r in runs if not r["faithfulness"])
    on = next(r["fanout_wall_s"] for r in runs if r["faithfulness"])
    return {"rows": rows, "workers": workers, "runs": runs,
            "extra_fanout_wall": on / off - 1}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=1000, help="denied decisions per data set")
    ap.add_argument("--perm-rows", type=int, default=20, help="rows for the permutation explainer")
    ap.add_argument("--stab-rows", type=int, default=100, help="rows for RIS and ROS")
    ap.add_argument("--night-rows", type=int, default=20_000, help="decisions in the flow night")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk-rows", type=int, default=5_000)
    ap.add_argument("--skip-flow", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("bench/out/explanation_quality.json"))
    args = ap.parse_args()

    from threadpoolctl import threadpool_limits

    cases = []
    with threadpool_limits(1):
        cases.append(synthetic_case(args.decisions, args.perm_rows, args.stab_rows))
        german = german_case(args.perm_rows, args.stab_rows)
        if german:
            cases.append(german)
    print("\nSeconds per denied decision, single-threaded (ratio: cost / explanation's cost)")
    labels = [
        ("explanation (production explainer)", "explain"),
        ("PGI+PGU, OpenXAI perturbation", "pgi_pgu_openxai"),
        ("  + random control", "pgi_pgu_openxai_random"),
        ("  + background replacement (nightly)", "pgi_pgu_all_nightly"),
        ("RIS+ROS (per sampled decision)", "ris_ros"),
        ("permutation explainer (agreement b)", "permutation_explain"),
        ("agreement functions (a, b, c)", "agreement_functions"),
    ]
    header = f"{'':38}" + "".join(f"{c['model'][:18]:>22}" for c in cases)
    print(header)
    for label, key in labels:
        cells = "".join(
            f"{c[key] * 1e3:>12.3f} ms {c[key] / c['explain']:>6.1f}x" for c in cases
        )
        print(f"{label:38}{cells}")
    print(
        "rows: " + "; ".join(
            f"{c['data']}: {c['rows']} denied, RIS/ROS on {c['ris_ros_rows']} "
            f"(neighbourhood std {c['ris_ros_std']:g}), permutation on {c['permutation_rows']}"
            for c in cases
        )
    )  # fmt: skip
    result: dict[str, Any] = {"per_decision": cases}
    if not args.skip_flow:
        flow = flow_overhead(args.night_rows, args.workers, args.chunk_rows)
        result["flow"] = flow
        print(f"\nnightly flow, {args.night_rows:,} decisions, {args.workers} workers:")
        for r in flow["runs"]:
            w = r["worker_s"]
            print(
                f"  faithfulness {'on ' if r['faithfulness'] else 'off'}: fan-out wall "
                f"{r['fanout_wall_s']:6.1f} s, flow wall {r['wall_s']:6.1f} s; worker-s explain "
                f"{w['explain']:.1f}, recourse {w['recourse']:.1f}, faithfulness "
                f"{w['faithfulness']:.1f}, store {w['store']:.1f}"
            )
        print(
            f"  extra fan-out wall time with faithfulness on: {flow['extra_fanout_wall']:+.1%} "
            "(against the faster run without; goal under +25%)"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
