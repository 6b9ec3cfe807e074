"""`govern models`: the registry's versions, their manifests, codebooks, and registration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from govern_cli import render
from govern_cli.app import (
    AsJson,
    Home,
    console,
    emit_json,
    fail,
    models_app,
    registry,
    ui,
)
from governance.exceptions import GovernanceError

# governance.registry.training.ESTIMATORS, spelled out: importing the registry costs seconds
# (scikit-learn) on every `govern` start; a test keeps the two lists equal.
ESTIMATOR_NAMES = (
    "logistic_regression",
    "hist_gradient_boosting",
    "gradient_boosting",
    "random_forest",
    "decision_tree",
    "mlp",
    "xgboost",
    "lightgbm",
)


@models_app.command("list")
def models_list(home: Home = None, as_json: AsJson = False) -> None:
    """Registered models and versions: deployed (yes/no), created, estimator, test metrics."""
    reg = registry(home)
    rows = []
    for name in reg.names():
        deployed = reg.deployments(name)
        current = deployed[-1]["version"] if deployed else None
        for version in reg.versions(name):
            m = reg.manifest(name, version)
            rows.append(
                {
                    "model": name,
                    "version": version,
                    "deployed": version == current,
                    "created_at": m.created_at,
                    "estimator": m.recipe.estimator,
                    "sha256": m.artifact_sha256,
                    **m.metrics,
                }
            )
    if as_json:
        emit_json(rows)
        return
    render.models_table(console, rows, reg.root)


@models_app.command("show")
def models_show(
    name: str,
    version: Annotated[str | None, typer.Argument(help="Default: the deployed version.")] = None,
    home: Home = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Accepted for uniformity: the manifest is JSON anyway.")
    ] = False,
) -> None:
    """A version's manifest as JSON (default: the deployed version), with its codebook."""
    from governance.registry.codebook import load_codebook

    reg = registry(home)
    version = version or reg.deployed_version(name)
    manifest = reg.manifest(name, version).to_dict()
    book = load_codebook(reg, name, version)
    emit_json({**manifest, "codebook": book.to_dict() if book else None})


@models_app.command("codebook")
def models_codebook(
    name: str,
    version: str,
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="JSON ({features: {name: label}, values: {name: {code: label}}}) or CSV "
            "with columns column, code, meaning (an empty code names the feature).",
        ),
    ],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Attach a codebook to a registered version: display names for its features and labels
    for its category codes, used wherever a reason, value or action is shown. It changes what
    is displayed, never what is computed."""
    from governance.registry.codebook import read_codebook, save_codebook

    reg = registry(home)
    book = read_codebook(file)
    path = save_codebook(reg, name, version, book)
    if as_json:
        emit_json({"model": name, "version": version, "path": path, **book.to_dict()})
        return
    labelled = sum(len(v) for v in book.values.values())
    console.print(
        f"codebook of {name} {version}: {len(book.features)} feature name(s), "
        f"{labelled} category label(s) -> {path}"
    )


@models_app.command("register")
def models_register(
    name: str,
    version: str,
    data: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, help="Training data (Parquet): features, label."),
    ],
    label: Annotated[str, typer.Option(help="Label column.")],
    estimator: Annotated[
        str,
        typer.Option(
            help=f"Estimator: one of {', '.join(ESTIMATOR_NAMES)}, or a scikit-learn, XGBoost or "
            "LightGBM class path (e.g. sklearn.svm.SVC)."
        ),
    ],
    params: Annotated[str, typer.Option(help="Estimator parameters as JSON.")] = "{}",
    seed: Annotated[int, typer.Option(help="Random seed of the recipe.")] = 0,
    favourable: Annotated[str, typer.Option(help="Favourable label value.")] = "1",
    threshold: Annotated[
        float,
        typer.Option(help="Approve when P(favourable) >= this; strictly between 0 and 1."),
    ] = 0.5,
    features: Annotated[
        str | None,
        typer.Option(help="Comma-separated feature columns (default: all but label and ids)."),
    ] = None,
    action_set: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Action set JSON to attach.")
    ] = None,
    codebook: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Codebook to attach (see `govern models codebook`).",
        ),
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Train a version from a recipe on a Parquet file and register it (not deployed)."""
    from governance.registry.codebook import read_codebook, save_codebook
    from governance.registry.registration import register_from_data

    if not 0.0 < threshold < 1.0:
        fail(f"--threshold {threshold} must lie strictly between 0 and 1")
    try:
        parsed = json.loads(params)
    except ValueError as exc:
        fail(f"--params is not JSON: {exc}")
    if not isinstance(parsed, dict):
        fail("--params must be a JSON object, e.g. '{\"max_iter\": 200}'")
    book = read_codebook(codebook) if codebook else None
    if book is not None:  # refused before training, not after: registration cannot be undone
        import pyarrow.parquet as pq

        try:
            book.check(features.split(",") if features else pq.read_schema(data).names)
        except (OSError, ValueError) as exc:
            if not isinstance(exc, GovernanceError):
                fail(f"training data {data} is not a readable Parquet file ({exc})")
            raise
    reg = registry(home, must_exist=False)
    with ui(as_json).status(f"Training {name} {version}"):
        manifest = register_from_data(
            reg,
            name,
            version,
            data,
            label=label,
            estimator=estimator,
            params=parsed,
            seed=seed,
            favourable=favourable,
            threshold=threshold,
            features=features.split(",") if features else None,
            action_set=action_set,
        )
    if book is not None:
        save_codebook(reg, name, version, book)
    if as_json:
        emit_json(manifest.to_dict())
        return
    metrics = ", ".join(f"{k} {v}" for k, v in manifest.metrics.items())
    console.print(
        f"registered {manifest.name} {manifest.version} "
        f"(sha256 {manifest.artifact_sha256[:12]}…); holdout: {metrics}"
    )
