"""Responsiveness scores: the authors' test vectors, reachml's joint-action rules, sampling."""

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from governance.exceptions import ActionSetError
from governance.recourse.action_set import ActionElement, ActionSet
from governance.recourse.constraints import (
    Condition,
    DirectionalLinkage,
    IfThenConstraint,
    ThermometerEncoding,
)
from governance.recourse.scoring import responsiveness
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema, FeatureSpec
from tests.helpers import RuleStub

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(specs, rule):
    return DecisionModel(RuleStub(rule), FeatureSchema(tuple(specs)))


# -- reachml tests/test_scorer.py: separable discrete case -----------------------------------
def _two_features():
    model = _model(
        [FeatureSpec("x1", "int", 0, 5), FeatureSpec("x2", "bool", 0, 1)], lambda X: X[:, 0] > 2
    )
    A = ActionSet([ActionElement("x1", "int", lb=0, ub=5), ActionElement("x2", "bool")])
    return model, A, np.array([[0, 0], [2, 1]], float)


def test_two_feature_case_matches_the_authors():
    model, A, X = _two_features()
    r = responsiveness(model, A, X)
    np.testing.assert_allclose(r.mu, [[0.6, 0.0], [0.6, 0.0]])
    assert r.n_points.tolist() == [[5, 1], [5, 1]]
    assert r.method == ("enumerated", "enumerated")


def test_two_feature_case_with_increase_only():
    model, A, X = _two_features()
    A[["x1", "x2"]].step_direction = 1
    r = responsiveness(model, A, X)
    np.testing.assert_allclose(r.mu, [[0.6, 0.0], [1.0, 0.0]])
    assert r.n_points.tolist() == [[5, 1], [3, 0]]


def test_all_immutable_scores_zero_with_empty_sets():
    model, A, X = _two_features()
    A[["x1", "x2"]].actionable = False
    r = responsiveness(model, A, X)
    assert r.mu.tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert r.n_points.sum() == 0


# -- reachml tests/test_scorer.py: thermometer case ------------------------------------------
def _thermometer(direction):
    names = ["util_geq_25", "util_geq_50", "util_geq_75", "util_geq_100"]
    model = _model([FeatureSpec(n, "bool", 0, 1) for n in names], lambda X: X[:, 2] < 1)
    A = ActionSet(
        [ActionElement(n, "bool") for n in names],
        [ThermometerEncoding(names, step_direction=direction)],
    )
    return model, A, np.array([[0, 0, 0, 0], [1, 1, 1, 1]], float)


def test_thermometer_case_matches_the_authors():
    model, A, X = _thermometer(0)
    r = responsiveness(model, A, X)
    np.testing.assert_allclose(r.mu[0], [1.0, 1 / 3, 0.0, 0.0])
    assert r.n_points[0].tolist() == [1, 3, 2, 1]
    np.testing.assert_allclose(r.mu[1], [1.0, 1.0, 1.0, 0.0])
    assert r.n_points[1].tolist() == [1, 2, 3, 1]


def test_thermometer_decrease_only_leaves_every_set_empty_at_zero():
    model, A, X = _thermometer(-1)
    r = responsiveness(model, A, X)
    assert r.mu[0].tolist() == [0.0, 0.0, 0.0, 0.0] and r.n_points[0].sum() == 0
    np.testing.assert_allclose(r.mu[1], [1.0, 1.0, 1.0, 0.0])


# -- joint actions -------------------------------------------------------------------------
def _hub(rule):
    """German-credit shape: two sources linked into immutable age."""
    specs = [
        FeatureSpec("home", "int", 0, 7),
        FeatureSpec("job_lt_1", "bool", 0, 1),
        FeatureSpec("age", "int", 18, 90),
    ]
    A = ActionSet(
        [
            ActionElement("home", "int", lb=0, ub=7, step_direction=1, step_ub=2),
            ActionElement("job_lt_1", "bool", step_direction=-1),
            ActionElement("age", "int", lb=18, ub=90, actionable=False),
        ],
        [
            DirectionalLinkage(["home", "age"]),
            DirectionalLinkage(["job_lt_1", "age"], scales=[1.0, -1.0]),
        ],
    )
    return _model(specs, rule), A, np.array([[2, 1, 30]], float)


