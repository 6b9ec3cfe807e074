"""Tests for governance.influence: logistic-regression influence and exact refits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import governance.deletion.influence as influence
from governance.deletion.influence import LogisticProblem, group_effect, supports_influence
from governance.exceptions import FragilityError
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema
from governance.registry.training import TrainingRecipe

TIGHT = {"C": 1.0, "tol": 1e-10, "max_iter": 1000}


@pytest.fixture(autouse=True)
def _one_thread():
    # Small fits on a shared 2-core box: BLAS/OpenMP thread pools only add contention.
    with threadpool_limits(1):
        yield


def _data(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(2.0, 3.0, size=n),
            "c": rng.choice(["x", "y", "z"], size=n),
        }
    )
    logit = 1.5 * X["a"] - 0.5 * X["b"] + 1.0 * (X["c"] == "y")
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return X, y


def _problem(n=80, seed=0, params=None, favourable=1, labels=(0, 1)):
    X, y01 = _data(n, seed)
    y = np.where(y01 == 1, labels[1], labels[0])
    schema = FeatureSchema.from_frame(X)
    recipe = TrainingRecipe("logistic_regression", params=dict(params or TIGHT))
    model = DecisionModel(recipe.fit(schema, X, y), schema, favourable_class=favourable)
    frame = model.frame(X)
    return model, recipe, schema, X, y, LogisticProblem(model.estimator, frame, y, favourable)


def test_design_matches_pipeline_transform_and_decision_function():
    model, _, _, X, _, prob = _problem()
    root = prob.root()
    Z = prob.train_design(root, np.arange(len(X)))
    pre = model.estimator.named_steps["pre"]
    np.testing.assert_allclose(Z[:, :-1], pre.transform(model.frame(X)), atol=1e-12)
    np.testing.assert_array_equal(Z[:, -1], 1.0)
    np.testing.assert_allclose(
        prob.logit(root, Z), model.estimator.decision_function(model.frame(X)), atol=1e-10
    )


def test_influence_matches_leave_one_out_refits():
    model, recipe, schema, X, y, prob = _problem(n=60, seed=1)
    Xq = X.iloc[:8]
    qn, qc = prob.blocks(model.frame(Xq))
    root = prob.root()
    Q = prob.design(root, qn, qc)
    infl = prob.influence(root, np.arange(len(X)))
    est = np.zeros((len(X), len(Xq)))
    for qb, nb, E in infl.effects(Q):
        est[nb, qb] = E.T
    base = model.estimator.decision_function(model.frame(Xq))
    true = np.empty_like(est)
    for i in range(len(X)):  # actual leave-one-out refits with the recipe itself
        keep = np.arange(len(X)) != i
        true[i] = recipe.fit(schema, X[keep], y[keep]).decision_function(model.frame(Xq)) - base
    corr = np.corrcoef(est.ravel(), true.ravel())[0, 1]
    assert corr > 0.99
    assert np.max(np.abs(est - true)) < 0.1 * np.max(np.abs(true))


def test_refit_reaches_the_recipe_optimum():
    model, _, schema, X, y, prob = _problem(n=120, seed=2)
    keep = np.setdiff1d(np.arange(len(X)), [3, 7, 11, 40])
    fit = prob.refit(keep, prob.root())
    tight = TrainingRecipe("logistic_regression", params=TIGHT).fit(schema, X.iloc[keep], y[keep])
    lr = tight.named_steps["model"]
    np.testing.assert_allclose(fit.coef, lr.coef_.ravel(), atol=1e-6)
    assert fit.intercept == pytest.approx(lr.intercept_[0], abs=1e-6)
    scaler = tight.named_steps["pre"].named_transformers_["num"]
    np.testing.assert_allclose(fit.mean, scaler.mean_, atol=1e-12)
    np.testing.assert_allclose(fit.scale, scaler.scale_, atol=1e-12)
    # The recipe's default tolerance stops near the same optimum, within its tolerance.
    default = TrainingRecipe("logistic_regression").fit(schema, X.iloc[keep], y[keep])
    np.testing.assert_allclose(fit.coef, default.named_steps["model"].coef_.ravel(), atol=1e-2)
    # Cold and warm starts agree.
    cold = prob.refit(keep, None)
    np.testing.assert_allclose(cold.theta, fit.theta, atol=1e-8)


def test_refit_with_class_weight_and_favourable_class_zero():
    params = {**TIGHT, "class_weight": "balanced"}
    model, _, schema, X, y, prob = _problem(
        n=90, seed=3, params=params, favourable="bad", labels=("bad", "good")
    )
    assert prob.sign == -1.0  # classes_ = ['bad', 'good']; favourable is classes_[0]
    keep = np.setdiff1d(np.arange(len(X)), [0, 5])
    fit = prob.refit(keep, prob.root())
    ref = TrainingRecipe("logistic_regression", params=params).fit(schema, X.iloc[keep], y[keep])
    np.testing.assert_allclose(fit.coef, ref.named_steps["model"].coef_.ravel(), atol=1e-6)
    Xq = X.iloc[:5]
    qn, qc = prob.blocks(model.frame(Xq))
    favourable_logit = prob.logit(fit, prob.design(fit, qn, qc))
    p_bad = ref.predict_proba(model.frame(Xq))[:, 0]
    np.testing.assert_allclose(1 / (1 + np.exp(-favourable_logit)), p_bad, atol=1e-6)


def test_set_effects_of_one_row_equal_single_effects_and_pairs_track_refits():
    model, _, _, X, _, prob = _problem(n=100, seed=4)
    root = prob.refit(np.arange(len(X)), prob.root())  # the exact optimum
    infl = prob.influence(root, np.arange(len(X)))
    qn, qc = prob.blocks(model.frame(X.iloc[:3]))
    Q = prob.design(root, qn, qc)
    local, eff = infl.top_removals(Q, 4)
    terms = infl.shortlist_terms(Q, local)
    single = infl.set_effects(terms, np.broadcast_to(np.arange(4)[None, :, None], (3, 4, 1)))
    np.testing.assert_allclose(single, eff, rtol=1e-9, atol=1e-12)
    pair = infl.set_effects(terms, np.broadcast_to(np.array([[[0, 1]]]), (3, 1, 2)))[:, 0]
    for j in range(3):
        fit = prob.refit(np.setdiff1d(np.arange(len(X)), infl.rows[local[j, :2]]), root)
        true = prob.logit(fit, prob.design(fit, qn[j : j + 1], qc[j : j + 1]))[0]
        change = true - prob.logit(root, Q[j : j + 1])[0]
        assert abs(pair[j] - change) <= 0.002 + 0.5 * abs(change)  # fragility's band
        assert pair[j] == pytest.approx(change, rel=0.2)


def test_scaler_drift_term_fixes_strongly_regularised_estimates():
    # Heavy-tailed feature and a strong penalty: the refitted scaler changes the penalty.
    rng = np.random.default_rng(11)
    X = pd.DataFrame({"a": rng.standard_t(2, size=80), "b": rng.normal(size=80)})
    y = (rng.random(80) < 1 / (1 + np.exp(-(X["a"] + X["b"])))).astype(int)
    schema = FeatureSchema.from_frame(X)
    recipe = TrainingRecipe("logistic_regression", params={"C": 0.1})
    model = DecisionModel(recipe.fit(schema, X, y), schema)
    prob = LogisticProblem(model.estimator, model.frame(X), y, 1)
    root = prob.refit(np.arange(80), prob.root())
    infl = prob.influence(root, np.arange(80))
    assert infl.scaled.tolist() == [0, 1]
    out = int(np.argmax(np.abs(X["a"].to_numpy())))  # the outlier dominates the scale of "a"
    qn, qc = prob.blocks(model.frame(X.iloc[:10]))
    Q = prob.design(root, qn, qc)
    est = next(E for qb, nb, E in infl.effects(Q))[:, out]
    fit = prob.refit(np.setdiff1d(np.arange(80), [out]), root)
    true = prob.logit(fit, prob.design(fit, qn, qc)) - prob.logit(root, Q)
    no_drift = (
        infl.sign * infl.residual[out] / (1 - infl.leverage[out]) * (Q @ infl.solve(infl.Z[out]))
    )
    assert np.max(np.abs(est - true)) < 0.25 * np.max(np.abs(no_drift - true))


def test_top_removals_match_dense_ranking_across_chunks(monkeypatch):
    model, _, _, X, _, prob = _problem(n=70, seed=5)
    root = prob.root()
    infl = prob.influence(root, np.arange(len(X)))
    qn, qc = prob.blocks(model.frame(X.iloc[:9]))
    Q = prob.design(root, qn, qc)
    blocks = list(infl.effects(Q))
    assert len(blocks) == 1  # the default chunk holds everything here
    dense = blocks[0][2]  # (queries, rows)
    monkeypatch.setattr(influence, "CHUNK_ELEMENTS", 50)  # many row blocks
    assert len(list(infl.effects(Q))) > 5
    local, eff = infl.top_removals(Q, 5)
    expected = np.argsort(dense, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(local, expected)
    np.testing.assert_allclose(eff, np.take_along_axis(dense, expected, axis=1))


def test_top_removals_prune_rows_by_their_bound_and_stay_exact(monkeypatch):
    model, _, _, X, _, prob = _problem(n=4000, seed=12)
    root = prob.refit(np.arange(len(X)), prob.root())
    infl = prob.influence(root, np.arange(len(X)))
    assert infl.scaled.size == 2  # the drift terms are part of the effects
    qn, qc = prob.blocks(model.frame(X.iloc[:40]))
    Q = prob.design(root, qn, qc)
    dense = np.hstack([E for qb, nb, E in infl.effects(Q)])  # one query block here
    seen = []
    block = influence.Influence._block
    monkeypatch.setattr(
        influence.Influence,
        "_block",
        lambda self, V, QHs, x, rows: (
            seen.append(V.shape[1] * len(rows)) or block(self, V, QHs, x, rows)
        ),
    )
    local, eff = infl.top_removals(Q, 7)
    expected = np.argsort(dense, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(local, expected)
    np.testing.assert_allclose(eff, np.take_along_axis(dense, expected, axis=1))
    print(f"evaluated {sum(seen) / dense.size:.2f} of the pairs")
    assert sum(seen) < 0.5 * dense.size  # most (query, row) pairs were never evaluated


def test_supports_influence_only_for_binary_l2_logistic_pipelines():
    X, y = _data(60, 6)
    schema = FeatureSchema.from_frame(X)
    fit = lambda name, **p: TrainingRecipe(name, params=p).fit(schema, X, y)  # noqa: E731
    assert supports_influence(fit("logistic_regression"))
    assert supports_influence(fit("logistic_regression", C=np.inf))
    assert not supports_influence(fit("logistic_regression", solver="liblinear"))
    assert not supports_influence(fit("logistic_regression", l1_ratio=1.0, solver="saga"))
    assert not supports_influence(fit("decision_tree", max_depth=2))
    y3 = np.arange(60) % 3
    assert not supports_influence(TrainingRecipe("logistic_regression").fit(schema, X, y3))
    assert not supports_influence(object())


def test_problem_rejects_unsupported_pipeline_and_unknown_labels():
    X, y = _data(40, 7)
    schema = FeatureSchema.from_frame(X)
    tree = TrainingRecipe("decision_tree").fit(schema, X, y)
    model = DecisionModel(tree, schema)
    with pytest.raises(FragilityError, match="not a recipe-built binary L2 LogisticRegression"):
        LogisticProblem(tree, model.frame(X), y, 1)
    lr = TrainingRecipe("logistic_regression").fit(schema, X, y)
    with pytest.raises(FragilityError, match="favourable class 'yes' not among"):
        LogisticProblem(lr, model.frame(X), y, "yes")
    with pytest.raises(FragilityError, match=r"training labels \['7'\] not among"):
        LogisticProblem(lr, model.frame(X), np.where(np.arange(40) == 0, 7, y), 1)


def test_refit_of_a_single_class_raises():
    _, _, _, _, y, prob = _problem(n=50, seed=8)
    with pytest.raises(FragilityError, match="single class"):
        prob.refit(np.flatnonzero(y == 1), None)


def test_newton_refit_that_cannot_converge_raises(monkeypatch):
    _, _, _, X, _, prob = _problem(n=50, seed=9)
    monkeypatch.setattr(influence, "NEWTON_MAX_ITER", 1)
    with pytest.raises(FragilityError, match="did not converge in 1 iterations"):
        prob.refit(np.arange(len(X)), None)


def test_group_effect_literal_values():
    # One row without drift: a r / (1 - h G).
    got = group_effect(np.array([2.0]), np.array([[0.5]]), np.array([-0.4]), np.array([-0.3]), 1.0)
    assert got == pytest.approx(2.0 * -0.3 / (1 - 0.4 * 0.5))
    # Two rows with G diagonal: the effects add up; sign -1 flips the result.
    b, lam, v = np.array([1.0, -2.0]), np.array([-0.2, -0.1]), np.array([0.5, 0.25])
    expected = 1.0 * 0.5 / (1 - 0.2) + -2.0 * 0.25 / (1 - 0.2)
    assert group_effect(b, np.diag([1.0, 2.0]), lam, v, -1.0) == pytest.approx(-expected)
    # A general 2x2 case against the closed form b^T (I + diag(lam) K)^-1 v.
    K = np.array([[1.0, 0.3], [0.3, 2.0]])
    A = np.eye(2) + lam[:, None] * K
    assert group_effect(b, K, lam, v, 1.0) == pytest.approx(b @ np.linalg.solve(A, v))
