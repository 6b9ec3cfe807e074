"""Run-level shares reported by the nightly run, from per-chunk tallies.

The shares are computed as in Cheon et al. (ICLR 2025), ``dataset_model_explainer_metric.py``:
among denied applicants, the share given at least one reason; among those given reasons, the
share whose reasons are all unresponsive ("reasons without recourse") and the share with at
least one responsive reason; the mean number of responsive reasons; and the share of denied
applicants whose prediction is fixed (Kothari et al., ICLR 2024).

They are *not* the paper's numbers for the same model, because the reasons differ: here the
reasons are the top-4 features with the most negative attribution (pushing towards denial),
and tree models are explained by path-dependent TreeSHAP (no background data); the paper takes
the top 4 by |attribution| among non-zero ones, from ``shap.Explainer(model, masker=X_train)``
(interventional SHAP). A reason counts as responsive when ``mu > 0``; a reason on a feature with
no feasible change (``mu_state = "no_action"``) is unresponsive, as the paper's ``mu = 0``.
"""

from __future__ import annotations

from collections.abc import Mapping


def _share(num: float, den: float) -> float | None:
    return round(num / den, 6) if den else None


def recourse_metrics(counts: Mapping[str, float]) -> dict[str, float | None]:
    """The paper's shares from a run's summed counts (None where the denominator is 0)."""
    denied = counts.get("denied", 0)
    with_reasons = counts.get("denied_with_reasons", 0)
    scored = counts.get("responsiveness_scored", 0)
    out = {"share_denied_with_reasons": _share(with_reasons, denied)}
    if scored:
        out.update(
            share_reasons_all_unresponsive=_share(
                counts.get("all_reasons_unresponsive", 0), with_reasons
            ),
            share_at_least_one_responsive=_share(
                counts.get("at_least_one_responsive_reason", 0), with_reasons
            ),
            mean_responsive_reasons=_share(counts.get("responsive_reasons", 0), with_reasons),
            share_denied_fixed=_share(counts.get("fixed", 0), scored),
            share_fixed_given_reasons=_share(
                counts.get("fixed_with_reasons", 0), counts.get("fixed", 0)
            ),
            share_denied_with_recourse=_share(counts.get("recourse", 0), scored),
            share_undetermined=_share(counts.get("undetermined", 0), scored),
        )
    return out