def test_linked_actions_stay_in_the_feature_neighbourhood():
    # A_home = {(3, 1, 31), (4, 1, 32)}: job_lt_1 is outside home's neighbourhood and stays
    model, A, X = _hub(lambda X: X[:, 2] >= 32)
    r = responsiveness(model, A, X)
    np.testing.assert_allclose(r.mu[0], [0.5, 0.0, 0.0])
    assert r.n_points[0].tolist() == [2, 1, 0]
    model, A, X = _hub(lambda X: X[:, 2] >= 31)
    np.testing.assert_allclose(responsiveness(model, A, X).mu[0], [1.0, 1.0, 0.0])


def test_linkage_target_counts_cheaper_joint_actions_as_reachml_does():
    # source s (scale 2) reaches c_t = 2, 3, 4 with a smaller L1 norm than t alone
    specs = [FeatureSpec("s", "int", 0, 1), FeatureSpec("t", "int", 0, 4)]
    A = ActionSet(
        [ActionElement("s", "int", lb=0, ub=1), ActionElement("t", "int", lb=0, ub=4)],
        [DirectionalLinkage(["s", "t"], scales=[1.0, 2.0])],
    )
    model = _model(specs, lambda X: X[:, 0] == 1)
    r = responsiveness(model, A, np.zeros((1, 2)))
    assert r.n_points[0].tolist() == [5, 7]  # s alone is infeasible: every t follows
    np.testing.assert_allclose(r.mu[0], [1.0, 3 / 7])



def test_linkage_source_keeps_the_joint_actions_met_before_its_single_feature_action():
    # s -> t (scale 1), t movable: s alone needs a_t = -a_s (L1 = 2|a_s|); the joint action
    # with a_t = 0 (L1 = |a_s|) comes first in reachml's L1 order, a_t = +a_s ties and is out
    specs = [FeatureSpec("s", "int", 0, 2), FeatureSpec("t", "int", 0, 6)]
    A = ActionSet(
        [ActionElement("s", "int", lb=0, ub=2), ActionElement("t", "int", lb=0, ub=6)],
        [DirectionalLinkage(["s", "t"], scales=[1.0, 1.0])],
    )
    model = _model(specs, lambda X: X[:, 1] >= 4)
    x = np.array([[0.0, 3.0]])
    paper = responsiveness(model, A, x)
    # total changes (c_s, c_t): a_s = 1: (1, 1) before (1, 0) alone; a_s = 2: (2, 1), (2, 2),
    # (2, 3) before (2, 0) alone; t >= 4 approves 4 of the 6
    assert paper.n_points[0, 0] == 6
    np.testing.assert_allclose(paper.mu[0, 0], 4 / 6)
    # as released, every joint action: c_t in -2..4 with a_s = 1, -1..5 with a_s = 2 (the
    # target's bounds widen by the induced change, keep_bounds=False); 9 of 14 approve
    release = responsiveness(model, A, x, semantics="release")
    assert release.n_points[0, 0] == 14
    np.testing.assert_allclose(release.mu[0, 0], 9 / 14)


def test_release_semantics_keeps_every_joint_action_as_reachml_0_2_0a1():
    # reachml 0.2.0a1 as released (no early stop): mu_1(0) = 0.5 on the authors' thermometer
    model, A, X = _thermometer(0)
    r = responsiveness(model, A, X, semantics="release")
    assert r.semantics == "release"
    np.testing.assert_allclose(r.mu[0], [0.5, 1 / 3, 0.0, 0.0])
    assert r.n_points[0].tolist() == [4, 3, 2, 1]
    paper = responsiveness(model, A, X)
    assert paper.semantics == "paper" and paper.n_points[0].tolist() == [1, 3, 2, 1]
    with pytest.raises(ValueError, match="semantics"):
        responsiveness(model, A, X, semantics="draft")


def test_an_empty_intervention_set_is_its_own_state_not_a_score():
    model, A, X = _two_features()
    A[["x1", "x2"]].step_direction = 1
    r = responsiveness(model, A, X)
    # x2 = 1 cannot increase: no feasible change (mu 0 by the paper's convention only)
    assert r.no_action.tolist() == [[False, False], [False, True]]
    assert r.state.tolist() == [["scored", "scored"], ["scored", "no_action"]]
    df = r.to_frame()
    assert df["state"].tolist() == ["scored", "scored", "scored", "no_action"]
    assert np.isnan(df["mu"].iloc[3]) and df["mu"].iloc[1] == 0.0  # a score of 0 stays 0

