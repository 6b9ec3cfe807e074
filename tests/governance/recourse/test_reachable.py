"""Reachable-set enumeration equals hand-written sets for every constraint type."""

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
)
from governance.recourse.reachable import compile_action_set, is_reachable, reachable_set
from governance.registry.schema import FeatureSchema, FeatureSpec


def _points(A, x, names=None):
    R = reachable_set(A, np.asarray(x, float), names)
    assert np.array_equal(R.X[0], np.asarray(x, float))  # row 0 is the person as is
    return {tuple(float(v) for v in row) for row in R.X}, R


def _set(*points):
    return {tuple(float(v) for v in p) for p in points}


def test_separable_int_and_bool():
    A = ActionSet([ActionElement("x1", "int", lb=0, ub=3), ActionElement("x2", "bool")])
    got, R = _points(A, [1, 0])
    assert got == _set(*[(a, b) for a in range(4) for b in (0, 1)])
    assert R.complete and len(R.X) == 8


def test_direction_and_step_bounds():
    A = ActionSet(
        [
            ActionElement("up", "int", lb=0, ub=10, step_direction=1, step_ub=2),
            ActionElement("down", "int", lb=0, ub=10, step_direction=-1, step_lb=-1),
            ActionElement("fixed", "int", lb=0, ub=10, actionable=False),
        ]
    )
    got, _ = _points(A, [9, 0, 5])
    assert got == _set((9, 0, 5), (10, 0, 5))
    got, _ = _points(A, [3, 4, 5])
    assert got == _set(*[(u, d, 5) for u in (3, 4, 5) for d in (3, 4)])


def test_int_step_size_grid_is_anchored_at_x():
    A = ActionSet([ActionElement("term", "int", lb=12, ub=84, step_size=12, step_lb=-24)])
    got, _ = _points(A, [36])
    assert got == _set((12,), (24,), (36,), (48,), (60,), (72,), (84,))


def test_category_changes_among_codes():
    A = ActionSet(
        [ActionElement("c", "category", categories=("a", "b", "c"), step_direction=1)]
    )
    got, _ = _points(A, [1])
    assert got == _set((1,), (2,))


def test_onehot_equal_and_max():
    names = ["a", "b", "c"]
    A = ActionSet([ActionElement(n, "bool") for n in names], [OneHotEncoding(names)])
    got, _ = _points(A, [1, 0, 0])
    assert got == _set((1, 0, 0), (0, 1, 0), (0, 0, 1))
    A = ActionSet(
        [ActionElement(n, "bool") for n in names], [OneHotEncoding(names, limit_type="max")]
    )
    got, _ = _points(A, [0, 0, 1])
    assert got == _set((0, 0, 1), (0, 0, 0), (1, 0, 0), (0, 1, 0))


def test_onehot_with_an_immutable_dummy():
    names = ["a", "b", "c"]
    A = ActionSet([ActionElement(n, "bool") for n in names], [OneHotEncoding(names)])
    A["c"].actionable = False
    got, _ = _points(A, [1, 0, 0])
    assert got == _set((1, 0, 0), (0, 1, 0))


@pytest.mark.parametrize(
    "direction, expected",
    [
        (0, [(1, 0, 0), (0, 1, 0), (0, 0, 1)]),
        (1, [(0, 1, 0), (0, 0, 1)]),
        (-1, [(0, 1, 0), (1, 0, 0)]),
    ],
)
def test_ordinal_directions(direction, expected):
    names = ["lo", "mid", "hi"]
    A = ActionSet(
        [ActionElement(n, "bool") for n in names],
        [OrdinalEncoding(names, step_direction=direction)],
    )
    got, _ = _points(A, [0, 1, 0])
    assert got == _set(*expected)


def test_ordinal_not_exhaustive_allows_all_zero_as_lowest_level():
    names = ["lo", "hi"]
    A = ActionSet(
        [ActionElement(n, "bool") for n in names],
        [OrdinalEncoding(names, exhaustive=False, step_direction=-1)],
    )
    got, _ = _points(A, [0, 1])
    assert got == _set((0, 1), (1, 0), (0, 0))


