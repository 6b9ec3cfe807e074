"""Explanations of denied decisions: SHAP attributions, the reasons disclosed, and how they
compare across model versions, with the run metrics reviewers read."""

from governance.explain.compare import positions, reason_agreement, verdict_changes
from governance.explain.explainer import TOP_K, Explainer, ExplainerConfig, Explanation, top_reasons
from governance.explain.metrics import recourse_metrics

__all__ = [
    "TOP_K",
    "positions",
    "reason_agreement",
    "recourse_metrics",
    "top_reasons",
    "verdict_changes",
    "Explainer",
    "ExplainerConfig",
    "Explanation",
]