# -- sampling ------------------------------------------------------------------------------
def _float_model():
    specs = [FeatureSpec("f", "float", 0, 10), FeatureSpec("g", "float", 0, 10)]
    A = ActionSet(
        [
            ActionElement("f", "float", lb=0, ub=10),
            ActionElement("g", "float", lb=0, ub=10, actionable=False),
        ]
    )
    return _model(specs, lambda X: X[:, 0] > 5), A


def test_float_feature_is_sampled_uniformly_on_its_action_bounds():
    model, A = _float_model()
    r = responsiveness(model, A, np.array([[2.0, 1.0]]), n_samples=2000)
    assert r.method == ("sampled", "enumerated")
    assert r.n_points[0].tolist() == [2000, 0]
    assert abs(r.mu[0, 0] - 0.5) < 0.05  # P(2 + U[-2, 8] > 5) = 1/2


def test_sampling_is_deterministic_across_calls_row_orders_and_duplicates():
    model, A = _float_model()
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(0, 10, 30), rng.uniform(0, 10, 30)])
    X = np.vstack([X, X[:5]])
    r1 = responsiveness(model, A, X, n_samples=50)
    r2 = responsiveness(model, A, X, n_samples=50)
    perm = rng.permutation(len(X))
    r3 = responsiveness(model, A, X[perm], n_samples=50)
    np.testing.assert_array_equal(r1.mu, r2.mu)
    np.testing.assert_array_equal(r1.mu[perm], r3.mu)
    np.testing.assert_array_equal(r1.mu[:5], r1.mu[-5:])
    r4 = responsiveness(model, A, X, n_samples=50, seed=1)
    assert not np.array_equal(r1.mu, r4.mu)


def test_float_in_a_joint_part_maps_draws_to_minimal_joint_actions():
    # if the action on f is at least 1, b must be turned on (and only then)
    specs = [FeatureSpec("f", "float", 0, 4), FeatureSpec("b", "bool", 0, 1)]
    A = ActionSet(
        [
            ActionElement("f", "float", lb=0, ub=4, step_direction=1, step_size=0.5),
            ActionElement("b", "bool"),
        ],
        [IfThenConstraint(Condition("f", ">=", 1), Condition("b", "==", 1))],
    )
    model = _model(specs, lambda X: X[:, 1] == 1)
    r = responsiveness(model, A, np.zeros((1, 2)), n_samples=1000)
    assert r.method == ("sampled", "enumerated")
    assert abs(r.mu[0, 0] - 0.75) < 0.05  # draws of f in [1, 4] force b on
    assert r.n_points[0, 1] == 1 and r.mu[0, 1] == 1.0  # b on needs f up by at least 1


def test_one_chunk_costs_one_model_call_whatever_its_size():
    model, A = _float_model()
    for n in (10, 200):
        model.stats.reset()
        X = np.column_stack([np.linspace(0, 10, n), np.ones(n)])
        responsiveness(model, A, X, n_samples=100)
        assert model.stats.calls == 1
        assert model.stats.rows == n * 100


def test_frame_input_empty_input_and_long_frame():
    model, A, X = _two_features()
    frame = pd.DataFrame(X, columns=["x1", "x2"])
    r = responsiveness(model, A, frame)
    np.testing.assert_allclose(r.mu, [[0.6, 0.0], [0.6, 0.0]])
    df = r.to_frame()
    assert df.columns.tolist() == ["row", "feature", "mu", "state", "n_points", "method"]
    assert df["feature"].tolist() == ["x1", "x2", "x1", "x2"]
    assert r.action_set_sha256 == A.sha256
    empty = responsiveness(model, A, np.zeros((0, 2)))
    assert empty.mu.shape == (0, 2)


def test_missing_actionable_value_raises():
    model, A, X = _two_features()
    X[0, 0] = np.nan
    with pytest.raises(ActionSetError, match="non-finite values in actionable feature"):
        responsiveness(model, A, X)


# -- tree ensembles: one model row per threshold cell ----------------------------------------
class Opaque:
    """Hides a fitted estimator's structure, so every candidate is scored as it is."""

    def __init__(self, est):
        self.est, self.classes_ = est, est.classes_

    def predict_proba(self, X):
        return self.est.predict_proba(X)


