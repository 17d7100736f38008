"""Valgrind's callgrind, counting only the measured part of a process.

    lib = compile_client_requests(tmp)               # the parent, once: a C compiler's job
    command = callgrind_command(out_dir) + [sys.executable, ...]
    counts = read_counts(out_dir)                    # [("N=200", 368_112_000), ...]

    requests = ClientRequests(lib)                   # the measured process
    requests.start()                                 # instructions from here on
    ...; requests.dump("N=200"); ...; requests.dump("N=1000")
    requests.stop()

A whole process under cachegrind counts its start-up (imports, building the app, warming
up: 3 G instructions for a 1.7 M request), so per-request figures had to come from two
processes that differ only in their request count, and the two processes' start-ups differ
by more than the figure's resolution. Callgrind started with `--instr-atstart=no` runs the
start-up uninstrumented (several times faster) and counts nothing until the process asks it
to, through Valgrind's client requests (`valgrind/callgrind.h`); each `dump` writes the count
since the last one. Client requests are machine-code sequences, so they come from a small C
library loaded with ctypes; outside Valgrind they do nothing.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["ClientRequests", "callgrind_command", "compile_client_requests", "read_counts"]

LIB_ENV = "BENCH_CLIENT_REQUESTS"  # the compiled library's path, for the measured process
SOURCE = """\
#include <valgrind/callgrind.h>
void bench_start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void bench_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
void bench_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
int bench_on_valgrind(void) { return RUNNING_ON_VALGRIND; }
"""
HEADER = Path("/usr/include/valgrind/callgrind.h")
_LABEL = re.compile(r"^desc: Trigger: Client Request: (.*)$", re.M)
_TOTALS = re.compile(r"^totals: (\d+)", re.M)


def compile_client_requests(directory: str | os.PathLike[str]) -> Path:
    """Build the client-request library into `directory`; a clear error if it cannot."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not HEADER.exists():
        raise SystemExit(
            "bench.instructions needs a C compiler and Valgrind's headers to count only the "
            f"measured requests; found compiler={compiler!r}, {HEADER} "
            f"{'present' if HEADER.exists() else 'missing'} (Debian: apt-get install gcc "
            "valgrind)"
        )
    source, library = Path(directory, "client_requests.c"), Path(directory, "client_requests.so")
    source.write_text(SOURCE)
    done = subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", "-o", str(library), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"compiling Valgrind's client requests failed:\n{done.stderr}")
    return library


def callgrind_command(out_dir: str | os.PathLike[str]) -> list[str]:
    """Valgrind's command line: callgrind, counting nothing until the process starts it."""
    return [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=yes",
        "--dump-instr=no", "--dump-line=no", f"--log-file={Path(out_dir, 'valgrind.log')}",
        f"--callgrind-out-file={Path(out_dir, 'callgrind.%p')}",
    ]  # fmt: skip


def read_counts(out_dir: str | os.PathLike[str]) -> list[tuple[str, int]]:
    """(label, instructions) of each client-request dump, in the order they were made."""
    dumps = []
    for path in Path(out_dir).glob("callgrind.*.*"):
        text = path.read_text(errors="replace")
        label, totals = _LABEL.search(text), _TOTALS.search(text)
        if label is not None and totals is not None:
            dumps.append((int(path.suffix[1:]), label.group(1), int(totals.group(1))))
    return [(label, count) for _, label, count in sorted(dumps)]


class ClientRequests:
    """Valgrind's client requests from Python, through the library `compile_client_requests`
    built (its path in BENCH_CLIENT_REQUESTS when not given)."""

    def __init__(self, library: str | os.PathLike[str] | None = None) -> None:
        path = library or os.environ.get(LIB_ENV)
        if not path:
            raise RuntimeError(f"expected the client-request library's path in {LIB_ENV}")
        self._lib = ctypes.CDLL(str(path))
        self._lib.bench_dump.argtypes = [ctypes.c_char_p]

    @property
    def on_valgrind(self) -> bool:
        return bool(self._lib.bench_on_valgrind())

    def start(self) -> None:
        self._lib.bench_start()

    def dump(self, label: str) -> None:
        self._lib.bench_dump(label.encode())

    def stop(self) -> None:
        self._lib.bench_stop()
