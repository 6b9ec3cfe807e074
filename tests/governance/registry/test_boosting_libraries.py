"""XGBoost and LightGBM, as the training recipes, the registry and the recourse core support
them. Both are in the test extra, so nothing here skips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from governance.recourse.action_set import ActionElement, ActionSet
from governance.recourse.costs import MADL1Cost
from governance.recourse.reachable import is_reachable
from governance.recourse.scoring import responsiveness
from governance.recourse.search import find_recourse
from governance.registry.model import DecisionModel
from governance.registry.model_registry import ModelRegistry, load_trusted
from governance.registry.schema import FeatureSchema
from governance.registry.training import TrainingRecipe
from governance.retraining.stability_score import feature_scale, stability

FAMILIES = ["xgboost", "lightgbm"]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    n = 800
    X = pd.DataFrame({
        "income": rng.normal(50, 15, n),
        "utilisation": rng.uniform(0, 1, n),
        "accounts": rng.integers(0, 10, n),
        "home": rng.choice(["RENT", "OWN"], n),
    })
    z = 0.06 * (X.income - 50) - 3 * (X.utilisation - 0.5) + 0.8 * (X.home == "OWN")
    y = (z + rng.normal(0, 0.5, n) > 0).astype(int)
    return X, y, FeatureSchema.from_frame(X)


def _fit(family, data):
    X, y, schema = data
    params = {"n_estimators": 40, "max_depth": 3, "n_jobs": 1}
    est = TrainingRecipe(family, params, seed=0).fit(schema, X, y)
    return DecisionModel(est, schema), est


@pytest.mark.parametrize("family", FAMILIES)
def test_recipe_builds_the_library_class_and_scores_like_the_library(family, data):
    X, _, _ = data
    model, est = _fit(family, data)
    assert type(est[-1]).__module__.startswith(family)
    np.testing.assert_allclose(model.score(X), est.predict_proba(X)[:, 1])
    M = model.matrix(X)
    np.testing.assert_allclose(model.score(M), model.score(X))  # code matrix or frame
    assert 0.1 < model.approve(X).mean() < 0.9


@pytest.mark.parametrize("family", FAMILIES)
def test_registry_round_trip_through_skops_is_trusted_and_identical(family, data, tmp_path):
    X, _, schema = data
    model, est = _fit(family, data)
    reg = ModelRegistry(tmp_path / "registry")
    reg.register("m", "v1", est, schema, TrainingRecipe(family, {"n_estimators": 40}))
    loaded = reg.load("m", "v1")
    np.testing.assert_array_equal(loaded.score(X), model.score(X))
    sio.dump(est, tmp_path / "model.skops")  # the allow-list admits the library's types
    again = load_trusted(tmp_path / "model.skops")
    np.testing.assert_array_equal(again.predict_proba(X)[:, 1], model.score(X))


@pytest.mark.parametrize("family", FAMILIES)
def test_recourse_responsiveness_and_stability_work_on_opaque_boosters(family, data):
    X, _, schema = data
    model, _ = _fit(family, data)
    A = ActionSet([
        ActionElement("income", "float", lb=0, ub=200, step_direction=1, step_ub=30,
                      step_size=1.0),
        ActionElement("utilisation", "float", lb=0, ub=1, step_direction=-1, step_size=0.05),
        ActionElement("accounts", "int", lb=0, ub=9, actionable=False),
        ActionElement("home", "category", categories=("OWN", "RENT"), actionable=False),
    ])
    M = model.matrix(X)
    denied = M[~model.approve(M)][:30]
    cost = MADL1Cost.fit(X, schema)
    r = find_recourse(model, A, denied, cost)
    rec = np.flatnonzero(r.status == "recourse")
    assert rec.size > 0
    assert model.approve(r.x_after[rec]).all()
    assert all(is_reachable(A, denied[i], r.x_after[i], schema) for i in rec)
    # a library model is opaque to the search: float grids prove no "fixed" verdict
    assert not (r.status == "fixed").any()
    assert set(r.minimal_over[rec]) <= {"candidate_grid", None}
    resp = responsiveness(model, A, denied, n_samples=50)
    assert resp.method[:2] == ("sampled", "sampled")
    assert resp.no_action[:, 2:].all() and (resp.mu[:, :2] >= 0).all()
    R = stability(model, r.x_after[rec[:5]], feature_scale(schema, X), k=50, seed=0)
    assert np.all((model.score(r.x_after[rec[:5]]) + 1e-12 >= R) & (R >= -1))
