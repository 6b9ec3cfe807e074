"""The per-chunk quality rows, the seeded samples, the history diff and sample settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from governance import config
from governance.exceptions import ExplanationQualityError
from governance.explain.compare import reason_changes, timeline_pairs
from governance.explain.explainer import Explainer, top_reasons
from governance.explain.explanation_stability import StabilitySettings
from governance.explain.perturbation import FeatureSpace
from governance.explain.quality import (
    ALL,
    QualitySetup,
    in_sample,
    quality_metrics,
    quality_rows,
    responsive_top,
    sample_cutoff,
    sample_key,
)
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema
from governance.registry.training import TrainingRecipe
from governance.retraining.stability_score import feature_scale


def test_sample_is_the_smallest_keys_whatever_the_order_or_chunking():
    ids = [f"D{i:04d}" for i in range(200)]
    cut = sample_cutoff(ids, 20, seed=3)
    chosen = set(np.array(ids)[in_sample(ids, cut, seed=3)])
    assert chosen == set(sorted(ids, key=lambda i: sample_key(i, 3))[:20])
    # Chunks decide membership alone with the same cutoff.
    parts = [ids[i : i + 37] for i in range(0, 200, 37)]
    assert set().union(*[set(np.array(p)[in_sample(p, cut, seed=3)]) for p in parts]) == chosen
    assert sample_cutoff(ids, None) == ALL and in_sample(ids, ALL).all()
    assert sample_cutoff(ids, 0) is None and not in_sample(ids, None).any()
    assert in_sample(ids, sample_cutoff(ids, 500)).all()
    assert set(np.array(ids)[in_sample(ids, sample_cutoff(ids, 20, seed=4), seed=4)]) != chosen


def test_responsive_top_lists_only_responsive_features():
    mu = np.array([[0.0, 0.5, 0.2, 0.0, 0.9]])
    assert responsive_top(mu, 4).tolist() == [[4, 1, 2, -1]]


@pytest.fixture(scope="module")
def lr_case():
    rng = np.random.default_rng(0)
    n = 800
    X = pd.DataFrame(
        {
            "income": rng.normal(50, 15, n),
            "utilisation": rng.uniform(0, 1, n),
            "owner": rng.integers(0, 2, n),
            "home": rng.choice(["RENT", "OWN", "MORTGAGE"], n),
        }
    )
    X["owner"] = X["owner"].astype(float)
    z = 0.06 * (X.income - 50) - 2.5 * (X.utilisation - 0.5) + 0.5 * X.owner
    y = (z + rng.normal(0, 0.7, n) > 0).astype(int)
    schema = FeatureSchema.from_frame(X)
    model = DecisionModel(TrainingRecipe("logistic_regression", {}, seed=0).fit(schema, X, y),
                          schema)  # fmt: skip
    return X, model


def test_quality_rows_for_a_chunk(lr_case):
    X, model = lr_case
    explainer = Explainer(model, X, seed=0)
    denied = X.loc[~model.approve(X)].head(40).reset_index(drop=True)
    denied.insert(0, "decision_id", [f"D{i}" for i in range(len(denied))])
    values = explainer.explain(denied).values
    idx, _ = top_reasons(values)
    space = FeatureSpace.from_schema(model.schema, feature_scale(model.schema, X))
    setup = QualitySetup(
        space,
        stability=StabilitySettings(n_draws=50, max_neighbours=10),
        stability_cutoff=sample_cutoff(denied["decision_id"], 5),
        settings_ids={"faithfulness": 1, "stability": 2, "agreement": 3},
    )
    mu = np.abs(np.random.default_rng(1).normal(size=values.shape))
    frames, counts, seconds = quality_rows(
        denied, model, explainer, values, idx, setup, model_version_id=7, explainer_id=9,
        run_id=11, mu=mu,
    )  # fmt: skip
    faith = frames["explanation_faithfulness"]
    assert len(faith) == 2 * len(denied)
    assert set(faith["perturbation"]) == {"openxai_normal", "background_replacement"}
    assert (faith["settings_id"] == 1).all() and (faith["explainer_id"] == 9).all()
    k = faith.groupby("decision_id", sort=False)["k"].first().reindex(denied["decision_id"])
    assert (k.to_numpy() == (idx >= 0).sum(axis=1)).all()
    stab = frames["explanation_stability"]
    assert len(stab) == 5 and (stab["n_draws"] == 50).all()
    assert (stab["n_same_class"] <= 10).all()
    agree = frames["explanation_agreement"]
    assert len(agree) == len(denied) and set(agree["comparison"]) == {"shap_vs_responsiveness"}
    assert agree["sign_agreement"].isna().all()
    assert counts["faithfulness_scored"] == len(denied) and counts["stability_sampled"] == 5
    metrics = quality_metrics(counts)
    normal = faith.loc[faith["perturbation"] == "openxai_normal"]
    assert metrics["mean_pgi"] == pytest.approx(normal["pgi"].mean(), abs=1e-6)
    assert set(seconds) == {"faithfulness", "stability", "agreement"}
    # The same rows again: seeded per decision, identical.
    again, _, _ = quality_rows(
        denied, model, explainer, values, idx, setup, model_version_id=7, explainer_id=9,
        run_id=11, mu=mu,
    )  # fmt: skip
    for name, frame in frames.items():
        pd.testing.assert_frame_equal(frame, again[name])


def test_reason_changes_and_pairs_of_a_history():
    assert reason_changes(["a", "b"], ["a", "b"]) == {
        "appeared": [], "disappeared": [], "moved": []
    }  # fmt: skip
    states = [
        {"decision_id": "d1", "own_version": True},
        {"decision_id": "d1", "own_version": False},
        {"decision_id": "d2", "own_version": True},
    ]
    pairs = timeline_pairs(states)
    assert [(a["decision_id"], b["own_version"], k) for a, b, k in pairs] == [
        ("d1", False, "re-explained"),
        ("d1", True, "next decision"),
    ]


def test_sample_sizes_from_flags_or_environment(monkeypatch):
    monkeypatch.delenv(config.ENV_STABILITY_SAMPLE, raising=False)
    monkeypatch.delenv(config.ENV_AGREEMENT_SAMPLE, raising=False)
    assert config.stability_sample() == 1000 and config.agreement_sample() == 100
    monkeypatch.setenv(config.ENV_STABILITY_SAMPLE, "all")
    assert config.stability_sample() is None
    assert config.stability_sample(25) == 25
    monkeypatch.setenv(config.ENV_AGREEMENT_SAMPLE, "7")
    assert config.agreement_sample() == 7
    for bad in ("-1", "lots"):
        with pytest.raises(ExplanationQualityError, match="expected"):
            config.stability_sample(bad)
    with pytest.raises(ExplanationQualityError, match="not 'all'"):
        config.agreement_sample("all")
