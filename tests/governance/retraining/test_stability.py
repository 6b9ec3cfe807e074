"""Stability scores: formula against a slow direct loop, exact toy answers, determinism."""

import numpy as np
import pandas as pd
import pytest

import governance.retraining.stability_score as stability_module
from governance.exceptions import RobustnessError
from governance.hashing import row_seeds
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema, FeatureSpec
from governance.retraining.stability_score import feature_scale, stability, stability_at_least
from tests.helpers import LogisticStub

pytestmark = pytest.mark.usefixtures("one_thread")


class Ramp:
    """P(class 1) = clip(0.1 * a, 0.05, 0.95): linear in ``a`` between 0.5 and 9.5, flat outside."""

    classes_ = np.array([0, 1])

    def predict_proba(self, frame):
        p = np.clip(0.1 * frame["a"].to_numpy(dtype=float), 0.05, 0.95)
        return np.column_stack([1 - p, p])


class Spy:
    """Constant 0.7, and keeps every frame it is asked about."""

    classes_ = np.array([0, 1])

    def __init__(self):
        self.frames = []

    def predict_proba(self, frame):
        self.frames.append(frame.copy())
        return np.tile([0.3, 0.7], (len(frame), 1))


SCHEMA2 = FeatureSchema((FeatureSpec("a", "float"), FeatureSpec("b", "float")))
MIXED = FeatureSchema(
    (
        FeatureSpec("f", "float", 0, 10),
        FeatureSpec("n", "int", 0, 100),
        FeatureSpec("flag", "bool", 0, 1),
        FeatureSpec("kind", "category", categories=("x", "y", "z")),
    )
)


def _slow_stability(model, x, scale, k, sigma, seed):
    """One point at a time, sample by sample: the definition written out."""
    cols = [j for j, s in enumerate(model.schema) if s.dtype in ("float", "int") and scale[j] > 0]
    rng = np.random.default_rng(int(row_seeds(x[None, :], seed)[0]))
    Z = rng.standard_normal((k, len(cols)))
    m0 = model.score(x[None, :])[0]
    samples = []
    for i in range(k):
        xi = x.copy()
        for c, j in enumerate(cols):
            spec = model.schema.features[j]
            v = x[j] + sigma * scale[j] * Z[i, c]
            if spec.dtype == "int":
                v = np.round(v)
            lo = -np.inf if spec.min is None else spec.min
            hi = np.inf if spec.max is None else spec.max
            xi[j] = min(max(v, lo), hi)
        samples.append(xi)
    m = model.score(np.array(samples))
    return sum(m) / k - sum(abs(mi - m0) for mi in m) / k


def test_matches_a_direct_slow_implementation():
    schema = FeatureSchema(
        (
            FeatureSpec("a", "float", -3, 3),
            FeatureSpec("n", "int", 0, 20),
            FeatureSpec("flag", "bool", 0, 1),
        )
    )
    model = DecisionModel(LogisticStub([2.0, 0.3, 1.0], -2.5), schema)
    X = np.array([[0.4, 5, 1], [2.9, 19, 0], [-1.0, 0, 1]], float)
    scale = np.array([1.5, 4.0, 0.5])
    R = stability(model, X, scale, k=200, sigma=0.3, seed=11, batch_rows=150)
    slow = [_slow_stability(model, x, scale, 200, 0.3, 11) for x in X]
    np.testing.assert_allclose(R, slow, rtol=0, atol=1e-12)


def test_noise_is_gaussian_with_sigma_times_scale():
    # On the linear part of Ramp, m_i - m0 = 0.1 * sigma * scale * z_i, so
    # R = m0 - 0.1 * sigma * scale * E|z| with E|z| = sqrt(2 / pi).
    schema = FeatureSchema((FeatureSpec("a", "float"),))
    model = DecisionModel(Ramp(), schema)
    R = stability(model, np.array([[5.0]]), np.array([4.0]), k=40_000, sigma=0.25)
    expected = 0.5 - 0.1 * 0.25 * 4.0 * np.sqrt(2 / np.pi)
    assert R[0] == pytest.approx(expected, abs=0.002)


