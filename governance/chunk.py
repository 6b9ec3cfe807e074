"""What one chunk of validated decisions adds to the ledger: rows per table, and counts.

Pure functions: a chunk and a loaded model in, frames shaped like the ledger's tables out. The
Prefect task that calls them only loads inputs and hands the frames to the store.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from governance.decision_log import DECIDED_AT, DECISION, DENIED, ID, SCORE, SUBJECT
from governance.explain import TOP_K, Explainer, Explanation, top_reasons
from governance.hashing import sha256_bytes
from governance.model import DecisionModel

SCORE_TOLERANCE = 1e-6  # logged vs recomputed score; larger gaps mean the log names the wrong model


@dataclass
class ChunkResult:
    """Rows for each ledger table, keyed by table name, plus counts for the run summary."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def chunk_sha256(chunk: pd.DataFrame) -> str:
    """Identity of a chunk: its decision ids in order. A resumed run recognises finished chunks."""
    return sha256_bytes("\n".join(chunk[ID].astype(str)).encode())


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
    chunk: pd.DataFrame, model: DecisionModel, *, model_version_id: int, run_id: int,
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
        }
    )


def explanation_rows(
    chunk: pd.DataFrame, expl: Explanation, *, model_version_id: int, explainer_id: int,
    run_id: int, top_k: int = TOP_K,
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


def explain_chunk(
    chunk: pd.DataFrame,
    model: DecisionModel,
    explainer: Explainer,
    *,
    model_version_id: int,
    explainer_id: int,
    run_id: int,
    top_k: int = TOP_K,
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

    Returns
    -------
    ChunkResult
        Frames for ``decisions``, ``explanations``, ``attributions`` and ``reasons``.
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
            chunk, expl, model_version_id=model_version_id, explainer_id=explainer_id,
            run_id=run_id, top_k=top_k,
        ),
    }
    denied = int((chunk[DECISION] == DENIED).sum())
    reasons = frames["reasons"]
    counts = {
        "decisions": len(chunk),
        "denied": denied,
        "denied_with_reasons": int(reasons["decision_id"].nunique()) if len(reasons) else 0,
        "reasons_issued": len(reasons),
        "not_additive": int((~expl.additive).sum()),
        "score_mismatch": int(
            (np.abs(recomputed - chunk[SCORE].to_numpy(dtype=float)) > SCORE_TOLERANCE).sum()
        ),
    }
    return ChunkResult(frames, counts, {"explain": time.perf_counter() - t0})
