"""Agreement with reachml on German credit: golden scores and verdicts from bench/make_golden.py.

Each golden folder (tests/data/german_lr, tests/data/german_hgb) holds a fixed model, every row
it denies, the action set they were run under, and reachml 0.2.0a1's responsiveness scores and
recourse verdicts for those rows (CPLEX backend, the paper's single-feature search; README.md
there says how and why). Our implementation must give the same scores to 1e-9 and the same
fixed flags.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.recourse.action_set import BUNDLED, ActionSet
from governance.recourse.costs import PercentileShiftCost
from governance.recourse.scoring import responsiveness
from governance.recourse.search import find_recourse
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema

DATA = Path(__file__).resolve().parents[2] / "data"
SHIPPED_ACTION_SET = BUNDLED / "german_credit.json"
FILES = ("model.skops", "model.json", "action_set.json", "rows.csv", "reachml_scores.csv",
         "reachml_verdicts.csv")
# Types each model needs beyond skops' defaults; nothing else is trusted.
TRUSTED = {
    "german_lr": [],
    "german_hgb": ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
}


def _load(name: str) -> dict:
    folder = DATA / name
    missing = [f for f in FILES if not (folder / f).exists()]
    # The golden files are committed: a missing one is a failure, never a skip.
    assert not missing, (
        f"reachml golden files {missing} absent from {folder}; "
        "produce them with bench/make_golden.py"
    )
    import skops.io as sio

    meta = json.loads((folder / "model.json").read_text())
    untrusted = sio.get_untrusted_types(file=folder / "model.skops")
    extra = sorted(set(untrusted) - set(TRUSTED[name]))
    assert not extra, f"golden model {name} asks for types outside its allow-list: {extra}"
    pipe = sio.load(folder / "model.skops", trusted=TRUSTED[name])
    schema = FeatureSchema.from_list(meta["schema"])
    model = DecisionModel(pipe, schema, meta["favourable_class"], meta["threshold"])
    rows = pd.read_csv(folder / "rows.csv")
    features = list(meta["features"])
    scores = pd.read_csv(folder / "reachml_scores.csv")
    mu = scores.pivot(index="row", columns="feature", values="mu").loc[rows["row"], features]
    verdicts = pd.read_csv(folder / "reachml_verdicts.csv").set_index("row").loc[rows["row"]]
    return {
        "folder": folder,
        "model": model,
        "features": features,
        "X": rows[features].to_numpy(dtype=float),
        "mu": mu.to_numpy(dtype=float),
        "verdicts": verdicts,
    }


@pytest.fixture(scope="module", params=sorted(TRUSTED))
def golden(request) -> dict:
    return _load(request.param)


def _action_set(golden: dict) -> ActionSet:
    return ActionSet.from_json(golden["folder"] / "action_set.json")


def test_golden_files_are_consistent(golden):
    # the committed model reproduces reachml's view of the rows: every one is denied
    assert not golden["model"].approve(golden["X"]).any()
    v = golden["verdicts"]
    assert (v["pred"] == 0).all()
    assert set(v["status"]) <= {"recourse", "fixed", "undetermined"}
    assert ((v["status"] == "fixed") <= v["complete"]).all()
    assert ((v["status"] == "recourse") == (v["n_approved"] > 0)).all()
    assert golden["mu"].shape == golden["X"].shape
    assert np.all((golden["mu"] >= 0) & (golden["mu"] <= 1))


def test_golden_action_set_is_the_shipped_one(golden):
    shipped = json.loads(SHIPPED_ACTION_SET.read_text())
    used = json.loads((golden["folder"] / "action_set.json").read_text())
    assert used == shipped, (
        "governance/recourse/action_sets/german_credit.json changed since the golden files "
        "were made; rerun bench/make_golden.py --model lr and --model hgb"
    )


def test_golden_action_set_loads_and_accepts_rows(golden):
    A = _action_set(golden)
    assert A.names == golden["features"]
    assert len(A.validate(golden["X"])) == 0


def test_responsiveness_matches_reachml(golden):
    A = _action_set(golden)
    res = responsiveness(golden["model"], A, golden["X"], n_samples=500, seed=0)
    assert list(res.feature_names) == golden["features"]
    diff = np.abs(np.asarray(res.mu, dtype=float) - golden["mu"])
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    assert diff.max() <= 1e-9, (
        f"mu differs from reachml by {diff.max():.3g} at row {golden['verdicts'].index[worst[0]]}, "
        f"feature {golden['features'][worst[1]]}"
    )


def test_fixed_flags_match_reachml(golden):
    A = _action_set(golden)
    # The verdict does not depend on the cost; percentiles of the rows themselves suffice.
    cost = PercentileShiftCost.fit(golden["X"], golden["model"].schema)
    res = find_recourse(golden["model"], A, golden["X"], cost, max_points=20000)
    status = np.asarray(res.status).astype(str)
    want = golden["verdicts"]["status"].to_numpy().astype(str)
    rows = golden["verdicts"].index.to_numpy()
    np.testing.assert_array_equal(
        rows[status == "fixed"], rows[want == "fixed"], err_msg="fixed rows differ from reachml"
    )
    complete = golden["verdicts"]["complete"].to_numpy(dtype=bool)
    np.testing.assert_array_equal(status[complete], want[complete])
