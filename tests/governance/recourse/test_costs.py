"""Recourse costs: hand-computed percentile shifts and MAD-L1, JSON round trip, errors."""

import json

import numpy as np
import pandas as pd
import pytest

from governance.exceptions import CostError
from governance.recourse.costs import MADL1Cost, PercentileShiftCost, cost_from_dict, load_cost
from governance.registry.schema import FeatureSchema, FeatureSpec

SCHEMA = FeatureSchema(
    (
        FeatureSpec("income", "float"),
        FeatureSpec("n", "int"),
        FeatureSpec("kind", "category", categories=("a", "b")),
    )
)
REF = pd.DataFrame(
    {
        "income": [10.0, 20.0, 30.0, 40.0, 50.0],
        "n": [0, 0, 0, 0, 3],
        "kind": ["a", "b", "a", "a", "b"],
    }
)


def test_percentile_shift_is_the_ecdf_difference_plus_penalty():
    cost = PercentileShiftCost.fit(REF, SCHEMA)
    # ECDF of income: 10 -> .2, 20 -> .4, 30 -> .6, 40 -> .8, 50 -> 1
    assert cost.quantile("income", np.array([10.0, 25.0, 50.0, 99.0, 5.0])).tolist() == [
        0.2,
        0.5,
        1.0,
        1.0,
        0.0,
    ]
    np.testing.assert_allclose(cost.feature_cost("income", 20.0, 40.0), 0.4 + 1e-3)
    np.testing.assert_allclose(cost.feature_cost("n", 0.0, 3.0), 0.2 + 1e-3)  # ECDF .8 -> 1
    assert cost.feature_cost("income", 20.0, 20.0) == 0.0
    np.testing.assert_allclose(cost.feature_cost("kind", 0.0, 1.0), 0.5 + 1e-3)


def test_total_cost_is_additive_over_features():
    cost = PercentileShiftCost.fit(REF, SCHEMA, change_penalty=0.0)
    x = np.array([[20.0, 0.0, 0.0], [10.0, 0.0, 1.0]])
    x2 = np.array([[40.0, 3.0, 1.0], [10.0, 0.0, 1.0]])
    np.testing.assert_allclose(cost(x, x2), [0.4 + 0.2 + 0.5, 0.0])


def test_mad_l1_and_its_fallbacks():
    cost = MADL1Cost.fit(REF, SCHEMA)
    assert cost.scales["income"] == 10.0  # median 30, |dev| = 20, 10, 0, 10, 20 -> 10
    np.testing.assert_allclose(cost.scales["n"], np.std([0, 0, 0, 0, 3]))  # MAD 0 -> std
    np.testing.assert_allclose(cost.feature_cost("income", 20.0, 45.0), 2.5)
    assert cost.feature_cost("kind", 1.0, 0.0) == 1.0
    z_schema = FeatureSchema((FeatureSpec("z", "float"),))
    flat = MADL1Cost.fit(pd.DataFrame({"z": [2.0, 2.0]}), z_schema)
    assert flat.scales["z"] == 1.0


@pytest.mark.parametrize("cls", [PercentileShiftCost, MADL1Cost])
def test_json_round_trip_reproduces_costs(cls, tmp_path):
    cost = cls.fit(REF, SCHEMA)
    back = load_cost(cost.to_json(tmp_path / "cost.json"))
    assert type(back) is cls and back.sha256 == cost.sha256
    rng = np.random.default_rng(0)
    a = np.column_stack([rng.uniform(0, 60, 20), rng.integers(0, 4, 20), rng.integers(0, 2, 20)])
    b = np.column_stack([rng.uniform(0, 60, 20), rng.integers(0, 4, 20), rng.integers(0, 2, 20)])
    np.testing.assert_array_equal(back(a, b), cost(a, b))


def test_matrix_reference_and_many_distinct_values_use_quantile_knots():
    rng = np.random.default_rng(1)
    schema = FeatureSchema((FeatureSpec("x", "float"),))
    v = rng.normal(size=5000)
    cost = PercentileShiftCost.fit(v[:, None], schema)
    knots, cdf = cost.knots["x"]
    assert len(knots) <= 1001
    np.testing.assert_allclose(cost.quantile("x", np.array([0.0])), [np.mean(v <= 0)], atol=2e-3)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: PercentileShiftCost(["x"], {}), "lacks knots for numeric feature 'x'"),
        (lambda: PercentileShiftCost(["x"], {"x": ([2, 1], [0.5, 1])}), "strictly increasing"),
        (lambda: PercentileShiftCost(["x"], {"x": ([1, 2], [0.8, 0.5])}), "non-decreasing"),
        (lambda: MADL1Cost(["x"], {"x": 0.0}), "must be finite and > 0"),
        (lambda: MADL1Cost(["x"], {"x": 1.0}, categorical=["y"]), "not among the cost's names"),
        (lambda: MADL1Cost(["x"], {"x": 1.0}, category_cost=-1), "category_cost"),
        (lambda: MADL1Cost.fit(REF.drop(columns="n"), SCHEMA), "lacks feature"),
        (lambda: MADL1Cost.fit(np.zeros((3, 2)), SCHEMA), "must have 3 columns"),
    ],
)
def test_malformed_costs_raise(make, match):
    with pytest.raises(CostError, match=match):
        make()


def test_cost_rejects_other_features_and_bad_files(tmp_path):
    cost = MADL1Cost.fit(REF, SCHEMA)
    with pytest.raises(CostError, match="fitted on features"):
        cost.check_names(["income", "n"])
    with pytest.raises(CostError, match="feature 'zz' is not in the cost"):
        cost.feature_cost("zz", 0.0, 1.0)
    with pytest.raises(CostError, match="expected 'governance.cost/1'"):
        cost_from_dict({"format": "x"})
    with pytest.raises(CostError, match="unknown cost kind 'l2'"):
        cost_from_dict({**cost.to_dict(), "kind": "l2"})
    with pytest.raises(CostError, match="malformed mad_l1 cost"):
        cost_from_dict({**cost.to_dict(), "params": {}})
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(CostError, match="not valid JSON"):
        load_cost(bad)
    assert json.loads(cost.to_json(tmp_path / "ok.json").read_text())["kind"] == "mad_l1"


def test_hash_is_cached_and_follows_reassigned_attributes():
    cost = PercentileShiftCost.fit(REF, SCHEMA)
    first = cost.sha256
    assert cost.sha256 == first and cost._sha256 == first
    cost.change_penalty = 0.5
    assert cost.sha256 != first
    assert cost.sha256 == cost_from_dict(cost.to_dict()).sha256
