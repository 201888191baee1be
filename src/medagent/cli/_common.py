"""What every command module of the CLI shares: the --json flag, JSON output, clean failures."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn

import typer

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: bad input or arguments)."""
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)
