"""Profile one nightly chunk in one process: CPU seconds per stage and the share inside the model.

    python bench/profile_chunk.py [--rows 5000] [--home DIR] [--top 25] [--no-quality]

Runs :func:`governance.chunk.explain_chunk` on one chunk of the synthetic lender's night (the
demo model, its action set and cost) with every stage on: SHAP reasons, responsiveness,
verification and minimal-cost recourse, stability of the issued recourse, and explanation
quality unless ``--no-quality``. It runs single-threaded (``OMP_NUM_THREADS=1``, as a Dask
worker of the nightly flow does) under cProfile timed by process CPU time, so the figures hold
on a shared box where wall seconds do not. Printed: CPU seconds per stage, the CPU inside model
evaluation (scikit-learn's tree predictor, and the bit-exact tree replay where the search or
the stability score use it: the floor no search can go below without evaluating fewer points),
and the functions with the most own time. No ledger: the chunk's frames are built, not written.

The script runs unchanged on older checkouts (``PYTHONPATH=<checkout> python
bench/profile_chunk.py --no-quality``), which is how the baseline's chunk is profiled.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

# (label, function names whose cumulative CPU time the stage is); first match per name wins
STAGES = (  # (label, functions, the files defining them: today's, then the flat layout's)
    ("explain: SHAP and reason rows", ("explain",), ("explainer.py", "governance/explain.py")),
    ("explain: decision and ledger rows", ("decision_rows", "explanation_rows"), ("chunk.py",)),
    ("responsiveness", ("responsiveness",), ("scoring.py", "governance/responsiveness.py")),
    ("verification and recourse search", ("find_recourse",), ("search.py", "recourse.py")),
    ("stability of issued recourse", ("stability",), ("stability_score.py", "stability.py")),
    ("explanation quality", ("add_quality",), ("quality.py",)),
)
MODEL = (
    ("scikit-learn tree predictor", "predict", ("predictor.py",)),
    ("tree replay (bit-exact)", "_scores", ("tree_replay.py",)),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5_000, help="decisions in the chunk")
    ap.add_argument("--top", type=int, default=25, help="functions listed by own time")
    ap.add_argument("--no-quality", action="store_true", help="explanation quality off")
    ap.add_argument("--home", type=Path, default=None, help="demo data (made when absent)")
    ap.add_argument("--save", type=Path, default=None,
                    help="pickle the chunk's frames here (to compare two checkouts' rows)")
    args = ap.parse_args()

    import pandas as pd

    from governance.chunk import RecourseSetup, explain_chunk
    from governance.demo import prepare_demo

    # today's package layout, else the flat one of older checkouts
    Explainer = _first(("governance.explain.explainer", "governance.explain"), "Explainer")
    ActionSet = _first(("governance.recourse.action_set", "governance.action_set"), "ActionSet")
    PercentileShiftCost = _first(("governance.recourse.costs", "governance.costs"),
                                 "PercentileShiftCost")
    ModelRegistry = _first(("governance.registry.model_registry", "governance.registry"),
                           "ModelRegistry")
    feature_scale = _first(("governance.retraining.stability_score", "governance.stability"),
                           "feature_scale")

    home = args.home or Path(tempfile.mkdtemp(prefix="bench-profile-"))
    if not (home / "registry").exists():
        prepare_demo(home, rows_per_night=args.rows, nights=[date(2026, 11, 2)])
    reg = ModelRegistry(home / "registry")
    name, version = "credit-default", "v1"
    model = reg.load(name, version)
    train = reg.training_frame(name, version)
    explainer = Explainer(model, train)
    action_set = ActionSet.from_json(reg.action_set_path(name, version))
    scale = feature_scale(model.schema, train)
    recourse = RecourseSetup(
        action_set, PercentileShiftCost.fit(train, model.schema), action_set_id=1,
        cost_model_id=1, scale=scale,
    )  # fmt: skip
    chunk = pd.read_parquet(next((home / "decision-logs").glob("*/*.parquet")))
    chunk = chunk.dropna().query("revolving_utilization <= 1.5 and home_ownership != 'CASTLE'")
    chunk = chunk.head(args.rows).reset_index(drop=True)
    extra = {}
    if not args.no_quality:
        extra["quality"] = _quality(model, scale, chunk)
    model.score(chunk.head(10))  # the fast path's one-off check, outside the profile

    prof = cProfile.Profile(time.process_time)
    t, c = time.perf_counter(), time.process_time()
    prof.enable()
    result = explain_chunk(
        chunk, model, explainer, model_version_id=1, explainer_id=1, run_id=1,
        recourse=recourse, **extra,
    )  # fmt: skip
    prof.disable()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    if args.save:
        import pickle

        args.save.write_bytes(pickle.dumps(result.frames))
    n, denied = len(chunk), result.counts["denied"]
    stats = pstats.Stats(prof)
    print(f"\none chunk: {n:,} decisions, {denied:,} denied, one process, one thread")
    print(f"{'stage':<40}{'CPU s':>8}{'share':>8}")
    for label, names, files in STAGES:
        sec = _cumulative(stats, names, files)
        if sec:
            print(f"{label:<40}{sec:>8.2f}{sec / cpu:>8.0%}")
    print(f"{'chunk (CPU)':<40}{cpu:>8.2f}   wall {wall:.1f} s (shared box)")
    inside = 0.0
    for label, fn, files in MODEL:
        sec = _cumulative(stats, (fn,), files)
        inside += sec
        if sec:
            print(f"  inside: {label:<30}{sec:>8.2f}{sec / cpu:>8.0%}")
    print(f"  inside model evaluation, all{'':<10}{inside:>8.2f}{inside / cpu:>8.0%}")
    print(f"denied per CPU-second: {denied / cpu:.1f}")
    stats.sort_stats("tottime").print_stats(args.top)


def _quality(model, scale, chunk):
    from governance.explain.explainer import is_tree_model
    from governance.explain.explanation_stability import StabilitySettings, neighbourhood_std
    from governance.explain.faithfulness import FaithfulnessSettings
    from governance.explain.perturbation import FeatureSpace
    from governance.explain.quality import QualitySetup, sample_cutoff

    denied_ids = chunk.loc[chunk["decision"] == "denied", "decision_id"].astype(str)
    return QualitySetup(
        FeatureSpace.from_schema(model.schema, scale),
        faithfulness=FaithfulnessSettings(seed=0),
        stability=StabilitySettings(std=neighbourhood_std(is_tree_model(model)), seed=0),
        # the nightly default: 1,000 denials per night of 100,000 decisions
        stability_cutoff=sample_cutoff(denied_ids, max(1, len(chunk) // 100)),
        settings_ids={"faithfulness": 1, "stability": 2, "agreement": 3},
    )


def _cumulative(stats: pstats.Stats, names: tuple[str, ...], files: tuple[str, ...]) -> float:
    """Summed cumulative time of the named functions defined in ``files``."""
    total = 0.0
    for (path, _, func), (_, _, _, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        if func in names and path.endswith(files):
            total += ct
    return total


def _first(modules: tuple[str, ...], name: str):
    """``name`` from the first of ``modules`` that defines it."""
    import importlib

    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"{name} in none of {modules}")


if __name__ == "__main__":
    main()
