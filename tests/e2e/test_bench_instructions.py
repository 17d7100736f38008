"""The instruction-count harness (bench.instructions, bench.valgrind): how it reads Valgrind,
what it counts, and one real process under callgrind. No instruction count is asserted:
only that the harness measures what it says (the figures are bench/RESULTS.md's)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.instructions import CASES, DEFAULT_REQUESTS, Case, marks, per_request, requests_of
from bench.valgrind import callgrind_command, compile_client_requests, read_counts

DUMP = """\
version: 1
creator: callgrind-3.19.0
desc: Trigger: Client Request: {label}
events: Ir
summary: {count}
totals: {count}
"""


def test_marks_are_every_first_up_to_last_or_just_the_two():
    assert marks(200, 1000) == [200, 400, 600, 800, 1000]
    assert marks(2, 12) == [2, 4, 6, 8, 10, 12]
    assert marks(100, 250) == [100, 250]
    with pytest.raises(ValueError, match="expected N2 > N1"):
        marks(1000, 200)


def test_per_request_is_the_difference_over_the_requests_between():
    assert per_request(1_000, 9_000, 200, 1000) == 10.0
    with pytest.raises(ValueError, match="expected N2 > N1, got N1=5, N2=5"):
        per_request(1, 2, 5, 5)


def test_a_case_of_its_own_counts_unless_requests_are_given():
    slow = next(c for c in CASES if c.name == "bare_def_1000")
    plain = next(c for c in CASES if c.name == "bare_async")
    default = argparse.Namespace(requests=None)
    assert requests_of(slow, default) == (50, 250)
    assert requests_of(plain, default) == DEFAULT_REQUESTS
    given = argparse.Namespace(requests=[10, 30])
    assert requests_of(slow, given) == requests_of(plain, given) == (10, 30)


def test_the_real_shapes_cases_send_the_token():
    shapes = [c for c in CASES if c.name.startswith("real_shapes_")]
    assert {c.name for c in shapes} == {"real_shapes_bare", "real_shapes_gateway"}
    for case in shapes:
        assert isinstance(case, Case) and case.path.startswith("/api/things")
        assert [name for name, _ in case.headers] == ["authorization"]


def test_dumps_are_read_in_the_order_they_were_made_and_the_rest_ignored(tmp_path: Path):
    for number, (label, count) in enumerate([("200", 5), ("400", 7), ("1000", 9)], start=1):
        (tmp_path / f"callgrind.123.{number}").write_text(DUMP.format(label=label, count=count))
    (tmp_path / "callgrind.123").write_text("desc: Trigger: Program termination\ntotals: 1\n")
    (tmp_path / "valgrind.log").write_text("==123== Collected : 21\n")
    assert read_counts(tmp_path) == [("200", 5), ("400", 7), ("1000", 9)]


def test_the_command_counts_nothing_until_asked(tmp_path: Path):
    command = callgrind_command(tmp_path)
    assert command[:3] == ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    assert f"--callgrind-out-file={tmp_path / 'callgrind.%p'}" in command


CHILD = """
import sys
from bench.valgrind import ClientRequests
requests = ClientRequests(sys.argv[1])
assert requests.on_valgrind
total = 0
for _ in range(50_000):  # before start: not counted
    total += 1
requests.start()
for step in (1, 2):
    for _ in range(20_000 * step):
        total += 1
    requests.dump(f"step {step}")
requests.stop()
"""


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_a_process_under_callgrind_counts_only_between_start_and_each_dump(tmp_path: Path):
    library = compile_client_requests(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run(
        [*callgrind_command(out), sys.executable, "-c", CHILD, str(library)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr + (out / "valgrind.log").read_text()
    counts = read_counts(out)
    assert [label for label, _ in counts] == ["step 1", "step 2"]
    first, second = (count for _, count in counts)
    # Each dump counts since the one before: the second step runs the loop twice as often.
    # (No figure is asserted: counts are for reading, the harness only has to count.)
    assert 0 < first < second
