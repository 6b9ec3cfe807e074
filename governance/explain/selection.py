"""Choosing the explainer of a model version: candidates side by side, and a stated rule.

No attribution method is best everywhere (Han, Srinivas and Lakkaraju, NeurIPS 2022), so the
choice is measured per model: every candidate that can explain the model (path-dependent
TreeSHAP, interventional TreeSHAP with a background, LinearSHAP, the permutation explainer)
explains the same seeded sample of denials, and each gets

- faithfulness: mean PGI and PGU of its top-4 reasons towards denial under OpenXAI's normal
  perturbation and under background replacement, and the share not above the random control;
- stability: mean and maximum RIS and ROS on the first rows of the sample (fewer for the
  permutation explainer, which explains 100 neighbours per row at about 0.2 s each);
- agreement with the permutation explainer (OpenXAI's FA, RA, SA, SRA, RC, PRA at k = 4);
- additivity (share of rows whose attributions add up to the model output) and cost (seconds
  per decision to explain).

The rule (``RULE``): among candidates whose attributions add up on at least 99% of the sample,
take the highest mean PGI - PGU under OpenXAI's perturbation; candidates within one standard
error of it count as tied, and the cheapest of them is chosen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from governance.exceptions import ExplanationQualityError
from governance.explain.agreement import agreement
from governance.explain.explainer import (
    TOP_K,
    Explainer,
    candidate_kinds,
    is_tree_model,
    top_reasons,
)
from governance.explain.explanation_stability import (
    StabilitySettings,
    neighbourhood_std,
    relative_stability,
)
from governance.explain.faithfulness import FaithfulnessSettings, faithfulness
from governance.explain.perturbation import FeatureSpace
from governance.registry.model import DecisionModel
from governance.retraining.stability_score import feature_scale

ADDITIVE_SHARE = 0.99
RULE = (
    "among candidates additive on >= 99% of the sample, the highest mean PGI - PGU under "
    "OpenXAI's normal perturbation; candidates within one standard error of it are tied and "
    "the cheapest per decision is chosen"
)
LABELS = {
    "tree": "TreeSHAP, path-dependent",
    "tree_interventional": "TreeSHAP, interventional (background)",
    "linear": "LinearSHAP (background)",
    "permutation": "PermutationSHAP (background)",
}


@dataclass(frozen=True)
class ExplainerComparison:
    """Candidates side by side and the one the rule recommends.

    Attributes
    ----------
    table : DataFrame
        One row per candidate kind (see the module docstring for the columns' meaning).
    recommended : str
        The kind the rule picks.
    rule : str
    settings : dict
        Sample, seeds, background hash and metric settings, for the record.
    """

    table: pd.DataFrame
    recommended: str
    rule: str = RULE
    settings: dict[str, Any] = field(default_factory=dict)

    def evidence(self) -> dict[str, Any]:
        """What the ledger stores with the choice."""
        return {
            "candidates": self.table.replace({np.nan: None}).to_dict("records"),
            "recommended": self.recommended,
            "rule": self.rule,
            "settings": self.settings,
        }


def denied_sample(model: DecisionModel, rows: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """Up to ``n`` rows the model denies, in a seeded order, with ids ``row<position>``."""
    shuffled = rows.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    denied = shuffled.loc[~model.approve(shuffled)].head(n).reset_index(drop=True)
    return denied.assign(decision_id=[f"row{i}" for i in range(len(denied))])


def choose(table: pd.DataFrame) -> str:
    """Apply ``RULE`` to a comparison table (columns kind, additive_share, gap, gap_se,
    explain_s_per_decision)."""
    ok = table.loc[table["additive_share"] >= ADDITIVE_SHARE]
    if ok.empty:
        ok = table  # nothing additive: fall back to the same rule over every candidate
    best = ok.loc[ok["gap"].idxmax()]
    tied = ok.loc[ok["gap"] >= best["gap"] - np.nan_to_num(best["gap_se"])]
    return str(tied.sort_values(["explain_s_per_decision", "kind"]).iloc[0]["kind"])


def compare_explainers(
    model: DecisionModel,
    training: pd.DataFrame,
    *,
    sample: int = 200,
    seed: int = 0,
    stability_rows: int = 50,
    permutation_stability_rows: int = 5,
    background_size: int = 100,
    kinds: list[str] | None = None,
) -> ExplainerComparison:
    """Run every candidate explainer on a seeded sample of denials and compare them.

    Parameters
    ----------
    model : DecisionModel
    training : DataFrame
        The version's training rows: the sample of denials, the background and the feature
        scales come from them.
    sample : int, default=200
        Denials to explain with every candidate.
    seed : int, default=0
        Seeds the sample, the background, the permutation explainer and every perturbation.
    stability_rows, permutation_stability_rows : int
        Rows of the sample whose RIS and ROS are measured (the permutation explainer gets
        fewer: each row explains up to 100 neighbours).
    kinds : list of str, optional
        Candidates; default every kind that can explain the model.

    Returns
    -------
    ExplainerComparison
    """
    kinds = kinds or candidate_kinds(model)
    rows = denied_sample(model, training, sample, seed)
    if rows.empty:
        raise ExplanationQualityError("the model denies none of the rows it could be compared on")
    ids = rows["decision_id"].to_numpy()
    X = model.matrix(rows)
    space = FeatureSpace.from_schema(model.schema, feature_scale(model.schema, training))
    tree = is_tree_model(model)
    faith_settings = FaithfulnessSettings(seed=seed)
    stab_settings = StabilitySettings(std=neighbourhood_std(tree), seed=seed)
    explainers = {
        k: Explainer(model, training, background_size=background_size, seed=seed, kind=k)
        for k in dict.fromkeys([*kinds, "permutation"])
    }
    values: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    additive: dict[str, float] = {}
    for kind, explainer in explainers.items():
        t = time.perf_counter()
        expl = explainer.explain(rows)
        seconds[kind] = (time.perf_counter() - t) / len(rows)
        values[kind] = expl.values
        additive[kind] = float(expl.additive.mean())
    reference = values["permutation"]
    records = []
    for kind in kinds:
        explainer = explainers[kind]
        reasons, _ = top_reasons(values[kind], TOP_K)
        t = time.perf_counter()
        bg = explainer.background
        faith = faithfulness(
            model.score, X, reasons, space, ids, faith_settings,
            background=model.matrix(bg) if bg is not None else None,
        )  # fmt: skip
        t_faith = (time.perf_counter() - t) / len(rows)
        m = permutation_stability_rows if kind == "permutation" else stability_rows
        m = min(m, len(rows))
        t = time.perf_counter()

        def explain(M: np.ndarray, explainer: Explainer = explainer) -> np.ndarray:
            return explainer.explain(model.frame(M)).values

        stab = relative_stability(
            model.score, model.threshold, explain, X[:m], values[kind][:m], ids[:m], space,
            stab_settings,
        )  # fmt: skip
        t_stab = (time.perf_counter() - t) / max(m, 1)
        agree = agreement(values[kind], reference, TOP_K)
        gap = faith.pgi - faith.pgu
        finite = gap[np.isfinite(gap)]
        records.append(
            {
                "kind": kind,
                "explainer": LABELS.get(kind, kind),
                "additive_share": additive[kind],
                "pgi": float(np.nanmean(faith.pgi)),
                "pgu": float(np.nanmean(faith.pgu)),
                "gap": float(finite.mean()) if len(finite) else np.nan,
                "gap_se": float(finite.std(ddof=1) / np.sqrt(len(finite)))
                if len(finite) > 1
                else np.nan,
                "pgi_background": float(np.nanmean(faith.pgi_background)),
                "pgu_background": float(np.nanmean(faith.pgu_background)),
                "share_not_above_random": float(np.nanmean(faith.not_above_random)),
                "stability_rows": m,
                "ris_mean": _nanmean(stab.ris),
                "ris_max": _nanmax(stab.ris),
                "ros_mean": _nanmean(stab.ros),
                "ros_max": _nanmax(stab.ros),
                "share_neighbours_skipped_ros": float(
                    stab.ros_skipped.sum() / max(stab.n_same_class.sum(), 1)
                ),
                **{
                    f"vs_permutation_{name}": (
                        np.nan if kind == "permutation" else float(np.nanmean(v))
                    )
                    for name, v in agree.items()
                },
                "explain_s_per_decision": seconds[kind],
                "faithfulness_s_per_decision": t_faith,
                "stability_s_per_decision": t_stab,
            }
        )
    table = pd.DataFrame(records)
    settings = {
        "sample": {
            "rows": len(rows),
            "source": "training rows the model denies, seeded order",
            "seed": seed,
        },
        "background": {
            "rows": background_size,
            "sha256": explainers["permutation"].background_sha256,
        },
        "faithfulness": faith_settings.to_dict(),
        "stability": stab_settings.to_dict(),
        "feature_space": space.to_dict(),
        "agreement": {"k": TOP_K, "reference": "permutation"},
        "explainers": {k: e.config.to_dict() for k, e in explainers.items()},
    }
    return ExplainerComparison(table, choose(table), RULE, settings)


def _nanmean(v: np.ndarray) -> float:
    return float(np.nanmean(v)) if np.isfinite(v).any() else np.nan


def _nanmax(v: np.ndarray) -> float:
    return float(np.nanmax(v)) if np.isfinite(v).any() else np.nan
