"""Where the CPU went: seconds of the server, PostgreSQL, wrk and the whole machine, and
what machine this is. Readers of /proc (Linux); `parse_stat_times`, `parse_stat_parent`
and `descendants` are pure.

The server's seconds are its whole process tree's: with several workers, the supervisor
that `snapshot` is given serves nothing and its worker children do the work.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

__all__ = [
    "CpuSnapshot",
    "descendants",
    "machine_info",
    "parse_stat_parent",
    "parse_stat_times",
    "snapshot",
    "tree_seconds",
    "versions",
    "wait_idle",
]

TICK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def parse_stat_times(stat: str) -> float:
    """utime + stime in seconds from a /proc/<pid>/stat line (the name may hold spaces)."""
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / TICK


def parse_stat_parent(stat: str) -> int:
    """The parent pid (field 4) from a /proc/<pid>/stat line."""
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def descendants(parents: Mapping[int, int], root: int) -> set[int]:
    """Every pid below `root` in a {pid: parent pid} table (children, theirs, ...).

    >>> sorted(descendants({2: 1, 3: 2, 4: 1, 5: 9}, 1))
    [2, 3, 4]
    """
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def process_seconds(pid: int) -> float:
    return parse_stat_times((PROC / str(pid) / "stat").read_text())


def _stats() -> dict[int, str]:
    stats: dict[int, str] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
    return stats


def process_tree(pid: int) -> set[int]:
    """`pid` and every live process below it."""
    parents = {p: parse_stat_parent(stat) for p, stat in _stats().items()}
    return {pid} | descendants(parents, pid)


def tree_seconds(pid: int) -> float:
    """CPU seconds of `pid` and every live process below it (uvicorn's worker children).

    A worker that exited in between loses its seconds, as a PostgreSQL backend does."""
    stats = _stats()
    parents = {p: parse_stat_parent(stat) for p, stat in stats.items()}
    tree = {pid} | descendants(parents, pid)
    if pid not in stats:
        raise ProcessLookupError(f"process {pid} is gone: expected the server to be running")
    return sum(parse_stat_times(stats[p]) for p in tree if p in stats)


def wait_idle(pid: int, *, below: float = 0.05, window: float = 0.5, limit: float = 30.0) -> float:
    """Wait until process `pid` and its children use less than `below` of a core over
    `window` seconds (at most `limit` seconds); return the seconds waited. A server keeps
    working on requests whose clients have gone, so a warm-up leaves a backlog behind it."""
    started = time.monotonic()
    last = tree_seconds(pid)
    while time.monotonic() - started < limit:
        time.sleep(window)
        now = tree_seconds(pid)
        if now - last < below * window:
            break
        last = now
    return time.monotonic() - started


def postgres_seconds() -> dict[int, float]:
    """CPU seconds of every process named postgres (the server and its backends)."""
    found: dict[int, float] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            found[int(entry.name)] = parse_stat_times((entry / "stat").read_text())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def steal_seconds() -> float:
    """CPU seconds the hypervisor gave to other guests since boot (steal, from /proc/stat)."""
    return int((PROC / "stat").read_text().split("\n", 1)[0].split()[8]) / TICK


def machine_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user
    return (total - idle) / TICK, total / TICK


@dataclass
class CpuSnapshot:
    """CPU counters at one moment; `minus` gives what happened in between."""

    server: float
    postgres: dict[int, float]
    load: float
    busy: float
    total: float
    extra: dict[str, float] = field(default_factory=dict)

    def minus(self, before: CpuSnapshot) -> dict[str, float]:
        # Backends that started in between count from zero; ones that exited are lost.
        postgres = sum(v - before.postgres.get(pid, 0.0) for pid, v in self.postgres.items())
        return {
            "server_s": round(self.server - before.server, 3),
            "postgres_s": round(postgres, 3),
            "wrk_s": round(self.load - before.load, 3),
            "machine_busy_s": round(self.busy - before.busy, 3),
            "machine_total_s": round(self.total - before.total, 3),
        }


def snapshot(server_pid: int, load_pid: int) -> CpuSnapshot:
    """Counters now: the server's (its process tree), the load generator's (wrk),
    PostgreSQL's, the machine's."""
    busy, total = machine_seconds()
    return CpuSnapshot(
        server=tree_seconds(server_pid),
        postgres=postgres_seconds(),
        load=process_seconds(load_pid),
        busy=busy,
        total=total,
    )


def machine_info() -> dict[str, object]:
    """nproc, CPU model, memory, kernel, load: enough to tell two machines apart."""
    model = "?"
    for line in (PROC / "cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kb = 0
    for line in (PROC / "meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "sqlalchemy",
    "psycopg",
    "asyncpg",
    "anyio",
    "prometheus-client",
    "prometheus-fastapi-instrumentator",
)


def versions() -> dict[str, str]:
    """Versions of the packages under test, of wrk and of git HEAD."""
    found: dict[str, str] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["wrk"] = _first_line(["wrk", "--version"])
    head = _first_line(["git", "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "status", "--porcelain", "--untracked-files=no"])
    found["git"] = head + ("+dirty" if dirty else "")
    return found


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else ""
