"""`govern`: the command line over the governance flows and the ledger.

Each command parses its options, calls one flow or library function and prints a table; errors
the core raises on purpose are printed as one line with a non-zero exit, never a traceback.
The commands live in modules by what they do; importing them registers them with ``app``.
"""

from __future__ import annotations

import os
import sys

import typer

# Importing the command modules registers their commands; `govern --help` shows their panels in
# this order.
# isort: off
from govern_cli import nightly, review, explainers, models, logs, action_sets, deploy, deletion, serve, notices  # noqa: F401, E501
# isort: on
from govern_cli.app import app, err


def main() -> None:
    """Entry point: run the app, turning expected failures into one-line errors."""
    from rich.markup import escape

    from governance.exceptions import GovernanceError

    # A failed flow reaches the user once, as the line below (or, for an unexpected error, as
    # its traceback); Prefect's console copies, each with a traceback, would bury it. Set in
    # the environment so local Dask workers inherit it; Prefect's API handler still records
    # every log, and an operator's own setting wins.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    try:
        # Without standalone mode click returns, rather than raises, a typer.Exit's code.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except GovernanceError as exc:
        err.print(f"[bold red]error:[/] {escape(one_line(exc))}")
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.BadParameter as exc:  # usage errors: click's own message, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - last line of defence for a clean message
        import sqlalchemy as sa

        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # other click usage errors
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, sa.exc.OperationalError):
            err.print(
                f"[bold red]error:[/] the store could not be reached: {escape(one_line(exc.orig))}"
            )
            sys.exit(2)
        if os.environ.get("GOVERNANCE_DEBUG"):
            raise
        # A bug, not bad input: one line for the user, the traceback on request.
        err.print(
            f"[bold red]internal error:[/] {escape(type(exc).__name__)}: {escape(one_line(exc))}"
            " (set GOVERNANCE_DEBUG=1 for the traceback)"
        )
        sys.exit(1)


def one_line(exc: BaseException | None) -> str:
    """An error's text on one line: its first line, which names the problem."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


if __name__ == "__main__":
    main()