def test_constant_region_gives_the_score_itself():
    schema = FeatureSchema((FeatureSpec("a", "float"),))
    model = DecisionModel(Ramp(), schema)
    # 30 and -40 are 10 noise sds away from the ramp: every sample scores 0.95 / 0.05
    R = stability(model, np.array([[30.0], [-40.0]]), np.array([2.0]), k=500, sigma=0.5)
    np.testing.assert_allclose(R, [0.95, 0.05], rtol=0, atol=1e-12)


def test_lower_near_the_boundary_than_far_from_it():
    model = DecisionModel(LogisticStub([1.0, 1.0], 0.0), SCHEMA2)
    X = np.array([[0.1, 0.0], [1.0, 0.0], [3.0, 0.0]])
    R = stability(model, X, np.array([1.0, 1.0]), k=1000, sigma=0.5)
    scores = model.score(X)
    assert R[0] < R[1] < R[2]
    assert np.all(scores >= R)
    assert scores[0] - R[0] > scores[2] - R[2]  # the dispersion term bites near the boundary


def test_same_point_same_score_across_calls_row_order_and_batches():
    model = DecisionModel(LogisticStub([1.0, -2.0], 0.5), SCHEMA2)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 2))
    X = np.vstack([X, X[:3]])  # duplicates
    scale = np.array([1.0, 0.5])
    R = stability(model, X, scale, k=64)
    np.testing.assert_array_equal(R, stability(model, X, scale, k=64))
    perm = rng.permutation(len(X))
    np.testing.assert_array_equal(stability(model, X[perm], scale, k=64), R[perm])
    np.testing.assert_array_equal(stability(model, X, scale, k=64, batch_rows=65), R)
    np.testing.assert_array_equal(stability(model, X[4:5], scale, k=64), R[4:5])
    np.testing.assert_array_equal(R[-3:], R[:3])
    frame = pd.DataFrame(X, columns=["a", "b"])
    np.testing.assert_array_equal(stability(model, frame, scale, k=64), R)


def test_seed_changes_the_streams():
    model = DecisionModel(LogisticStub([1.0, -2.0], 0.5), SCHEMA2)
    X = np.array([[0.2, 0.1]])
    scale = np.array([1.0, 1.0])
    a = stability(model, X, scale, k=50, seed=0)
    b = stability(model, X, scale, k=50, seed=1)
    assert a[0] != b[0]


def test_k_sets_the_model_rows_and_sigma_zero_gives_the_score():
    model = DecisionModel(LogisticStub([1.0, 1.0], 0.0), SCHEMA2)
    X = np.array([[0.1, 0.0], [2.0, -1.0], [0.1, 0.0]])
    scale = np.array([1.0, 1.0])
    stability(model, X, scale, k=37)
    assert model.stats.rows == 2 * (37 + 1)  # two distinct points, k samples and the point
    assert model.stats.calls == 1
    np.testing.assert_allclose(
        stability(model, X, scale, k=10, sigma=0.0), model.score(X), rtol=0, atol=1e-15
    )
    near = np.array([[0.05, 0.0]])
    r_small, r_big = (stability(model, near, scale, k=2000, sigma=s)[0] for s in (0.05, 0.5))
    assert r_big < r_small


def test_ints_are_rounded_bools_and_categories_untouched_and_bounds_kept():
    spy = Spy()
    model = DecisionModel(spy, MIXED)
    X = np.array([[0.1, 50, 1, 2], [9.9, 99, 0, 0]], float)
    scale = np.array([2.0, 30.0, 0.5, 0.0])
    R = stability(model, X, scale, k=300, sigma=0.2)
    np.testing.assert_allclose(R, [0.7, 0.7])
    sent = pd.concat(spy.frames, ignore_index=True)
    assert sent["f"].between(0, 10).all() and sent["f"].nunique() > 300
    assert (sent["f"] == 0).any() and (sent["f"] == 10).any()  # clipped at the bounds
    assert (sent["n"] == sent["n"].round()).all() and sent["n"].between(0, 100).all()
    assert sent["n"].nunique() > 5
    assert set(sent["flag"]) == {0.0, 1.0}
    assert sent.groupby("flag")["kind"].unique().map(list).to_dict() == {0.0: ["x"], 1.0: ["z"]}


