"""Retrained variants: seeds per index, bootstrap resamples, forward validity shares."""

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from governance.exceptions import RobustnessError
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema, FeatureSpec
from governance.registry.training import TrainingRecipe
from governance.retraining.variants import fit_variant, forward_validity, variant_seeds

SCHEMA = FeatureSchema(
    (
        FeatureSpec("a", "float"),
        FeatureSpec("b", "float"),
        FeatureSpec("kind", "category", categories=("x", "y")),
    )
)


def _train(n=400, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    kind = rng.choice(["x", "y"], size=n)
    z = 1.5 * a - b + 0.5 * (kind == "y")
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return pd.DataFrame({"a": a, "b": b, "kind": kind, "label": y})


class Threshold:
    """Approves (P = 1) where ``a >= cut``."""

    classes_ = np.array([0, 1])

    def __init__(self, cut):
        self.cut = cut

    def predict_proba(self, frame):
        p = (frame["a"].to_numpy(dtype=float) >= self.cut).astype(float)
        return np.column_stack([1 - p, p])


def test_variant_seeds_are_stable_distinct_and_in_range():
    seeds = [variant_seeds(11, i) for i in range(20)]
    assert seeds == [variant_seeds(11, i) for i in range(20)]
    flat = [s for pair in seeds for s in pair]
    assert len(set(flat)) == 40
    assert all(0 <= s < 2**31 for s in flat)
    assert variant_seeds(11, 0, base_seed=1) != variant_seeds(11, 0)
    assert variant_seeds(12, 0) != variant_seeds(11, 0)
    with pytest.raises(RobustnessError, match="non-negative integer; got -1"):
        variant_seeds(11, -1)
    with pytest.raises(RobustnessError, match="non-negative integer; got 1.5"):
        variant_seeds(11, 1.5)


def test_same_index_same_model_other_index_other_model():
    train = _train()
    recipe = TrainingRecipe(
        "random_forest", {"n_estimators": 15, "max_depth": 4, "n_jobs": 1}, seed=3
    )
    probe = _train(50, seed=9)
    with threadpool_limits(1):
        p0 = fit_variant(recipe, SCHEMA, train, 0).predict_proba(probe)[:, 1]
        p0_again = fit_variant(recipe, SCHEMA, train, 0).predict_proba(probe)[:, 1]
        p1 = fit_variant(recipe, SCHEMA, train, 1).predict_proba(probe)[:, 1]
        base = recipe.fit(SCHEMA, train, train["label"]).predict_proba(probe)[:, 1]
    np.testing.assert_array_equal(p0, p0_again)
    assert not np.array_equal(p0, p1)
    assert not np.array_equal(p0, base)


def test_bootstrap_resamples_and_without_it_only_the_seed_varies():
    train = _train()
    recipe = TrainingRecipe("logistic_regression", {"C": 1.0}, seed=3)  # lbfgs: seed-free
    probe = _train(30, seed=9)
    plain = recipe.fit(SCHEMA, train, train["label"]).predict_proba(probe)
    fixed = [fit_variant(recipe, SCHEMA, train, i, bootstrap=False) for i in range(3)]
    for est in fixed:
        np.testing.assert_allclose(est.predict_proba(probe), plain, rtol=0, atol=1e-12)
    boot = [fit_variant(recipe, SCHEMA, train, i).predict_proba(probe) for i in range(2)]
    assert np.abs(boot[0] - plain).max() > 1e-4
    assert np.abs(boot[0] - boot[1]).max() > 1e-4


def test_fit_variant_errors():
    recipe = TrainingRecipe("logistic_regression", seed=3)
    with pytest.raises(RobustnessError, match="lacks column"):
        fit_variant(recipe, SCHEMA, _train().drop(columns="label"), 0)
    with pytest.raises(RobustnessError, match="at least 2 rows; got 1"):
        fit_variant(recipe, SCHEMA, _train().iloc[:1], 0)
    with pytest.raises(RobustnessError, match="non-negative integer"):
        fit_variant(recipe, SCHEMA, _train(), -2)


def test_forward_validity_is_the_share_of_models_approving():
    schema = FeatureSchema((FeatureSpec("a", "float"), FeatureSpec("b", "float")))
    models = [DecisionModel(Threshold(c), schema) for c in (0.0, 1.0, 2.0, 3.0)]
    X = np.array([[-1.0, 0], [0.5, 0], [2.0, 0], [9.0, 0], [np.nan, np.nan]])
    share = forward_validity(models, X)
    np.testing.assert_array_equal(share[:4], [0.0, 0.25, 0.75, 1.0])
    assert np.isnan(share[4])
    assert forward_validity(models, np.zeros((0, 2))).shape == (0,)


def test_forward_validity_with_fitted_variants_lies_in_the_unit_interval():
    train = _train()
    recipe = TrainingRecipe("logistic_regression", {"C": 1.0}, seed=3)
    models = [DecisionModel(fit_variant(recipe, SCHEMA, train, i), SCHEMA) for i in range(4)]
    X = models[0].matrix(_train(200, seed=7))
    share = forward_validity(models, X)
    assert ((share >= 0) & (share <= 1)).all()
    assert set(np.unique(share * 4)) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert ((share > 0) & (share < 1)).any()  # variants disagree near the boundary


def test_forward_validity_errors():
    schema = FeatureSchema((FeatureSpec("a", "float"),))
    with pytest.raises(RobustnessError, match="at least one model"):
        forward_validity([], np.zeros((1, 1)))
    with pytest.raises(RobustnessError, match=r"shape \(n, 1\)"):
        forward_validity([DecisionModel(Threshold(0), schema)], np.zeros((2, 3)))
