"""Agreement with reachml: golden scores and verdicts from bench/make_golden.py.

Each golden folder holds a fixed model, the rows it denies (German credit: all of them; HELOC:
a seeded sample), the action set they were run under, and reachml 0.2.0a1's answers for those
rows (CPLEX backend; README.md there says how and why): responsiveness scores under the paper's
single-feature search (``reachml_scores.csv``) and under reachml's search as released
(``reachml_scores_release.csv``), and, for German credit, the recourse verdicts of its full
reachable-set enumeration with the size of each reachable set and its approved points. Our
implementation must give the same scores to 1e-9 under both semantics, the same fixed flags,
and the same reachable-set sizes and approved counts. CI does not run reachml: the files are
committed, and a missing one fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.recourse.action_set import BUNDLED, ActionSet
from governance.recourse.costs import PercentileShiftCost
from governance.recourse.reachable import reachable_set
from governance.recourse.scoring import responsiveness
from governance.recourse.search import find_recourse
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = Path(__file__).resolve().parents[2] / "data"
FILES = ("model.skops", "model.json", "action_set.json", "rows.csv", "reachml_scores.csv",
         "reachml_scores_release.csv")
TREES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]
# Per golden folder: the shipped action set it was made with, whether reachml's verdicts are
# there (HELOC's reachable sets are too large to enumerate whole), and the types its model
# needs beyond skops' defaults (nothing else is trusted).
FOLDERS = {
    "german_lr": ("german_credit.json", True, []),
    "german_hgb": ("german_credit.json", True, TREES),
    "heloc_hgb": ("heloc.json", False, TREES),
}
SEMANTICS = {"paper": "reachml_scores.csv", "release": "reachml_scores_release.csv"}


def _load(name: str) -> dict:
    folder = DATA / name
    shipped, has_verdicts, trusted = FOLDERS[name]
    files = FILES + (("reachml_verdicts.csv",) if has_verdicts else ())
    missing = [f for f in files if not (folder / f).exists()]
    # The golden files are committed: a missing one is a failure, never a skip.
    assert not missing, (
        f"reachml golden files {missing} absent from {folder}; "
        "produce them with bench/make_golden.py"
    )
    import skops.io as sio

    meta = json.loads((folder / "model.json").read_text())
    untrusted = sio.get_untrusted_types(file=folder / "model.skops")
    extra = sorted(set(untrusted) - set(trusted))
    assert not extra, f"golden model {name} asks for types outside its allow-list: {extra}"
    pipe = sio.load(folder / "model.skops", trusted=trusted)
    schema = FeatureSchema.from_list(meta["schema"])
    model = DecisionModel(pipe, schema, meta["favourable_class"], meta["threshold"])
    rows = pd.read_csv(folder / "rows.csv")
    features = list(meta["features"])
    mu = {}
    for semantics, file in SEMANTICS.items():
        scores = pd.read_csv(folder / file)
        mu[semantics] = scores.pivot(index="row", columns="feature", values="mu").loc[
            rows["row"], features
        ].to_numpy(dtype=float)
    verdicts = None
    if has_verdicts:
        verdicts = pd.read_csv(folder / "reachml_verdicts.csv").set_index("row").loc[rows["row"]]
    return {
        "name": name,
        "folder": folder,
        "shipped": BUNDLED / shipped,
        "model": model,
        "features": features,
        "rows": rows["row"].to_numpy(),
        "X": rows[features].to_numpy(dtype=float),
        "mu": mu,
        "verdicts": verdicts,
    }


@pytest.fixture(scope="module", params=sorted(FOLDERS))
def golden(request) -> dict:
    return _load(request.param)


@pytest.fixture(scope="module", params=sorted(n for n, f in FOLDERS.items() if f[1]))
def golden_verdicts(request) -> dict:
    return _load(request.param)


def _action_set(golden: dict) -> ActionSet:
    return ActionSet.from_json(golden["folder"] / "action_set.json")


def test_golden_files_are_consistent(golden):
    # the committed model reproduces reachml's view of the rows: every one is denied
    assert not golden["model"].approve(golden["X"]).any()
    for mu in golden["mu"].values():
        assert mu.shape == golden["X"].shape
        assert np.all((mu >= 0) & (mu <= 1))
    v = golden["verdicts"]
    if v is not None:
        assert (v["pred"] == 0).all()
        assert set(v["status"]) <= {"recourse", "fixed", "undetermined"}
        assert ((v["status"] == "fixed") <= v["complete"]).all()
        assert ((v["status"] == "recourse") == (v["n_approved"] > 0)).all()


def test_golden_action_set_is_the_shipped_one(golden):
    shipped = json.loads(golden["shipped"].read_text())
    used = json.loads((golden["folder"] / "action_set.json").read_text())
    assert used == shipped, (
        f"{golden['shipped'].name} changed since the golden files in {golden['folder'].name} "
        "were made; rerun bench/make_golden.py for it"
    )


def test_golden_action_set_loads_and_accepts_rows(golden):
    A = _action_set(golden)
    assert A.names == golden["features"]
    assert len(A.validate(golden["X"])) == 0


@pytest.mark.parametrize("semantics", sorted(SEMANTICS))
def test_responsiveness_matches_reachml(golden, semantics):
    A = _action_set(golden)
    res = responsiveness(golden["model"], A, golden["X"], n_samples=500, seed=0,
                         semantics=semantics)
    assert list(res.feature_names) == golden["features"]
    want = golden["mu"][semantics]
    diff = np.abs(np.asarray(res.mu, dtype=float) - want)
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    assert diff.max() <= 1e-9, (
        f"{semantics}: mu differs from reachml by {diff.max():.3g} at row "
        f"{golden['rows'][worst[0]]}, feature {golden['features'][worst[1]]}"
    )


def test_the_two_semantics_differ_where_reachml_says_they_do(golden):
    A = _action_set(golden)
    paper = responsiveness(golden["model"], A, golden["X"], semantics="paper")
    release = responsiveness(golden["model"], A, golden["X"], semantics="release")
    ours = ~np.isclose(paper.mu, release.mu, atol=1e-9)
    theirs = ~np.isclose(golden["mu"]["paper"], golden["mu"]["release"], atol=1e-9)
    np.testing.assert_array_equal(ours, theirs)
    # the released search never counts fewer joint actions
    assert (release.n_points >= paper.n_points).all()
    if golden["name"].startswith("german"):  # the checking and savings thermometers
        assert ours.any()


def test_fixed_flags_match_reachml(golden_verdicts):
    g = golden_verdicts
    A = _action_set(g)
    # The verdict does not depend on the cost; percentiles of the rows themselves suffice.
    cost = PercentileShiftCost.fit(g["X"], g["model"].schema)
    res = find_recourse(g["model"], A, g["X"], cost, max_points=20000)
    status = np.asarray(res.status).astype(str)
    want = g["verdicts"]["status"].to_numpy().astype(str)
    rows = g["verdicts"].index.to_numpy()
    np.testing.assert_array_equal(
        rows[status == "fixed"], rows[want == "fixed"], err_msg="fixed rows differ from reachml"
    )
    complete = g["verdicts"]["complete"].to_numpy(dtype=bool)
    np.testing.assert_array_equal(status[complete], want[complete])


def test_reachable_sets_and_approved_points_match_reachml(golden_verdicts):
    g = golden_verdicts
    A = _action_set(g)
    v = g["verdicts"]
    assert v["complete"].all()  # reachml enumerated every set to the end
    n_reachable, n_approved = [], []
    for x in g["X"]:
        R = reachable_set(A, x, g["model"].schema)
        moved = np.any(R.actions != 0, axis=1)
        n_reachable.append(len(R.X))
        n_approved.append(int((g["model"].approve(R.X) & moved).sum()))
    np.testing.assert_array_equal(n_reachable, v["n_reachable"].to_numpy(),
                                  err_msg="reachable-set sizes differ from reachml")
    np.testing.assert_array_equal(n_approved, v["n_approved"].to_numpy(),
                                  err_msg="approved reachable points differ from reachml")
