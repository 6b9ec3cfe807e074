"""Explain one chunk of decisions and write its rows to the ledger in one transaction."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.orm import Session

from governance.chunk import RecourseSetup, drop_decisions
from governance.chunk import explain_chunk as explain_rows
from governance.explain.explainer import Explainer, is_tree_model
from governance.explain.explanation_stability import StabilitySettings, neighbourhood_std
from governance.explain.faithfulness import FaithfulnessSettings
from governance.explain.quality import QualitySetup
from governance.provenance import code_identity, result_settings
from governance.store import writes
from tasks import worker
from tasks.staging import StagedChunk, read_chunk
from tasks.worker import ModelRef

# Tables a nightly chunk writes for its decisions under their own version; a recomputed chunk
# replaces all of them, including those its settings no longer produce (recourse switched off).
# decisions and issued_recourse are upserted (rows hang off them) and carry provenance_id.
CHUNK_TABLES = (
    "explanations",
    "attributions",
    "reasons",
    "responsiveness",
    "recourse_checks",
    "responsive_reasons",
)

RECOURSE_OPTIONS = (
    "n_samples",
    "seed",
    "max_points",
    "semantics",
    "stability_k",
    "stability_sigma",
    "robust_tau",
)


def recourse_setup(
    session: Session, ref: ModelRef, model_version_id: int, options: dict[str, Any]
) -> RecourseSetup | None:
    """The version's action set, cost and settings for the recourse stages, with their ledger
    ids; None when ``options["recourse"]`` is off or the version has no action set."""
    inputs = worker.recourse_inputs(ref) if options.get("recourse", True) else None
    if inputs is None:
        return None
    action_set, cost, scale = inputs
    return RecourseSetup(
        action_set,
        cost,
        action_set_id=writes.ensure_action_set(
            session, model_version_id, action_set.to_dict(), action_set.sha256
        ),
        cost_model_id=writes.ensure_cost_model(session, cost.kind, cost.to_dict(), cost.sha256),
        scale=scale if options.get("stability", True) else None,
        **{k: options[k] for k in RECOURSE_OPTIONS if options.get(k) is not None},
    )


def quality_setup(
    session: Session,
    ref: ModelRef,
    model_version_id: int,
    explainer: Explainer,
    explainer_id: int,
    options: dict[str, Any],
) -> QualitySetup | None:
    """The explanation-quality step for a version, its settings recorded in the ledger; None
    when ``options["quality"]`` is off or the version has no training data to scale by.

    ``options``: ``faithfulness`` (bool, default True), ``stability_cutoff``,
    ``stability_cutoff_permutation`` and ``agreement_cutoff`` (sample cutoffs from
    :func:`governance.explain.quality.sample_cutoff`), ``stability_sample`` and
    ``agreement_sample`` (the sizes, recorded with the settings) and ``seed``.
    """
    space = worker.feature_space(ref) if options.get("quality", True) else None
    if space is None:
        return None
    seed = int(options.get("seed") or 0)
    faith = FaithfulnessSettings(seed=seed) if options.get("faithfulness", True) else None
    stab = StabilitySettings(std=neighbourhood_std(is_tree_model(explainer.model)), seed=seed)
    permutation = explainer.kind == "permutation"
    cutoff = options.get("stability_cutoff_permutation" if permutation else "stability_cutoff")
    second = None
    if options.get("agreement_cutoff") is not None and not permutation:
        second = worker.explainer(ref, kind="permutation")
    common = {"explainer_id": explainer_id, "background_sha256": explainer.background_sha256}
    ids = {}
    if faith is not None:
        ids["faithfulness"] = writes.ensure_quality_settings(
            session,
            model_version_id,
            "faithfulness",
            {**faith.to_dict(), "feature_space": space.to_dict()},
            **common,
        )
    if cutoff is not None:
        ids["stability"] = writes.ensure_quality_settings(
            session,
            model_version_id,
            "stability",
            {
                **stab.to_dict(),
                "feature_space": space.to_dict(),
                "daily_sample": options.get(
                    "stability_sample_permutation" if permutation else "stability_sample"
                ),
                "sample_seed": seed,
                "neighbours_explained_by": explainer.config.to_dict(),
            },
            **common,
        )
    ids["agreement"] = writes.ensure_quality_settings(
        session,
        model_version_id,
        "agreement",
        {
            "k": 4,
            "metrics": "OpenXAI FA, RA, SA, SRA (top k by |value|), RC, PRA; and FA, RA and "
            "top-1 of the disclosed reason lists",
            "explainer_vs_permutation": None if second is None else second.config.to_dict(),
            "explainer_sample": options.get("agreement_sample"),
            "sample_seed": seed,
            "responsiveness_vector": "-attribution (push towards denial) against mu",
        },
        **common,
    )
    return QualitySetup(
        space,
        faithfulness=faith,
        stability=stab,
        stability_cutoff=cutoff,
        agreement_cutoff=options.get("agreement_cutoff") if second is not None else None,
        second=second,
        settings_ids=ids,
        sample_seed=seed,
    )


@task(name="explain-chunk", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def explain_chunk(
    chunk: pd.DataFrame | StagedChunk,
    chunk_no: int,
    chunk_sha256: str,
    ref: ModelRef,
    model_version_id: int,
    run_id: int,
    db_url: str,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Attributions, reasons, responsiveness and recourse for ``chunk``, written to the ledger.

    ``options``: the run's settings, as :func:`governance.provenance.result_settings` lists
    and normalises them (``recourse`` and ``stability`` switches, ``n_samples``, ``seed``,
    ``max_points``, ``stability_k``, ``stability_sigma``, ``robust_tau``, the explainer's
    kind, background size and seed, ``top_k``; the explanation-quality switch, faithfulness
    and the night's sample sizes and cutoffs of :func:`quality_setup`; ``model``, the
    version's registered inputs). The chunk is configured from the normalised settings, which
    are recorded with the code version as the provenance of its rows. Safe to retry and to
    rerun: the chunk's rows are replaced as a whole, and the chunk is recorded as done in the
    same transaction. ``chunk`` is the rows, or where they are staged (the task then reads
    them itself).
    """
    settings = result_settings(options)
    t0 = time.perf_counter()
    if isinstance(chunk, StagedChunk):
        chunk = read_chunk(chunk)
    model = worker.model(ref)
    explainer = worker.explainer(
        ref,
        settings["explainer_background_size"],
        settings["explainer_seed"],
        kind=settings["explainer_kind"],
    )
    sessions = worker.sessions(db_url)
    with sessions.begin() as session:
        explainer_id = writes.ensure_explainer(
            session, model_version_id, explainer.config.to_dict()
        )
        setup = recourse_setup(session, ref, model_version_id, settings)
        quality = quality_setup(session, ref, model_version_id, explainer, explainer_id, settings)
        provenance_id = writes.ensure_provenance(session, settings, code_identity())
    t_load = time.perf_counter() - t0
    result = explain_rows(
        chunk,
        model,
        explainer,
        model_version_id=model_version_id,
        explainer_id=explainer_id,
        run_id=run_id,
        top_k=settings["top_k"],
        recourse=setup,
        quality=quality,
    )
    for name in ("decisions", "issued_recourse"):
        if name in result.frames:
            result.frames[name] = result.frames[name].assign(provenance_id=provenance_id)
    t1 = time.perf_counter()
    # Bound before the transaction: SQLite's single writer lock is held only for the writes.
    prepared = writes.prepare_frames(result.frames, worker.engine(db_url).dialect)
    with sessions.begin() as session:
        # Subjects erased since this chunk was pulled must not come back with it.
        writes.erasure_guard(session)
        decisions = result.frames["decisions"]
        erased = writes.erased_subjects(
            session, decisions["subject_id"].unique().tolist(), worker.salt_for(ref.registry)
        )
        gone = set(decisions.loc[decisions["subject_id"].isin(erased), "decision_id"])
        frames = drop_decisions(result.frames, gone) if gone else prepared
        writes.replace_rows(
            session,
            frames,
            decision_ids=[d for d in decisions["decision_id"].tolist() if d not in gone],
            model_version_id=model_version_id,
            clear=CHUNK_TABLES,
        )
        writes.record_chunk(
            session,
            run_id,
            chunk_no,
            chunk_sha256,
            len(chunk),
            result.counts,
            time.perf_counter() - t0,
            provenance_id=provenance_id,
        )
    seconds = {**result.seconds, "store": time.perf_counter() - t1, "load": t_load}
    return {"chunk_no": chunk_no, "counts": result.counts, "seconds": seconds}
