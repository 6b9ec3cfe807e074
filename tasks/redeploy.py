"""Tasks of the redeploy check: re-validate issued recourse, retrain variants, compare verdicts.

Each task reads its own key range of the ledger (the flow hands out ranges, not rows) and
writes its results in one transaction.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE

from governance.chunk import drop_decisions
from governance.reexamine import comparison_rows
from governance.registry.model import DecisionModel
from governance.registry.model_registry import ModelRegistry, missing_training_data
from governance.retraining.revalidation import ValidityTally, revalidate
from governance.retraining.variants import fit_variant, forward_validity
from governance.store import bulk, writes
from governance.store.models import Base, Decision
from governance.store.queries import (
    old_results,
    open_recourse_slice,
    recent_denied,
    recourse_points,
)
from tasks import worker
from tasks.explain import quality_setup, recourse_setup
from tasks.worker import ModelRef

Bounds = tuple[Any, Any] | None


@task(name="fit-variant", cache_policy=NO_CACHE, retries=1)
def fit_variant_task(ref: ModelRef, index: int, base_seed: int = 0) -> Any:
    """One retrained variant of ``ref`` (own seed and bootstrap resample of its training data)."""
    reg = ModelRegistry(ref.registry)
    manifest = reg.manifest(ref.name, ref.version)
    if manifest.training_data is None:
        raise missing_training_data(manifest, "forward validity over retrained variants")
    train = reg.training_frame(ref.name, ref.version)
    return fit_variant(manifest.recipe, manifest.schema, train, index, base_seed=base_seed)


def _column(rows: pa.Table | pd.DataFrame, name: str) -> np.ndarray:
    col = rows[name]
    if isinstance(col, pa.ChunkedArray):
        return col.to_numpy(zero_copy_only=False)
    return col.to_numpy()


def _flags(rows: pa.Table | pd.DataFrame, name: str) -> np.ndarray:
    """A boolean column (SQLite returns 0/1; NULL is False)."""
    col = rows[name]
    if isinstance(col, pa.ChunkedArray):
        return col.cast(pa.bool_()).fill_null(False).to_numpy(zero_copy_only=False)
    return col.fillna(False).astype(bool).to_numpy()


def promised_points(
    model: DecisionModel, rows: pa.Table | pd.DataFrame, db_url: str
) -> tuple[np.ndarray, pd.DataFrame]:
    """The promised points of ``rows`` as a code matrix for ``model``, and the alternatives.

    ``rows`` is :func:`governance.store.queries.open_recourse_slice`'s Arrow table (or
    :func:`~governance.store.queries.open_recourse`'s frame). Points issued under a schema with
    the same layout are decoded from their binary copy, without a Python object per row;
    others (a new version with other features) are rebuilt from their JSON, like the
    alternatives.
    """
    d = len(model.schema)
    ids = _column(rows, "recourse_id")
    if isinstance(rows, pa.Table):
        X = bulk.binary_matrix(rows["x_codes"], d)
        same = _flags(rows, "same_layout") & ~np.isnan(X).all(axis=1)
    else:
        layout = model.schema.layout_sha256
        same = (rows["layout_sha256"] == layout).to_numpy() & rows["x_codes"].notna().to_numpy()
        X = np.full((len(rows), d), np.nan)
        if same.any():
            X[same] = np.frombuffer(b"".join(rows.loc[same, "x_codes"]), "<f8").reshape(-1, d)
    need = ids[~same | _flags(rows, "has_alternative")].tolist()
    alternatives = pd.DataFrame(columns=["recourse_id", *model.schema.names])
    if need:
        with worker.sessions(db_url)() as session:
            parsed = recourse_points(session, need).set_index("recourse_id")
        if (~same).any():
            rebuilt = pd.DataFrame(list(parsed.loc[ids[~same], "x_after"]))
            X[~same] = model.matrix(rebuilt.reindex(columns=model.schema.names))
        alt = parsed["alternative"].dropna()
        if len(alt):
            alternatives = (
                pd.DataFrame([a["x_after"] for a in alt])
                .reindex(columns=model.schema.names)
                .assign(recourse_id=alt.index.to_numpy())
            )
    return X, alternatives


def feature_values(model: DecisionModel, X: np.ndarray, name: str | None) -> list[Any] | None:
    """Values of feature ``name`` in code matrix ``X`` as people read them (category names),
    or None when the schema has no such feature."""
    if name is None or name not in model.schema.names:
        return None
    j = model.schema.names.index(name)
    spec = model.schema.features[j]
    col = X[:, j]
    if spec.dtype == "category":
        cats = np.asarray(spec.categories, dtype=object)
        return cats[col.astype(np.int64)].tolist()
    return col.tolist()


def revalidate_rows(
    rows: pa.Table | pd.DataFrame,
    ref: ModelRef,
    model_version_id: int,
    run_id: int,
    db_url: str,
    *,
    variants: list[Any] | None = None,
    segment: str | None = None,
    read_mark: tuple[Any, ...] | None = None,
    bounds: Bounds = None,
) -> dict[str, Any]:
    """Score issued recourse points under the new version and record a validity event each,
    in one transaction behind the erasure guard.

    ``read_mark`` is :func:`governance.store.writes.erasure_mark` taken before ``rows`` were
    read, ``bounds`` the recourse_id range they were read from. Returns the slice's
    :class:`ValidityTally` (over the rows written) and the seconds of each step.
    """
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    model = worker.model(ref)
    X, alternatives = promised_points(model, rows, db_url)
    seconds["decode"] = time.perf_counter() - t
    t = time.perf_counter()
    predict0 = model.stats.seconds
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
    ids = _column(rows, "recourse_id")
    alt_valid = pd.Series(None, index=ids, dtype=object)
    if len(alternatives):
        alt = revalidate(model, model.matrix(alternatives))
        alt_valid.loc[alternatives["recourse_id"].to_numpy()] = alt.valid.tolist()
    seconds["predict"] = model.stats.seconds - predict0
    seconds["score"] = time.perf_counter() - t
    t = time.perf_counter()
    validity = pd.DataFrame(
        {
            "recourse_id": ids,
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
    table = Base.metadata.tables["recourse_validity"]
    sessions = worker.sessions(db_url)
    prepared = bulk.prepare(table, validity, worker.engine(db_url).dialect)
    seconds["bind"] = time.perf_counter() - t
    t = time.perf_counter()
    with sessions.begin() as session:
        written = writes.replace_recourse_rows(
            session,
            table,
            prepared,
            model_version_id=model_version_id,
            read_mark=read_mark,
            within=bounds,
        )
    seconds["write"] = time.perf_counter() - t
    keep = np.isin(ids, written["recourse_id"].to_numpy()) if len(written) < len(ids) else None

    def kept(values: Any) -> Any:
        if values is None or keep is None:
            return values
        return np.asarray(values, dtype=object if isinstance(values, list) else None)[keep]

    segment_values = feature_values(model, X, segment)
    tally = ValidityTally.of(
        kept(checked.valid),
        kept(_column(rows, "kind")),
        kept(_column(rows, "changed")),
        segment=kept(segment_values),
        forward_validity=kept(fv),
        alternative_valid=kept(alt_valid.to_numpy()),
        stability=kept(_column(rows, "stability").astype(float)),
    )
    return {"tally": tally, "seconds": seconds}


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


@task(name="revalidate-slice", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def revalidate_slice(
    bounds: Bounds,
    window: dict[str, Any],
    ref: ModelRef,
    model_version_id: int,
    run_id: int,
    db_url: str,
    variants: list[Any] | None = None,
    segment: str | None = None,
) -> dict[str, Any]:
    """Read one recourse_id range of the open recourse from the ledger, re-validate it under
    ``ref`` and record a validity event per recourse (see :func:`revalidate_rows`).

    ``window``: ``model`` (name), ``since`` (issued at or after) and optionally
    ``exclude_decisions`` (decision ids whose recourse is left out).
    """
    t = time.perf_counter()
    model = worker.model(ref)
    with worker.sessions(db_url)() as session:
        mark = writes.erasure_mark(session)
    rows = open_recourse_slice(
        worker.engine(db_url),
        window["model"],
        model_version_id,
        _since(window["since"]),
        bounds,
        layout=model.schema.layout_sha256,
        exclude_decisions=window.get("exclude_decisions", ()),
    )
    read = time.perf_counter() - t
    out = revalidate_rows(
        rows, ref, model_version_id, run_id, db_url,
        variants=variants, segment=segment, read_mark=mark, bounds=bounds,
    )
    out["seconds"]["read"] = read
    return out


def _since(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def denied_frame(denied: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Denials read from the ledger with their stored features as columns, in ``names``."""
    feats = pd.DataFrame(list(denied["features"]), index=denied.index)
    return pd.concat(
        [denied.drop(columns="features").reset_index(drop=True),
         feats.reindex(columns=names).reset_index(drop=True)],
        axis=1,
    )


