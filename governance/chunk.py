"""What one chunk of validated decisions adds to the ledger: rows per table, and counts.

Pure functions: a chunk and a loaded model in, frames shaped like the ledger's tables out. The
Prefect task that calls them only loads inputs and hands the frames to the store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from governance.explain.explainer import TOP_K, Explainer, Explanation, top_reasons
from governance.explain.quality import (
    QualitySetup,
    add_quality,
)
from governance.hashing import sha256_frame
from governance.intake.decision_log import (
    COMPLETED_AT,
    DECIDED_AT,
    DECISION,
    DENIED,
    ID,
    SCORE,
    SUBJECT,
    score_reproduced,
)
from governance.intake.validation import OUT_OF_RANGE, ROW
from governance.recourse.action_set import ActionSet
from governance.recourse.costs import Cost
from governance.recourse.scoring import responsiveness
from governance.recourse.search import MAX_POINTS, RecourseResult, find_recourse
from governance.registry.model import DecisionModel
from governance.retraining.robust import robust_recourse
from governance.retraining.stability_score import stability


@dataclass
class ChunkResult:
    """Rows for each ledger table, keyed by table name, plus counts for the run summary."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def chunk_sha256(chunk: pd.DataFrame) -> str:
    """Identity of a chunk's input: every value of its log rows, columns by name (the row's
    position in the log is left out: rows above it may be erased). A corrected row under the
    same decision id changes it; see :mod:`governance.provenance` for the rest of the key.
    Columns validation adds (the row's position, the out-of-range flags derived from the row
    and the schema) are left out: they are not the log's."""
    rows = chunk.drop(columns=[ROW, OUT_OF_RANGE], errors="ignore")
    return sha256_frame(rows.reindex(columns=sorted(map(str, rows.columns))))