@pytest.mark.parametrize(
    "x, direction, expected",
    [
        ((1, 0, 0), 0, [(0, 0, 0), (1, 0, 0), (1, 1, 0), (1, 1, 1)]),
        ((1, 0, 0), 1, [(1, 0, 0), (1, 1, 0), (1, 1, 1)]),
        ((1, 1, 0), -1, [(1, 1, 0), (1, 0, 0), (0, 0, 0)]),
        ((0, 0, 0), -1, [(0, 0, 0)]),
    ],
)
def test_thermometer_directions(x, direction, expected):
    names = ["g25", "g50", "g75"]
    A = ActionSet(
        [ActionElement(n, "bool") for n in names],
        [ThermometerEncoding(names, step_direction=direction)],
    )
    got, _ = _points(A, x)
    assert got == _set(*expected)


def test_linkage_to_immutable_target_moves_it_with_the_source():
    A = ActionSet(
        [
            ActionElement("years", "int", lb=0, ub=10, step_direction=1, step_ub=2),
            ActionElement("age", "int", lb=18, ub=90, actionable=False),
        ],
        [DirectionalLinkage(["years", "age"])],
    )
    got, _ = _points(A, [3, 89])  # age leaves its bounds: keep_bounds=False widens them
    assert got == _set((3, 89), (4, 90), (5, 91))


def test_linkage_keep_bounds_blocks_moves_past_the_target_bounds():
    A = ActionSet(
        [
            ActionElement("years", "int", lb=0, ub=10, step_direction=1, step_ub=2),
            ActionElement("age", "int", lb=18, ub=90),
        ],
        [DirectionalLinkage(["years", "age"], keep_bounds=True)],
    )
    A["age"].step_direction = 1
    got, _ = _points(A, [3, 89])
    # own age action a_age in {0, 1}; total change c_age = a_age + a_years must stay <= 1
    assert got == _set((3, 89), (3, 90), (4, 90))


def test_linkage_scale_and_sign_match_reachml_test_construction():
    # reachml tests/test_constraints_directional_linkage.py: target = own action + scale * a_s
    A = ActionSet(
        [ActionElement("x0", "bool"), ActionElement("x2", "int", lb=-1, ub=3)],
        [DirectionalLinkage(["x0", "x2"], scales=[1.0, 2.0])],
    )
    A["x2"].step_direction = 1
    got, _ = _points(A, [0, 2])
    assert got == _set((0, 2), (0, 3), (1, 4), (1, 5))
    A2 = ActionSet(
        [
            ActionElement("lt1", "bool", step_direction=-1),
            ActionElement("age", "int", lb=18, ub=90),
        ],
        [DirectionalLinkage(["lt1", "age"], scales=[1.0, -1.0])],
    )
    A2["age"].actionable = False
    got, _ = _points(A2, [1, 40])
    assert got == _set((1, 40), (0, 41))


def test_linkage_effects_are_not_transitive():
    A = ActionSet(
        [
            ActionElement("a", "int", lb=0, ub=1),
            ActionElement("b", "int", lb=0, ub=5, step_lb=0, step_ub=0),  # no own action
            ActionElement("c", "int", lb=0, ub=5, actionable=False),
        ],
        [DirectionalLinkage(["a", "b"]), DirectionalLinkage(["b", "c"])],
    )
    got, _ = _points(A, [0, 0, 0])
    assert got == _set((0, 0, 0), (1, 1, 0))  # c follows b's own action only (none here)


def test_ifthen_action_level_rule():
    A = ActionSet(
        [ActionElement("a", "int", lb=0, ub=2), ActionElement("b", "int", lb=0, ub=3)],
        [IfThenConstraint(Condition("a", ">=", 1), Condition("b", "==", 2))],
    )
    got, _ = _points(A, [0, 0])
    assert got == _set((0, 0), (1, 2), (2, 2))
    got, _ = _points(A, [2, 0])  # a cannot increase: the rule is void
    assert got == _set(*[(a, b) for a in (0, 1, 2) for b in range(4)])


def test_ifthen_at_least():
    A = ActionSet(
        [ActionElement("a", "bool"), ActionElement("b", "int", lb=0, ub=3)],
        [IfThenConstraint(Condition("a", ">=", 1), Condition("b", ">=", 2))],
    )
    got, _ = _points(A, [0, 1])
    assert got == _set((0, 1), (0, 2), (0, 3), (1, 3))


def test_parts_multiply_and_follow_schema_order():
    names = ["t1", "t2"]
    A = ActionSet(
        [ActionElement(n, "bool") for n in names] + [ActionElement("n", "int", lb=0, ub=1)],
        [ThermometerEncoding(names, step_direction=1)],
    )
    schema = FeatureSchema(
        (
            FeatureSpec("n", "int"),
            FeatureSpec("other", "float"),
            FeatureSpec("t2", "bool"),
            FeatureSpec("t1", "bool"),
        )
    )
    got, R = _points(A, [0, 7.5, 0, 1], schema)
    assert got == _set(*[(n, 7.5, t2, 1) for n in (0, 1) for t2 in (0, 1)])
    assert np.allclose(R.actions, R.X - np.array([0, 7.5, 0, 1]))