def compare_rows(
    denied: pd.DataFrame,
    ref: ModelRef,
    model_version_id: int,
    run_id: int,
    db_url: str,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Reasons, responsiveness and verdicts the new version would give recently denied
    applicants (``denied``: :func:`denied_frame`), how they differ from what the ledger
    holds, and (unless ``options["quality"]`` is off) the faithfulness of the new reasons and
    each applicant's explanation agreement across the two versions; written in one
    transaction behind the erasure guard."""
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


@task(name="compare-slice", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10])
def compare_slice(
    bounds: Bounds,
    window: dict[str, Any],
    ref: ModelRef,
    model_version_id: int,
    run_id: int,
    db_url: str,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read one decision-id range of the recent denials from the ledger and compare what the
    new version would tell them (see :func:`compare_rows`).

    ``window``: ``model``, ``since`` and optionally ``exclude_decisions``.
    """
    with worker.sessions(db_url)() as session:
        denied = recent_denied(
            session,
            window["model"],
            model_version_id,
            _since(window["since"]),
            bounds,
            window.get("exclude_decisions", ()),
        )
    if denied.empty:
        return {"counts": {}, "seconds": {}}
    frame = denied_frame(denied, worker.model(ref).schema.names)
    return compare_rows(frame, ref, model_version_id, run_id, db_url, options)
