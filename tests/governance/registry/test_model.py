"""DecisionModel: the numeric fast path agrees with the estimator's own path, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema
from governance.registry.training import TrainingRecipe


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 6, n),
                      "c": rng.choice(["x", "y", "z"], n), "d": rng.integers(0, 2, n)})
    y = ((X.a + (X.c == "x") + 0.2 * X.b) > 0.8).astype(int)
    return X, y, FeatureSchema.from_frame(X)


@pytest.mark.parametrize("family", ["logistic_regression", "hist_gradient_boosting",
                                    "random_forest", "gradient_boosting", "mlp"])
def test_fast_path_matches_pipeline(data, family):
    X, y, schema = data
    est = TrainingRecipe(family, {"max_iter": 300} if family == "mlp" else {}, seed=0).fit(
        schema, X, y)
    model = DecisionModel(est, schema)
    M = model.matrix(X)
    assert model._fast_path() is not None
    np.testing.assert_array_equal(model.score(M), est.predict_proba(model.frame(X))[:, 1])
    np.testing.assert_array_equal(model.score(X), model.score(M))


def test_unknown_category_code_scores_like_an_unseen_category(data):
    X, y, schema = data
    est = TrainingRecipe("logistic_regression", seed=0).fit(schema, X, y)
    model = DecisionModel(est, schema)
    row = model.matrix(X.head(1))
    row[0, 2] = np.nan
    frame = X.head(1).copy()
    frame["c"] = "never-seen"
    np.testing.assert_allclose(model.score(row), est.predict_proba(frame)[:, 1])


def test_other_pipelines_use_the_estimator_path(data):
    X, y, schema = data
    num = X[["a", "b"]]
    pipe = Pipeline([("f", FunctionTransformer(np.tanh)), ("lr", LogisticRegression())])
    pipe.fit(num, y)
    model = DecisionModel(pipe, FeatureSchema.from_frame(num))
    assert model._fast_path() is None
    np.testing.assert_allclose(model.score(num), pipe.predict_proba(num)[:, 1])
    assert model.stats.calls == 1 and model.stats.rows == len(num)
