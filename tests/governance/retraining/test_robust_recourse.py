"""Robust recourse: exact toy answers, brute force over the reachable set, issued-action checks."""

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from governance.data.shift import LABEL, boundary_shift_scenario
from governance.exceptions import RobustnessError
from governance.recourse.action_set import ActionElement, ActionSet
from governance.recourse.costs import MADL1Cost, PercentileShiftCost
from governance.recourse.reachable import is_reachable, reachable_set
from governance.recourse.search import find_recourse
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema, FeatureSpec
from governance.registry.training import TrainingRecipe
from governance.retraining.robust import robust_recourse, validity_tradeoff
from governance.retraining.stability_score import feature_scale, stability


class Ramp:
    """P(class 1) = clip(x / 10, 0, 1)."""

    classes_ = np.array([0, 1])

    def predict_proba(self, frame):
        p = np.clip(frame["x"].to_numpy(dtype=float) / 10, 0, 1)
        return np.column_stack([1 - p, p])


class Bumpy:
    """A score that rises with a + b but wobbles, so stability varies along the way."""

    classes_ = np.array([0, 1])

    def predict_proba(self, frame):
        a, b = frame["a"].to_numpy(dtype=float), frame["b"].to_numpy(dtype=float)
        z = 0.6 * (a + b - 12) + 1.8 * np.sin(1.3 * a) * np.cos(0.9 * b)
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])


def _ramp(ub=10):
    schema = FeatureSchema((FeatureSpec("x", "int", 0, 10),))
    model = DecisionModel(Ramp(), schema)
    A = ActionSet([ActionElement("x", "int", lb=0, ub=ub)])
    return model, A, MADL1Cost(["x"], {"x": 1.0})


def test_toy_robust_recourse_is_the_cheapest_point_with_r_above_tau():
    model, A, cost = _ramp()
    X = np.array([[2.0], [9.0], [4.0]])
    # scale 0: nothing is perturbed, so R = m(x') and the bar 0.75 needs x' >= 8
    r = robust_recourse(model, A, X, cost, np.array([0.0]), tau=0.75, k=20)
    assert r.minimal.status.tolist() == ["recourse", "approved", "recourse"]
    assert r.base.status.tolist() == ["recourse", "approved", "recourse"]
    assert r.minimal.x_after[[0, 2], 0].tolist() == [5.0, 5.0]
    assert r.base.x_after[[0, 2], 0].tolist() == [8.0, 8.0]
    np.testing.assert_allclose(r.stability[[0, 2]], [0.8, 0.8], atol=1e-12)
    np.testing.assert_allclose(r.minimal_stability[[0, 2]], [0.5, 0.5], atol=1e-12)
    assert r.cost_increase[[0, 2]].tolist() == [3.0, 3.0]
    assert np.isnan(r.cost_increase[1]) and np.isnan(r.stability[1])
    assert r.issued.tolist() == [True, False, True]


def test_unaccepted_when_no_feasible_point_clears_the_bar():
    model, A, cost = _ramp(ub=7)
    r = robust_recourse(model, A, np.array([[2.0]]), cost, np.array([0.0]), tau=0.75, k=20)
    assert r.minimal.status.tolist() == ["recourse"]
    assert r.base.status.tolist() == ["unaccepted"] and r.base.complete[0]
    assert np.isnan(r.base.cost[0]) and np.isnan(r.stability[0])


@pytest.mark.parametrize("lazy_passes", [12, 1, 0])
def test_matches_brute_force_over_the_reachable_set(lazy_passes, monkeypatch):
    # 0 passes: every candidate scored as met; 1: one lazy pass, then that; 12: the default
    monkeypatch.setattr("governance.retraining.robust.LAZY_PASSES", lazy_passes)
    schema = FeatureSchema((FeatureSpec("a", "int", 0, 20), FeatureSpec("b", "int", 0, 20)))
    model = DecisionModel(Bumpy(), schema)
    A = ActionSet(
        [
            ActionElement("a", "int", lb=0, ub=20, step_direction=1),
            ActionElement("b", "int", lb=0, ub=20, step_direction=1),
        ]
    )
    cost = MADL1Cost(["a", "b"], {"a": 1.0, "b": 1.6}, change_penalty=0.01)
    scale = np.array([5.0, 5.0])
    rng = np.random.default_rng(5)
    X = rng.integers(0, 9, size=(40, 2)).astype(float)
    X = X[~model.approve(X)][:14]
    kw = {"tau": 0.75, "k": 200, "sigma": 0.15, "seed": 3}
    r = robust_recourse(model, A, X, cost, scale, **kw)
    for i, x in enumerate(X):
        pts = reachable_set(A, x, schema).X
        R = stability(model, pts, scale, k=200, sigma=0.15, seed=3)
        ok = model.approve(pts) & (R >= 0.75)
        costs = cost(np.repeat(x[None, :], len(pts), axis=0), pts)
        if not ok.any():
            assert r.base.status[i] == "unaccepted"
            continue
        assert r.base.status[i] == "recourse" and r.base.complete[i]
        assert r.base.cost[i] == pytest.approx(costs[ok].min(), abs=1e-12)
        assert r.stability[i] >= 0.75
        flips = model.approve(pts)
        assert r.minimal.cost[i] == pytest.approx(costs[flips].min(), abs=1e-12)
    assert (r.cost_increase[r.issued] > 0).sum() >= 5  # the bar made recourse dearer


