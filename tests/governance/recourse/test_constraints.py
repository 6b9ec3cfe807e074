"""Constraint classes: parameters, English sentences, JSON round trips, row checks and errors."""

import numpy as np
import pytest

from governance.exceptions import ActionSetError
from governance.recourse.action_set import ActionElement, ActionSet
from governance.recourse.constraints import (
    Condition,
    DirectionalLinkage,
    IfThenConstraint,
    OneHotEncoding,
    OrdinalEncoding,
    ThermometerEncoding,
    check_linkage_cycles,
    constraint_from_dict,
)

ALL = [
    OneHotEncoding(["a", "b", "c"], limit=1, limit_type="max"),
    OrdinalEncoding(["a", "b", "c"], exhaustive=False, step_direction=1),
    ThermometerEncoding(["a", "b", "c"], step_direction=-1),
    DirectionalLinkage(["s", "t1", "t2"], scales=[2.0, 1.0, -2.0], keep_bounds=True),
    IfThenConstraint(Condition("a", ">=", 1), Condition("b", "==", 0), note="why"),
]


@pytest.mark.parametrize("con", ALL, ids=lambda c: c.kind)
def test_json_round_trip_preserves_constraint(con):
    back = constraint_from_dict(con.to_dict())
    assert back == con
    assert back.to_dict() == con.to_dict()
    assert type(back) is type(con)


@pytest.mark.parametrize("con", ALL, ids=lambda c: c.kind)
def test_str_is_an_english_sentence(con):
    s = str(con)
    assert s[0].isupper() and s.endswith(".")
    assert all(f"`{n}`" in s for n in con.names)


def test_onehot_rows_equal_and_max():
    V = np.array([[1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 2, 0]], float)
    assert OneHotEncoding(["a", "b", "c"]).check_rows(V).tolist() == [True, False, False, False]
    at_most = OneHotEncoding(["a", "b", "c"], limit_type="max")
    assert at_most.check_rows(V).tolist() == [True, True, False, False]


def test_ordinal_rows_and_levels():
    ex = OrdinalEncoding(["l1", "l2", "l3"])
    V = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 1, 1]], float)
    assert ex.check_rows(V).tolist() == [True, True, False, False]
    assert OrdinalEncoding(["l1", "l2", "l3"], exhaustive=False).check_rows(V).tolist() == [
        True,
        True,
        True,
        False,
    ]
    # moving up from level 1 to level 3 is allowed only when not decreasing-only
    x = np.array([1.0, 0.0, 0.0])
    c = np.array([[-1.0, 0.0, 1.0]])
    up = OrdinalEncoding(["l1", "l2", "l3"], step_direction=1)
    down = OrdinalEncoding(["l1", "l2", "l3"], step_direction=-1)
    lb, ub = np.full(3, -1.0), np.ones(3)
    assert up.feasible(x, c, c, lb, ub).tolist() == [True]
    assert down.feasible(x, c, c, lb, ub).tolist() == [False]


def test_thermometer_rows():
    t = ThermometerEncoding(["g25", "g50", "g75"])
    V = np.array([[0, 0, 0], [1, 1, 0], [0, 1, 0], [1, 0, 1]], float)
    assert t.check_rows(V).tolist() == [True, True, False, False]


def test_thermometer_invalid_start_reaches_nothing():
    t = ThermometerEncoding(["g25", "g50"])
    x = np.array([0.0, 1.0])  # not a thermometer code
    c = np.array([[1.0, 0.0], [0.0, -1.0]])
    assert not t.feasible(x, c, c, np.full(2, -1.0), np.ones(2)).any()


def test_ifthen_semantics_follow_reachml_action_level_rule():
    eq = IfThenConstraint(Condition("a", ">=", 1), Condition("b", "==", 2))
    ge = IfThenConstraint(Condition("a", ">=", 1), Condition("b", ">=", 2))
    a = np.array([[0, 0], [1, 2], [1, 0], [0, 1], [2, 3], [0, -1]], float)
    lb, ub = np.array([-2.0, -2.0]), np.array([2.0, 3.0])
    x = np.zeros(2)
    assert eq.feasible(x, a, a, lb, ub).tolist() == [True, True, False, False, False, False]
    assert ge.feasible(x, a, a, lb, ub).tolist() == [True, True, False, True, True, False]
    # void when the if-feature cannot increase at x
    assert eq.feasible(x, a, a, lb, np.array([0.0, 3.0])).all()
    assert eq.check_rows(np.array([[5.0, 7.0]])).tolist() == [True]


