"""PGI, PGU and the perturbations they use: hand-computed cases and the analytic gap of a
logistic regression in logit space."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from governance.explain.faithfulness import (
    FaithfulnessSettings,
    faithfulness,
    prediction_gap,
    random_mask,
    reason_mask,
    topk_mask,
)
from governance.explain.perturbation import (
    FeatureSpace,
    apply_mask,
    background_perturbations,
    flip_probability,
    normal_perturbations,
    row_generators,
)
from governance.registry.schema import FeatureSchema, FeatureSpec

SCHEMA = FeatureSchema(
    (
        FeatureSpec("a", "float"),
        FeatureSpec("b", "float"),
        FeatureSpec("c", "bool"),
        FeatureSpec("g", "category", categories=("x", "y", "z")),
    )
)


def test_prediction_gap_hand_computed():
    # f = 2 a + b; x = (1, 2); three perturbations of both features.
    f = lambda M: 2 * M[:, 0] + M[:, 1]  # noqa: E731
    X = np.array([[1.0, 2.0]])
    P = np.array([[[1.5, 0.0], [0.5, 3.0], [1.0, 2.5]]])
    # Perturbing a only: f(x') - f(x) = 2 * (1.5 - 1), 2 * (0.5 - 1), 0 -> mean |.| = 2/3.
    assert prediction_gap(f, X, P, np.array([[True, False]]))[0] == pytest.approx(2 / 3)
    # Perturbing b only: -2, +1, +0.5 -> 3.5 / 3.
    assert prediction_gap(f, X, P, np.array([[False, True]]))[0] == pytest.approx(3.5 / 3)
    # Both: 2*0.5 - 2 = -1, -1 + 1 = 0, 0.5 -> 0.5.
    assert prediction_gap(f, X, P, np.array([[True, True]]))[0] == pytest.approx(0.5)
    assert np.isnan(prediction_gap(f, X, P, np.array([[False, False]]))[0])


def test_openxai_topk_mask_and_reason_mask():
    # OpenXAI perturbs the top k by |attribution|; our reasons are the top k towards denial.
    e = np.array([[0.9, -0.3, -0.5, 0.1]])
    assert topk_mask(e, 2).tolist() == [[True, False, True, False]]
    assert reason_mask(np.array([[2, 1, -1, -1]]), 4).tolist() == [[False, True, True, False]]


def test_normal_perturbation_follows_openxai_rates():
    space = FeatureSpace.from_schema(SCHEMA, np.array([2.0, 0.0, 0.0, 0.0]))
    X = np.array([[10.0, 5.0, 1.0, 2.0]])
    P = normal_perturbations(space, X, 200_000, 0.1, row_generators(["r"], 0, "normal"))[0]
    # Continuous: std 0.1 * training std 2.0 = 0.2; a constant feature (scale 0) stays.
    assert P[:, 0].std() == pytest.approx(0.2, rel=0.01)
    assert P[:, 0].mean() == pytest.approx(10.0, abs=0.002)
    assert (P[:, 1] == 5.0).all()
    # Binary: flipped with sqrt(2/pi) * 0.1 = 0.0798.
    p = flip_probability(0.1)
    assert p == pytest.approx(0.079788, abs=1e-6)
    assert set(np.unique(P[:, 2])) == {0.0, 1.0}
    assert (P[:, 2] == 0).mean() == pytest.approx(p, abs=0.002)
    # Category: moves with the same probability, to each other category alike, never "moves"
    # to itself.
    moved = P[:, 3] != 2.0
    assert moved.mean() == pytest.approx(p, abs=0.002)
    assert set(np.unique(P[moved, 3])) == {0.0, 1.0}
    assert (P[moved, 3] == 0).mean() == pytest.approx(0.5, abs=0.02)


def test_each_row_is_seeded_by_its_own_id():
    space = FeatureSpace.from_schema(SCHEMA, np.array([1.0, 1.0, 0.0, 0.0]))
    X = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    both = normal_perturbations(space, X, 5, 0.1, row_generators(["a", "b"], 7, "normal"))
    alone = normal_perturbations(space, X[1:], 5, 0.1, row_generators(["b"], 7, "normal"))
    np.testing.assert_array_equal(both[1], alone[0])
    other_seed = normal_perturbations(space, X[1:], 5, 0.1, row_generators(["b"], 8, "normal"))
    assert not np.array_equal(other_seed[0], alone[0])


def test_random_control_draws_as_many_features_as_reasons():
    mask = random_mask(np.array([4, 0, 2]), 10, row_generators(["a", "b", "c"], 0, "random"))
    assert mask.sum(axis=1).tolist() == [4, 0, 2]
    again = random_mask(np.array([4, 0, 2]), 10, row_generators(["a", "b", "c"], 0, "random"))
    np.testing.assert_array_equal(mask, again)


def test_logistic_regression_gap_in_logit_space_is_analytic():
    # f(x) = w.x + b (the logit); perturbing the set S by N(0, (std * s_j)^2) gives
    # f(x') - f(x) ~ N(0, std^2 ||s_S * w_S||^2), so E|.| = std * sqrt(2/pi) * ||s_S * w_S||.
    rng = np.random.default_rng(0)
    scale = np.array([1.0, 2.0, 0.5, 3.0, 1.0, 1.5])
    X = rng.normal(size=(3000, 6)) * scale
    y = X @ np.array([1.0, -0.5, 2.0, 0.3, 0.0, -1.0]) + rng.normal(size=3000) > 0
    lr = LogisticRegression().fit(X, y)
    w = lr.coef_[0]
    schema = FeatureSchema(tuple(FeatureSpec(f"x{j}", "float") for j in range(6)))
    space = FeatureSpace.from_schema(schema, scale)
    reasons = np.tile([2, 0, 5, -1], (400, 1))  # three reasons disclosed
    out = faithfulness(
        lr.decision_function,
        X[:400],
        reasons,
        space,
        [f"d{i}" for i in range(400)],
        FaithfulnessSettings(n_samples=100, std=0.1, background=False),
    )
    S, U = [0, 2, 5], [1, 3, 4]
    expect_pgi = 0.1 * np.sqrt(2 / np.pi) * np.linalg.norm(scale[S] * w[S])
    expect_pgu = 0.1 * np.sqrt(2 / np.pi) * np.linalg.norm(scale[U] * w[U])
    # 40,000 draws each: the standard error of the mean is under 0.4% of the gap.
    assert out.pgi.mean() == pytest.approx(expect_pgi, rel=0.02)
    assert out.pgu.mean() == pytest.approx(expect_pgu, rel=0.02)
    assert (out.k == 3).all()
    assert np.isfinite(out.pgi_random).all()


def test_background_replacement_gap_hand_computed():
    # One background row: every draw replaces the masked features with its values exactly.
    f = lambda M: M[:, 0] - 3 * M[:, 1] + 0.5 * M[:, 2]  # noqa: E731
    schema = FeatureSchema(tuple(FeatureSpec(n, "float") for n in "abc"))
    space = FeatureSpace.from_schema(schema, np.ones(3))
    X = np.array([[1.0, 1.0, 1.0]])
    bg = np.array([[0.0, 2.0, 5.0]])
    out = faithfulness(f, X, np.array([[1, -1, -1, -1]]), space, ["d"], background=bg)
    assert out.pgi_background[0] == pytest.approx(3.0)  # |-3 * (2 - 1)|
    assert out.pgu_background[0] == pytest.approx(1.0)  # |(0 - 1) + 0.5 * (5 - 1)|
    drawn = background_perturbations(bg, 1, 4, row_generators(["d"], 0, "background"))
    np.testing.assert_array_equal(
        apply_mask(X, drawn, np.array([[True, False, False]]))[0, :, 0], np.zeros(4)
    )


def test_reasons_on_irrelevant_features_are_flagged_against_the_random_control():
    # The model reads only feature 0. Reasons naming features 1 and 2 change nothing (PGI 0);
    # two random features include feature 0 for some rows, so the flag is raised. Naming
    # feature 0 puts PGI above every random draw that misses it.
    f = lambda M: 1 / (1 + np.exp(-M[:, 0]))  # noqa: E731
    schema = FeatureSchema(tuple(FeatureSpec(f"x{j}", "float") for j in range(5)))
    space = FeatureSpace.from_schema(schema, np.ones(5))
    X = np.zeros((50, 5))
    keys = [f"k{i}" for i in range(50)]
    bad = faithfulness(f, X, np.tile([1, 2, -1, -1], (50, 1)), space, keys)
    assert (bad.pgi == 0).all()
    assert (bad.not_above_random == 1).all()
    good = faithfulness(f, X, np.tile([0, 2, -1, -1], (50, 1)), space, keys)
    assert (good.pgi > 0).all()
    assert good.not_above_random.mean() < 0.6  # only rows whose random pair holds feature 0


def test_rows_without_reasons_have_no_pgi_but_a_pgu():
    f = lambda M: M.sum(axis=1)  # noqa: E731
    schema = FeatureSchema(tuple(FeatureSpec(f"x{j}", "float") for j in range(3)))
    space = FeatureSpace.from_schema(schema, np.ones(3))
    out = faithfulness(f, np.zeros((1, 3)), np.full((1, 4), -1), space, ["a"])
    assert np.isnan(out.pgi[0]) and np.isnan(out.pgi_random[0])
    assert np.isnan(out.not_above_random[0])
    assert out.pgu[0] > 0


def test_split_model_calls_give_the_same_gaps():
    f = lambda M: np.tanh(M).sum(axis=1)  # noqa: E731
    schema = FeatureSchema(tuple(FeatureSpec(f"x{j}", "float") for j in range(4)))
    space = FeatureSpace.from_schema(schema, np.ones(4))
    X = np.random.default_rng(1).normal(size=(7, 4))
    reasons = np.tile([0, 1, -1, -1], (7, 1))
    keys = [str(i) for i in range(7)]
    one = faithfulness(f, X, reasons, space, keys, FaithfulnessSettings(n_samples=20))
    many = faithfulness(
        f, X, reasons, space, keys, FaithfulnessSettings(n_samples=20, max_batch_rows=33)
    )
    np.testing.assert_array_equal(one.pgi, many.pgi)
    np.testing.assert_array_equal(one.pgu, many.pgu)