def feature_json(value: Any) -> Any:
    """A feature value as stored: JSON-safe, integral floats kept as floats."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def decision_rows(
    chunk: pd.DataFrame,
    model: DecisionModel,
    *,
    model_version_id: int,
    run_id: int,
    recomputed: np.ndarray,
) -> pd.DataFrame:
    """Rows of ``decisions``: the logged decision with its features and the recomputed score."""
    names = model.schema.names
    features = [
        {k: feature_json(v) for k, v in zip(names, row, strict=True)}
        for row in chunk[names].itertuples(index=False, name=None)
    ]
    stamps = pd.to_datetime(chunk[DECIDED_AT], utc=True)
    return pd.DataFrame(
        {
            "decision_id": chunk[ID].astype(str).to_numpy(),
            "subject_id": chunk[SUBJECT].astype(str).to_numpy(),
            "decided_at": stamps.to_numpy(),
            "decision_date": stamps.dt.date.to_numpy(),
            "model_version_id": model_version_id,
            "score": chunk[SCORE].astype(float).to_numpy(),
            "decision": chunk[DECISION].astype(str).to_numpy(),
            "features": features,
            "score_recomputed": recomputed,
            "run_id": run_id,
            "completed_at": completed_at(chunk),
            "out_of_range": _out_of_range(chunk),
        }
    )


def completed_at(chunk: pd.DataFrame) -> np.ndarray:
    """When each application was complete, from the log's optional column (else NaT: the
    decision time stands in). A value that is not a time is NaT too."""
    if COMPLETED_AT not in chunk:
        return pd.Series(pd.NaT, index=chunk.index, dtype="datetime64[us, UTC]").to_numpy()
    return pd.to_datetime(chunk[COMPLETED_AT], utc=True, errors="coerce", format="mixed").to_numpy()


def _out_of_range(chunk: pd.DataFrame) -> list[Any]:
    """Per row, the features validation flagged beyond their observed range, or None."""
    if OUT_OF_RANGE not in chunk.columns:
        return [None] * len(chunk)
    return [list(v) if isinstance(v, list | tuple | np.ndarray) and len(v) else None
            for v in chunk[OUT_OF_RANGE]]


def explanation_rows(
    chunk: pd.DataFrame,
    expl: Explanation,
    *,
    model_version_id: int,
    explainer_id: int,
    run_id: int,
    top_k: int = TOP_K,
) -> dict[str, pd.DataFrame]:
    """Rows of ``explanations``, ``attributions`` and ``reasons`` (reasons for denials only)."""
    ids = chunk[ID].astype(str).to_numpy()
    names = expl.feature_names
    n, d = expl.values.shape
    explanations = pd.DataFrame(
        {
            "decision_id": ids,
            "model_version_id": model_version_id,
            "explainer_id": explainer_id,
            "base_value": expl.base_values,
            "model_output": expl.model_output,
            "additivity_error": expl.additivity_error,
            "additive": expl.additive,
            "run_id": run_id,
        }
    )
    values = chunk[names].to_numpy(dtype=object)
    attributions = pd.DataFrame(
        {
            "decision_id": np.repeat(ids, d),
            "model_version_id": model_version_id,
            "feature": np.tile(np.asarray(names, dtype=object), n),
            "value": [json.dumps(feature_json(v)) for v in values.ravel()],
            "attribution": expl.values.ravel(),
        }
    )
    denied = (chunk[DECISION] == DENIED).to_numpy()
    idx, val = top_reasons(expl.values[denied], top_k)
    rows, ranks = np.nonzero(idx >= 0)
    reasons = pd.DataFrame(
        {
            "decision_id": ids[denied][rows],
            "model_version_id": model_version_id,
            "rank": ranks + 1,
            "feature": np.asarray(names, dtype=object)[idx[rows, ranks]],
            "attribution": val[rows, ranks],
        }
    )
    return {"explanations": explanations, "attributions": attributions, "reasons": reasons}


@dataclass(frozen=True)
class RecourseSetup:
    """What the responsiveness and recourse step needs for one model version."""

    action_set: ActionSet
    cost: Cost
    action_set_id: int
    cost_model_id: int
    n_samples: int = 500
    seed: int = 0
    max_points: int = MAX_POINTS
    semantics: str = "paper"  # responsiveness: the paper's early stop or reachml as released
    # stability of issued recourse (Hamman et al.) and the robust-recourse option
    scale: np.ndarray | None = None
    stability_k: int = 1000
    stability_sigma: float = 0.05
    robust_tau: float | None = None


def _issued_rows(
    model: DecisionModel, X: np.ndarray, rec: RecourseResult, rows: Sequence[int]
) -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]:
    """Per issued row: the changes it asks for and the full point after them, as people read."""
    names = model.schema.names
    changes, points = [], []
    for i in rows:
        before, after = human_values(model, X[i]), human_values(model, rec.x_after[i])
        changed = np.nonzero(rec.action[i] != 0)[0]
        changes.append(
            [
                {"feature": names[j], "from": before[names[j]], "to": after[names[j]]}
                for j in changed
            ]
        )
        points.append(after)
    return changes, points


def human_values(model: DecisionModel, row: np.ndarray) -> dict[str, Any]:
    """A code-matrix row as feature values a person reads (category names, ints as ints)."""
    out: dict[str, Any] = {}
    for spec, v in zip(model.schema, row, strict=True):
        if spec.dtype == "category":
            out[spec.name] = spec.categories[int(v)]
        elif spec.dtype in ("int", "bool"):
            out[spec.name] = int(round(v))
        else:
            out[spec.name] = float(v)
    return out


def recourse_rows(
    denied: pd.DataFrame,
    model: DecisionModel,
    setup: RecourseSetup,
    *,
    attributions: np.ndarray,
    reason_index: np.ndarray,
    model_version_id: int,
    run_id: int,
    top_k: int = TOP_K,
) -> tuple[dict[str, pd.DataFrame], np.ndarray, np.ndarray, dict[str, int]]:
    """Responsiveness, recourse verification and minimal-cost recourse for denied decisions.

    Parameters
    ----------
    denied : DataFrame
        Denied decisions of one model version.
    attributions : ndarray of shape (n_denied, n_features)
        Their SHAP attributions, to store beside each score.
    reason_index : ndarray of shape (n_denied, top_k)
        Feature positions of the reasons given (-1 where none).

    Returns
    -------
    frames : dict
        Rows of ``responsiveness``, ``recourse_checks``, ``responsive_reasons`` and
        ``issued_recourse``.
    reason_mu : ndarray of shape (n_denied, top_k)
        Responsiveness of each reason given (NaN where no reason, or where the reason's
        feature has no feasible change).
    reason_state : ndarray of object, shape (n_denied, top_k)
        ``"scored"`` or ``"no_action"`` per reason given (None where no reason).
    counts : dict
        Run-level tallies (the paper's metrics are shares of these).
    """
    names = model.schema.names
    ids = denied[ID].astype(str).to_numpy()
    n, d = len(denied), len(names)
    X = model.matrix(denied)
    resp = responsiveness(model, setup.action_set, X, n_samples=setup.n_samples, seed=setup.seed,
                          semantics=setup.semantics)
    rec = find_recourse(model, setup.action_set, X, setup.cost, max_points=setup.max_points)
    responsiveness_frame = pd.DataFrame(
        {
            "decision_id": np.repeat(ids, d),
            "model_version_id": model_version_id,
            "feature": np.tile(np.asarray(names, dtype=object), n),
            "action_set_id": setup.action_set_id,
            "attribution": attributions.ravel(),
            # no feasible change is its own state, not a score of 0
            "mu": np.where(resp.no_action, np.nan, resp.mu).ravel(),
            "mu_state": resp.state.ravel(),
            "n_points": resp.n_points.ravel().astype(np.int64),
            "method": np.tile(np.asarray(resp.method, dtype=object), n),
        }
    )
    given = reason_index >= 0
    at = np.maximum(reason_index, 0)
    reason_mu = np.where(given, np.take_along_axis(resp.mu, at, 1), np.nan)
    reason_state = np.where(given, np.take_along_axis(resp.state, at, 1), None)
    reason_mu[given & (reason_state == "no_action")] = np.nan
    n_given = given.sum(axis=1)
    n_responsive = (given & (reason_mu > 0)).sum(axis=1)
    status = rec.status
    checks = pd.DataFrame(
        {
            "decision_id": ids,
            "model_version_id": model_version_id,
            "action_set_id": setup.action_set_id,
            "status": status,
            "complete": rec.complete.astype(bool),
            "n_points": rec.n_points.astype(np.int64),
            "reasons_given": n_given,
            "responsive_reasons": n_responsive,
            "all_reasons_unresponsive": (n_given > 0) & (n_responsive == 0),
            "fixed_with_reasons": (status == "fixed") & (n_given > 0),
            "run_id": run_id,
        }
    )
    # The paper's alternative: rank features by responsiveness (only responsive ones).
    order = np.argsort(-resp.mu, axis=1, kind="stable")[:, :top_k]
    top_mu = np.take_along_axis(resp.mu, order, axis=1)
    rows, ranks = np.nonzero(top_mu > 0)
    responsive_reasons = pd.DataFrame(
        {
            "decision_id": ids[rows],
            "model_version_id": model_version_id,
            "rank": ranks + 1,
            "feature": np.asarray(names, dtype=object)[order[rows, ranks]],
            "mu": top_mu[rows, ranks],
        }
    )
    # What the applicant is told: the minimal-cost action, or with the robust option the
    # cheapest action with stability R >= tau, keeping the minimal-cost one as the alternative
    # (and issuing it when no robust action exists).
    chosen: dict[int, tuple[RecourseResult, str, float]] = {}
    alternative: dict[int, tuple[RecourseResult, float]] = {}
    has = np.nonzero(status == "recourse")[0]
    if setup.scale is not None and setup.robust_tau is not None:
        rr = robust_recourse(
            model,
            setup.action_set,
            X,
            setup.cost,
            setup.scale,
            tau=setup.robust_tau,
            k=setup.stability_k,
            sigma=setup.stability_sigma,
            seed=setup.seed,
            max_points=setup.max_points,
            minimal=rec,
        )
        for i in np.nonzero(rr.base.status == "recourse")[0]:
            chosen[i] = (rr.base, "robust", rr.stability[i])
            if rec.status[i] == "recourse":
                alternative[i] = (rec, rr.minimal_stability[i])
        for i in has:
            chosen.setdefault(i, (rec, "minimal", rr.minimal_stability[i]))
    else:
        stab = np.full(n, np.nan)
        if setup.scale is not None and len(has):
            stab[has] = stability(
                model,
                rec.x_after[has],
                setup.scale,
                k=setup.stability_k,
                sigma=setup.stability_sigma,
                seed=setup.seed,
            )
        chosen = {i: (rec, "minimal", stab[i]) for i in has}
    issued = np.array(sorted(chosen), dtype=int)
    minimal_over: dict[int, np.ndarray] = {}  # per result: what its costs are minimal over
    layout = model.schema.layout_sha256
    stamps = pd.to_datetime(denied[DECIDED_AT], utc=True).to_numpy()
    rows = []
    for i in issued:
        result, kind, r = chosen[i]
        changes, points = _issued_rows(model, X, result, [i])
        alt = None
        if i in alternative:
            alt_result, alt_r = alternative[i]
            alt_changes, alt_points = _issued_rows(model, X, alt_result, [i])
            alt = {
                "kind": "minimal",
                "cost": float(alt_result.cost[i]),
                "score_after": float(alt_result.score_after[i]),
                "stability": None if np.isnan(alt_r) else float(alt_r),
                "changes": alt_changes[0],
                "x_after": alt_points[0],
            }
        rows.append(
            {
                "recourse_id": f"{ids[i]}@{model_version_id}",
                "decision_id": ids[i],
                "model_version_id": model_version_id,
                "action_set_id": setup.action_set_id,
                "cost_model_id": setup.cost_model_id,
                "issued_at": stamps[i],
                "cost": float(result.cost[i]),
                "score_before": float(rec.score[i]),
                "score_after": float(result.score_after[i]),
                "complete": bool(result.complete[i]),
                "minimal_over": minimal_over.setdefault(id(result), result.minimal_over)[i],
                "changes": changes[0],
                "x_after": points[0],
                "x_codes": np.asarray(result.x_after[i], dtype="<f8").tobytes(),
                "layout_sha256": layout,
                "changed": ",".join(ch["feature"] for ch in changes[0]),
                "run_id": run_id,
                "kind": kind,
                "stability": None if np.isnan(r) else float(r),
                "alternative": alt,
            }
        )
    issued_frame = pd.DataFrame(
        rows,
        columns=[
            "recourse_id",
            "decision_id",
            "model_version_id",
            "action_set_id",
            "cost_model_id",
            "issued_at",
            "cost",
            "score_before",
            "score_after",
            "complete",
            "minimal_over",
            "changes",
            "x_after",
            "run_id",
            "kind",
            "stability",
            "alternative",
            "x_codes",
            "layout_sha256",
            "changed",
        ],
    )
    with_reasons = n_given > 0
    counts = {
        "responsiveness_scored": n,
        "all_reasons_unresponsive": int(((n_responsive == 0) & with_reasons).sum()),
        "at_least_one_responsive_reason": int((n_responsive > 0).sum()),
        "responsive_reasons": int(n_responsive.sum()),
        "fixed": int((status == "fixed").sum()),
        "fixed_with_reasons": int(((status == "fixed") & with_reasons).sum()),
        "recourse": int((status == "recourse").sum()),
        # proven minimal: over the candidate grid, and (a subset) over the whole action set
        "recourse_minimal_on_grid": int(((status == "recourse") & rec.complete).sum()),
        "recourse_minimal_in_action_set": int((rec.minimal_over == "action_set").sum()),
        "undetermined": int((status == "undetermined").sum()),
        "recourse_issued": len(issued),
    }
    if alternative:
        robust_rows = list(alternative)
        counts["robust_issued"] = sum(1 for v in chosen.values() if v[1] == "robust")
        counts["robust_pairs"] = len(robust_rows)
        counts["robust_cost_increase_sum"] = float(
            sum(chosen[i][0].cost[i] - rec.cost[i] for i in robust_rows)
        )
    frames = {
        "responsiveness": responsiveness_frame,
        "recourse_checks": checks,
        "responsive_reasons": responsive_reasons,
        "issued_recourse": issued_frame,
    }
    return frames, reason_mu, reason_state, counts


def explain_chunk(
    chunk: pd.DataFrame,
    model: DecisionModel,
    explainer: Explainer,
    *,
    model_version_id: int,
    explainer_id: int,
    run_id: int,
    top_k: int = TOP_K,
    recourse: RecourseSetup | None = None,
    quality: QualitySetup | None = None,
) -> ChunkResult:
    """Explain every decision of a chunk and build its ledger rows.

    Parameters
    ----------
    chunk : DataFrame
        Validated decision-log rows of one model version.
    model : DecisionModel
        The version that made the decisions.
    explainer : Explainer
        Built once per worker for that version.
    recourse : RecourseSetup, optional
        Responsiveness, verification and recourse for denied decisions.
    quality : QualitySetup, optional
        Faithfulness, stability and agreement of the denied decisions' explanations.

    Returns
    -------
    ChunkResult
        Frames for ``decisions``, ``explanations``, ``attributions`` and ``reasons``, plus
        those of the recourse and quality steps when they run.

    Decisions the model does not reproduce (logged score off the model's by more than
    ``SCORE_TOLERANCE``: the log names another model) are explained and verified like the
    others, since reviewers need to see what the registered model makes of them, but kept
    apart: they are counted under ``score_mismatch`` (``score_mismatch_denied``) and in none
    of the other counts, and no recourse is issued to them.
    """
    import time

    t0 = time.perf_counter()
    recomputed = model.score(chunk)
    expl = explainer.explain(chunk)
    frames = {
        "decisions": decision_rows(
            chunk, model, model_version_id=model_version_id, run_id=run_id, recomputed=recomputed
        ),
        **explanation_rows(
            chunk,
            expl,
            model_version_id=model_version_id,
            explainer_id=explainer_id,
            run_id=run_id,
            top_k=top_k,
        ),
    }
    reproduced = score_reproduced(chunk[SCORE].to_numpy(dtype=float), recomputed)
    denied_mask = (chunk[DECISION] == DENIED).to_numpy()
    reasons = frames["reasons"]
    sound_reasons = reasons["decision_id"].isin(set(chunk.loc[reproduced, ID].astype(str)))
    counts = {
        "decisions": len(chunk),
        "denied": int((denied_mask & reproduced).sum()),
        "denied_with_reasons": int(reasons.loc[sound_reasons, "decision_id"].nunique()),
        "reasons_issued": int(sound_reasons.sum()),
        "not_additive": int((~expl.additive).sum()),
        "score_mismatch": int((~reproduced).sum()),
        "score_mismatch_denied": int((denied_mask & ~reproduced).sum()),
    }
    seconds = {"explain": time.perf_counter() - t0}
    idx, _ = top_reasons(expl.values[denied_mask], top_k)
    if recourse is not None and denied_mask.any():
        t1 = time.perf_counter()
        reason_mu = np.full(idx.shape, np.nan)
        reason_state = np.full(idx.shape, None, dtype=object)
        denied_rows = np.flatnonzero(denied_mask)
        parts = []
        # Reproduced and unreproduced denials apart: only the first are counted and issued.
        for sound in (True, False):
            sub = np.flatnonzero(reproduced[denied_rows] == sound)
            if sub.size == 0:
                continue
            extra, mu, state, more = recourse_rows(
                chunk.iloc[denied_rows[sub]].reset_index(drop=True),
                model,
                recourse,
                attributions=expl.values[denied_rows[sub]],
                reason_index=idx[sub],
                model_version_id=model_version_id,
                run_id=run_id,
                top_k=top_k,
            )
            reason_mu[sub] = mu
            reason_state[sub] = state
            if sound:
                counts.update(more)
            else:
                extra["issued_recourse"] = extra["issued_recourse"].iloc[:0]
            parts.append(extra)
        # reasons rows were built from the same top_reasons call, in row-major order.
        frames["reasons"] = reasons.assign(
            mu=reason_mu[idx >= 0], mu_state=reason_state[idx >= 0]
        )
        for name in parts[0]:
            kept = [p[name] for p in parts if len(p[name])] or [parts[0][name]]
            frames[name] = pd.concat(kept, ignore_index=True)
        seconds["recourse"] = time.perf_counter() - t1
    if quality is not None:
        add_quality(
            frames, counts, seconds, chunk.loc[denied_mask], model, explainer,
            expl.values[denied_mask], idx, quality,
            model_version_id=model_version_id, explainer_id=explainer_id, run_id=run_id,
        )  # fmt: skip
    return ChunkResult(frames, counts, seconds)


def drop_decisions(
    frames: dict[str, pd.DataFrame], decision_ids: set[str]
) -> dict[str, pd.DataFrame]:
    """``frames`` without the rows of ``decision_ids`` (e.g. subjects erased meanwhile)."""
    if not decision_ids:
        return frames
    return {
        name: frame.loc[~frame["decision_id"].isin(decision_ids)].reset_index(drop=True)
        if "decision_id" in frame
        else frame
        for name, frame in frames.items()
    }