def test_float_grid_includes_interval_ends_and_marks_incomplete():
    A = ActionSet([ActionElement("f", "float", lb=0.0, ub=1.0, step_size=0.25, step_ub=0.6)])
    got, R = _points(A, [0.1])
    assert got == _set((0.1,), (0.0,), (0.25,), (0.5,), (0.7,))
    assert not R.complete


def test_is_reachable_checks_every_rule():
    A = ActionSet(
        [
            ActionElement("years", "int", lb=0, ub=10, step_direction=1, step_ub=2),
            ActionElement("age", "int", lb=18, ub=90, actionable=False),
            ActionElement("f", "float", lb=0, ub=1, step_direction=-1),
        ],
        [DirectionalLinkage(["years", "age"])],
    )
    x = np.array([3, 40, 0.5])
    assert is_reachable(A, x, [5, 42, 0.123])
    assert not is_reachable(A, x, [5, 41, 0.5])  # age must follow years
    assert not is_reachable(A, x, [6, 43, 0.5])  # step_ub
    assert not is_reachable(A, x, [3, 40, 0.6])  # f only decreases
    assert not is_reachable(A, x, [3.5, 40.5, 0.5])  # years is an integer feature
    schema = FeatureSchema(
        (FeatureSpec("years", "int"), FeatureSpec("age", "int"), FeatureSpec("f", "float"),
         FeatureSpec("zip", "int"))
    )
    assert not is_reachable(A, [3, 40, 0.5, 7], [3, 40, 0.5, 8], schema)  # not in the set


def test_unbounded_actionable_feature_raises():
    A = ActionSet([ActionElement("f", "int")])
    with pytest.raises(ActionSetError, match="'f' is actionable but unbounded"):
        reachable_set(A, [1])


def test_part_too_large_raises(monkeypatch):
    import governance.recourse.reachable as reachable

    monkeypatch.setattr(reachable, "MAX_PART_POINTS", 10)
    names = ["a", "b"]
    A = ActionSet(
        [ActionElement(n, "int", lb=0, ub=9) for n in names], [DirectionalLinkage(names)]
    )
    with pytest.raises(ActionSetError, match=r"part \[a, b\] has 100 candidate joint actions"):
        reachable_set(A, [0, 0])


def test_compile_rejects_features_missing_from_the_names():
    A = ActionSet([ActionElement("a", "bool")])
    with pytest.raises(ActionSetError, match="not among the given names"):
        compile_action_set(A, ["b"])
    with pytest.raises(ActionSetError, match="x must have 1 values"):
        reachable_set(A, [0, 1])


def test_vectorised_own_grids_equal_the_per_value_grids():
    rng = np.random.default_rng(0)
    elements = [
        ActionElement("f", "float", lb=0, ub=100, step_size=0.7, step_lb=-13, step_ub=9),
        ActionElement("g", "float", lb=-5, ub=5, step_direction=-1, step_size=0.01),
        ActionElement("h", "float", lb=0, ub=1e6, step_direction=1, step_size=1.0),  # coarsened
        ActionElement("i", "int", lb=0, ub=20, step_lb=-3, step_ub=2),
        ActionElement("k", "int", lb=0, ub=20, step_direction=1, step_size=2),
        ActionElement("b", "bool"),
        ActionElement("c", "float", actionable=False),
    ]
    cas = compile_action_set(ActionSet(elements))
    for j, el in enumerate(elements):
        lb, ub = (el.lb, el.ub) if np.isfinite(el.ub - el.lb) else (0.0, 10.0)
        xs = np.round(rng.uniform(lb, ub, 60), 3)
        if el.type in ("int", "bool"):
            xs = np.round(xs)
        xs[:3] = [lb, ub, (lb + ub) / 2]
        owner, actions = cas.own_grids(j, xs)
        for i, x in enumerate(xs):
            ref = cas.own_grid(j, float(x))
            np.testing.assert_array_equal(actions[owner == i], ref)
    unbounded = compile_action_set(ActionSet([ActionElement("u", "float", lb=-np.inf)]))
    with pytest.raises(ActionSetError, match="actionable but unbounded at value 1"):
        unbounded.own_grids(0, np.array([1.0]))
