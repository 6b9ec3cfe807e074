"""Recourse verification and minimal-cost recourse: exact toy answers, brute-force properties."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from governance.exceptions import CostError, RecourseError
from governance.recourse.action_set import ActionElement, ActionSet
from governance.recourse.constraints import DirectionalLinkage, OneHotEncoding, ThermometerEncoding
from governance.recourse.costs import MADL1Cost, PercentileShiftCost
from governance.recourse.reachable import is_reachable, reachable_set
from governance.recourse.search import find_recourse
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema, FeatureSpec
from governance.registry.training import TrainingRecipe
from tests.helpers import LogisticStub, RuleStub

pytestmark = pytest.mark.usefixtures("one_thread")


def _toy():
    schema = FeatureSchema((FeatureSpec("x1", "int", 0, 5), FeatureSpec("x2", "bool", 0, 1)))
    model = DecisionModel(LogisticStub([1.0, 1.0], -3.5), schema)  # approve iff x1 + x2 >= 4
    A = ActionSet([ActionElement("x1", "int", lb=0, ub=5), ActionElement("x2", "bool")])
    X = np.array([[0, 0], [2, 1], [5, 0], [1, 1]], float)
    cost = MADL1Cost(["x1", "x2"], {"x1": 1.0, "x2": 0.5})
    return model, A, X, cost


def test_toy_minimal_cost_recourse_is_exact():
    model, A, X, cost = _toy()
    r = find_recourse(model, A, X, cost)
    assert r.status.tolist() == ["recourse", "recourse", "approved", "recourse"]
    assert r.complete.all()
    # (0,0): x1 + 4 costs 4 < x1 + 3 & x2 + 1 costs 3 + 2; (1,1): x1 + 2
    np.testing.assert_allclose(r.action[[0, 1, 3]], [[4, 0], [1, 0], [2, 0]])
    np.testing.assert_allclose(r.cost[[0, 1, 3]], [4.0, 1.0, 2.0])
    assert np.isnan(r.action[2]).all() and np.isnan(r.cost[2])
    assert (r.score_after[[0, 1, 3]] >= 0.5).all()
    assert r.n_points[2] == 0


def test_fixed_when_the_whole_reachable_set_stays_denied():
    model, A, X, cost = _toy()
    A["x1"].step_ub = 1
    r = find_recourse(model, A, X, cost)
    assert r.status.tolist() == ["fixed", "recourse", "approved", "fixed"]
    assert r.complete.tolist() == [True, True, True, True]
    assert r.n_points[0] == 3  # (1,0), (0,1), (1,1)


def test_all_immutable_denied_rows_are_fixed():
    model, A, X, cost = _toy()
    A[["x1", "x2"]].actionable = False
    r = find_recourse(model, A, X, cost)
    assert r.status.tolist() == ["fixed", "fixed", "approved", "fixed"]


def test_greedy_fallback_issues_a_valid_recourse_when_the_budget_ends():
    model, A, X, cost = _toy()
    r = find_recourse(model, A, X[:1], cost, max_points=3, prove_points=0)
    assert r.status.tolist() == ["recourse"] and not r.complete[0]
    np.testing.assert_allclose(r.action[0], [4.0, 0.0])  # made cheaper after the flip
    # with the proof stage on, the small exact space is searched to the end instead
    r = find_recourse(model, A, X[:1], cost, max_points=3)
    assert r.status.tolist() == ["recourse"] and r.complete[0]
    np.testing.assert_allclose(r.action[0], [4.0, 0.0])
    assert model.approve(r.x_after)[0] and is_reachable(A, X[0], r.x_after[0])


def test_budget_exhausted_gives_undetermined():
    model, A, X, cost = _toy()
    model.estimator = LogisticStub([1.0, 1.0], -6.5)  # nobody can reach 7
    r = find_recourse(model, A, X[:1], cost, max_points=5, prove_points=0)
    assert r.status.tolist() == ["undetermined"] and not r.complete[0]
    r = find_recourse(model, A, X[:1], cost)
    assert r.status.tolist() == ["fixed"] and r.complete[0]


def test_a_small_budget_still_proves_fixed_and_minimal_recourse_in_small_exact_spaces():
    model, A, X, cost = _toy()
    model.estimator = LogisticStub([1.0, 1.0], -6.5)  # nobody can reach 7
    r = find_recourse(model, A, X[:1], cost, max_points=5)  # the proof searches on
    assert r.status.tolist() == ["fixed"] and r.complete[0]
    assert r.n_points[0] >= 11  # every point of A(x) but x itself was scored
    # too large a space to prove: undetermined, never fixed
    r = find_recourse(model, A, X[:1], cost, max_points=5, prove_points=6)
    assert r.status.tolist() == ["undetermined"] and not r.complete[0]
    # where a flip lies past the budget, the proof finds the cheapest one
    model, A, X, cost = _toy()
    full = find_recourse(model, A, X, cost)
    small = find_recourse(model, A, X, cost, max_points=1)
    assert small.status.tolist() == full.status.tolist()
    np.testing.assert_array_equal(small.cost, full.cost)


def test_float_features_are_never_fixed_by_a_grid_search_on_an_opaque_model():
    schema = FeatureSchema((FeatureSpec("f", "float", 0, 1),))
    model = DecisionModel(LogisticStub([1.0], -5.0), schema)
    A = ActionSet([ActionElement("f", "float", lb=0, ub=1, step_size=0.25)])
    cost = MADL1Cost(["f"], {"f": 1.0})
    r = find_recourse(model, A, np.array([[0.3]]), cost)
    assert r.status.tolist() == ["undetermined"] and not r.complete[0]
    assert r.n_points[0] == 5  # grid 0, .25, .5, .75, 1 besides .3 itself



def test_a_minimum_on_a_float_grid_is_claimed_for_the_grid_only():
    # approve iff f >= 2.5; f moves in steps of 1 on its grid, so the cheapest grid point is
    # f = 3 while f = 2.5 would do: the claim is "minimal on the candidate grid"
    schema = FeatureSchema((FeatureSpec("f", "float", 0, 10), FeatureSpec("k", "int", 0, 5)))
    model = DecisionModel(RuleStub(lambda X: X[:, 0] >= 2.5), schema)
    A = ActionSet([
        ActionElement("f", "float", lb=0, ub=10, step_size=1.0),
        ActionElement("k", "int", lb=0, ub=5),
    ])
    cost = MADL1Cost(["f", "k"], {"f": 1.0, "k": 1.0})
    X = np.array([[0.0, 0.0], [0.0, 5.0]])
    r = find_recourse(model, A, X, cost)
    assert r.status.tolist() == ["recourse", "recourse"] and r.complete.all()
    np.testing.assert_allclose(r.cost, [3.0, 3.0])  # above the continuous minimum 2.5
    assert r.minimal_over.tolist() == ["candidate_grid", "candidate_grid"]
    assert r.to_frame()["minimal_over"].tolist() == ["candidate_grid", "candidate_grid"]
    # the float cannot move for this person: the grid is the action set
    A["f"].actionable = False
    model = DecisionModel(RuleStub(lambda X: X[:, 1] >= 3), schema)
    r = find_recourse(model, A, X[:1], cost)
    assert r.minimal_over.tolist() == ["action_set"]


def test_only_proven_recourse_claims_minimality():
    model, A, X, cost = _toy()
    r = find_recourse(model, A, X, cost)
    assert r.minimal_over.tolist() == ["action_set", "action_set", None, "action_set"]
    r = find_recourse(model, A, X[:1], cost, max_points=3, prove_points=0)  # greedy fallback
    assert r.status.tolist() == ["recourse"] and r.minimal_over.tolist() == [None]

def test_frames_report_the_issued_recourse():
    model, A, X, cost = _toy()
    model.version = "v3"
    r = find_recourse(model, A, X, cost)
    df = r.to_frame()
    assert df.loc[0, ["status", "cost", "action:x1", "action:x2"]].tolist() == [
        "recourse",
        4.0,
        4.0,
        0.0,
    ]
    assert set(df["model_version"]) == {"v3"} and set(df["cost_kind"]) == {"mad_l1"}
    acts = r.actions_frame()
    assert acts.values.tolist() == [
        [0, "x1", 0.0, 4.0, 4.0],
        [1, "x1", 2.0, 3.0, 1.0],
        [3, "x1", 1.0, 3.0, 2.0],
    ]


def test_duplicates_and_frame_input_give_identical_rows():
    model, A, X, cost = _toy()
    X2 = np.vstack([X, X[::-1]])
    r = find_recourse(model, A, pd.DataFrame(X2, columns=["x1", "x2"]), cost)
    np.testing.assert_array_equal(r.status[:4], r.status[4:][::-1])
    np.testing.assert_array_equal(r.cost[:4], r.cost[4:][::-1])


def test_cost_must_match_the_model_features():
    model, A, X, _ = _toy()
    with pytest.raises(CostError, match="fitted on features"):
        find_recourse(model, A, X, MADL1Cost(["x2", "x1"], {"x1": 1.0, "x2": 1.0}))


def test_few_model_calls_per_chunk_whatever_its_size():
    model, A, _, cost = _toy()
    calls = []
    for n in (10, 300):
        rng = np.random.default_rng(n)
        X = np.column_stack([rng.integers(0, 6, n), rng.integers(0, 2, n)]).astype(float)
        model.stats.reset()
        find_recourse(model, A, X, cost)
        calls.append(model.stats.calls)
    assert calls[0] == calls[1] <= 4


# -- property tests against brute force ----------------------------------------------------
@st.composite
def _cases(draw):
    """A small discrete action set, a linear stub model and valid rows."""
    n_int = draw(st.integers(1, 2))
    elements, specs = [], []
    for k in range(n_int):
        lb = draw(st.integers(0, 2))
        ub = lb + draw(st.integers(1, 4))
        el = ActionElement(
            f"i{k}",
            "int",
            lb=lb,
            ub=ub,
            actionable=draw(st.booleans()),
            step_direction=draw(st.sampled_from([-1, 0, 1])),
            step_lb=draw(st.sampled_from([None, -1, -2])),
            step_ub=draw(st.sampled_from([None, 1, 2])),
        )
        elements.append(el)
        specs.append(FeatureSpec(el.name, "int", lb, ub))
    kind = draw(st.sampled_from(["none", "onehot", "thermometer", "linkage"]))
    bools = [
        ActionElement(f"b{k}", "bool", step_direction=draw(st.sampled_from([-1, 0, 1])))
        for k in range(3)
    ]
    elements += bools
    specs += [FeatureSpec(b.name, "bool", 0, 1) for b in bools]
    constraints = []
    if kind == "onehot":
        constraints.append(
            OneHotEncoding(["b0", "b1", "b2"], limit_type=draw(st.sampled_from(["equal", "max"])))
        )
    elif kind == "thermometer":
        constraints.append(
            ThermometerEncoding(
                ["b0", "b1", "b2"], step_direction=draw(st.sampled_from([-1, 0, 1]))
            )
        )
    elif kind == "linkage" and elements[0].actionable:
        constraints.append(
            DirectionalLinkage(["i0", "b0"], scales=[1.0, 1.0], keep_bounds=draw(st.booleans()))
        )
    A = ActionSet(elements, constraints)
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        ints = [draw(st.integers(int(e.lb), int(e.ub))) for e in elements[:n_int]]
        if kind == "onehot":
            hot = draw(st.integers(0, 2))
            bvals = [float(k == hot) for k in range(3)]
        elif kind == "thermometer":
            level = draw(st.integers(0, 3))
            bvals = [float(k < level) for k in range(3)]
        else:
            bvals = [float(draw(st.booleans())) for _ in range(3)]
        rows.append(ints + bvals)
    X = np.array(rows, float)
    w = draw(st.lists(st.floats(-2, 2, allow_nan=False), min_size=len(specs), max_size=len(specs)))
    b = draw(st.floats(-4, 2, allow_nan=False))
    model = DecisionModel(LogisticStub(w, b), FeatureSchema(tuple(specs)))
    return model, A, X


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases(), st.sampled_from(["mad", "percentile"]))
def test_issued_recourse_flips_is_feasible_and_cheapest(case, cost_kind):
    model, A, X = case
    ref = pd.DataFrame(X, columns=model.schema.names)
    cost = (MADL1Cost if cost_kind == "mad" else PercentileShiftCost).fit(ref, model.schema)
    r = find_recourse(model, A, X, cost)
    for i, x in enumerate(X):
        approved = model.approve(x[None, :])[0]
        if approved:
            assert r.status[i] == "approved"
            continue
        R = reachable_set(A, x, model.schema)
        flips = model.approve(R.X)
        assert r.status[i] in ("recourse", "fixed")  # discrete and small: always decided
        if r.status[i] == "fixed":
            assert not flips.any() and r.complete[i]
            continue
        x_after = r.x_after[i]
        assert model.approve(x_after[None, :])[0]
        widened = any(
            isinstance(c, DirectionalLinkage) and not c.keep_bounds for c in A.constraints
        )
        if not widened:  # reachml's widened target bounds may leave the target's own domain
            assert A.validate(x_after[None, :]).empty
        assert is_reachable(A, x, x_after, model.schema)
        assert np.allclose(x + r.action[i], x_after)
        best = cost(np.repeat(x[None, :], flips.sum(), 0), R.X[flips]).min()
        assert r.cost[i] <= best + 1e-9
        np.testing.assert_allclose(r.cost[i], cost(x[None, :], x_after[None, :])[0])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases(), st.floats(0.5, 0.99))
def test_accepted_recourse_is_the_cheapest_accepted_point(case, tau):
    model, A, X = case
    ref = pd.DataFrame(X, columns=model.schema.names)
    cost = MADL1Cost.fit(ref, model.schema)
    r = find_recourse(model, A, X, cost, accept=lambda P, s: s >= tau)
    for i, x in enumerate(X):
        if model.approve(x[None, :])[0]:
            assert r.status[i] == "approved"
            continue
        R = reachable_set(A, x, model.schema)
        scores = model.score(R.X)
        flips, good = scores >= model.threshold, scores >= tau
        if not flips.any():
            assert r.status[i] == "fixed" and r.complete[i]
        elif not (flips & good).any():
            assert r.status[i] == "unaccepted" and r.complete[i]
            assert np.isnan(r.cost[i]) and np.isnan(r.x_after[i]).all()
        else:
            assert r.status[i] == "recourse" and r.complete[i]
            assert r.score_after[i] >= tau and is_reachable(A, x, r.x_after[i], model.schema)
            best = cost(np.repeat(x[None, :], (flips & good).sum(), 0), R.X[flips & good])
            np.testing.assert_allclose(r.cost[i], best.min(), atol=1e-9)


def test_accept_picks_the_cheapest_candidate_with_a_high_score():
    model, A, X, cost = _toy()  # score = sigmoid(x1 + x2 - 3.5); >= 0.9 needs x1 + x2 = 6
    seen = []

    def accept(P, s):
        seen.append((P.copy(), s.copy()))
        return s >= 0.9

    r = find_recourse(model, A, X, cost, accept=accept)
    assert r.status.tolist() == ["recourse", "recourse", "approved", "recourse"]
    np.testing.assert_allclose(r.action[[0, 1, 3]], [[5, 1], [3, 0], [4, 0]])
    np.testing.assert_allclose(r.cost[[0, 1, 3]], [7.0, 3.0, 4.0])
    assert all((s >= 0.5).all() and P.shape[1] == 2 for P, s in seen)  # flipping rows only
    plain = find_recourse(model, A, X, cost)
    np.testing.assert_allclose(plain.cost[[0, 1, 3]], [4.0, 1.0, 2.0])


def test_flips_without_an_accepted_one_are_unaccepted_not_fixed():
    model, A, X, cost = _toy()
    r = find_recourse(model, A, X, cost, accept=lambda P, s: s >= 0.99)  # unreachable
    assert r.status.tolist() == ["unaccepted", "unaccepted", "approved", "unaccepted"]
    assert r.complete.all() and np.isnan(r.cost[[0, 1, 3]]).all()
    A["x1"].step_ub = 1  # (0,0) and (1,1) cannot flip at all: fixed, whatever accept says
    r = find_recourse(model, A, X, cost, accept=lambda P, s: s >= 0.99)
    assert r.status.tolist() == ["fixed", "unaccepted", "approved", "fixed"]


def test_greedy_fallback_respects_accept_when_the_budget_ends():
    model, A, X, cost = _toy()
    r = find_recourse(model, A, X[:1], cost, max_points=3, prove_points=0,
                      accept=lambda P, s: s >= 0.9)
    assert r.status.tolist() == ["recourse"] and not r.complete[0]
    np.testing.assert_allclose(r.action[0], [5.0, 1.0])
    r = find_recourse(model, A, X[:1], cost, max_points=3, prove_points=0,
                      accept=lambda P, s: s >= 0.99)
    assert r.status.tolist() == ["unaccepted"] and not r.complete[0]


def test_accept_must_return_one_boolean_per_candidate():
    model, A, X, cost = _toy()
    with pytest.raises(RecourseError, match="accept must return"):
        find_recourse(model, A, X, cost, accept=lambda P, s: np.ones(len(s) + 1, bool))
    with pytest.raises(RecourseError, match="dtype float64"):
        find_recourse(model, A, X, cost, accept=lambda P, s: s)


# -- certification with real models --------------------------------------------------------
def _float_data(seed=0, n=400):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "f": rng.uniform(0, 10, n),
            "g": rng.uniform(0, 10, n),
            "c": rng.choice(["a", "b"], n),
        }
    )
    y = ((df["f"] + 0.5 * df["g"] + (df["c"] == "b") * 2 > 9) ^ (rng.random(n) < 0.05)).astype(int)
    schema = FeatureSchema(
        (
            FeatureSpec("f", "float", 0, 10),
            FeatureSpec("g", "float", 0, 10),
            FeatureSpec("c", "category", categories=("a", "b")),
        )
    )
    return df, y, schema


def _float_set(step_ub):
    return ActionSet(
        [
            ActionElement(
                "f", "float", lb=0, ub=10, step_direction=1, step_ub=step_ub, step_size=0.5
            ),
            ActionElement("g", "float", lb=0, ub=10, step_direction=-1, step_size=0.5),
            ActionElement("c", "category", categories=("a", "b"), actionable=False),
        ]
    )


def _dense_flip(model, A, x, n=4000, seed=0):
    """Whether a dense random sample of the continuous A(x) contains a flip."""
    rng = np.random.default_rng(seed)
    lo_f, hi_f = A["f"].action_bounds(x[0])
    lo_g, hi_g = A["g"].action_bounds(x[1])
    P = np.repeat(x[None, :], n, axis=0)
    P[:, 0] += rng.uniform(lo_f, hi_f, n)
    P[:, 1] += rng.uniform(lo_g, hi_g, n)
    corners = np.array([[x[0] + a, x[1] + b, x[2]] for a in (lo_f, hi_f) for b in (lo_g, hi_g)])
    return bool(model.approve(np.vstack([P, corners])).any())


@pytest.mark.parametrize(
    "estimator",
    [
        "decision_tree",
        "logistic_regression",
        "random_forest",
        "gradient_boosting",
        "hist_gradient_boosting",
    ],
)
def test_certified_fixed_verdicts_on_continuous_features_hold(estimator):
    df, y, schema = _float_data()
    params = {
        "decision_tree": {"max_depth": 4},
        "logistic_regression": {},
        "random_forest": {"n_estimators": 10, "max_depth": 4},
        "gradient_boosting": {"n_estimators": 20, "max_depth": 2},
        "hist_gradient_boosting": {"max_iter": 15},
    }[estimator]
    with threadpool_limits(1):  # OpenMP oversubscription makes HGB crawl on small inputs
        pipe = TrainingRecipe(estimator, params, seed=0).fit(schema, df, y)
        model = DecisionModel(pipe, schema)
        A = _float_set(step_ub=1.5)
        X = model.matrix(df.iloc[:120])
        cost = MADL1Cost.fit(df, schema)
        r = find_recourse(model, A, X, cost)
        assert (r.status == "fixed").sum() > 0
        assert (r.status == "recourse").sum() > 0
        for i in np.flatnonzero(r.status == "fixed"):
            assert r.complete[i]
            assert not _dense_flip(model, A, X[i])
        rec = r.status == "recourse"
        assert model.approve(r.x_after[rec]).all()
        for i in np.flatnonzero(rec):
            assert is_reachable(A, X[i], r.x_after[i], schema)


def test_tree_candidates_make_exhaustive_search_exact_per_threshold_cell():
    df, y, schema = _float_data(1)
    pipe = TrainingRecipe("decision_tree", {"max_depth": 3}, seed=0).fit(schema, df, y)
    model = DecisionModel(pipe, schema)
    A = _float_set(step_ub=10)
    X = model.matrix(df.iloc[:60])
    r = find_recourse(model, A, X, MADL1Cost.fit(df, schema))
    denied = r.status != "approved"
    assert r.complete[denied].all()  # every denied row gets a proven verdict
    # the exact continuous minimum sits at a split edge: no grid point of a cell is cheaper
    for i in np.flatnonzero(r.status == "recourse"):
        R = reachable_set(A, X[i], schema)  # float grid of step 0.5
        flips = model.approve(R.X)
        if flips.any():
            grid_best = MADL1Cost.fit(df, schema)(
                np.repeat(X[i : i + 1], flips.sum(), 0), R.X[flips]
            ).min()
            assert r.cost[i] <= grid_best + 1e-9


@pytest.mark.parametrize(
    "estimator, params",
    [
        ("decision_tree", {"max_depth": 4}),
        ("random_forest", {"n_estimators": 10, "max_depth": 4}),
        ("gradient_boosting", {"n_estimators": 20, "max_depth": 2}),
        ("hist_gradient_boosting", {"max_iter": 15}),
    ],
)
def test_tree_box_bound_certifies_fixed_without_search(estimator, params):
    # a budget of 2 points settles only people with at most one move: the rest of the
    # "fixed" verdicts (no point evaluated) come from the box bound
    df, y, schema = _float_data(2)
    with threadpool_limits(1):
        pipe = TrainingRecipe(estimator, params, seed=0).fit(schema, df, y)
        model = DecisionModel(pipe, schema)
        A = _float_set(step_ub=1.0)
        X = model.matrix(df.iloc[:150])
        r = find_recourse(model, A, X, MADL1Cost.fit(df, schema), max_points=2)
        fixed = np.flatnonzero(r.status == "fixed")
        movable = (X[:, 0] < 10) | (X[:, 1] > 0)  # A(x) holds more than x itself
        assert ((r.n_points == 0) & (r.status == "fixed") & movable).sum() > 0
        assert r.complete[fixed].all()
        for i in fixed:
            assert not _dense_flip(model, A, X[i], seed=int(i))
        assert set(r.status) <= {"approved", "fixed", "recourse", "undetermined"}


# -- speed-ups that must not change answers ------------------------------------------------
def _scalar_tree_candidates(cas, cells, j, xj):
    """The per-value reference the vectorised candidate builder must reproduce."""
    grid = cas.own_grid(j, xj)
    lo, hi = xj + grid.min(), xj + grid.max()
    edges = cells.edges()
    edges = edges[(edges >= lo) & (edges <= hi)]
    pool = np.unique(np.concatenate([xj + grid, edges, [lo, hi, xj]]))
    on_grid = np.isin(pool, xj + grid)
    ids = cells.ids(pool)
    exact = bool(np.all(np.diff(ids) <= 1))
    if cas.elements[j].discrete:
        pool, ids, on_grid, exact = pool[on_grid], ids[on_grid], on_grid[on_grid], True
    rank = np.lexsort((np.abs(pool - xj), ~on_grid, ids))
    first = np.concatenate([[True], ids[rank][1:] != ids[rank][:-1]])
    chosen = pool[rank[first]]
    actions = chosen - xj
    actions[chosen == xj] = 0.0
    if not np.any(actions == 0):
        actions[np.argmin(np.abs(actions))] = 0.0
    return actions, exact


@pytest.mark.parametrize("estimator", ["decision_tree", "hist_gradient_boosting"])
def test_vectorised_tree_candidates_match_the_per_value_reference(estimator):
    from governance.recourse.candidates import _tree_candidates
    from governance.recourse.reachable import compile_action_set
    from governance.registry.trees import model_structure

    df, y, schema = _float_data(3)
    params = {"max_depth": 4} | ({"max_iter": 10} if estimator != "decision_tree" else {})
    with threadpool_limits(1):
        pipe = TrainingRecipe(estimator, params, seed=0).fit(schema, df, y)
    model = DecisionModel(pipe, schema)
    A = _float_set(step_ub=3.0)
    A["g"].step_size = 0.05
    cas = compile_action_set(A, schema)
    s = model_structure(model)
    xs = np.concatenate([df["f"].to_numpy()[:40], [0.0, 10.0, 5.0]])
    for j, vals in ((0, xs), (1, df["g"].to_numpy()[:40])):
        owner, actions, exact = _tree_candidates(cas, s.cells[j], j, vals)
        for i, x in enumerate(vals):
            ref, ok = _scalar_tree_candidates(cas, s.cells[j], j, float(x))
            np.testing.assert_array_equal(actions[owner == i], ref)
            assert exact[i] == ok


@pytest.mark.parametrize(
    "estimator, params",
    [
        ("random_forest", {"n_estimators": 10, "max_depth": 5}),
        ("hist_gradient_boosting", {"max_iter": 20}),
    ],
)
def test_narrowing_lists_to_cells_keeps_every_minimum(estimator, params, monkeypatch):
    from governance.recourse import search

    df, y, schema = _float_data(4)
    with threadpool_limits(1):
        model = DecisionModel(TrainingRecipe(estimator, params, seed=0).fit(schema, df, y), schema)
    A = _float_set(step_ub=4.0)
    X = model.matrix(df.iloc[:50])
    cost = MADL1Cost.fit(df, schema)
    narrowed = find_recourse(model, A, X, cost, max_points=256)
    monkeypatch.setattr(search._Search, "_narrow", lambda self, bound, cands, denied: cands)
    full = find_recourse(model, A, X, cost, max_points=256)
    assert narrowed.status.tolist() == full.status.tolist()
    done = full.complete & (full.status == "recourse")
    assert done.sum() > 10
    np.testing.assert_array_equal(narrowed.cost[done], full.cost[done])
    assert narrowed.n_points.sum() < full.n_points.sum()


def test_one_walk_for_single_input_boxes_matches_walking_each_box():
    from governance.recourse.reachable import compile_action_set, value_box
    from governance.registry.trees import model_structure

    df, y, schema = _float_data(5)
    with threadpool_limits(1):
        pipe = TrainingRecipe("hist_gradient_boosting", {"max_iter": 15}, seed=0).fit(schema, df, y)
    model = DecisionModel(pipe, schema)
    bound = model_structure(model).bound
    X = model.matrix(df.iloc[:50])
    X[::7, 1] = np.nan  # a missing value elsewhere goes both ways
    lo, hi = value_box(compile_action_set(_float_set(step_ub=3.0), schema), X)
    zx, _ = bound.box(X, X)
    zlo, zhi = bound.box(lo, hi)
    for o in (0, 1):
        got = bound.single_cell_counts(zx, zlo, zhi, [0, 1])[o]
        blo, bhi = zx.copy(), zx.copy()
        blo[:, o], bhi[:, o] = zlo[:, o], zhi[:, o]
        ref = bound.cell_counts(blo, bhi, [o])[o]
        np.testing.assert_array_equal(got[~np.isnan(X[:, o])], ref[~np.isnan(X[:, o])])


def test_tree_bound_is_nan_where_a_box_reaches_no_leaf_and_exact_at_points():
    from governance.registry.trees import model_structure

    df, y, schema = _float_data(6)
    pipe = TrainingRecipe("random_forest", {"n_estimators": 5, "max_depth": 4}, seed=0).fit(
        schema, df, y
    )
    model = DecisionModel(pipe, schema)
    bound = model_structure(model).bound
    X = model.matrix(df.iloc[:20])
    np.testing.assert_allclose(bound.upper(*bound.box(X, X)), model.score(X), atol=1e-12)
    X[0, 0] = np.nan
    assert np.isnan(bound.upper(*bound.box(X[:1], X[:1])))[0]


def test_parsed_structure_is_reused_until_the_estimator_is_refit():
    from governance.registry.trees import model_structure

    df, y, schema = _float_data(7)
    pipe = TrainingRecipe("decision_tree", {"max_depth": 2}, seed=0).fit(schema, df, y)
    model = DecisionModel(pipe, schema)
    first = model_structure(model)
    assert model_structure(model) is first
    Xt = pipe[:-1].transform(df)
    pipe.steps[-1][1].set_params(max_depth=4).fit(Xt, y)  # refit in place: new tree_
    again = model_structure(model)
    assert again is not first
    np.testing.assert_allclose(
        again.bound.upper(*again.bound.box(model.matrix(df), model.matrix(df))),
        model.score(df),
        atol=1e-12,
    )


def test_parsed_structures_do_not_outlive_their_estimator():
    import gc

    from governance.registry.trees import _STRUCTURES, model_structure

    df, y, schema = _float_data(8)
    pipe = TrainingRecipe("decision_tree", {"max_depth": 2}, seed=0).fit(schema, df, y)
    model_structure(DecisionModel(pipe, schema))
    before = len(_STRUCTURES)
    del pipe
    gc.collect()
    assert len(_STRUCTURES) == before - 1


# -- a larger budget never does worse ------------------------------------------------------
class _BumpyStub:
    """Opaque, non-monotone score: P(class 1) = sigmoid(X @ w + b + sum_k c_k sin(X @ u_k))."""

    classes_ = np.array([0, 1])

    def __init__(self, w, b, U, c):
        self.w, self.b, self.U, self.c = (np.asarray(w, float), float(b), np.asarray(U, float),
                                          np.asarray(c, float))

    def predict_proba(self, frame):
        X = frame.to_numpy(dtype=float)
        z = X @ self.w + self.b + np.sin(X @ self.U.T) @ self.c
        p = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1 - p, p])


@st.composite
def _wide_cases(draw):
    """Four to six int features with wide grids, an opaque bumpy model, a few rows."""
    d = draw(st.integers(4, 6))
    elements, specs = [], []
    for k in range(d):
        ub = draw(st.integers(4, 12))
        elements.append(ActionElement(
            f"i{k}", "int", lb=0, ub=ub, actionable=draw(st.booleans()) or k == 0,
            step_direction=draw(st.sampled_from([-1, 0, 1])),
        ))
        specs.append(FeatureSpec(f"i{k}", "int", 0, ub))
    constraints = []
    if draw(st.booleans()):
        constraints.append(DirectionalLinkage(["i0", "i1"], scales=[1.0, 1.0]))
    A = ActionSet(elements, constraints)
    rows = [[draw(st.integers(0, int(e.ub))) for e in elements]
            for _ in range(draw(st.integers(1, 4)))]
    floats = st.floats(-1.5, 1.5, allow_nan=False)
    w = draw(st.lists(floats, min_size=d, max_size=d))
    U = draw(st.lists(st.lists(floats, min_size=d, max_size=d), min_size=2, max_size=2))
    c = draw(st.lists(st.floats(0, 2, allow_nan=False), min_size=2, max_size=2))
    b = draw(st.floats(-8, 0, allow_nan=False))
    model = DecisionModel(_BumpyStub(w, b, U, c), FeatureSchema(tuple(specs)))
    return model, A, np.array(rows, float)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _wide_cases(),
    st.lists(st.sampled_from([1, 2, 5, 8, 20, 32, 100, 128, 512]), min_size=2, max_size=2,
             unique=True),
    st.sampled_from([0, 20_000]),
)
def test_a_larger_budget_never_does_worse(case, budgets, prove_points):
    model, A, X = case
    small, large = sorted(budgets)
    cost = MADL1Cost.fit(pd.DataFrame(X, columns=model.schema.names), model.schema)
    a = find_recourse(model, A, X, cost, max_points=small, prove_points=prove_points)
    b = find_recourse(model, A, X, cost, max_points=large, prove_points=prove_points)
    for i in range(len(X)):
        if a.status[i] == "recourse":
            assert b.status[i] == "recourse", (small, large, i)
            assert b.cost[i] <= a.cost[i] + 1e-9, (small, large, i, a.cost[i], b.cost[i])
        if a.complete[i]:
            assert b.complete[i] and b.status[i] == a.status[i], (small, large, i)
            if a.status[i] == "recourse":
                np.testing.assert_allclose(b.cost[i], a.cost[i], atol=1e-9)
        if b.status[i] == "recourse":  # every issued action flips and is feasible
            assert model.approve(b.x_after[i][None, :])[0]
            assert is_reachable(A, X[i], b.x_after[i], model.schema)
