"""RIS and ROS as OpenXAI's code computes them: hand-computed ratios, an analytic linear case,
and what the tree neighbourhood changes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from governance.explain.explanation_stability import (
    OPENXAI_STD,
    TREE_STD,
    StabilitySettings,
    neighbourhood_std,
    relative_change,
    relative_stability,
    stability_ratios,
)
from governance.explain.perturbation import FeatureSpace
from governance.registry.schema import FeatureSchema, FeatureSpec


def test_relative_change_and_ratio_hand_computed():
    assert relative_change(np.array([[3.0, 4.0]]), np.array([[0.0, 0.0]]))[0] == 1.0
    assert np.isnan(relative_change(np.zeros((1, 2)), np.ones((1, 2)))[0])
    e, e2 = np.array([[3.0, 4.0], [3.0, 4.0], [0.0, 0.0]]), np.array([[3.0, 3.0]] * 3)
    r = np.array([[10.0], [10.0], [10.0]])
    r2 = np.array([[9.0], [10.0], [9.0]])
    ratio, ok = stability_ratios(e, e2, r, r2)
    # Row 0: (1/5) / (1/10) = 2. Row 1: zero input change -> skipped. Row 2: ||e|| = 0 -> NaN.
    assert ratio[0] == pytest.approx(2.0)
    assert ok.tolist() == [True, False, False]


def _one_feature():
    schema = FeatureSchema((FeatureSpec("x", "float"),))
    return FeatureSpace.from_schema(schema, np.array([2.0]))


def test_linear_model_with_linear_shap_is_analytic():
    # One feature, logit l(x) = w x + b, linear SHAP e(x) = w (x - mu). For every neighbour:
    #   RIS ratio = (|x - x'| / |x - mu|) / (|x - x'| / |x|)       = |x| / |x - mu|
    #   ROS ratio = (|x - x'| / |x - mu|) / (|w||x - x'| / |l(x)|) = |l(x)| / (|w||x - mu|)
    # (inputs in units of the std 2.0 cancel in the relative change).
    w, b, mu = 1.5, -4.0, 1.0
    score = lambda M: 1 / (1 + np.exp(-(w * M[:, 0] + b)))  # noqa: E731
    explain = lambda M: w * (M - mu)  # noqa: E731
    X = np.array([[0.5], [4.0]])
    out = relative_stability(
        score, 0.5, explain, X, explain(X), ["a", "b"], _one_feature(), StabilitySettings()
    )
    x = X[:, 0]
    np.testing.assert_allclose(out.ris, np.abs(x) / np.abs(x - mu), rtol=1e-6)
    np.testing.assert_allclose(out.ros, np.abs(w * x + b) / (w * np.abs(x - mu)), rtol=1e-4)
    assert out.n_same_class.tolist() == [100, 100]
    assert out.ris_skipped.tolist() == [0, 0]


def test_only_same_class_neighbours_count():
    # x sits just above the threshold at logit 0 (x = 2.000001 with b = -2): at std 0.1 about
    # half the draws cross it and are dropped; the kept ones stop at 100.
    score = lambda M: 1 / (1 + np.exp(-(M[:, 0] - 2.0)))  # noqa: E731
    explain = lambda M: M - 1.0  # noqa: E731
    X = np.array([[2.000001]])
    out = relative_stability(
        score,
        0.5,
        explain,
        X,
        explain(X),
        ["a"],
        _one_feature(),
        StabilitySettings(n_draws=150, std=0.1),
    )
    assert 30 < out.n_same_class[0] < 120
    few = relative_stability(
        score,
        0.5,
        explain,
        X,
        explain(X),
        ["a"],
        _one_feature(),
        StabilitySettings(n_draws=1000, std=0.1),
    )
    assert few.n_same_class[0] == 100


def test_openxai_noise_never_crosses_a_tree_split_and_the_tree_scale_does():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 1)) * 2.0
    y = X[:, 0] + rng.normal(size=2000) > 0.3
    tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(X, y)
    score = lambda M: tree.predict_proba(M)[:, 1]  # noqa: E731
    # A piecewise-constant "explanation": the leaf's output minus the mean.
    explain = lambda M: score(M)[:, None] - 0.5 + 0.01  # noqa: E731
    # Just beside a split that keeps the decision (approved on both sides, other scores).
    splits = sorted(t for t in tree.tree_.threshold if t != -2)
    t = next(
        t
        for t in splits
        if min(score(np.array([[t - 0.01], [t + 0.01]]))) >= 0.5
        and np.ptp(score(np.array([[t - 0.01], [t + 0.01]]))) > 0
    )
    x = np.array([[t + 0.05]])
    tiny = relative_stability(
        score,
        0.5,
        explain,
        x,
        explain(x),
        ["a"],
        _one_feature(),
        StabilitySettings(std=OPENXAI_STD),
    )
    # Nothing moves: every ROS ratio has a zero denominator (all skipped), RIS is 0.
    assert tiny.ros_skipped[0] == tiny.n_same_class[0] == 100
    assert np.isnan(tiny.ros[0])
    assert tiny.ris[0] == 0.0
    wide = relative_stability(
        score, 0.5, explain, x, explain(x), ["a"], _one_feature(), StabilitySettings(std=TREE_STD)
    )
    assert wide.ros_skipped[0] < wide.n_same_class[0]  # some neighbours reach another leaf
    assert neighbourhood_std(tree_model=True) == TREE_STD
    assert neighbourhood_std(tree_model=False) == OPENXAI_STD


def test_a_row_without_same_class_neighbours_is_nan():
    score = lambda M: np.where(M[:, 0] == 0.0, 0.9, 0.1)  # noqa: E731
    out = relative_stability(
        score,
        0.5,
        lambda M: M,
        np.zeros((1, 1)),
        np.ones((1, 1)),
        ["a"],
        _one_feature(),
        StabilitySettings(n_draws=20, std=0.1),
    )
    assert out.n_same_class[0] == 0
    assert np.isnan(out.ris[0]) and np.isnan(out.ros[0])
