"""The linear constraint: sum a_i x_i <= b after any action, honoured by reachable sets,
responsiveness and the recourse search, and proven where it makes a denial fixed."""

import json

import numpy as np
import pandas as pd
import pytest

from governance.exceptions import ActionSetError
from governance.recourse.action_set import ActionElement, ActionSet
from governance.recourse.constraints import LinearConstraint, OneHotEncoding, constraint_from_dict
from governance.recourse.costs import MADL1Cost
from governance.recourse.reachable import is_reachable, reachable_set
from governance.recourse.scoring import responsiveness
from governance.recourse.search import find_recourse
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema, FeatureSpec
from tests.helpers import LogisticStub

pytestmark = pytest.mark.usefixtures("one_thread")


def _spending():
    """Months with low and with high spending, each 0..6, and a cosigner flag."""
    return ActionSet(
        [
            ActionElement("low", "int", lb=0, ub=6),
            ActionElement("high", "int", lb=0, ub=6),
            ActionElement("cosigner", "bool"),
        ]
    )


def test_json_round_trip_sentence_and_observed_rows():
    c = LinearConstraint(["low", "high"], [1, 1], 6, note="a half year at most")
    d = c.to_dict()
    assert d == {"type": "linear", "names": ["low", "high"], "coefficients": [1.0, 1.0],
                 "bound": 6.0, "note": "a half year at most"}
    assert constraint_from_dict(json.loads(json.dumps(d))) == c
    assert str(c) == "`low` + `high` must be at most 6 after any action."
    assert str(LinearConstraint(["a", "b"], [2, -1], 0)) == (
        "2·`a` - `b` must be at most 0 after any action."
    )
    assert c.check_rows(np.array([[2, 4], [5, 2], [6, 0]])).tolist() == [True, False, True]


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ({"type": "linear", "names": ["low", "high"], "coefficients": [1], "bound": 6},
         "2 features but 1 coefficients"),
        ({"type": "linear", "names": ["low", "high"], "coefficients": [0, 0], "bound": 6},
         "non-zero coefficient"),
        ({"type": "linear", "names": ["low", "high"], "coefficients": [1, 1]}, "'bound'"),
        ({"type": "linear", "names": ["low", "high"], "coefficients": [1, "x"], "bound": 1},
         "needs numbers"),
        ({"type": "linear", "names": ["low", "high"], "coefficients": [1, 1], "bound": 6,
          "rhs": 1}, "unknown field"),
    ],
)
def test_malformed_linear_constraints_are_named(d, match):
    with pytest.raises(ActionSetError, match=match):
        constraint_from_dict(d)


def test_category_features_cannot_take_part():
    A = ActionSet([ActionElement("home", "category", categories=("RENT", "OWN")),
                   ActionElement("low", "int", lb=0, ub=6)])
    with pytest.raises(ActionSetError, match="category feature"):
        A.add_constraint(LinearConstraint(["home", "low"], [1, 1], 1))


def test_reachable_set_holds_exactly_the_points_within_the_bound():
    A = _spending()
    A.add_constraint(LinearConstraint(["low", "high"], [1, 1], 6))
    R = reachable_set(A, [2, 1, 0])
    pairs = {(int(a), int(b)) for a, b, _ in R.X}
    assert pairs == {(a, b) for a in range(7) for b in range(7) if a + b <= 6}
    assert len(R.X) == 28 * 2  # times the free cosigner flag
    assert R.complete
    assert is_reachable(A, [2, 1, 0], [3, 3, 1])
    assert not is_reachable(A, [2, 1, 0], [4, 3, 0])


def test_a_person_already_beyond_the_bound_may_stay_but_only_move_inside():
    A = _spending()
    A.add_constraint(LinearConstraint(["low", "high"], [1, 1], 6))
    R = reachable_set(A, [5, 4, 0])
    sums = R.X[:, 0] + R.X[:, 1]
    assert (R.X[0] == [5, 4, 0]).all()  # the null action
    assert np.all(sums[2:] <= 6) and np.sum(sums > 6) == 2  # (5, 4) with either flag value


def test_two_encodings_of_at_most_one_indicator_reach_the_same_points():
    def aset():
        return ActionSet([ActionElement(n, "bool") for n in ("a", "b", "c")]
                         + [ActionElement("x", "int", lb=0, ub=2)])

    onehot, linear = aset(), aset()
    onehot.add_constraint(OneHotEncoding(["a", "b", "c"], limit=1, limit_type="max"))
    linear.add_constraint(LinearConstraint(["a", "b", "c"], [1, 1, 1], 1))
    for x in ([0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 1, 2]):
        r1, r2 = reachable_set(onehot, x), reachable_set(linear, x)
        assert {tuple(p) for p in r1.X} == {tuple(p) for p in r2.X}
        assert r1.complete and r2.complete