def test_feature_scale_on_a_literal_frame():
    ref = pd.DataFrame(
        {"f": [1.0, 3.0, np.nan], "n": [4, 4, 4], "flag": [0, 1, 1], "kind": ["x", "y", "z"]}
    )
    scale = feature_scale(MIXED, ref)
    assert scale.tolist() == [1.0, 0.0, 0.0, 0.0]  # constant int column: not perturbed
    matrix = np.array([[1.0, 4, 0, 0], [3.0, 4, 1, 1], [np.nan, 4, 1, 2]])
    assert feature_scale(MIXED, matrix).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_feature_scale_errors():
    with pytest.raises(RobustnessError, match="lacks feature"):
        feature_scale(MIXED, pd.DataFrame({"f": [1.0]}))
    with pytest.raises(RobustnessError, match=r"shape \(n, 4\)"):
        feature_scale(MIXED, np.zeros((3, 2)))
    with pytest.raises(RobustnessError, match="no finite values for 'f'"):
        feature_scale(MIXED, np.array([[np.nan, 1, 0, 0]]))


@pytest.mark.parametrize(
    ("X", "scale", "kw", "match"),
    [
        (np.zeros((2, 3)), np.ones(2), {}, r"shape \(n, 2\)"),
        (np.array([[np.nan, 0.0]]), np.ones(2), {}, "non-finite values in a"),
        (np.zeros((1, 2)), np.ones(3), {}, "scale must hold 2"),
        (np.zeros((1, 2)), np.array([1.0, -1.0]), {}, "scale must hold 2"),
        (np.zeros((1, 2)), np.ones(2), {"k": 0}, "k must be a positive integer"),
        (np.zeros((1, 2)), np.ones(2), {"k": 2.5}, "k must be a positive integer"),
        (np.zeros((1, 2)), np.ones(2), {"sigma": -0.1}, "sigma must be"),
        (np.zeros((1, 2)), np.ones(2), {"batch_rows": 0}, "batch_rows must be"),
    ],
)
def test_stability_errors(X, scale, kw, match):
    model = DecisionModel(LogisticStub([1.0, 1.0], 0.0), SCHEMA2)
    with pytest.raises(RobustnessError, match=match):
        stability(model, X, scale, **kw)


def test_empty_input_gives_empty_scores():
    model = DecisionModel(LogisticStub([1.0, 1.0], 0.0), SCHEMA2)
    assert stability(model, np.zeros((0, 2)), np.ones(2)).shape == (0,)
    passes, R = stability_at_least(model, np.zeros((0, 2)), np.ones(2), 0.5)
    assert passes.shape == R.shape == (0,)


def test_staged_test_agrees_with_the_full_score_and_saves_model_rows():
    model = DecisionModel(LogisticStub([1.5, 1.0], 0.0), SCHEMA2)
    X = np.column_stack([np.linspace(-1, 3, 41), np.zeros(41)])
    scale = np.array([1.0, 1.0])
    R = stability(model, X, scale, k=400, sigma=0.6)
    full_rows = model.stats.rows
    model.stats.reset()
    passes, Rs = stability_at_least(model, X, scale, 0.75, k=400, sigma=0.6)
    np.testing.assert_array_equal(passes, R >= 0.75)
    assert 0 < passes.sum() < len(X)
    np.testing.assert_allclose(Rs[passes], R[passes], rtol=0, atol=1e-15)
    assert np.isnan(Rs[~passes]).any()  # some were dropped before their last stage
    assert model.stats.rows < 0.6 * full_rows
    with pytest.raises(RobustnessError, match="tau must be a finite number"):
        stability_at_least(model, X, scale, float("nan"))


