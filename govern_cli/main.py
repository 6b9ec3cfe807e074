"""`govern`: the command line over the governance flows and the ledger.

Each command parses its options, calls one flow or library function and prints a table; errors
the core raises on purpose are printed as one line with a non-zero exit, never a traceback.
The commands live in modules by what they do; importing them registers them with ``app``.
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import Any

import typer

# Importing the command modules registers their commands; `govern --help` shows their panels in
# this order.
# isort: off
from govern_cli import nightly, review, explainers, models, logs, action_sets, deploy, deletion, serve, notices  # noqa: F401, E501
# isort: on
from govern_cli.app import app, err
from govern_cli.output import EXIT_BAD_INPUT, EXIT_INTERNAL, CliError, exit_code


def main() -> None:
    """Entry point: run the app, turning expected failures into one-line errors and the exit
    codes of govern_cli/output.py."""
    from rich.markup import escape

    from governance.exceptions import GovernanceError

    # A failed flow reaches the user once, as the line below (or, for an unexpected error, as
    # its traceback); Prefect's console copies, each with a traceback, would bury it. Set in
    # the environment so local Dask workers inherit it; Prefect's API handler still records
    # every log, and an operator's own setting wins. Dask's shutdown chatter ("Worker process
    # still alive after 4.0 seconds, killing") is not for the person at the terminal either.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    try:
        command = typer.main.get_command(app)
        polish_help(command)
        # Without standalone mode click returns, rather than raises, a typer.Exit's code.
        code = command(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except (GovernanceError, CliError) as exc:
        err.print(f"[bold red]error:[/] {escape(one_line(exc))}")
        sys.exit(exit_code(exc))
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - last line of defence for a clean message
        import sqlalchemy as sa

        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # click's usage errors
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            err.print(f"[bold red]error:[/] {escape(one_line(exc.format_message()))}{hint}")
            sys.exit(EXIT_BAD_INPUT)

        if isinstance(exc, sa.exc.OperationalError):
            err.print(
                f"[bold red]error:[/] the store could not be reached: {escape(one_line(exc.orig))}"
            )
            sys.exit(EXIT_BAD_INPUT)
        if os.environ.get("GOVERNANCE_DEBUG"):
            raise
        # A bug, not bad input: one line for the user, the traceback on request.
        err.print(
            f"[bold red]internal error:[/] {escape(type(exc).__name__)}: {escape(one_line(exc))}"
            " (set GOVERNANCE_DEBUG=1 for the traceback)"
        )
        sys.exit(EXIT_INTERNAL)


def one_line(exc: BaseException | None) -> str:
    """An error's text on one line: its first line, which names the problem."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def polish_help(command: Any) -> None:
    """Help that reads well at any width: docstrings' hard line breaks reflowed (Rich would
    keep them, breaking sentences mid-line), text never read as Rich markup, and no ``<bool>``
    type shown beside flags that take no value."""
    from rich.markup import escape

    if command.help:
        command.help = escape(reflow(command.help))
    if command.short_help:
        command.short_help = escape(reflow(command.short_help))
    # Typer carries its own copy of click, so parameters are told apart by what they have.
    helper = command.get_help_option(typer.Context(command))
    for param in [*command.params, *([helper] if helper else [])]:
        if getattr(param, "help", None):
            param.help = escape(reflow(param.help))
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        polish_help(sub)


def reflow(text: str) -> str:
    """Paragraphs (separated by blank lines) each on one line; the terminal wraps them."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


if __name__ == "__main__":
    main()
