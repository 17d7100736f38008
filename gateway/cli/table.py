"""How the CLI lays out text: route keys are never cut, piped output is never wrapped.

    width = output_width()     # COLUMNS if set, else the terminal's, else None (piped)
    for line in table_lines(["ROUTE", "MODE"], [["GET /users", "legacy"]], width=width):
        typer.echo(line)
    typer.echo(wrap(LEGEND, width))

The first column of a table is the route key. With no width (a pipe), or when every row
fits, a row is one line. Otherwise a key too long for the room left beside the other
columns goes on a line of its own and its row's other cells on the next line, in their
columns, as --help puts the help of a long option under it.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Container, Mapping, Sequence
from typing import TextIO

__all__ = ["entry_lines", "output_width", "table_lines", "wrap"]

GAP = "  "


def output_width(
    environ: Mapping[str, str] = os.environ, stream: TextIO | None = None
) -> int | None:
    """COLUMNS when it is set to a whole number, else the terminal's width when `stream`
    (default: stdout) is one, else None: a pipe or a file gets lines as long as they are."""
    columns = environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    stream = sys.stdout if stream is None else stream
    if stream.isatty():
        return shutil.get_terminal_size((80, 24)).columns
    return None


def table_lines(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None,
    right: Container[int] = (),
) -> list[str]:
    """The header and the rows as lines; columns whose index is in `right` are right-aligned.

    table_lines(["ROUTE", "REQ/S"], [["GET /a", "1.00"]], width=80, right={1})
    # ["ROUTE   REQ/S", "GET /a   1.00"]
    """
    cells = [list(header), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    beside = sum(widths[1:]) + len(GAP) * (len(widths) - 1)
    key_width = widths[0]
    if width is not None and key_width + beside > width:
        key_width = max(len(header[0]), width - beside)
    lines = []
    for row in cells:
        others = GAP.join(
            cell.rjust(size) if i in right else cell.ljust(size)
            for i, (cell, size) in enumerate(zip(row, widths, strict=True))
            if i > 0
        )
        if len(row[0]) > key_width:
            lines += [row[0], " " * key_width + GAP + others]
        else:
            lines.append(row[0].ljust(key_width) + GAP + others)
    return [line.rstrip() for line in lines if line.strip()]


def entry_lines(key: str, detail: str, width: int | None) -> list[str]:
    """'  KEY: detail' as one line when it fits in `width`, else the detail under the key."""
    line = f"  {key}: {detail}"
    if width is None or len(line) <= width:
        return [line]
    return [f"  {key}:", *_wrapped(detail, width, indent="    ")]


def wrap(text: str, width: int | None) -> str:
    """Prose wrapped at word boundaries to `width`; as it is when there is no width."""
    return text if width is None else "\n".join(_wrapped(text, width))


def _wrapped(text: str, width: int, indent: str = "") -> list[str]:
    # Neither a long word (a key, a URL) nor an option name at its hyphens is ever split.
    return textwrap.wrap(
        text,
        width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
