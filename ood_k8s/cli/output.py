"""``-o json|yaml|table``: the one way commands that print data print it (kubectl's convention)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_output(parser: argparse.ArgumentParser, formats: tuple[str, ...], default: str) -> None:
    """Add ``--output/-o`` with ``formats`` (``table`` first where the command lists rows)."""
    parser.add_argument("--output", "-o", choices=formats, default=default, help="output format")


def emit(data: Any, fmt: str, header: str = "") -> None:
    """Print ``data`` as JSON or YAML (``header``: a comment line for YAML)."""
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    import yaml

    sys.stdout.write(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
