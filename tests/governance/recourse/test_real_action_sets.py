"""The action sets bundled for the real credit data: they fit the loaders' encodings, accept
every real row, follow reachml's published action sets, and the search issues valid recourse
under them. Skips only when the shared data folder is absent."""

from __future__ import annotations

import numpy as np
import pytest

from governance.data.real import ENV_VAR, load_givemecredit, load_heloc, shared_data_dir
from governance.recourse.action_set import BUNDLED, ActionSet
from governance.recourse.costs import PercentileShiftCost
from governance.recourse.reachable import is_reachable
from governance.recourse.scoring import responsiveness
from governance.recourse.search import find_recourse
from governance.registry.model import DecisionModel
from governance.registry.training import TrainingRecipe

pytestmark = pytest.mark.usefixtures("one_thread")

LOADERS = {"heloc": load_heloc, "givemecredit": lambda: load_givemecredit(n=20_000, seed=0)}
FOLDERS = {"heloc": "heloc", "givemecredit": "givemecredit"}


@pytest.fixture(scope="module", params=sorted(LOADERS))
def case(request):
    path = shared_data_dir() / FOLDERS[request.param]
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent; set {ENV_VAR} to run real-data tests")
    ds = LOADERS[request.param]()
    return request.param, ds, ActionSet.from_json(BUNDLED / f"{request.param}.json")


def test_action_set_fits_the_encoding_and_accepts_every_real_row(case):
    name, ds, A = case
    assert A.name == name and A.version == "1"
    assert A.names == list(ds.X.columns)
    A.check_schema(ds.schema)
    bad = A.validate(ds.X)
    assert bad.empty, bad.head().to_string()


def test_history_is_immutable_and_directions_follow_reachml(case):
    name, _, A = case
    immutable = {e.name for e in A if not e.actionable}
    if name == "heloc":
        assert {"ExternalRiskEstimate", "MaxDelqEver", "MaxDelq2PublicRecLast12M",
                "NumTotalTrades"} <= immutable
        for down in ("NetFractionRevolvingBurden", "NetFractionInstallBurden",
                     "NumRevolvingTradesWBalance", "NumInstallTradesWBalance",
                     "NumBank2NatlTradesWHighUtilization"):
            assert A[down].actionable and A[down].step_direction == -1
        assert A["MSinceOldestTradeOpen"].step_direction == 1
        assert A["MSinceOldestTradeOpen"].step_ub == 24
    else:
        assert {"age", "NumberOfDependents", "NumberOfTimes90DaysLate",
                "NumberOfTime30-59DaysPastDueNotWorse",
                "NumberOfTime60-89DaysPastDueNotWorse"} <= immutable
        assert (A["MonthlyIncome"].step_lb, A["MonthlyIncome"].step_ub) == (-5000, 5000)
        assert A["NumberOfOpenCreditLinesAndLoans"].step_lb == -3
    assert all(e.note for e in A)


def test_search_and_responsiveness_run_on_real_denied_rows(case):
    _, ds, A = case
    recipe = TrainingRecipe("hist_gradient_boosting", {"max_iter": 30, "max_leaf_nodes": 15},
                            seed=0)
    train = ds.X.iloc[:5000]
    model = DecisionModel(recipe.fit(ds.schema, train, ds.y[:5000]), ds.schema)
    M = model.matrix(ds.X.iloc[5000:8000])
    denied = M[~model.approve(M)][:25]
    assert len(denied) >= 10
    cost = PercentileShiftCost.fit(model.matrix(train), ds.schema)
    r = find_recourse(model, A, denied, cost)
    assert (r.status == "recourse").sum() > 0
    for i in np.flatnonzero(r.status == "recourse"):
        assert model.approve(r.x_after[i][None, :])[0]
        assert is_reachable(A, denied[i], r.x_after[i], model.schema)
    resp = responsiveness(model, A, denied, n_samples=50)
    actionable = np.array([A[n].actionable for n in model.schema.names])
    assert resp.no_action[:, ~actionable].all()  # immutable: no feasible change, not a 0 score
