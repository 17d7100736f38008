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

__all__ = [
    "ERROR_KINDS",
    "LUA_SCRIPT",
    "Running",
    "WrkResult",
    "command",
    "parse_output",
    "run",
]

LUA_SCRIPT = Path(__file__).with_name("random_ids.lua")
MARKER = "BENCH_JSON "
ERROR_KINDS = ("connect", "read", "write", "status", "timeout")


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: counts, seconds, latencies in milliseconds.

    `requests`, `errors` and the latencies cover the whole run (warm-up included); the
    window counts cover the measured window only, when the script was given one.
    """

    requests: int
    duration: float
    errors: dict[str, int]
    latency_ms: dict[str, float]
    sent: int = 0
    window_requests: int | None = None
    window_status_errors: int = 0
    window_seconds: float | None = None
    stalled: float | None = None  # seconds from the last answer to the window's end

    @property
    def unanswered(self) -> int:
        """Requests sent but not answered when wrk stopped: about one per connection is
        the normal cut-off; all of them, with nothing answered, is a hung server."""
        return max(self.sent - self.requests, 0)

    @property
    def measured_seconds(self) -> float:
        if self.window_seconds is not None and self.window_requests is not None:
            return self.window_seconds
        return self.duration

    @property
    def measured_requests(self) -> int:
        """Answers of any status in the measured window (the whole run without a window)."""
        return self.window_requests if self.window_requests is not None else self.requests

    @property
    def ok(self) -> int:
        """Answers below status 400 in the measured window (the only ones that count)."""
        if self.window_requests is not None:
            return max(self.window_requests - self.window_status_errors, 0)
        return max(self.requests - self.errors["status"], 0)

    @property
    def ok_per_second(self) -> float:
        seconds = self.measured_seconds or 0.0
        return self.ok / seconds if seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "measured_requests": self.measured_requests,
            "duration_s": round(self.measured_seconds or 0.0, 3),
            "wrk_run_s": round(self.duration, 3),
            "ok_per_second": round(self.ok_per_second, 1),
            "unanswered_at_end": self.unanswered,
            "stalled_s": self.stalled,
            "errors": dict(self.errors),
            "latency_ms": dict(self.latency_ms),
        }


def parse_output(text: str, window: tuple[float, float] | None = None) -> WrkResult:
    """Read the `BENCH_JSON {...}` line that random_ids.lua prints at the end of a run;
    `window` is the (start, end) the script was given, if any."""
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
    counted = raw.get("window") if window else None
    if window is None or counted is None:
        return WrkResult(
            int(raw["requests"]), raw["duration_us"] / 1e6, errors, latency, int(raw.get("sent", 0))
        )
    start, end = window
    last = float(counted.get("last_answer", 0.0))
    return WrkResult(
        int(raw["requests"]),
        raw["duration_us"] / 1e6,
        errors,
        latency,
        int(raw.get("sent", 0)),
        int(counted["requests"]),
        int(counted["status_errors"]),
        end - start,
        round(max(end - max(last, start), 0.0), 3),
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
    window: tuple[float, float] | None = None,
) -> list[str]:
    """The wrk command line for `connections` connections hitting `url + path + <random id>`.

    `window` is (start, end) in time.monotonic() seconds: only answers inside it count.
    """
    if connections < threads:
        raise ValueError(f"connections={connections} must be at least threads={threads}")
    extra = [f"{window[0]:.6f}", f"{window[1]:.6f}"] if window else []
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
        *extra,
    ]


def run(argv: list[str], *, limit: float) -> tuple[WrkResult, str]:
    """Run wrk to completion (killed after `limit` seconds); return the result and its output."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=limit, check=False)
    return _result(done.returncode, done.stdout + done.stderr, None)


def _result(
    returncode: int, output: str, window: tuple[float, float] | None
) -> tuple[WrkResult, str]:
    if returncode != 0:
        raise RuntimeError(f"wrk exited with {returncode}: {output.strip()[-500:]}")
    return parse_output(output, window), output


class Running:
    """wrk started in the background, for callers that sample other counters meanwhile.

    with Running(argv) as running: ...; result, output = running.finish(limit, window)
    """

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def finish(self, limit: float, window: tuple[float, float] | None) -> tuple[WrkResult, str]:
        output, _ = self.process.communicate(timeout=limit)
        return _result(self.process.returncode, output, window)

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()
