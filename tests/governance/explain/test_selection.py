"""Choosing an explainer: the candidates run side by side and the stated rule picks one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from governance.explain.explainer import candidate_kinds
from governance.explain.selection import ADDITIVE_SHARE, choose, compare_explainers
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema
from governance.registry.training import TrainingRecipe


def test_rule_prefers_the_largest_gap_then_the_cheapest_of_the_tied():
    table = pd.DataFrame(
        {
            "kind": ["a", "b", "c", "d"],
            "additive_share": [1.0, 1.0, 1.0, 0.5],
            "gap": [0.10, 0.095, 0.02, 0.5],  # d is best but not additive
            "gap_se": [0.01, 0.01, 0.01, 0.01],
            "explain_s_per_decision": [0.5, 0.1, 0.001, 0.0],
        }
    )
    # b lies within one standard error of a and is cheaper; c does not; d is not additive.
    assert choose(table) == "b"
    table.loc[1, "gap"] = 0.05
    assert choose(table) == "a"
    assert ADDITIVE_SHARE == 0.99


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(2)
    n = 1500
    X = pd.DataFrame(
        {
            "income": rng.normal(50, 15, n),
            "utilisation": rng.uniform(0, 1, n),
            "accounts": rng.integers(0, 10, n).astype(float),
            "home": rng.choice(["RENT", "OWN", "MORTGAGE"], n),
        }
    )
    z = 0.06 * (X.income - 50) - 2.5 * (X.utilisation - 0.5) + (X.home == "OWN") * 0.8
    y = (z + rng.normal(0, 0.7, n) > 0).astype(int)
    return X, y, FeatureSchema.from_frame(X)


# Small on purpose: the permutation explainer calls a gradient-boosting model some 45,000
# times per row with a 100-row background; 20 background rows and few rows keep this quick.
@pytest.mark.parametrize(
    "family, rows", [("logistic_regression", 25), ("hist_gradient_boosting", 8)]
)
def test_every_candidate_is_measured_and_one_is_recommended(data, family, rows, one_thread):
    X, y, schema = data
    est = TrainingRecipe(family, {}, seed=0).fit(schema, X, y)
    model = DecisionModel(est, schema)
    out = compare_explainers(
        model,
        X,
        sample=rows,
        seed=1,
        stability_rows=4,
        permutation_stability_rows=1,
        background_size=20,
    )
    kinds = candidate_kinds(model)
    assert out.table["kind"].tolist() == kinds
    assert out.recommended in kinds
    assert out.recommended == choose(out.table)
    t = out.table.set_index("kind")
    assert (t["pgi"] > 0).all() and (t["pgu"] > 0).all()
    assert t.loc["permutation", "stability_rows"] == 1
    assert np.isfinite(t.loc[kinds[0], "ris_mean"])
    assert np.isnan(t.loc["permutation", "vs_permutation_feature_agreement"])
    first = kinds[0]
    assert 0 <= t.loc[first, "vs_permutation_feature_agreement"] <= 1
    assert (t["explain_s_per_decision"] > 0).all()
    assert out.settings["sample"]["rows"] == rows
    evidence = out.evidence()
    assert evidence["recommended"] == out.recommended
    assert len(evidence["candidates"]) == len(kinds)
    if family == "logistic_regression":
        # LinearSHAP and the permutation explainer both estimate the interventional Shapley
        # values of the same model: their top reasons largely agree.
        assert t.loc["linear", "vs_permutation_feature_agreement"] > 0.7
        assert t.loc["linear", "additive_share"] == 1.0