# -- tree ensembles: the replay gives the model's own scores, bit for bit --------------------
TREE_SCHEMA = FeatureSchema(
    (
        FeatureSpec("f", "float", 0, 10),
        FeatureSpec("g", "float"),  # unbounded
        FeatureSpec("n", "int", 0, 40),
        FeatureSpec("flag", "bool", 0, 1),
        FeatureSpec("c", "category", categories=("a", "b", "z")),
    )
)
TREE_PARAMS = {
    "decision_tree": {"max_depth": 6},
    "random_forest": {"n_estimators": 12, "max_depth": 6},
    "sklearn.ensemble.ExtraTreesClassifier": {"n_estimators": 8, "max_depth": 6},
    "gradient_boosting": {"n_estimators": 15, "max_depth": 3},
    "hist_gradient_boosting": {"max_iter": 15},
    "logistic_regression": {},
    "mlp": {"hidden_layer_sizes": (6,), "max_iter": 300},
}


def _fitted(estimator, scale, favourable=1, n=300):
    """A recipe pipeline on float, unbounded float, int, bool and category features, the first
    rows as points (plus points on the bounds, and a duplicate), and the reference spreads."""
    from governance.registry.training import TrainingRecipe

    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        {
            "f": rng.uniform(0, 10, n),
            "g": rng.normal(0, 3, n),
            "n": rng.integers(0, 41, n).astype(float),
            "flag": rng.integers(0, 2, n).astype(float),
            "c": rng.choice(["a", "b", "z"], n),
        }
    )
    y = (df["f"] - 0.4 * df["g"] + 0.1 * df["n"] + df["flag"] + (df["c"] == "b") > 6).astype(int)
    recipe = TrainingRecipe(estimator, TREE_PARAMS[estimator], scale_numeric=scale)
    pipeline = recipe.fit(TREE_SCHEMA, df, y.to_numpy())
    model = DecisionModel(pipeline, TREE_SCHEMA, favourable_class=favourable)
    X = model.matrix(df.iloc[:20])
    edges = np.array([[0.0, -9.0, 0, 1, 1], [10.0, 2.0, 40, 0, 2], [5.0, 0.0, 20, 1, 0]])
    return model, np.vstack([X, edges, X[:1]]), feature_scale(TREE_SCHEMA, df)


