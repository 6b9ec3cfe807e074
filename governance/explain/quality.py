"""Explanation quality for one chunk of denied decisions: the rows the ledger stores.

The per-chunk hook of the nightly run and of the redeploy check. For every denied decision,
PGI and PGU of the reasons disclosed (two neighbourhoods, see
:mod:`governance.explain.faithfulness`); for decisions in the seeded daily sample, RIS and ROS
(:mod:`governance.explain.explanation_stability`) and agreement with a second, model-agnostic
explainer; wherever responsiveness scores exist, agreement of the reasons with the
responsiveness ranking (:mod:`governance.explain.agreement`).

Samples are chosen by a key hashed from (seed, decision id): a decision is in a sample of size
N when its key is among the N smallest of the night's denied decisions. The flow turns N into a
key cutoff, so each chunk decides membership on its own and a rerun picks the same decisions.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from governance.explain.agreement import agreement
from governance.explain.compare import reason_agreement
from governance.explain.explainer import TOP_K, Explainer, top_reasons
from governance.explain.explanation_stability import (
    StabilitySettings,
    relative_stability,
)
from governance.explain.faithfulness import BACKGROUND, NORMAL, FaithfulnessSettings, faithfulness
from governance.explain.perturbation import FeatureSpace
from governance.intake.decision_log import DECISION, DENIED, ID
from governance.registry.model import DecisionModel

SHAP_VS_RESPONSIVENESS = "shap_vs_responsiveness"
EXPLAINER_VS_PERMUTATION = "explainer_vs_permutation"
VERSION_VS_PREVIOUS = "version_vs_previous"
ALL = 2**63 - 1  # a cutoff that admits every decision
# The permutation explainer costs about 0.2 s per decision on a tree ensemble, and stability
# explains up to 100 neighbours of each: models it explains get a daily stability sample this
# small (the flow passes both cutoffs; the chunk uses the one for its explainer).
PERMUTATION_STABILITY_SAMPLE = 20


def sample_key(decision_id: str, seed: int = 0) -> int:
    """A decision's place in the seeded sample order (a 63-bit hash of seed and id)."""
    digest = hashlib.sha256(f"{seed}\x1fsample\x1f{decision_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def sample_cutoff(decision_ids: Iterable[str], size: int | None, seed: int = 0) -> int | None:
    """The key cutoff that admits the ``size`` decisions with the smallest keys.

    ``size=None`` admits every decision; 0 admits none (returns None).

    Examples
    --------
    >>> ids = [f"d{i}" for i in range(10)]
    >>> cut = sample_cutoff(ids, 3)
    >>> sum(sample_key(i) <= cut for i in ids)
    3
    """
    if size is None:
        return ALL
    if size <= 0:
        return None
    keys = sorted(sample_key(str(d), seed) for d in decision_ids)
    if not keys:
        return None
    return keys[min(size, len(keys)) - 1]


def in_sample(decision_ids: Sequence[str], cutoff: int | None, seed: int = 0) -> np.ndarray:
    """Boolean mask of the decisions a cutoff admits."""
    if cutoff is None:
        return np.zeros(len(decision_ids), dtype=bool)
    return np.array([sample_key(str(d), seed) <= cutoff for d in decision_ids], dtype=bool)


@dataclass(frozen=True)
class QualitySetup:
    """What the quality step needs for one model version, with the ledger ids of its settings.

    Attributes
    ----------
    space : FeatureSpace
        How each feature is perturbed (training std per continuous feature).
    faithfulness : FaithfulnessSettings or None
        None turns PGI/PGU off.
    stability : StabilitySettings
    stability_cutoff, agreement_cutoff : int or None
        Sample cutoffs (see :func:`sample_cutoff`); None: no sample. For a model explained by
        the permutation explainer the caller passes the cutoff of the smaller sample
        (``PERMUTATION_STABILITY_SAMPLE``).
    second : Explainer or None
        The model-agnostic explainer compared with the production one on the agreement sample
        (None when the production explainer is itself the permutation explainer).
    settings_ids : dict
        Ledger ids of the recorded settings, keyed "faithfulness", "stability", "agreement".
    sample_seed : int
    """

    space: FeatureSpace
    faithfulness: FaithfulnessSettings | None = field(default_factory=FaithfulnessSettings)
    stability: StabilitySettings = field(default_factory=StabilitySettings)
    stability_cutoff: int | None = None
    agreement_cutoff: int | None = None
    second: Explainer | None = None
    settings_ids: dict[str, int] = field(default_factory=dict)
    sample_seed: int = 0
    top_k: int = TOP_K


FAITHFULNESS_COLUMNS = [
    "decision_id", "model_version_id", "perturbation", "explainer_id", "settings_id", "k",
    "pgi", "pgu", "pgi_random", "reasons_not_above_random", "run_id",
]  # fmt: skip
STABILITY_COLUMNS = [
    "decision_id", "model_version_id", "explainer_id", "settings_id", "ris", "ros", "n_draws",
    "n_same_class", "ris_skipped", "ros_skipped", "neighbourhood_std", "run_id",
]  # fmt: skip
AGREEMENT_COLUMNS = [
    "decision_id", "model_version_id", "comparison", "other", "other_model_version_id",
    "settings_id", "k", "feature_agreement", "rank_agreement", "sign_agreement",
    "signed_rank_agreement", "rank_correlation", "pairwise_rank_agreement",
    "reasons_feature_agreement", "reasons_rank_agreement", "top1_same", "run_id",
]  # fmt: skip


def empty_frames() -> dict[str, pd.DataFrame]:
    """The quality tables with no rows (a chunk replaces its rows even when it has none)."""
    return {
        "explanation_faithfulness": pd.DataFrame(columns=FAITHFULNESS_COLUMNS),
        "explanation_stability": pd.DataFrame(columns=STABILITY_COLUMNS),
        "explanation_agreement": pd.DataFrame(columns=AGREEMENT_COLUMNS),
    }


def faithfulness_frame(
    ids: np.ndarray,
    result: Any,
    *,
    model_version_id: int,
    explainer_id: int,
    settings_id: int | None,
    run_id: int,
) -> pd.DataFrame:
    """Two rows per decision, one per neighbourhood; the random control on OpenXAI's only."""
    flag = result.not_above_random
    normal = pd.DataFrame(
        {
            "decision_id": ids,
            "perturbation": NORMAL,
            "pgi": result.pgi,
            "pgu": result.pgu,
            "pgi_random": result.pgi_random,
            "reasons_not_above_random": pd.Series(
                np.where(np.isnan(flag), None, flag == 1), dtype=object
            ),
        }
    )
    frames = [normal]
    if not np.isnan(result.pgu_background).all():
        frames.append(
            pd.DataFrame(
                {
                    "decision_id": ids,
                    "perturbation": BACKGROUND,
                    "pgi": result.pgi_background,
                    "pgu": result.pgu_background,
                    "pgi_random": np.nan,
                    "reasons_not_above_random": pd.Series([None] * len(ids), dtype=object),
                }
            )
        )
    k = np.concatenate([result.k] * len(frames))
    return pd.concat(frames, ignore_index=True).assign(
        model_version_id=model_version_id,
        explainer_id=explainer_id,
        settings_id=settings_id,
        k=k,
        run_id=run_id,
    )[FAITHFULNESS_COLUMNS]


def agreement_frame(
    ids: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    reasons_a: np.ndarray,
    reasons_b: np.ndarray,
    *,
    comparison: str,
    other: str,
    model_version_id: int,
    run_id: int,
    settings_id: int | None,
    k: int = TOP_K,
    other_model_version_id: Any = None,
    signed: bool = True,
) -> pd.DataFrame:
    """Agreement rows: OpenXAI's six metrics on the vectors ``a`` and ``b`` (top k by |value|)
    and feature/rank agreement and top-1 of the disclosed reason lists."""
    metrics = agreement(a, b, k)
    fa, ra = reason_agreement(reasons_a, reasons_b)
    out = pd.DataFrame(
        {
            "decision_id": ids,
            "model_version_id": model_version_id,
            "comparison": comparison,
            "other": other,
            "other_model_version_id": other_model_version_id,
            "settings_id": settings_id,
            "k": min(k, a.shape[1]),
            **metrics,
            "reasons_feature_agreement": fa,
            "reasons_rank_agreement": ra,
            "top1_same": reasons_a[:, 0] == reasons_b[:, 0],
            "run_id": run_id,
        }
    )
    if not signed:  # the other side has no sign (responsiveness scores are >= 0)
        out["sign_agreement"] = np.nan
        out["signed_rank_agreement"] = np.nan
    return out[AGREEMENT_COLUMNS]


def responsive_top(mu: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """The responsiveness ranking as reason positions: top k by mu among mu > 0, else -1."""
    order = np.argsort(-mu, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(mu, order, axis=1)
    return np.where(top > 0, order, -1)


def quality_rows(
    denied: pd.DataFrame,
    model: DecisionModel,
    explainer: Explainer,
    values: np.ndarray,
    reason_index: np.ndarray,
    setup: QualitySetup,
    *,
    model_version_id: int,
    explainer_id: int,
    run_id: int,
    mu: np.ndarray | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, float], dict[str, float]]:
    """Faithfulness, stability and agreement rows for the denied decisions of a chunk.

    Parameters
    ----------
    denied : DataFrame
        Denied decisions (``decision_id`` and the schema's columns).
    values : ndarray of shape (n, d)
        Their attributions, as stored.
    reason_index : ndarray of shape (n, k)
        The reasons disclosed (-1 where fewer).
    mu : ndarray of shape (n, d), optional
        Responsiveness scores of the same decisions, for the SHAP-vs-responsiveness agreement.

    Returns
    -------
    frames : dict
        ``explanation_faithfulness``, ``explanation_stability``, ``explanation_agreement``.
    counts : dict
        Sums for the run summary (means are sums over counts).
    seconds : dict
        Time spent per metric.
    """
    frames = empty_frames()
    counts: dict[str, float] = {}
    seconds: dict[str, float] = {}
    ids = denied["decision_id"].astype(str).to_numpy()
    if len(ids) == 0:
        return frames, counts, seconds
    X = model.matrix(denied)
    sid = setup.settings_ids
    common = {"model_version_id": model_version_id, "run_id": run_id}
    if setup.faithfulness is not None:
        t = time.perf_counter()
        bg = explainer.background
        res = faithfulness(
            model.score,
            X,
            reason_index,
            setup.space,
            ids,
            setup.faithfulness,
            background=model.matrix(bg) if bg is not None else None,
        )
        frames["explanation_faithfulness"] = faithfulness_frame(
            ids, res, explainer_id=explainer_id, settings_id=sid.get("faithfulness"), **common
        )
        flag = res.not_above_random
        counts.update(
            faithfulness_scored=len(ids),
            pgi_defined=int(np.isfinite(res.pgi).sum()),
            pgi_sum=float(np.nansum(res.pgi)),
            pgu_sum=float(np.nansum(res.pgu)),
            pgi_random_sum=float(np.nansum(res.pgi_random)),
            pgi_background_sum=float(np.nansum(res.pgi_background)),
            pgu_background_sum=float(np.nansum(res.pgu_background)),
            reasons_not_above_random=int(np.nansum(flag)),
        )
        seconds["faithfulness"] = time.perf_counter() - t
    sampled = in_sample(ids, setup.stability_cutoff, setup.sample_seed)
    if sampled.any():
        t = time.perf_counter()

        def explain(M: np.ndarray) -> np.ndarray:
            return explainer.explain(model.frame(M)).values

        st = relative_stability(
            model.score,
            model.threshold,
            explain,
            X[sampled],
            values[sampled],
            ids[sampled],
            setup.space,
            setup.stability,
        )
        frames["explanation_stability"] = pd.DataFrame(
            {
                "decision_id": ids[sampled],
                "explainer_id": explainer_id,
                "settings_id": sid.get("stability"),
                "ris": st.ris,
                "ros": st.ros,
                "n_draws": setup.stability.n_draws,
                "n_same_class": st.n_same_class,
                "ris_skipped": st.ris_skipped,
                "ros_skipped": st.ros_skipped,
                "neighbourhood_std": setup.stability.std,
                **common,
            }
        )[STABILITY_COLUMNS]
        counts.update(
            stability_sampled=int(sampled.sum()),
            ris_defined=int(np.isfinite(st.ris).sum()),
            ros_defined=int(np.isfinite(st.ros).sum()),
            ris_sum=float(np.nansum(st.ris)),
            ros_sum=float(np.nansum(st.ros)),
            stability_neighbours=int(st.n_same_class.sum()),
            stability_ros_skipped=int(st.ros_skipped.sum()),
        )
        seconds["stability"] = time.perf_counter() - t
    parts = []
    t = time.perf_counter()
    if mu is not None:
        parts.append(
            agreement_frame(
                ids,
                -values,  # push towards denial, against responsiveness
                mu,
                reason_index,
                responsive_top(mu, setup.top_k),
                comparison=SHAP_VS_RESPONSIVENESS,
                other="responsiveness",
                settings_id=sid.get("agreement"),
                k=setup.top_k,
                signed=False,
                **common,
            )
        )
    chosen = in_sample(ids, setup.agreement_cutoff, setup.sample_seed)
    if setup.second is not None and chosen.any():
        other = setup.second.explain(denied.loc[chosen]).values
        idx_other, _ = top_reasons(other, setup.top_k)
        parts.append(
            agreement_frame(
                ids[chosen],
                values[chosen],
                other,
                reason_index[chosen],
                idx_other,
                comparison=EXPLAINER_VS_PERMUTATION,
                other=setup.second.config.explainer,
                settings_id=sid.get("agreement"),
                k=setup.top_k,
                **common,
            )
        )
        counts["explainer_agreement_sampled"] = int(chosen.sum())
    if parts:
        frames["explanation_agreement"] = pd.concat(parts, ignore_index=True)
        seconds["agreement"] = time.perf_counter() - t
    return frames, counts, seconds


def quality_metrics(counts: dict[str, float]) -> dict[str, float | None]:
    """Run-level means and shares of the explanation-quality metrics from summed counts."""

    def mean(total: str, n: str) -> float | None:
        d = counts.get(n, 0)
        return round(counts.get(total, 0.0) / d, 6) if d else None

    out = {
        "mean_pgi": mean("pgi_sum", "pgi_defined"),
        "mean_pgu": mean("pgu_sum", "faithfulness_scored"),
        "mean_pgi_random": mean("pgi_random_sum", "pgi_defined"),
        "mean_pgi_background": mean("pgi_background_sum", "pgi_defined"),
        "mean_pgu_background": mean("pgu_background_sum", "faithfulness_scored"),
        "share_reasons_not_above_random": mean("reasons_not_above_random", "pgi_defined"),
        "mean_ris": mean("ris_sum", "ris_defined"),
        "mean_ros": mean("ros_sum", "ros_defined"),
        "share_stability_neighbours_skipped_ros": mean(
            "stability_ros_skipped", "stability_neighbours"
        ),
    }
    return {k: v for k, v in out.items() if v is not None}


def add_quality(
    frames: dict[str, pd.DataFrame],
    counts: dict[str, Any],
    seconds: dict[str, float],
    denied: pd.DataFrame,
    model: DecisionModel,
    explainer: Explainer,
    values: np.ndarray,
    reason_index: np.ndarray,
    quality: QualitySetup,
    **ids: int,
) -> None:
    """The chunk pipeline's hook: :func:`quality_rows` for the denied decisions of a chunk,
    its rows, counts and seconds added to the chunk's. The responsiveness scores, when the
    recourse step put them in ``frames``, are compared with the reasons."""
    resp = frames.get("responsiveness")
    mu = None
    if resp is not None and len(resp) == len(denied) * len(model.schema):
        # By decision id, not position: the recourse step may order its rows otherwise.
        table = resp.pivot(index="decision_id", columns="feature", values="mu")
        order = denied[ID].astype(str)
        mu = table.reindex(index=order, columns=model.schema.names).to_numpy(dtype=float)
        # No feasible change at all (mu stored as NULL, its own state) ranks as no response.
        mu = np.nan_to_num(mu, nan=0.0)
    q_frames, q_counts, q_seconds = quality_rows(
        denied.reset_index(drop=True), model, explainer, values, reason_index, quality,
        mu=mu, **ids,
    )  # fmt: skip
    frames.update(q_frames)
    counts.update(q_counts)
    seconds.update(q_seconds)


def attribution_matrix(rows: pd.DataFrame | None, ids: np.ndarray, names: list[str]) -> np.ndarray:
    """(decision_id, feature, attribution) rows as an (n, d) matrix in ``ids`` order; NaN
    where the ledger holds none."""
    if rows is None or rows.empty:
        return np.full((len(ids), len(names)), np.nan)
    wide = rows.pivot_table(index="decision_id", columns="feature", values="attribution")
    return wide.reindex(index=ids, columns=names).to_numpy(dtype=float)


def night_samples(
    valid: pd.DataFrame, stability_sample: int | None, agreement_sample: int, seed: int = 0
) -> dict[str, Any]:
    """The night's seeded samples of denied decisions, as key cutoffs each chunk applies.

    The explainer-agreement sample is the head of the same order as the stability sample, so
    the decisions explained twice are also those whose stability is measured.
    """
    denied = valid.loc[valid[DECISION] == DENIED, ID].astype(str).tolist() if len(valid) else []
    perm = (
        None
        if stability_sample is None
        else min(stability_sample, PERMUTATION_STABILITY_SAMPLE)
    )
    return {
        "stability_cutoff": sample_cutoff(denied, stability_sample, seed),
        "stability_cutoff_permutation": sample_cutoff(denied, perm, seed),
        "stability_sample_permutation": perm,
        "agreement_cutoff": sample_cutoff(denied, agreement_sample, seed),
    }
