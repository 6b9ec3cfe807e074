"""Robustness of issued recourse to retraining: stability scores, robust recourse, retrained
variants, re-validation under a new version, and the calibration of stability against it."""

from governance.retraining.calibration import calibration_table, wilson_interval
from governance.retraining.revalidation import Revalidation, ValidityTally, revalidate
from governance.retraining.robust import (
    DEFAULT_TAU,
    RobustRecourseResult,
    robust_recourse,
    validity_tradeoff,
)
from governance.retraining.stability_score import (
    DEFAULT_K,
    DEFAULT_SIGMA,
    feature_scale,
    stability,
    stability_at_least,
)
from governance.retraining.variants import fit_variant, forward_validity, variant_seeds

__all__ = [
    "DEFAULT_K",
    "DEFAULT_SIGMA",
    "DEFAULT_TAU",
    "calibration_table",
    "feature_scale",
    "fit_variant",
    "forward_validity",
    "revalidate",
    "robust_recourse",
    "stability",
    "stability_at_least",
    "validity_tradeoff",
    "variant_seeds",
    "wilson_interval",
    "Revalidation",
    "RobustRecourseResult",
    "ValidityTally",
]
