"""What a new model version would tell applicants denied under an older one: the redeploy
check's re-examination of recent denials, one chunk at a time, built from the same per-chunk
steps as the nightly pipeline (:mod:`governance.chunk`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from governance.chunk import ChunkResult, RecourseSetup, explanation_rows, recourse_rows
from governance.explain.compare import positions, reason_agreement, verdict_changes
from governance.explain.explainer import TOP_K, Explainer, top_reasons
from governance.explain.quality import (
    VERSION_VS_PREVIOUS,
    QualitySetup,
    add_quality,
    agreement_frame,
    attribution_matrix,
)
from governance.intake.decision_log import DECIDED_AT, DECISION, DENIED, ID
from governance.registry.model import DecisionModel


def comparison_rows(
    denied: pd.DataFrame,
    new_model: DecisionModel,
    explainer: Explainer,
    *,
    old: dict[str, pd.DataFrame],
    model_version_id: int,
    explainer_id: int,
    run_id: int,
    recourse: RecourseSetup | None = None,
    top_k: int = TOP_K,
    quality: QualitySetup | None = None,
) -> ChunkResult:
    """What a new model version would tell applicants denied under an older one.

    Parameters
    ----------
    denied : DataFrame
        Decisions (``decision_id``, ``model_version_id`` of the old version, the schema's
        feature columns).
    old : dict of DataFrame
        The ledger's rows for these decisions under their own version: ``reasons``
        (decision_id, rank, feature), ``checks`` (decision_id, status), ``responsiveness``
        (decision_id, feature, mu) and, for the agreement across versions, ``attributions``
        (decision_id, feature, attribution).
    quality : QualitySetup, optional
        Faithfulness of the new version's reasons (its samples are not used here) and the
        agreement of each applicant's explanation across the two versions.

    Returns
    -------
    ChunkResult
        Rows of ``explanations``, ``attributions``, ``reasons``, ``responsiveness``,
        ``recourse_checks`` and ``responsive_reasons`` under the new version (what it would
        say; nothing is issued), ``version_comparisons``, and with ``quality`` the quality
        tables' rows.
    """
    import time

    t0 = time.perf_counter()
    names = new_model.schema.names
    ids = denied[ID].astype(str).to_numpy()
    new_score = new_model.score(denied)
    still_denied = new_score < new_model.threshold
    # Explanations and reasons as the new version would give them (reasons only if it denies).
    as_new = denied.assign(**{DECISION: np.where(still_denied, DENIED, "approved")})
    expl = explainer.explain(denied)
    frames = explanation_rows(
        as_new,
        expl,
        model_version_id=model_version_id,
        explainer_id=explainer_id,
        run_id=run_id,
        top_k=top_k,
    )
    new_idx = np.full((len(ids), top_k), -1, dtype=np.int64)
    new_idx[still_denied], _ = top_reasons(expl.values[still_denied], top_k)
    old_idx = positions(names, old["reasons"], ids, top_k)
    fa, ra = reason_agreement(old_idx, new_idx)
    old_status = (
        old["checks"].set_index("decision_id")["status"].reindex(ids).to_numpy(dtype=object)
    )
    new_status = np.where(still_denied, None, "approved").astype(object)
    mu_change = np.full(len(ids), np.nan)
    counts = {"compared": len(ids), "now_approved": int((~still_denied).sum())}
    if recourse is not None and still_denied.any():
        sub = denied.loc[still_denied].reset_index(drop=True)
        extra, reason_mu, reason_state, more = recourse_rows(
            sub.assign(**{DECIDED_AT: denied.loc[still_denied, DECIDED_AT].to_numpy()}),
            new_model,
            recourse,
            attributions=expl.values[still_denied],
            reason_index=new_idx[still_denied],
            model_version_id=model_version_id,
            run_id=run_id,
            top_k=top_k,
        )
        given = new_idx[still_denied] >= 0
        frames["reasons"] = frames["reasons"].assign(
            mu=reason_mu[given], mu_state=reason_state[given]
        )
        extra.pop("issued_recourse")  # what v+1 would offer is not issued to anyone
        frames.update(extra)
        new_status[still_denied] = extra["recourse_checks"]["status"].to_numpy()
        if not old["responsiveness"].empty:
            old_mu = old["responsiveness"].pivot(
                index="decision_id", columns="feature", values="mu"
            )
            new_mu = extra["responsiveness"].pivot(
                index="decision_id", columns="feature", values="mu"
            )
            common = old_mu.index.intersection(new_mu.index)
            diff = (new_mu.loc[common, names] - old_mu.loc[common, names]).abs().mean(axis=1)
            mu_change = diff.reindex(ids).to_numpy(dtype=float)
        counts.update({f"new_{k}": v for k, v in more.items()})
    changes = verdict_changes(old_status, new_status)
    frames["version_comparisons"] = pd.DataFrame(
        {
            "decision_id": ids,
            "model_version_id": model_version_id,
            "old_model_version_id": denied["model_version_id"].to_numpy(),
            "run_id": run_id,
            "new_score": new_score,
            "reasons_changed": fa < 1.0,
            "feature_agreement": fa,
            "rank_agreement": ra,
            "old_status": old_status,
            "new_status": new_status,
            "became_fixed": changes["became_fixed"].to_numpy(),
            "gained_recourse": changes["gained_recourse"].to_numpy(),
            "mu_mean_abs_change": mu_change,
        }
    )
    counts.update(
        reasons_changed=int((fa < 1.0).sum()),
        became_fixed=int(changes["became_fixed"].sum()),
        gained_recourse=int(changes["gained_recourse"].sum()),
    )
    seconds = {"compare": time.perf_counter() - t0}
    if quality is not None:
        add_quality(
            frames, counts, seconds, denied.loc[still_denied], new_model, explainer,
            expl.values[still_denied], new_idx[still_denied], quality,
            model_version_id=model_version_id, explainer_id=explainer_id, run_id=run_id,
        )  # fmt: skip
        old_values = attribution_matrix(old.get("attributions"), ids, names)
        known = ~np.isnan(old_values).any(axis=1)
        if known.any():
            frames["explanation_agreement"] = pd.concat(
                [
                    frames["explanation_agreement"],
                    agreement_frame(
                        ids[known], old_values[known], expl.values[known], old_idx[known],
                        new_idx[known], comparison=VERSION_VS_PREVIOUS, other="model_version",
                        other_model_version_id=denied["model_version_id"].to_numpy()[known],
                        model_version_id=model_version_id, run_id=run_id, k=top_k,
                        settings_id=quality.settings_ids.get("agreement"),
                    ),
                ],
                ignore_index=True,
            )  # fmt: skip
        both = known & still_denied & (old_idx[:, 0] >= 0)
        counts.update(
            version_agreement_compared=int(both.sum()),
            top4_changed=int((fa[both] < 1.0).sum()),
            top1_changed=int((old_idx[both, 0] != new_idx[both, 0]).sum()),
        )
    return ChunkResult(frames, counts, seconds)