def test_linkage_scales_are_relative_to_the_source():
    link = DirectionalLinkage(["s", "t1", "t2"], scales=[2.0, 1.0, -4.0])
    assert link.source == "s" and link.targets == ("t1", "t2")
    np.testing.assert_allclose(link.scales, [0.5, -2.0])
    assert "`t2` by -2 units" in str(link)


def test_linkage_cycle_is_rejected_with_the_cycle_named():
    links = [
        DirectionalLinkage(["a", "b"]),
        DirectionalLinkage(["b", "c"]),
        DirectionalLinkage(["c", "a"]),
    ]
    with pytest.raises(ActionSetError, match="circular linkage: a -> b -> c -> a"):
        check_linkage_cycles(links)
    check_linkage_cycles(links[:2])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: OneHotEncoding(["a"]), "at least 2 features"),
        (lambda: OneHotEncoding(["a", "a"]), "more than once"),
        (lambda: OneHotEncoding(["a", "b"], limit=3), "limit must be between 0 and 2"),
        (lambda: OneHotEncoding(["a", "b"], limit=1.5), "limit must be an integer"),
        (lambda: OneHotEncoding(["a", "b"], limit_type="min"), "limit_type must be one of"),
        (lambda: OrdinalEncoding(["a", "b"], step_direction=2), "step_direction must be"),
        (lambda: ThermometerEncoding(["a", "b"], step_direction=0.5), "step_direction must be"),
        (lambda: DirectionalLinkage(["a", "b"], scales=[1.0]), "one scale per name"),
        (lambda: DirectionalLinkage(["a", "b"], scales=[1.0, 0.0]), "non-zero"),
        (lambda: Condition("a", "<", 1), "expected one of >=, =="),
        (lambda: Condition("a", ">=", float("nan")), "finite value"),
    ],
)
def test_malformed_constraints_raise(make, match):
    with pytest.raises(ActionSetError, match=match):
        make()


@pytest.mark.parametrize(
    "d, match",
    [
        ({"type": "bogus", "names": ["a", "b"]}, "unknown constraint type 'bogus'"),
        ({"type": "one_hot"}, "missing the field 'names'"),
        ({"type": "one_hot", "names": ["a", "b"], "extra": 1}, "unknown field"),
        ({"type": "if_then", "if": 3, "then": {}}, "must be an object"),
        ("not a dict", "must be a JSON object"),
    ],
)
def test_constraint_from_dict_errors(d, match):
    with pytest.raises(ActionSetError, match=match):
        constraint_from_dict(d)


def _set():
    return ActionSet(
        [
            ActionElement("a", "bool"),
            ActionElement("b", "bool"),
            ActionElement("n", "int", lb=0, ub=10),
            ActionElement("c", "category", categories=("x", "y")),
        ]
    )


@pytest.mark.parametrize(
    "con, match",
    [
        (OneHotEncoding(["a", "n"]), "needs bool features; 'n' is int"),
        (ThermometerEncoding(["a", "zz"]), "unknown feature"),
        (DirectionalLinkage(["a", "c"]), "cannot link category feature 'c'"),
        (DirectionalLinkage(["n", "a"], scales=[1.0, 0.5]), "not a multiple of its step_size"),
        (IfThenConstraint(Condition("n", ">=", 11), Condition("a", "==", 1)), "outside its bounds"),
        (IfThenConstraint(Condition("n", ">=", 1), Condition("c", "==", 1)), "category feature"),
    ],
)
def test_incompatible_constraints_raise_on_add(con, match):
    with pytest.raises(ActionSetError, match=match):
        _set().add_constraint(con)


def test_linkage_source_must_be_actionable():
    A = _set()
    A["n"].actionable = False
    with pytest.raises(ActionSetError, match="source 'n' must be actionable"):
        A.add_constraint(DirectionalLinkage(["n", "a"]))
