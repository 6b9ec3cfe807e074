"""`govern models`: the registry's versions, their manifests, and registration by recipe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from govern_cli import render
from govern_cli.app import (
    AsJson,
    Db,
    Home,
    console,
    deployed_version_or_exit,
    env,
    models_app,
    registry,
    sessions,
)


@models_app.command("list")
def models_list(home: Home = None, db: Db = None, as_json: AsJson = False) -> None:
    """Registered models and versions, with deployment state (from the ledger) and test
    metrics."""
    from governance.store import deployments

    env(home, db)
    reg = registry(home)
    rows = []
    with sessions(db, home)() as session:
        states = {
            (name, version): deployments.version_state(session, name, version)
            for name in reg.names()
            for version in reg.versions(name)
        }
    for name in reg.names():
        for version in reg.versions(name):
            m = reg.manifest(name, version)
            state = states[(name, version)]
            rows.append(
                {
                    "model": name,
                    "version": version,
                    "deployed": state == deployments.DEPLOYED,
                    "state": state or "registered",
                    "created_at": m.created_at.isoformat(),
                    "estimator": m.recipe.estimator,
                    "sha256": m.artifact_sha256[:12],
                    **m.metrics,
                }
            )
    if as_json:
        console.print_json(json.dumps(rows))
        return
    import pandas as pd

    render.frame_table(console, pd.DataFrame(rows), title=f"Models in {reg.root}")


@models_app.command("show")
def models_show(
    name: str,
    version: Annotated[str | None, typer.Argument()] = None,
    home: Home = None,
    db: Db = None,
) -> None:
    """A version's manifest (default: the deployed version) and its deployment history."""
    from governance.store import deployments

    env(home, db)
    reg = registry(home)
    if version is None:
        reg.versions(name)  # a hostile name stops here, before it reaches the ledger
        version = deployed_version_or_exit(name, db, home)
    else:
        reg.manifest(name, version)
    with sessions(db, home)() as session:
        history = deployments.deployment_history(session, name, version)
    body = {**reg.manifest(name, version).to_dict(), "deployment_history": history}
    console.print_json(json.dumps(body, default=str))


@models_app.command("register")
def models_register(
    name: str,
    version: str,
    data: Annotated[Path, typer.Option(help="Training data (Parquet) with features and label.")],
    label: Annotated[str, typer.Option(help="Label column.")],
    estimator: Annotated[str, typer.Option(help="Estimator short name or sklearn class path.")],
    params: Annotated[str, typer.Option(help="Estimator parameters as JSON.")] = "{}",
    seed: Annotated[int, typer.Option(help="Random seed of the recipe.")] = 0,
    favourable: Annotated[str, typer.Option(help="Favourable label value.")] = "1",
    threshold: Annotated[float, typer.Option(help="Approve when P(favourable) >= this.")] = 0.5,
    features: Annotated[
        str | None,
        typer.Option(help="Comma-separated feature columns (default: all but label and ids)."),
    ] = None,
    action_set: Annotated[Path | None, typer.Option(help="Action set JSON to attach.")] = None,
    owned_data: Annotated[
        bool,
        typer.Option(
            "--owned-data",
            help="The data file is ours to rewrite when a subject is erased. Without it a file "
            "outside the data folder is left as it is and its owner gets an erasure notice.",
        ),
    ] = False,
    home: Home = None,
) -> None:
    """Train a version from a recipe on a Parquet file and register it (not deployed)."""
    from governance.registry.registration import register_from_data

    manifest = register_from_data(
        registry(home),
        name,
        version,
        data,
        label=label,
        estimator=estimator,
        params=json.loads(params),
        seed=seed,
        favourable=favourable,
        threshold=threshold,
        features=features.split(",") if features else None,
        action_set=action_set,
        owned=owned_data,
    )
    console.print(
        f"registered {manifest.name} {manifest.version} "
        f"(sha256 {manifest.artifact_sha256[:12]}…) metrics {manifest.metrics}"
    )


@models_app.command("import")
def models_import(
    name: str,
    version: str,
    artifact: Annotated[
        Path,
        typer.Option(help="Fitted model: a .skops file (or .pkl/.joblib with --trust-pickle)."),
    ],
    reference_data: Annotated[
        Path,
        typer.Option(
            "--reference-data",
            help="Rows the model can score (CSV or Parquet): dtypes, ranges and categories.",
        ),
    ],
    schema: Annotated[
        Path | None,
        typer.Option(help="JSON list of schema entries overriding what was inferred."),
    ] = None,
    training_data: Annotated[
        Path | None,
        typer.Option("--training-data", help="Rows the model was fitted on (CSV or Parquet)."),
    ] = None,
    label: Annotated[str | None, typer.Option(help="Label column of the training data.")] = None,
    sample_weight: Annotated[
        str | None, typer.Option("--sample-weight", help="Sample-weight column of the fit.")
    ] = None,
    id_column: Annotated[
        str | None, typer.Option("--id-column", help="Subject-id column of the training data.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random state of refits (default: the model's own).")
    ] = None,
    favourable: Annotated[str, typer.Option(help="Favourable (approval) class.")] = "1",
    threshold: Annotated[float, typer.Option(help="Approve when P(favourable) >= this.")] = 0.5,
    action_set: Annotated[Path | None, typer.Option(help="Action set JSON to attach.")] = None,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle",
            help="Load a pickle/joblib file, which can run code: only for files you trust.",
        ),
    ] = False,
    trust_type: Annotated[
        list[str] | None,
        typer.Option(
            "--trust-type", help="A skops type outside the allow-list that you trust (repeat)."
        ),
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Register a model fitted elsewhere (undeployed): its schema from the model and the
    reference sample, a check that it scores the sample, and its retrain recipe."""
    from governance.registry.importing import import_fitted

    report = import_fitted(
        registry(home),
        name,
        version,
        artifact,
        reference=reference_data,
        schema=schema,
        training=training_data,
        label=label,
        sample_weight=sample_weight,
        id_column=id_column,
        seed=seed,
        favourable=favourable,
        threshold=threshold,
        trust_pickle=trust_pickle,
        trusted_types=tuple(trust_type or ()),
        action_set=action_set,
    )
    if as_json:
        console.print_json(json.dumps(report.to_dict(), default=str))
        return
    render.import_report(console, report.to_dict())
