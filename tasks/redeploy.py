"""Tasks of the redeploy check: re-validate issued recourse, retrain variants, compare verdicts."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from governance.chunk import drop_decisions
from governance.reexamine import comparison_rows
from governance.registry.model import DecisionModel
from governance.registry.model_registry import ModelRegistry, missing_training_data
from governance.retraining.revalidation import revalidate
from governance.retraining.variants import fit_variant, forward_validity
from governance.store import writes
from governance.store.models import Base, Decision
from governance.store.queries import old_results, recourse_points
from tasks import worker
from tasks.explain import quality_setup, recourse_setup
from tasks.worker import ModelRef


@task(name="fit-variant", cache_policy=NO_CACHE, retries=1)
def fit_variant_task(ref: ModelRef, index: int, base_seed: int = 0) -> Any:
    """One retrained variant of ``ref`` (own seed and bootstrap resample of its training data)."""
    reg = ModelRegistry(ref.registry)
    manifest = reg.manifest(ref.name, ref.version)
    if manifest.training_data is None:
        raise missing_training_data(manifest, "forward validity over retrained variants")
    train = reg.training_frame(ref.name, ref.version)
    return fit_variant(manifest.recipe, manifest.schema, train, index, base_seed=base_seed)


def promised_points(
    model: DecisionModel, chunk: pd.DataFrame, db_url: str
) -> tuple[np.ndarray, pd.DataFrame]:
    """The promised points of ``chunk`` as a code matrix for ``model``, and the alternatives.

    Points issued under a schema with the same layout are read from their binary copy; others
    (a new version with other features) are rebuilt from their JSON, like the alternatives.
    """
    d = len(model.schema)
    layout = model.schema.layout_sha256
    same = (chunk["layout_sha256"] == layout).to_numpy() & chunk["x_codes"].notna().to_numpy()
    X = np.empty((len(chunk), d))
    if same.any():
        blob = b"".join(chunk.loc[same, "x_codes"])
        X[same] = np.frombuffer(blob, dtype="<f8").reshape(-1, d)
    need = chunk.loc[~same | chunk["has_alternative"].astype(bool), "recourse_id"].tolist()
    alternatives = pd.DataFrame(columns=["recourse_id", *model.schema.names])
    if need:
        with worker.sessions(db_url)() as session:
            parsed = recourse_points(session, need).set_index("recourse_id")
        if (~same).any():
            rebuilt = pd.DataFrame(list(parsed.loc[chunk.loc[~same, "recourse_id"], "x_after"]))
            X[~same] = model.matrix(rebuilt.reindex(columns=model.schema.names))
        alt = parsed["alternative"].dropna()
        if len(alt):
            alternatives = (
                pd.DataFrame([a["x_after"] for a in alt])
                .reindex(columns=model.schema.names)
                .assign(recourse_id=alt.index.to_numpy())
            )
    return X, alternatives


def _feature_values(model: DecisionModel, X: np.ndarray, name: str | None) -> list[Any] | None:
    if name is None or name not in model.schema.names:
        return None
    j = model.schema.names.index(name)
    spec = model.schema.features[j]
    col = X[:, j]
    if spec.dtype == "category":
        cats = np.asarray(spec.categories, dtype=object)
        return cats[col.astype(np.int64)].tolist()
    return col.tolist()


@task(name="revalidate-chunk", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def revalidate_chunk(
    chunk: pd.DataFrame,
    ref: ModelRef,
    model_version_id: int,
    run_id: int,
    db_url: str,
    variants: list[Any] | None = None,
    segment: str | None = None,
) -> pd.DataFrame:
    """Score issued recourse points under the new version and record a validity event each.

    ``chunk`` holds recourse_id, x_codes, layout_sha256 and has_alternative (from
    :func:`governance.store.queries.open_recourse`). Returns recourse_id, valid, score,
    forward_validity, alternative_valid and the ``segment`` feature's value, for the summary.
    """
    model = worker.model(ref)
    X, alternatives = promised_points(model, chunk, db_url)
    checked = revalidate(model, X)
    fv = None
    if variants:
        fv = forward_validity(
            [
                DecisionModel(v, model.schema, model.favourable_class, model.threshold,
                              category_input=model.category_input)
                for v in variants
            ],
            X,
        )
    alt_valid = pd.Series(None, index=chunk["recourse_id"].to_numpy(), dtype=object)
    if len(alternatives):
        alt = revalidate(model, model.matrix(alternatives))
        alt_valid.loc[alternatives["recourse_id"].to_numpy()] = alt.valid.tolist()
    rows = pd.DataFrame(
        {
            "recourse_id": chunk["recourse_id"].to_numpy(),
            "model_version_id": model_version_id,
            "run_id": run_id,
            "valid": checked.valid,
            "score": checked.score,
            "checked_at": writes.now(),
            "forward_validity": fv if fv is not None else np.nan,
            "n_variants": len(variants) if variants else None,
            "alternative_valid": alt_valid.to_numpy(),
        }
    )
    with worker.sessions(db_url).begin() as session:
        rows = writes.replace_recourse_rows(
            session,
            Base.metadata.tables["recourse_validity"],
            rows,
            model_version_id=model_version_id,
        )
    out = rows[["recourse_id", "valid", "score", "forward_validity", "alternative_valid"]]
    seg = _feature_values(model, X, segment)
    return out.assign(segment=seg) if seg is not None else out


@task(name="score-points-chunk", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def score_points_chunk(
    chunk: pd.DataFrame, ref: ModelRef, db_url: str, estimator: Any = None
) -> pd.DataFrame:
    """Whether ``ref`` (or ``estimator``, fitted on ``ref``'s schema, e.g. a control refit)
    approves each issued recourse point in ``chunk``; nothing is written.

    Returns recourse_id, score and valid.
    """
    model = worker.model(ref)
    if estimator is not None:
        model = DecisionModel(estimator, model.schema, model.favourable_class, model.threshold)
    X, _ = promised_points(model, chunk.assign(has_alternative=False), db_url)
    checked = revalidate(model, X)
    return pd.DataFrame(
        {"recourse_id": chunk["recourse_id"].to_numpy(), "score": checked.score,
         "valid": checked.valid}
    )


@task(name="compare-chunk", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def compare_chunk(
    denied: pd.DataFrame,
    ref: ModelRef,
    model_version_id: int,
    run_id: int,
    db_url: str,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Reasons, responsiveness and verdicts the new version would give recently denied
    applicants, how they differ from what the ledger holds, and (unless ``options["quality"]``
    is off) the faithfulness of the new reasons and each applicant's explanation agreement
    across the two versions."""
    options = options or {}
    t0 = time.perf_counter()
    model = worker.model(ref)
    explainer = worker.explainer(ref, kind=options.get("explainer_kind") or "auto")
    sessions = worker.sessions(db_url)
    with sessions.begin() as session:
        old = old_results(session, denied["decision_id"].tolist())
        explainer_id = writes.ensure_explainer(
            session, model_version_id, explainer.config.to_dict()
        )
        setup = recourse_setup(session, ref, model_version_id, options)
        # No daily samples here: the comparison re-explains denials, it samples nothing.
        sampled = {"stability_cutoff", "stability_cutoff_permutation", "agreement_cutoff"}
        quality = quality_setup(
            session,
            ref,
            model_version_id,
            explainer,
            explainer_id,
            {k: v for k, v in options.items() if k not in sampled},
        )
    result = comparison_rows(
        denied,
        model,
        explainer,
        old=old,
        model_version_id=model_version_id,
        explainer_id=explainer_id,
        run_id=run_id,
        recourse=setup,
        quality=quality,
    )
    with sessions.begin() as session:
        # Denials purged since they were read are not written back.
        writes.erasure_guard(session)
        ids = denied["decision_id"].astype(str).tolist()
        gone = set(ids) - writes.existing(session, Decision.decision_id, ids)
        writes.replace_rows(
            session,
            drop_decisions(result.frames, gone),
            decision_ids=[d for d in ids if d not in gone],
            model_version_id=model_version_id,
        )
    return {
        "counts": result.counts,
        "seconds": {**result.seconds, "total": time.perf_counter() - t0},
    }
