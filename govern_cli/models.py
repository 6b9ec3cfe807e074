"""`govern models`: the registry's versions, their manifests, and registration by recipe."""

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
    models_app,
    registry,
)


@models_app.command("list")
def models_list(home: Home = None, as_json: AsJson = False) -> None:
    """Registered models and versions, with deployment state and test metrics."""
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
    name: str, version: Annotated[str | None, typer.Argument()] = None, home: Home = None
) -> None:
    """A version's manifest (default: the deployed version)."""
    reg = registry(home)
    version = version or reg.deployed_version(name)
    console.print_json(json.dumps(reg.manifest(name, version).to_dict(), default=str))


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
    )
    console.print(
        f"registered {manifest.name} {manifest.version} "
        f"(sha256 {manifest.artifact_sha256[:12]}…) metrics {manifest.metrics}"
    )