def test_scaled_and_split_forms_of_one_bound_reach_the_same_points():
    one = _spending()
    one.add_constraint(LinearConstraint(["low", "high"], [1, 1], 6))
    scaled = _spending()
    scaled.add_constraint(LinearConstraint(["low", "high"], [2, 2], 12))
    x = [1, 2, 1]
    assert {tuple(p) for p in reachable_set(one, x).X} == {
        tuple(p) for p in reachable_set(scaled, x).X
    }


def _model():
    """Approve iff low + high + 2 * cosigner >= 8."""
    schema = FeatureSchema(
        (FeatureSpec("low", "int", 0, 6), FeatureSpec("high", "int", 0, 6),
         FeatureSpec("cosigner", "bool", 0, 1))
    )
    return DecisionModel(LogisticStub([1.0, 1.0, 2.0], -7.5), schema)


def test_where_it_binds_a_denial_becomes_fixed_and_proven():
    model = _model()
    cost = MADL1Cost(["low", "high", "cosigner"], {"low": 1.0, "high": 1.0, "cosigner": 1.0})
    X = np.array([[2, 1, 0], [6, 1, 0]], float)
    free = _spending()
    free["cosigner"].actionable = False
    r = find_recourse(model, free, X, cost)
    assert r.status.tolist() == ["recourse", "recourse"]
    bound = _spending()
    bound["cosigner"].actionable = False
    bound.add_constraint(LinearConstraint(["low", "high"], [1, 1], 6))
    r = find_recourse(model, bound, X, cost)
    # low + high <= 6 < 8: nobody can reach approval; the search covered every point
    assert r.status.tolist() == ["fixed", "fixed"]
    assert r.complete.all()


def test_where_it_binds_the_issued_recourse_obeys_it_and_costs_more():
    model = _model()
    # MAD scales: a unit change costs 1 / scale (low 1, high 2, the cosigner 4)
    cost = MADL1Cost(["low", "high", "cosigner"], {"low": 1.0, "high": 0.5, "cosigner": 0.25})
    X = np.array([[3, 3, 0]], float)  # unconstrained cheapest: low + 2 (cost 2)
    r = find_recourse(model, _spending(), X, cost)
    np.testing.assert_allclose(r.action[0], [2, 0, 0])
    A = _spending()
    A.add_constraint(LinearConstraint(["low", "high"], [1, 1], 6))
    r = find_recourse(model, A, X, cost)
    assert r.status[0] == "recourse" and r.complete[0]
    np.testing.assert_allclose(r.action[0], [0, 0, 1])  # only the cosigner gets there
    after = X[0] + r.action[0]
    assert after[0] + after[1] <= 6


def test_a_float_in_the_bound_part_is_undetermined_not_fixed():
    schema = FeatureSchema((FeatureSpec("low", "float", 0, 6), FeatureSpec("high", "int", 0, 6)))
    model = DecisionModel(LogisticStub([1.0, 1.0], -7.5), schema)
    A = ActionSet([ActionElement("low", "float", lb=0, ub=6, step_size=0.5),
                   ActionElement("high", "int", lb=0, ub=6)])
    A.add_constraint(LinearConstraint(["low", "high"], [1, 1], 6))
    cost = MADL1Cost(["low", "high"], {"low": 1.0, "high": 1.0})
    r = find_recourse(model, A, np.array([[1.0, 1.0]]), cost)
    # nothing on the grid flips, but the grid proves nothing about the continuum
    assert r.status[0] == "undetermined"
    assert not r.complete[0]


def test_responsiveness_counts_only_actions_within_the_bound():
    model = _model()
    X = np.array([[3, 3, 0]], float)
    A = _spending()
    A["cosigner"].actionable = False
    free = responsiveness(model, A, X)
    A.add_constraint(LinearConstraint(["low", "high"], [1, 1], 6))
    bound = responsiveness(model, A, X)
    j = model.schema.names.index("low")
    # low alone: 0..6 minus 3 itself; approved at 5 and 6 -> 2 of 6
    assert free.mu[0, j] == pytest.approx(2 / 6)
    # with the bound, low 0..2 alone, and low 4..6 only with high lowered to keep the sum at
    # most 6 (reachml's A_j(x): every feasible joint action with that change): 3 + 3 + 2 + 1
    # points, none approved
    assert bound.n_points[0, j] == 9
    assert bound.mu[0, j] == 0.0


def test_validate_flags_observed_rows_that_break_it():
    A = _spending()
    A.add_constraint(LinearConstraint(["low", "high"], [1, 1], 6))
    bad = A.validate(pd.DataFrame({"low": [1, 5], "high": [2, 4], "cosigner": [0, 1]}))
    assert bad["row"].tolist() == [1]
    assert bad["kind"].tolist() == ["constraint"]