def _tree_case(estimator, scale, seed=0, n=300):
    from governance.registry.training import TrainingRecipe

    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "f": rng.uniform(0, 10, n),
            "g": rng.uniform(0, 10, n),
            "k": rng.integers(0, 8, n).astype(float),
            "h": rng.uniform(0, 5, n),
            "c": rng.choice(["a", "b", "z"], n),
        }
    )
    y = ((df["f"] - 0.5 * df["g"] + 0.3 * df["k"] + df["h"] + (df["c"] == "b")) > 4.5).astype(int)
    schema = FeatureSchema(
        (
            FeatureSpec("f", "float", 0, 10),
            FeatureSpec("g", "float", 0, 10),
            FeatureSpec("k", "int", 0, 7),
            FeatureSpec("h", "float", 0, 5),
            FeatureSpec("c", "category", categories=("a", "b", "z")),
        )
    )
    params = {
        "decision_tree": {"max_depth": 6},
        "random_forest": {"n_estimators": 15, "max_depth": 5},
        "gradient_boosting": {"n_estimators": 20, "max_depth": 3},
        "hist_gradient_boosting": {"max_iter": 20},
    }[estimator]
    recipe = TrainingRecipe(estimator, params, seed=0, scale_numeric=scale)
    with threadpool_limits(1):  # OpenMP threads crawl on a busy machine
        model = DecisionModel(recipe.fit(schema, df, y.to_numpy()), schema)
    A = ActionSet(
        [
            ActionElement("f", "float", lb=0, ub=10, step_direction=1, step_ub=4),
            ActionElement("g", "float", lb=0, ub=10, step_lb=-3, step_ub=3, step_size=0.1),
            ActionElement("k", "int", lb=0, ub=7, step_lb=-2, step_ub=3),
            ActionElement("h", "float", lb=0, ub=5, actionable=False),
            ActionElement("c", "category", categories=("a", "b", "z"), actionable=False),
        ]
    )
    return model, A, model.matrix(df.iloc[:40])


@pytest.mark.parametrize(
    "estimator, scale",
    [
        ("decision_tree", False),
        ("decision_tree", True),
        ("random_forest", False),
        ("gradient_boosting", True),
        ("hist_gradient_boosting", False),
    ],
)
def test_tree_models_score_one_row_per_cell_with_bit_identical_results(estimator, scale):
    model, A, X = _tree_case(estimator, scale)
    plain = DecisionModel(Opaque(model.estimator), model.schema)
    fast = responsiveness(model, A, X, n_samples=300)
    slow = responsiveness(plain, A, X, n_samples=300)
    np.testing.assert_array_equal(fast.mu, slow.mu)
    np.testing.assert_array_equal(fast.n_points, slow.n_points)
    assert slow.n_points[:, :2].sum() == 40 * 600  # every draw counted
    assert model.stats.rows * 4 < plain.stats.rows  # but far fewer rows scored


def test_tree_cells_with_missing_immutable_values_stay_identical():
    model, A, X = _tree_case("hist_gradient_boosting", False, seed=1)
    X[::3, 3] = np.nan  # h is immutable: missing values may go either way in the trees
    plain = DecisionModel(Opaque(model.estimator), model.schema)
    fast = responsiveness(model, A, X, n_samples=200)
    slow = responsiveness(plain, A, X, n_samples=200)
    np.testing.assert_array_equal(fast.mu, slow.mu)


def test_tree_parse_that_does_not_reproduce_the_model_scores_every_draw():
    from sklearn.pipeline import Pipeline

    class Skewed(Pipeline):  # the same trees inside, other scores outside
        def predict_proba(self, X):
            p = super().predict_proba(X)
            return np.column_stack([p[:, 0] * 0.9, 1 - p[:, 0] * 0.9])

    model, A, X = _tree_case("decision_tree", False)
    skewed = DecisionModel(Skewed(model.estimator.steps), model.schema)
    plain = DecisionModel(Opaque(skewed.estimator), model.schema)
    got = responsiveness(skewed, A, X, n_samples=100)
    ref = responsiveness(plain, A, X, n_samples=100)
    np.testing.assert_array_equal(got.mu, ref.mu)
    assert skewed.stats.calls == 2  # the checked first try, then every candidate as it is
    assert skewed.stats.rows > plain.stats.rows + 40
