"""One chunk's ledger rows: decisions the registered model does not reproduce are explained and
verified, but counted apart and issued no recourse."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from governance.chunk import RecourseSetup, chunk_sha256, explain_chunk
from governance.data.synthetic import LABEL, SYNTHETIC_SCHEMA, generate_population
from governance.explain.explainer import Explainer
from governance.intake.decision_log import DECISION, DENIED, ID, SCORE, make_decisions
from governance.intake.validation import ROW
from governance.recourse.action_set import BUNDLED, ActionSet
from governance.recourse.costs import PercentileShiftCost
from governance.registry.model import DecisionModel
from governance.registry.training import TrainingRecipe


@pytest.fixture(scope="module")
def lender():
    train = generate_population(3_000, seed=11)
    est = TrainingRecipe("hist_gradient_boosting", {"max_iter": 30}, seed=0, label=LABEL).fit(
        SYNTHETIC_SCHEMA, train, train[LABEL].to_numpy()
    )
    model = DecisionModel(est, SYNTHETIC_SCHEMA, name="m", version="v1")
    people = generate_population(150, seed=12, start_id=50_000)
    log = make_decisions(
        people,
        model.score(people),
        model.threshold,
        model_name="m",
        model_version="v1",
        decided_at=[datetime(2026, 11, 2, 9, tzinfo=UTC)] * len(people),
        features=SYNTHETIC_SCHEMA.names,
    )
    setup = RecourseSetup(
        ActionSet.from_json(BUNDLED / "synthetic_lending.json"),
        PercentileShiftCost.fit(train, SYNTHETIC_SCHEMA),
        action_set_id=1,
        cost_model_id=1,
        max_points=32,
    )
    return model, Explainer(model, train), log, setup


def _run(lender, log):
    model, explainer, _, setup = lender
    return explain_chunk(
        log, model, explainer, model_version_id=1, explainer_id=1, run_id=1, recourse=setup
    )


def test_decisions_the_model_does_not_reproduce_are_kept_apart(lender):
    _, _, log, _ = lender
    denied = np.flatnonzero((log[DECISION] == DENIED).to_numpy())
    off = denied[:5]
    bad = log.copy()
    bad.loc[off, SCORE] = bad.loc[off, SCORE] * 0.5  # still denied: passes validation
    ids = set(bad.loc[off, ID])

    sound = _run(lender, log)
    got = _run(lender, bad)

    assert sound.counts["score_mismatch"] == 0
    assert got.counts["score_mismatch"] == got.counts["score_mismatch_denied"] == 5
    # every other count is the sound rows' only
    assert got.counts["denied"] == sound.counts["denied"] - 5
    assert got.counts["responsiveness_scored"] == got.counts["denied"]
    assert got.counts["reasons_issued"] == sound.counts["reasons_issued"] - 5 * 4
    kept = sound.frames["recourse_checks"]
    kept = kept.loc[~kept["decision_id"].isin(ids)]
    for key in ("fixed", "recourse", "undetermined"):
        assert got.counts.get(key, 0) == int((kept["status"] == key).sum()), key
    # their verdicts and analysis are stored, under the registered model, but nothing issued
    checks = got.frames["recourse_checks"]
    assert ids <= set(checks["decision_id"])
    assert not ids & set(got.frames["issued_recourse"]["decision_id"])
    assert len(checks) == len(denied)
    reasons = got.frames["reasons"]
    # every reason scored: a score, or no feasible change at all (its own state, no score)
    assert (reasons["mu"].notna() | (reasons["mu_state"] == "no_action")).all()
    assert reasons["mu_state"].notna().all()
    pd.testing.assert_frame_equal(
        got.frames["recourse_checks"].sort_values("decision_id").reset_index(drop=True),
        sound.frames["recourse_checks"].sort_values("decision_id").reset_index(drop=True),
    )


def test_a_chunks_identity_is_its_rows_contents():
    log = pd.DataFrame({ID: ["D1", "D2"], "x": [1.0, 2.0], "home": ["RENT", "OWN"]})
    base = chunk_sha256(log)
    assert chunk_sha256(log[["home", ID, "x"]]) == base  # column order is not content
    assert chunk_sha256(log.assign(**{ROW: [7, 8]})) == base  # nor the position in the log
    corrected = log.copy()
    corrected.loc[1, "x"] = 2.5  # the same decision id, a corrected value
    assert chunk_sha256(corrected) != base


def test_a_chunks_identity_ignores_the_columns_validation_adds():
    """The out-of-range flags (a list per row) and the row position are validation's, not the
    log's: they neither break the hash nor change it."""
    from governance.intake.validation import OUT_OF_RANGE, ROW

    log = pd.DataFrame({"decision_id": ["D1", "D2"], "income": [1.0, 9e9]})
    flagged = log.assign(**{OUT_OF_RANGE: [None, ["income"]], ROW: [0, 1]})
    assert chunk_sha256(flagged) == chunk_sha256(log)
    assert chunk_sha256(log.assign(income=[1.0, 2.0])) != chunk_sha256(log)