def test_issued_robust_recourse_flips_is_feasible_stable_and_no_cheaper_than_minimal():
    s = boundary_shift_scenario(4_000, seed=2, n_applicants=400)
    recipe = TrainingRecipe(
        "hist_gradient_boosting",
        {"max_iter": 30, "max_leaf_nodes": 15, "early_stopping": False},
        seed=4,
        label=LABEL,
    )
    with threadpool_limits(1):
        est = recipe.fit(s.schema, s.train_v1, s.train_v1[LABEL])
        model = DecisionModel(est, s.schema)
        X = model.matrix(s.applicants)
        X = X[~model.approve(X)][:12]
        cost = PercentileShiftCost.fit(s.train_v1, s.schema)
        scale = feature_scale(s.schema, s.train_v1)
        r = robust_recourse(model, s.action_set, X, cost, scale, k=300)
        issued = np.flatnonzero(r.issued)
        assert issued.size >= 8
        after = r.base.x_after[issued]
        assert model.approve(after).all()
        frame = pd.DataFrame(after, columns=s.schema.names)
        assert s.action_set.validate(frame).empty
        assert all(is_reachable(s.action_set, X[i], r.base.x_after[i], s.schema) for i in issued)
        assert (r.stability[issued] >= 0.75).all()
        again = stability(model, after, scale, k=300)
        np.testing.assert_allclose(again, r.stability[issued], rtol=0, atol=1e-12)
        both = issued[r.minimal.status[issued] == "recourse"]
        assert (r.base.cost[both] >= r.minimal.cost[both] - 1e-12).all()
        assert (r.cost_increase[both] >= -1e-12).all()


def test_given_minimal_recourse_is_reused_and_checked():
    model, A, cost = _ramp()
    X = np.array([[2.0], [4.0]])
    minimal = find_recourse(model, A, X, cost)
    r = robust_recourse(model, A, X, cost, np.array([0.0]), k=20, minimal=minimal)
    assert r.minimal is minimal
    assert r.base.x_after[:, 0].tolist() == [8.0, 8.0]
    with pytest.raises(RobustnessError, match="minimal recourse must cover the 1 rows"):
        robust_recourse(model, A, X[:1], cost, np.array([0.0]), minimal=minimal)


@pytest.mark.parametrize("tau", [0.0, 1.5, float("nan")])
def test_tau_must_be_a_probability(tau):
    model, A, cost = _ramp()
    with pytest.raises(RobustnessError, match=r"tau must be in \(0, 1\]"):
        robust_recourse(model, A, np.array([[2.0]]), cost, np.array([0.0]), tau=tau)


def test_frame_summary_and_tradeoff_on_the_toy():
    model, A, cost = _ramp()
    model.version = "v1"
    r = robust_recourse(model, A, np.array([[2.0], [9.0]]), cost, np.array([0.0]), k=20, seed=7)
    df = r.to_frame()
    assert df.loc[0, ["status", "cost", "minimal_status", "minimal_cost", "cost_increase"]].tolist(
    ) == ["recourse", 6.0, "recourse", 3.0, 3.0]
    assert df.loc[0, "stability"] == pytest.approx(0.8)
    assert df.loc[0, ["tau", "k", "sigma", "stability_seed"]].tolist() == [0.75, 20, 0.05, 7]
    assert df.loc[1, "status"] == "approved" and np.isnan(df.loc[1, "stability"])
    assert set(df["model_version"]) == {"v1"}
    summary = r.summary()
    assert {k: summary[k] for k in ("denied", "minimal_issued", "robust_issued", "pairs")} == {
        "denied": 1, "minimal_issued": 1, "robust_issued": 1, "pairs": 1
    }
    assert summary["mean_cost_increase"] == 3.0 and summary["minimal_already_robust"] == 0.0
    stricter = DecisionModel(Ramp(), model.schema, threshold=0.65)  # 5 no longer passes, 8 does
    t = validity_tradeoff(r, [stricter, model])
    assert t["pairs"] == 1
    assert t["minimal_validity"] == 0.5 and t["robust_validity"] == 1.0
    assert t["validity_gain"] == 0.5 and t["mean_cost_increase"] == 3.0
    assert t["cost_per_validity_point"] == pytest.approx(3.0 / 50)
    with pytest.raises(RobustnessError, match="at least one model"):
        validity_tradeoff(r, [])
