"""The load generator: wrk's command line, and its results parsed from the Lua `done()` line.

wrk counts as errors: connect, read and write socket errors, timeouts (answers that came
later than --timeout; they are left out of the latency percentiles) and `status` (responses
with status >= 400). Requests still unanswered when wrk stops are not errors to wrk; the
Lua script counts them (`unanswered`), which is how a hung server shows.
Everything here but `run` is pure.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ERROR_KINDS", "LUA_SCRIPT", "WrkResult", "command", "parse_output", "run"]

LUA_SCRIPT = Path(__file__).with_name("random_ids.lua")
MARKER = "BENCH_JSON "
ERROR_KINDS = ("connect", "read", "write", "status", "timeout")


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: counts, duration in seconds, latencies in milliseconds."""

    requests: int
    duration: float
    errors: dict[str, int]
    latency_ms: dict[str, float]
    sent: int = 0

    @property
    def unanswered(self) -> int:
        """Requests sent but not answered when wrk stopped: about one per connection is
        the normal cut-off; all of them, with nothing answered, is a hung server."""
        return max(self.sent - self.requests, 0)

    @property
    def ok(self) -> int:
        """Responses below status 400 (the only ones that count as served)."""
        return max(self.requests - self.errors["status"], 0)

    @property
    def ok_per_second(self) -> float:
        return self.ok / self.duration if self.duration > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "duration_s": round(self.duration, 3),
            "ok_per_second": round(self.ok_per_second, 1),
            "unanswered_at_end": self.unanswered,
            "errors": dict(self.errors),
            "latency_ms": dict(self.latency_ms),
        }


def parse_output(text: str) -> WrkResult:
    """Read the `BENCH_JSON {...}` line that random_ids.lua prints at the end of a run."""
    lines = [line for line in text.splitlines() if line.startswith(MARKER)]
    if not lines:
        tail = text.strip()[-500:] or "(no output)"
        raise ValueError(f"wrk printed no {MARKER.strip()} line (is -s {LUA_SCRIPT} set?): {tail}")
    try:
        raw = json.loads(lines[-1][len(MARKER) :])
    except json.JSONDecodeError as exc:
        raise ValueError(f"wrk's {MARKER.strip()} line is not JSON ({exc}): {lines[-1]}") from None
    missing = [k for k in ("requests", "duration_us", "errors", "latency_us") if k not in raw]
    if missing:
        raise ValueError(f"wrk's result lacks {', '.join(missing)}: {lines[-1]}")
    errors = {kind: int(raw["errors"].get(kind, 0)) for kind in ERROR_KINDS}
    latency = {k: round(float(v) / 1000.0, 3) for k, v in raw["latency_us"].items()}
    return WrkResult(
        int(raw["requests"]), raw["duration_us"] / 1e6, errors, latency, int(raw.get("sent", 0))
    )


def command(
    url: str,
    path: str,
    *,
    connections: int,
    duration: float,
    threads: int = 2,
    timeout: float = 10.0,
    max_id: int = 10_000,
) -> list[str]:
    """The wrk command line for `connections` connections hitting `url + path + <random id>`."""
    if connections < threads:
        raise ValueError(f"connections={connections} must be at least threads={threads}")
    return [
        "wrk",
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(round(duration), 1)}s",
        f"--timeout={max(round(timeout), 1)}s",
        f"--script={LUA_SCRIPT}",
        url,
        "--",
        path,
        str(max_id),
    ]


def run(argv: list[str], *, limit: float) -> tuple[WrkResult, str]:
    """Run wrk to completion (killed after `limit` seconds); return the result and its output."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=limit, check=False)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {output.strip()[-500:]}")
    return parse_output(output), output