def _without_replay(monkeypatch, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with every sample scored by the model."""
    with monkeypatch.context() as m:
        m.setattr(stability_module, "_REPLAY", False)
        return fn(*args, **kwargs)


@pytest.mark.parametrize(
    ("estimator", "scale", "favourable"),
    [
        ("decision_tree", False, 1),
        ("decision_tree", True, 0),
        ("random_forest", False, 1),
        ("sklearn.ensemble.ExtraTreesClassifier", True, 1),
        ("gradient_boosting", True, 1),
        ("gradient_boosting", False, 0),
        ("hist_gradient_boosting", False, 1),
        ("hist_gradient_boosting", True, 0),
    ],
)
def test_tree_replay_is_bit_identical_to_scoring_every_sample(
    monkeypatch, estimator, scale, favourable
):
    model, X, spread = _fitted(estimator, scale, favourable)
    n = len(np.unique(X, axis=0))
    for seed in (0, 5):
        kw = {"k": 300, "sigma": 0.4, "seed": seed}
        model.stats.reset()
        R = stability(model, X, spread, **kw)
        replayed_rows = model.stats.rows
        passes, Rs = stability_at_least(model, X, spread, 0.5, **kw)
        model.stats.reset()
        R_plain = _without_replay(monkeypatch, stability, model, X, spread, **kw)
        assert model.stats.rows == n * 301  # every sample scored by the model
        passes_plain, Rs_plain = _without_replay(
            monkeypatch, stability_at_least, model, X, spread, 0.5, **kw
        )
        np.testing.assert_array_equal(R, R_plain)
        np.testing.assert_array_equal(passes, passes_plain)
        np.testing.assert_array_equal(Rs, Rs_plain)  # NaN where dropped early, in both
        assert replayed_rows == n + 4 * n  # the points, and four samples each to check
        assert 0 < passes.sum() < len(X)
        assert np.any(model.score(X) - R > 1e-6)  # samples did meet other leaves


def test_tree_replay_without_a_pipeline_for_frames_and_without_noise(monkeypatch):
    from sklearn.ensemble import HistGradientBoostingClassifier

    schema = FeatureSchema(
        (
            FeatureSpec("a", "float", -5, 5),
            FeatureSpec("b", "int", 0, 30),
            FeatureSpec("z", "float", 0, 1),
        )
    )
    rng = np.random.default_rng(2)
    df = pd.DataFrame(
        {
            "a": rng.normal(0, 2, 400),
            "b": rng.integers(0, 31, 400).astype(float),
            "z": np.full(400, 0.5),
        }
    )
    y = (df["a"] + 0.2 * df["b"] > 3).astype(int)
    est = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(df, y)
    model = DecisionModel(est, schema)
    spread = feature_scale(schema, df)  # z is constant: not perturbed
    frame = df.iloc[:15]
    for kw in ({"k": 250, "sigma": 0.5, "seed": 3}, {"k": 20, "sigma": 0.0}):
        model.stats.reset()
        R = stability(model, frame, spread, **kw)
        assert model.stats.rows == 15 * 5  # the points, and four samples each to check
        R_plain = _without_replay(monkeypatch, stability, model, frame, spread, **kw)
        np.testing.assert_array_equal(R, R_plain)
    np.testing.assert_allclose(R, model.score(frame), rtol=0, atol=1e-15)  # sigma 0: the score


def test_tree_replay_that_does_not_reproduce_the_model_scores_every_sample(monkeypatch):
    from sklearn.pipeline import Pipeline

    class Skewed(Pipeline):  # the same trees inside, other scores outside
        def predict_proba(self, X):
            p = super().predict_proba(X)
            return np.column_stack([p[:, 0] * 0.9, 1 - p[:, 0] * 0.9])

    model, X, spread = _fitted("gradient_boosting", False)
    skewed = DecisionModel(Skewed(model.estimator.steps), TREE_SCHEMA)
    n = len(np.unique(X, axis=0))
    R = stability(skewed, X, spread, k=100, sigma=0.4)
    assert skewed.stats.calls == 3  # the points, the failed check, then every sample
    assert skewed.stats.rows == n + 4 * n + n * 100
    R_plain = _without_replay(monkeypatch, stability, skewed, X, spread, k=100, sigma=0.4)
    np.testing.assert_array_equal(R, R_plain)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("estimator", ["logistic_regression", "mlp"])
def test_models_without_trees_score_every_sample_and_match_the_direct_loop(estimator):
    model, X, spread = _fitted(estimator, None)
    X = np.unique(X, axis=0)[:6]
    model.stats.reset()
    R = stability(model, X, spread, k=150, sigma=0.3, seed=2)
    assert model.stats.rows == len(X) * 151  # no replay: the model scores every sample
    slow = [_slow_stability(model, x, spread, 150, 0.3, 2) for x in X]
    np.testing.assert_allclose(R, slow, rtol=0, atol=1e-12)


def test_column_layout_holds_the_same_samples_as_the_rows():
    noise = stability_module._Noise.plan(MIXED, np.array([2.0, 30.0, 0.5, 0.0]), 0.2)
    rows = np.array([[0.1, 50, 1, 2], [9.9, 99, 0, 0], [5.0, 0, 1, 1]], float)
    Z = noise.draw(rows, 40, seed=7)
    Zc = noise.draw(rows, 40, seed=7, by_column=True)
    np.testing.assert_array_equal(Zc, Z)
    P = noise.points(rows, Z).reshape(3, 40, 4)
    np.testing.assert_array_equal(noise.columns(rows, Zc), P[:, :, noise.cols].transpose(0, 2, 1))
    assert P[:, :, 0].min() == 0 and P[:, :, 1].max() == 100  # clipped at the bounds
