"""`govern action-set`: draft an action set from data and a model, and check a written one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from govern_cli.app import AsJson, Home, app, console, registry

action_set_app = typer.Typer(
    help="Action sets: what applicants can change. Draft one from data, check one against a "
    "model.",
    no_args_is_help=True,
)
app.add_typer(action_set_app, name="action-set", rich_help_panel="Models and deployment")

ModelOption = Annotated[
    tuple[str, str],
    typer.Option("--model", metavar="NAME VERSION", help="The model version it is for."),
]


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


@action_set_app.command("draft")
def draft(
    model: ModelOption,
    data: Annotated[Path, typer.Option(help="Rows to infer bounds from (CSV or Parquet).")],
    out: Annotated[Path, typer.Option(help="Where to write the draft (JSON).")],
    immutable: Annotated[
        str | None, typer.Option(help="Comma-separated features no one can change.")
    ] = None,
    increase_only: Annotated[
        str | None, typer.Option("--increase-only", help="Features that can only increase.")
    ] = None,
    decrease_only: Annotated[
        str | None, typer.Option("--decrease-only", help="Features that can only decrease.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Write a draft: bounds, steps and directions inferred from the data and the model's
    schema, each inferred choice noted with 'REVIEW:'."""
    from governance.exceptions import ActionSetError
    from governance.recourse.drafting import draft_action_set, load_rows

    name, version = model
    if out.exists() and not force:
        raise ActionSetError(f"{out} exists; pass --force to overwrite it")
    schema = registry(home).manifest(name, version).schema
    rows = load_rows(data, schema)
    aset = draft_action_set(
        rows, schema, immutable=_names(immutable), increase_only=_names(increase_only),
        decrease_only=_names(decrease_only), name=f"{name}-{version}", source=data.name,
    )
    aset.to_json(out)
    review = [el.name for el in aset if "REVIEW:" in el.note]
    if as_json:
        print(json.dumps({"path": str(out), "features": len(aset), "review": review}))
        return
    console.print(
        f"wrote {out}: {len(aset)} features, {len(review)} with choices to review "
        f"(notes beginning 'REVIEW:'); then: govern action-set check {out} --model {name} "
        f"{version}"
    )


@action_set_app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help="The action set file (JSON).")],
    model: ModelOption,
    data: Annotated[
        Path | None, typer.Option(help="Rows that must satisfy the set (CSV or Parquet).")
    ] = None,
    attach: Annotated[
        bool,
        typer.Option(help="Attach it to the model version when it passes (once per version)."),
    ] = False,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Validate an action set against a model and print what each feature allows; exit 3
    when rows of --data break it."""
    from governance.recourse.drafting import check_action_set, load_rows, read_action_set

    name, version = model
    reg = registry(home)
    schema = reg.manifest(name, version).schema
    aset = read_action_set(path)
    rows = load_rows(data, schema) if data is not None else None
    result = check_action_set(aset, schema, rows)
    broken = result.violations is not None and len(result.violations) > 0
    attached = False
    if attach and not broken:
        reg.attach_action_set(name, version, path)
        attached = True
    if as_json:
        print(json.dumps({**result.to_dict(), "attached": attached}, default=str))
    else:
        _render(result, path, attached)
    if broken:
        raise typer.Exit(3)


def _render(result, path: Path, attached: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Action set {escape(str(path))}")
    for col in ("feature", "allows", "links"):
        table.add_column(col, overflow="fold")
    for r in result.features.itertuples(index=False):
        mark = " *" if r.review else ""
        table.add_row(escape(r.feature) + mark, escape(r.allows),
                      str(r.constraints) if r.constraints else "")
    console.print(table)
    for sentence in result.constraints:
        console.print(f"  constraint: {escape(sentence)}")
    if result.pending_review:
        console.print(
            f"  * still marked REVIEW: {escape(', '.join(result.pending_review))}"
        )
    if result.violations is not None:
        n = len(result.violations)
        console.print(f"  observed rows breaking it: {n:,}" if n else "  every row satisfies it")
    if attached:
        console.print("  attached to the model version")
