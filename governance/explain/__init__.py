"""Explanations of denied decisions: SHAP attributions, the reasons disclosed, how they compare
across model versions, how faithful, stable and consistent they are (OpenXAI's metrics), the
choice of explainer, and the run metrics reviewers read."""

from governance.explain.agreement import agreement, ndcg_drift
from governance.explain.compare import (
    positions,
    reason_agreement,
    reason_changes,
    timeline_pairs,
    verdict_changes,
)
from governance.explain.explainer import TOP_K, Explainer, ExplainerConfig, Explanation, top_reasons
from governance.explain.explanation_stability import (
    Stability,
    StabilitySettings,
    relative_stability,
)
from governance.explain.faithfulness import Faithfulness, FaithfulnessSettings, faithfulness
from governance.explain.metrics import recourse_metrics
from governance.explain.perturbation import FeatureSpace
from governance.explain.quality import QualitySetup, night_samples, quality_metrics, quality_rows
from governance.explain.selection import ExplainerComparison, compare_explainers

__all__ = [
    "TOP_K",
    "agreement",
    "compare_explainers",
    "faithfulness",
    "ndcg_drift",
    "positions",
    "night_samples",
    "quality_metrics",
    "quality_rows",
    "reason_agreement",
    "reason_changes",
    "recourse_metrics",
    "relative_stability",
    "timeline_pairs",
    "top_reasons",
    "verdict_changes",
    "Explainer",
    "ExplainerComparison",
    "ExplainerConfig",
    "Explanation",
    "Faithfulness",
    "FaithfulnessSettings",
    "FeatureSpace",
    "QualitySetup",
    "Stability",
    "StabilitySettings",
]
