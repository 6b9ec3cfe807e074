"""Which exact paths apply to a fitted model, checked on a sample of its inputs.

The recourse verification certifies "fixed" and proves minimal costs exactly for the model
families whose structure :mod:`governance.registry.trees` parses (threshold cells of tree
ensembles, logit weights of logistic regression); the stability score replays tree ensembles
bit for bit (:mod:`governance.registry.tree_replay`). Everything else is searched on candidate
grids and sampled. :func:`exact_paths` says which applies to a model and why, after checking
the parsed structure against the model's own scores, as its users do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from governance.registry.forests import final_estimator, why_not_parsed
from governance.registry.model import DecisionModel
from governance.registry.tree_replay import TreeReplay
from governance.registry.trees import model_structure

_ROWS = 64
_SAMPLES = 8


def exact_paths(model: DecisionModel, sample: pd.DataFrame | np.ndarray) -> dict[str, Any]:
    """Report the exact paths that apply to ``model``, checked on up to 64 rows of ``sample``.

    Returns
    -------
    dict
        ``family`` (the final estimator's class), ``structure`` (``tree``, ``linear`` or
        ``none``), ``verification`` (``exact`` when fixed predictions can be certified from
        the parsed structure, else ``sampling``), ``stability_replay`` (``exact`` when the
        parsed trees replay the model's scores bit for bit, else ``predict_proba``) and
        ``reason`` (why a path does not apply, or what was checked).
    """
    family = type(final_estimator(model.estimator)).__name__
    M = model.matrix(sample) if isinstance(sample, pd.DataFrame) else np.asarray(sample, float)
    M = M[np.all(np.isfinite(M), axis=1)][:_ROWS]
    out = {"family": family, "structure": "none", "verification": "sampling",
           "stability_replay": "predict_proba", "reason": ""}
    structure = model_structure(model)
    if structure.kind == "none":
        out["reason"] = why_not_parsed(model)
        return out
    if not len(M):
        out["reason"] = "no complete rows to check the parsed structure on"
        return out
    scores = model.score(M)
    out["structure"] = structure.kind
    if structure.kind == "linear":
        p = np.clip(scores, 1e-12, 1 - 1e-12)
        ok = np.allclose(structure.logit(M), np.log(p) - np.log1p(-p), rtol=1e-6, atol=1e-6)
        out["verification"] = "exact" if ok else "sampling"
        out["reason"] = (
            "logit weights reproduce the model's scores: the score is monotone in each "
            "feature and additive over parts" if ok
            else "the reconstructed logit does not reproduce the model's scores"
        )
        return out
    bound = structure.bound
    if bound is None or not bound.matches(M, scores):
        out["reason"] = "the parsed trees do not reproduce the model's scores on the sample"
        return out
    out["verification"] = "exact"
    cols = np.array(sorted(structure.cells), dtype=np.int64)
    replay = TreeReplay.of(model, cols)
    if replay is None:
        out["reason"] = "threshold cells checked; the model's link is not known for a replay"
        return out
    rng = np.random.default_rng(0)
    spread = np.nanstd(M[:, cols], axis=0) if len(cols) else np.zeros(0)
    V = M[:, cols][:, :, None] + rng.normal(size=(len(M), len(cols), _SAMPLES)) * (
        0.05 * spread[None, :, None])
    replayed = replay.scores(M, V)
    points = np.repeat(M, _SAMPLES, axis=0)
    points[:, cols] = V.transpose(0, 2, 1).reshape(-1, len(cols))
    direct = model.score(points).reshape(len(M), _SAMPLES)
    same = np.array_equal(replayed, direct)
    out["stability_replay"] = "exact" if same else "predict_proba"
    out["reason"] = (
        "threshold cells and the bound reproduce the model's scores; the replay is bit for bit"
        if same else
        "threshold cells and the bound reproduce the model's scores (to 1e-6); the replay is "
        "not bit for bit, so stability samples go through predict_proba"
    )
    return out
