"""Explanations: SHAP attributions mapped back to original features, additive, and reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap

from governance.explain.explainer import Explainer, top_reasons
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema
from governance.registry.training import TrainingRecipe

pytestmark = pytest.mark.usefixtures("one_thread")  # OpenMP pools crawl on a busy 2-core box

@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    n = 600
    X = pd.DataFrame(
        {
            "income": rng.normal(50, 15, n),
            "utilisation": rng.uniform(0, 1, n),
            "accounts": rng.integers(0, 10, n),
            "home": rng.choice(["RENT", "OWN", "MORTGAGE"], n),
        }
    )
    z = 0.05 * (X.income - 50) - 2 * (X.utilisation - 0.5) + (X.home == "OWN") * 0.8
    y = (z + rng.normal(0, 0.7, n) > 0).astype(int)
    return X, y, FeatureSchema.from_frame(X)


FAMILIES = ["logistic_regression", "hist_gradient_boosting", "gradient_boosting",
            "random_forest", "decision_tree"]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("favourable", [1, 0])
def test_attributions_are_additive_for_every_family(data, family, favourable):
    X, y, schema = data
    params = {"n_estimators": 20, "max_depth": 4} if family == "random_forest" else {}
    est = TrainingRecipe(family, params, seed=0).fit(schema, X, y)
    model = DecisionModel(est, schema, favourable_class=favourable)
    expl = Explainer(model, X, seed=0).explain(X.head(50))
    assert expl.values.shape == (50, 4)
    assert expl.additive.all(), expl.additivity_error.max()
    if expl.config.output == "probability":
        np.testing.assert_allclose(expl.model_output, model.score(X.head(50)))


@pytest.mark.parametrize("family", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("favourable", [1, 0])
def test_boosting_libraries_use_tree_explainer(data, family, favourable):
    # both libraries are in the test extra: these tests run, they never skip
    X, y, schema = data
    est = TrainingRecipe(family, {"n_estimators": 30, "n_jobs": 1}, seed=0).fit(schema, X, y)
    model = DecisionModel(est, schema, favourable_class=favourable)
    explainer = Explainer(model, X)
    assert explainer.kind == "tree"
    assert explainer.config.output == "log_odds"
    expl = explainer.explain(X.head(40))
    assert expl.values.shape == (40, 4)
    assert expl.additive.all(), expl.additivity_error.max()
    # the explained output is the favourable class's log-odds of the model's own scores
    p = np.clip(model.score(X.head(40)), 1e-12, 1 - 1e-12)
    np.testing.assert_allclose(expl.model_output, np.log(p / (1 - p)), rtol=1e-4, atol=1e-4)
    # attributions towards the favourable class flip sign with it
    other = Explainer(DecisionModel(est, schema, favourable_class=1 - favourable), X)
    np.testing.assert_allclose(other.explain(X.head(40)).values, -expl.values, atol=1e-6)


def test_one_hot_columns_sum_back_to_their_feature(data):
    X, y, schema = data
    est = TrainingRecipe("gradient_boosting", {"n_estimators": 30}, seed=0).fit(schema, X, y)
    model = DecisionModel(est, schema)
    ours = Explainer(model, X).explain(X.head(20))
    raw = shap.TreeExplainer(est[-1])(est[:-1].transform(X.head(20)))
    names = list(est[:-1].get_feature_names_out())
    home_cols = [i for i, n in enumerate(names) if n.startswith("home_")]
    np.testing.assert_allclose(ours.values[:, 3], raw.values[:, home_cols].sum(axis=1))
    np.testing.assert_allclose(ours.values[:, 0], raw.values[:, names.index("income")])


def test_linear_explainer_records_its_background(data):
    X, y, schema = data
    est = TrainingRecipe("logistic_regression", seed=0).fit(schema, X, y)
    explainer = Explainer(DecisionModel(est, schema), X, background_size=50, seed=4)
    cfg = explainer.config.to_dict()
    assert cfg["explainer"] == "shap.LinearExplainer" and cfg["output"] == "log_odds"
    assert cfg["settings"]["background_rows"] == 50 and len(cfg["background_sha256"]) == 64
    again = Explainer(DecisionModel(est, schema), X, background_size=50, seed=4)
    assert again.config.background_sha256 == cfg["background_sha256"]


def test_permutation_fallback_is_additive_and_seeded(data):
    X, y, schema = data
    est = TrainingRecipe("mlp", {"hidden_layer_sizes": [8], "max_iter": 300}, seed=0).fit(
        schema, X, y)
    model = DecisionModel(est, schema)
    a = Explainer(model, X, background_size=20, seed=7).explain(X.head(3))
    b = Explainer(model, X, background_size=20, seed=7).explain(X.head(3))
    assert a.config.explainer == "shap.PermutationExplainer"
    assert a.additive.all()
    np.testing.assert_array_equal(a.values, b.values)


def test_top_reasons_orders_the_strongest_push_towards_denial():
    values = np.array([[0.3, -0.2, -0.9, -0.1, -0.4, 0.0], [0.1, 0.2, 0.0, 0.3, 0.4, 0.5]])
    idx, val = top_reasons(values, k=4)
    assert idx.tolist() == [[2, 4, 1, 3], [-1, -1, -1, -1]]
    np.testing.assert_allclose(val[0], [-0.9, -0.4, -0.2, -0.1])
    assert np.isnan(val[1]).all()


def test_top_reasons_pads_when_fewer_features_than_k():
    idx, _ = top_reasons(np.array([[-1.0, -2.0]]), k=4)
    assert idx.tolist() == [[1, 0, -1, -1]]
