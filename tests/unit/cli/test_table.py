"""How the CLI lays out text: the width it picks, tables whose keys are never cut, prose."""

from __future__ import annotations

import io
import os

import pytest

from gateway.cli.table import entry_lines, output_width, table_lines, wrap

LONG = "GET /api/v1/projects/{project_id}/members/{member_id}/permissions/grants"
HEADER = ["ROUTE", "MODE", "REQ/S"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("environ", "stream", "width"),
    [
        ({}, io.StringIO(), None),  # a pipe or a file: no limit
        ({"COLUMNS": "80"}, io.StringIO(), 80),  # COLUMNS, even in a pipe
        ({"COLUMNS": "132"}, Terminal(), 132),
        ({"COLUMNS": "wide"}, io.StringIO(), None),  # not a width: as if unset
        ({"COLUMNS": "0"}, io.StringIO(), None),
    ],
)
def test_output_width_is_columns_else_the_terminals_else_none(environ, stream, width):
    assert output_width(environ, stream) == width


def test_output_width_of_a_terminal_is_its_width(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr("shutil.get_terminal_size", lambda fallback: os.terminal_size((100, 40)))
    assert output_width({}, Terminal()) == 100


def test_rows_that_fit_are_one_line_each_in_aligned_columns():
    lines = table_lines(HEADER, [["GET /a", "legacy", "1.00"], [LONG, "canary 5%", "12.50"]],
                        width=None, right={2})  # fmt: skip
    assert lines == [
        "ROUTE".ljust(len(LONG)) + "  MODE       REQ/S",
        "GET /a".ljust(len(LONG)) + "  legacy      1.00",
        f"{LONG}  canary 5%  12.50",
    ]
    assert table_lines(HEADER, [[LONG, "canary 5%", "12.50"]], width=200, right={2}) == [
        "ROUTE".ljust(len(LONG)) + "  MODE       REQ/S",
        f"{LONG}  canary 5%  12.50",
    ]


def test_a_key_too_long_for_the_width_stands_alone_and_its_cells_follow_in_their_columns():
    rows = [["GET /a", "legacy", "1.00"], [LONG, "canary 5%", "12.50"]]
    lines = table_lines(HEADER, rows, width=40, right={2})
    assert lines == [
        "ROUTE                   MODE       REQ/S",
        "GET /a                  legacy      1.00",
        LONG,
        "                        canary 5%  12.50",
    ]
    assert all(len(line) <= 40 for line in lines if line != LONG)


def test_a_row_with_nothing_beside_its_long_key_is_the_key_alone():
    assert table_lines(HEADER, [[LONG, "", ""]], width=30)[1:] == [LONG]


def test_entries_and_prose_wrap_at_words_only_when_there_is_a_width():
    assert entry_lines(LONG, "4.00 req/s", None) == [f"  {LONG}: 4.00 req/s"]
    assert entry_lines("GET /a", "4.00 req/s", 80) == ["  GET /a: 4.00 req/s"]
    assert entry_lines(LONG, "4.00 req/s, 5xx 0.0%, p95 -", 80) == [
        f"  {LONG}:",
        "    4.00 req/s, 5xx 0.0%, p95 -",
    ]
    text = "trust X-Forwarded-* headers from --forwarded-allow-ips " * 3
    assert wrap(text, None) == text
    wrapped = wrap(text, 30).splitlines()
    assert all(len(line) <= 30 for line in wrapped)
    # An option name is never split at its hyphens.
    assert sum(line.count("--forwarded-allow-ips") for line in wrapped) == 3
