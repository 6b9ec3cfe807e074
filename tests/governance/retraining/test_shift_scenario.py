"""Recourse issued under v, checked under v+1 after a known boundary shift.

Run with ``-s`` to see the sizes (validity rates, cost increase, calibration table).
"""

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from governance.data.shift import (
    LABEL,
    SHIFT_SCHEMA,
    boundary_shift_scenario,
    true_logit,
)
from governance.recourse.costs import PercentileShiftCost
from governance.registry.model import DecisionModel
from governance.registry.training import TrainingRecipe
from governance.retraining.calibration import calibration_table
from governance.retraining.robust import robust_recourse, validity_tradeoff
from governance.retraining.stability_score import feature_scale
from governance.retraining.variants import fit_variant, forward_validity

RECIPE = TrainingRecipe(
    "hist_gradient_boosting",
    {"max_iter": 60, "max_leaf_nodes": 15, "early_stopping": False},
    seed=1,
    label=LABEL,
)
N_DENIED = 40


def test_scenario_shapes_and_the_documented_rule():
    s = boundary_shift_scenario(500, seed=3, n_applicants=50)
    assert [len(s.train_v1), len(s.train_v2), len(s.applicants)] == [500, 500, 50]
    assert list(s.train_v1.columns) == [*SHIFT_SCHEMA.names, LABEL, "p_repay", "z_v1"]
    assert s.schema is SHIFT_SCHEMA and s.shift == 1.0
    np.testing.assert_allclose(true_logit(s.train_v2, 1.0), s.train_v2["z_v1"] - 1.0)
    np.testing.assert_allclose(s.train_v2["p_repay"], 1 / (1 + np.exp(-(s.train_v2["z_v1"] - 1))))
    np.testing.assert_allclose(s.applicants["p_repay"], 1 / (1 + np.exp(-s.applicants["z_v1"])))
    for df in s:
        if isinstance(df, pd.DataFrame):
            assert s.action_set.validate(df[SHIFT_SCHEMA.names]).empty
    again = boundary_shift_scenario(500, seed=3, n_applicants=50)
    pd.testing.assert_frame_equal(again.train_v2, s.train_v2)
    same_rule = boundary_shift_scenario(500, seed=3, n_applicants=50, shift=0.0)
    pd.testing.assert_frame_equal(same_rule.train_v1, s.train_v1)
    # same rows and noise, stricter rule: v+1 labels can only go from 1 to 0
    assert (same_rule.train_v2[LABEL] >= s.train_v2[LABEL]).all()
    assert (same_rule.train_v2[LABEL] > s.train_v2[LABEL]).sum() > 50


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"n": 0}, "n must be a positive integer"),
        ({"n_applicants": 2.5}, "n_applicants must be a positive integer"),
        ({"shift": -0.5}, "shift must be a finite number >= 0"),
    ],
)
def test_scenario_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        boundary_shift_scenario(**{"n": 10, **kw})


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """OpenMP threads of the boosted trees only fight each other on a small shared box."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def experiment():
    """Train v1 and v2, issue minimal and robust recourse under v1, look at them under v2."""
    s = boundary_shift_scenario(10_000, seed=0, n_applicants=1_000)
    v1 = DecisionModel(RECIPE.fit(s.schema, s.train_v1, s.train_v1[LABEL]), s.schema)
    v2 = DecisionModel(RECIPE.fit(s.schema, s.train_v2, s.train_v2[LABEL]), s.schema)
    X = v1.matrix(s.applicants)
    X = X[~v1.approve(X)][:N_DENIED]
    cost = PercentileShiftCost.fit(s.train_v1, s.schema)
    scale = feature_scale(s.schema, s.train_v1)
    r = robust_recourse(v1, s.action_set, X, cost, scale, tau=0.75, k=1000, sigma=0.05)
    variants = [
        DecisionModel(fit_variant(RECIPE, s.schema, s.train_v2, i), s.schema)
        for i in range(3)
    ]
    pairs = r.issued & (r.minimal.status == "recourse")
    return {"s": s, "v1": v1, "v2": v2, "X": X, "r": r, "pairs": pairs, "variants": variants}


def test_v2_learned_the_stricter_rule(experiment):
    e = experiment
    A = e["v1"].matrix(e["s"].applicants)
    assert e["v2"].approve(A).mean() < e["v1"].approve(A).mean() - 0.1


def test_near_boundary_recourse_is_invalidated_more_than_far(experiment):
    e = experiment
    r, v1, v2 = e["r"], e["v1"], e["v2"]
    pts = np.vstack([r.minimal.x_after[e["pairs"]], r.base.x_after[e["pairs"]]])
    margin = v1.score(pts) - v1.threshold  # distance past v1's boundary, in score
    valid = v2.approve(pts)
    near = margin <= np.median(margin)
    inval_near, inval_far = 1 - valid[near].mean(), 1 - valid[~near].mean()
    print(
        f"\n[shift] issued points {len(pts)}: v1 margin median {np.median(margin):.3f}; "
        f"invalidated under v2: near {inval_near:.1%} ({near.sum()}), "
        f"far {inval_far:.1%} ({(~near).sum()})"
    )
    assert inval_near > inval_far
    assert inval_near > 0.8  # just across v1's boundary, short of v2's


def test_robust_recourse_survives_the_shift_more_often(experiment):
    e = experiment
    r, pairs = e["r"], e["pairs"]
    assert pairs.sum() >= 0.8 * N_DENIED
    assert (r.stability[r.issued] >= 0.75).all()
    t = validity_tradeoff(r, [e["v2"]])
    s = r.summary()
    print(
        f"\n[shift] pairs {t['pairs']}: valid under v2 minimal {t['minimal_validity']:.1%}, "
        f"robust {t['robust_validity']:.1%} (gain {t['validity_gain']:+.1%}); "
        f"cost minimal {t['mean_minimal_cost']:.3f} -> robust {t['mean_robust_cost']:.3f} "
        f"(+{t['mean_cost_increase']:.3f}, {t['cost_per_validity_point']:.4f} per point "
        f"of validity); R minimal {s['mean_minimal_stability']:.3f}, "
        f"robust {s['mean_robust_stability']:.3f}"
    )
    assert t["robust_validity"] > t["minimal_validity"]
    assert t["mean_cost_increase"] > 0
    assert (r.cost_increase[pairs] >= -1e-12).all()


def test_forward_estimate_from_variants_points_the_same_way(experiment):
    e = experiment
    r, pairs = e["r"], e["pairs"]
    fv_min = forward_validity(e["variants"], r.minimal.x_after[pairs])
    fv_rob = forward_validity(e["variants"], r.base.x_after[pairs])
    real_rob = e["v2"].approve(r.base.x_after[pairs])
    print(
        f"\n[shift] forward validity (3 bootstrap variants of v2): minimal {fv_min.mean():.1%}, "
        f"robust {fv_rob.mean():.1%}; realised robust {real_rob.mean():.1%}"
    )
    assert fv_rob.mean() > fv_min.mean()
    assert ((fv_rob >= 0) & (fv_rob <= 1)).all()


def test_calibration_of_r_against_realised_validity(experiment):
    e = experiment
    r, pairs = e["r"], e["pairs"]
    R = np.concatenate([r.minimal_stability[pairs], r.stability[pairs]])
    valid = e["v2"].approve(np.vstack([r.minimal.x_after[pairs], r.base.x_after[pairs]]))
    t = calibration_table(R, valid, bins=(-1.0, 0.5, 0.75, 1.0))
    print("\n[shift] calibration, R at issue under v1 against validity under v2:")
    print(t.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    assert t["n"].sum() == 2 * pairs.sum()
    low, top = t.iloc[0], t.iloc[-1]
    assert top["n"] > 0 and low["n"] > 0
    assert top["validity"] > low["validity"]
