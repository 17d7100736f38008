"""`scripts/bench`: serve each case with uvicorn, load it with wrk, write what was measured.

scripts/bench                      # the full run (~22 min on 2 cores; the estimate is printed)
scripts/bench --quick              # a smoke run: a couple of seconds per case
scripts/bench --cases gateway_async,bare_async --profiles plain --rounds 4
scripts/bench --cases headline --reference-rounds 0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench import procstat, report, wrk
from bench.cases import CASES, DEADLOCK_CASES, PROFILES, Case, Profile, plan, scraped, select
from bench.database import DEFAULT_ADMIN_URL, connection_budget, throwaway_database
from gateway._compat import UTC

__all__ = ["main"]

RESULTS = Path(__file__).with_name("results")
METRIC_NAME = re.compile(r"loop|blocked|blocking")  # not "lag": it matches "flag"


# What a run costs besides wrk's own seconds on this 2-core machine, from the runs'
# `overhead_s` records: starting the server until it answers (uvicorn, or `gateway serve`
# whose supervisor builds and checks the app before it starts the workers), then either a
# kill, or for a scraped gateway run the wait for its backlog, the scrape and a clean stop.
START_S = {"uvicorn": 0.9, "uvicorn workers": 3.0, "gateway": 1.5, "gateway serve": 5.5}
SCRAPE_S = 2.0  # wait_idle + scrape + SIGTERM
KILL_S = 0.1
SEED_S = 2.0  # creating and seeding the throwaway database
TAIL_S = 0.25  # the measured window ends this long before wrk stops
WARMUP_S = 1.75  # + 8 s measured + TAIL_S = wrk's 10 s


@dataclass(frozen=True)
class Options:
    rounds: int
    reference_rounds: int
    duration: float
    warmup: float
    deadlock_duration: float
    connections: int
    threads: int
    timeout: float
    pool_size: int
    threadpool_size: int
    pool_timeout: float
    users: int
    quick: bool

    def app_env(self, url: str, workers: int = 1) -> dict[str, str]:
        """The settings every case gets (GATEWAY_* as the gateway reads them); with several
        workers each gets its share of the pool, so the database budget holds.
        The threadpool is per process either way."""
        return {
            "GATEWAY_DATABASE_URL": url,
            "GATEWAY_POOL_SIZE": str(self.pool_size // workers),
            "GATEWAY_MAX_OVERFLOW": "0",
            "GATEWAY_POOL_TIMEOUT": str(self.pool_timeout),
            "GATEWAY_THREADPOOL_SIZE": str(self.threadpool_size),
            "GATEWAY_LOG_LEVEL": "warning",
        }


class Progress:
    """One line per step on stderr, with elapsed time and the run counter."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()

    def say(self, text: str, *, end: str = "\n") -> None:
        elapsed = int(time.monotonic() - self.started)
        print(
            f"[{elapsed // 60:2d}:{elapsed % 60:02d}] {text}", end=end, file=sys.stderr, flush=True
        )

    def more(self, text: str) -> None:
        print(text, end="", file=sys.stderr, flush=True)


# -- one server --------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def server_argv(case: Case, port: int, python: str = sys.executable) -> list[str]:
    """The command serving `case`: uvicorn with the same flags for every case, with
    `--workers N` for several workers; a gateway with several workers as its users run it,
    `gateway serve --workers N` (metrics shared between workers, the supervisor's check).

    >>> server_argv(Case("c", "", "m:f", workers=2), 8000, "py")[-2:]
    ['--workers', '2']
    """
    if case.gateway and case.workers > 1:
        return [
            python,
            "-m",
            "gateway",
            "serve",
            case.app,
            "--factory",
            "--workers",
            str(case.workers),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]  # uvicorn's default --backlog is the 2048 given to the others
    argv = [python, "-m", "uvicorn", case.app, "--factory", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--log-level", "warning", "--no-access-log", "--backlog", "2048"]
    if case.workers > 1:
        argv += ["--workers", str(case.workers)]
    return argv


def server_kind(case: Case) -> str:
    """What START_S is keyed by: 'uvicorn', 'uvicorn workers', 'gateway' (under uvicorn)
    or 'gateway serve' (several workers)."""
    if case.gateway:
        return "gateway serve" if case.workers > 1 else "gateway"
    return "uvicorn workers" if case.workers > 1 else "uvicorn"


@contextmanager
def serve(
    case: Case, env: dict[str, str], ready_id: int = 1, *, graceful: bool = True
) -> Iterator[Server]:
    """The case's server (uvicorn, or `gateway serve` for a gateway with several workers).
    On exit: stopped with SIGTERM (its process group killed if that takes over 5 s), or
    with `graceful=False` killed at once; nothing is measured after the run."""
    from gateway.testing import free_port

    port = free_port()
    log = Path(tempfile.mkstemp(prefix=f"bench-{case.name}-", suffix=".log")[1])
    extra: dict[str, str] = {}
    with contextlib.ExitStack() as cleanup:
        if case.workers > 1 and case.gateway:
            # the workers' shared metrics files, removed with the server; no drain on stop
            metrics_dir = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bench-"))
            extra = {"PROMETHEUS_MULTIPROC_DIR": metrics_dir, "GATEWAY_SHUTDOWN_DRAIN_SECONDS": "0"}
        with log.open("wb") as sink:
            process = subprocess.Popen(
                server_argv(case, port),
                env={**os.environ, **env, **extra},
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the workers go with it
            )
        server = Server(process, f"http://127.0.0.1:{port}", log)
        try:
            _wait_ready(server, f"{server.url}{case.path}{ready_id}")
            if case.workers > 1:
                # one worker answered; the others are up once the tree stops importing (a
                # worker starting takes a core; an idle gateway worker a few hundredths)
                procstat.wait_idle(process.pid, below=0.2, limit=15.0)
            yield server
        finally:
            _stop(process, graceful=graceful)
            log.unlink(missing_ok=True)


def _wait_ready(server: Server, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"server exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            answer = httpx.get(url, timeout=5.0)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        if answer.status_code != 200:
            raise RuntimeError(
                f"GET {url} answered {answer.status_code}, expected 200: {answer.text[:300]}\n"
                f"{server.log_tail()}"
            )
        return
    raise TimeoutError(f"server not ready at {url} after {timeout:.0f} s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen[bytes], *, graceful: bool = True) -> None:
    if graceful and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        # a deadlocked server never finishes its requests; a worker may outlive its parent
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def scrape_gateway_metrics(url: str, prefix: str = "/_gateway") -> dict[str, float]:
    """Samples of the gateway's request count and its blocking / loop-lag metrics
    (gateway_requests, gateway_loop_blocked_seconds, gateway_loop_blocking_requests,
    gateway_event_loop_lag_seconds, ...; no buckets), from whichever path serves them."""
    from prometheus_client.parser import text_string_to_metric_families

    for path in ("/metrics", f"{prefix}/metrics"):
        try:
            # generous: a loop-blocking server answers after what wrk left in flight
            answer = httpx.get(url + path, timeout=30.0)
        except httpx.TransportError:
            return {}
        if answer.status_code != 200 or "# TYPE" not in answer.text:
            continue
        found: dict[str, float] = {}
        for family in text_string_to_metric_families(answer.text):
            if not (METRIC_NAME.search(family.name) or family.name == "gateway_requests"):
                continue
            for sample in family.samples:
                if sample.name.endswith(("_bucket", "_created")):
                    continue
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return found
    return {}


# -- one measured run ----------------------------------------------------------------------


def measure(
    case: Case,
    profile: Profile,
    number: int,
    options: Options,
    db_url: str,
    progress: Progress,
    *,
    duration: float,
    warmup: float,
) -> dict[str, Any]:
    """Start the case's server and load it with one wrk run: `warmup` seconds, then the
    measured window of `duration` seconds on the same connections; return the record."""
    env = {**options.app_env(db_url, case.workers), **case.env}
    scrape = scraped(case, number)
    started = time.monotonic()
    with serve(case, env, graceful=scrape) as server:
        up = time.monotonic() - started
        progress.more(f" up {up:.1f}s, warm-up {warmup:g}s")
        seconds = wrk_seconds(warmup, duration)
        launch = time.monotonic()
        # wrk runs whole seconds: the window is its last `duration` seconds but TAIL_S
        window = (launch + seconds - TAIL_S - duration, launch + seconds - TAIL_S)
        argv = wrk.command(
            server.url,
            case.path,
            connections=options.connections,
            threads=options.threads,
            duration=seconds,
            timeout=options.timeout,
            max_id=options.users,
            window=window,
        )
        with wrk.Running(argv) as running:
            _sleep_until(window[0])
            before = procstat.snapshot(server.pid, running.process.pid)
            progress.more(f", measuring {duration:g}s ...")
            _sleep_until(window[1])
            after = procstat.snapshot(server.pid, running.process.pid)
            result, _output = running.finish(seconds + 60, window)
        finished = time.monotonic()
        record: dict[str, Any] = {
            "profile": profile.name,
            "round": number,
            "case": case.name,
            "title": case.title,
            "app": case.app,
            "env": case.env,
            "workers": case.workers,
            # As run from the checkout's root: no path of this machine in what is kept.
            "server_command": _portable(shlex.join(server_argv(case, 0))),
            "wrk_command": _portable(shlex.join(argv)),
            "wrk": result.to_dict(),
            "cpu": after.minus(before),
        }
        if scrape and server.process.poll() is None:
            # the server finishes what wrk left in flight; then its counters are complete
            procstat.wait_idle(server.pid, below=0.05 * case.workers, limit=10.0)
            record["gateway_metrics"] = scrape_gateway_metrics(server.url)
        if result.error_count:
            record["server_log_tail"] = server.log_tail()
        left = time.monotonic()
    # what the run cost besides wrk: where START_S, SCRAPE_S and KILL_S come from
    record["overhead_s"] = {
        "start": round(up, 2),
        "scrape": round(left - finished, 2),
        "stop": round(time.monotonic() - left, 2),
    }
    return record


def wrk_seconds(warmup: float, duration: float) -> int:
    """wrk's --duration (whole seconds) holding `warmup` then `duration` seconds and TAIL_S.

    >>> wrk_seconds(2, 8), wrk_seconds(1, 2), wrk_seconds(0, 12)
    (11, 4, 13)
    """
    return math.ceil(warmup + duration + TAIL_S)


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _describe(record: dict[str, Any]) -> str:
    w, cpu = record["wrk"], record["cpu"]
    n = w["measured_requests"]
    per_request = 1000 * cpu["server_s"] / n if n else float("nan")
    errors = sum(w["errors"].values())
    return (
        f" {w['ok_per_second']:.0f} req/s, p50 {w['latency_ms']['p50']:.0f} ms, "
        f"p99 {w['latency_ms']['p99']:.0f} ms, errors {errors}, "
        f"unanswered at end {w['unanswered_at_end']}, "
        f"server {per_request:.2f} ms CPU/req"
    )


# -- the whole benchmark -------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Options]:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 s per case, 1 s warm-up, 2 headline rounds and 1 reference round",
    )
    parser.add_argument(
        "--rounds", type=int, help="rounds of the headline cases, alternating order (6)"
    )
    parser.add_argument(
        "--reference-rounds",
        type=int,
        help="rounds of the reference cases, the first ones of the headline rounds (2)",
    )
    parser.add_argument("--duration", type=float, help="measured seconds per run (8)")
    parser.add_argument(
        "--warmup",
        type=float,
        help=f"warm-up seconds per run ({WARMUP_S:g}: with the measured seconds and the "
        f"{TAIL_S:g} s tail, wrk's whole seconds)",
    )
    parser.add_argument(
        "--deadlock-duration",
        type=float,
        help="seconds for each deadlock reference (10, under the 30 s pool timeout)",
    )
    parser.add_argument("--connections", type=int, default=1000, help="concurrent connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="wrk: answers slower than this are errors (30)"
    )
    parser.add_argument("--pool", type=int, default=80, help="pool size, no overflow (80)")
    parser.add_argument(
        "--threadpool",
        type=int,
        help="threadpool size (default: --connections; see README, Benchmarks)",
    )
    parser.add_argument("--pool-timeout", type=float, default=30.0, help="pool checkout timeout")
    parser.add_argument("--users", type=int, default=10_000, help="seeded users (10000)")
    parser.add_argument(
        "--cases",
        help="comma list (headline and reference name those groups), default all: "
        + ",".join(c.name for c in CASES),
    )
    parser.add_argument("--profiles", help="comma list, default all: plain,delay5ms")
    parser.add_argument("--no-deadlock", action="store_true", help="skip the deadlock reference")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("GATEWAY_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="admin URL of the PostgreSQL server (a throwaway database is created there)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    rounds = args.rounds if args.rounds is not None else (2 if quick else 6)
    reference_rounds = args.reference_rounds
    if reference_rounds is None:
        reference_rounds = min(rounds, 1 if quick else 2)
    options = Options(
        rounds=rounds,
        reference_rounds=reference_rounds,
        duration=args.duration or (2.0 if quick else 8.0),
        warmup=args.warmup if args.warmup is not None else (1.0 if quick else WARMUP_S),
        deadlock_duration=args.deadlock_duration or (6.0 if quick else 10.0),
        connections=args.connections,
        threads=args.threads,
        timeout=args.timeout,
        pool_size=args.pool,
        threadpool_size=args.threadpool or args.connections,
        pool_timeout=args.pool_timeout,
        users=args.users,
        quick=quick,
    )
    return args, options


def _profiles(names: str | None) -> tuple[Profile, ...]:
    if not names:
        return PROFILES
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {p.name: p for p in PROFILES}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SystemExit(f"unknown profile(s) {', '.join(unknown)}; expected {', '.join(known)}")
    return tuple(known[n] for n in wanted)


def _preflight(args: argparse.Namespace, options: Options, cases: tuple[Case, ...]) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: install Debian's wrk (scripts/bench does, as root).")
    limit, used = connection_budget(args.postgres)
    # the pool (divided between workers), each gateway process's bookkeeping, the harness
    needed = options.pool_size + 10 + 5 * (max(c.workers for c in cases) - 1)
    if needed > limit - used:
        raise SystemExit(
            f"PostgreSQL allows max_connections={limit} and {used} are in use; --pool "
            f"{options.pool_size} needs about {needed}. Lower --pool or free connections."
        )


def estimate_seconds(
    planned: list[tuple[int, Case]], deadlock: list[Case], options: Options
) -> float:
    """How long a plan of (round, case) takes on a quiet machine: each run's wrk seconds,
    its server's start, then a kill or (scraped runs) the scrape and a clean stop; the
    deadlock references (round 1, no warm-up); seeding the database.

    >>> quick = Options(1, 1, 2.0, 1.0, 6.0, 1000, 2, 30.0, 80, 1000, 30.0, 10, True)
    >>> round(estimate_seconds([(1, Case("a", "", ""))], [], quick), 2)
    7.0
    """

    def one(number: int, case: Case, seconds: int) -> float:
        after = SCRAPE_S if scraped(case, number) else KILL_S
        return seconds + START_S[server_kind(case)] + after

    measured = wrk_seconds(options.warmup, options.duration)
    total = SEED_S + sum(one(n, c, measured) for n, c in planned)
    return total + sum(one(1, c, wrk_seconds(0.0, options.deadlock_duration)) for c in deadlock)


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: servers stopped, database dropped


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args, options = parse_args(argv)
    try:
        cases = select(args.cases)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    profiles = _profiles(args.profiles)
    _preflight(args, options, cases)
    planned = plan(cases, profiles, options.rounds, options.reference_rounds)
    deadlock = [] if args.no_deadlock else list(DEADLOCK_CASES)
    progress = Progress(len(planned) + len(deadlock))
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    machine = procstat.machine_info()
    estimate = estimate_seconds([(n, c) for _p, n, c in planned], deadlock, options)
    headline = sum(1 for _p, _n, c in planned if c.headline)
    progress.say(
        f"{len(planned)} runs ({headline} headline: {options.rounds} rounds; "
        f"{len(planned) - headline} reference: {options.reference_rounds} rounds) + "
        f"{len(deadlock)} deadlock runs, {options.connections} connections, "
        f"about {estimate / 60:.1f} min on a quiet machine; "
        f"load average {machine['loadavg_at_start']}"
    )
    runs: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    deadlock_runs: list[dict[str, Any]] = []
    with throwaway_database(args.postgres, users=options.users) as db:
        progress.say(f"database {db.name}: {options.users} users seeded")
        postgres_version = db.server_version()
        for profile in profiles:
            db.use_profile(profile)
            for number, case in [(n, c) for p, n, c in planned if p is profile]:
                progress.done += 1
                progress.say(
                    f"({progress.done}/{progress.total}) {profile.name} round {number} "
                    f"{case.name}:",
                    end="",
                )
                try:
                    record = measure(
                        case,
                        profile,
                        number,
                        options,
                        db.url,
                        progress,
                        duration=options.duration,
                        warmup=options.warmup,
                    )
                except Exception as exc:  # one broken case must not lose the whole run
                    failures.append(
                        {
                            "profile": profile.name,
                            "round": number,
                            "case": case.name,
                            "error": str(exc)[-2000:],
                        }
                    )
                    progress.more(f" FAILED: {str(exc).splitlines()[0][:200]}\n")
                    continue
                runs.append(record)
                progress.more(_describe(record) + "\n")
        if deadlock:
            plain = PROFILES[0]
            db.use_profile(plain)
            for case in deadlock:
                progress.done += 1
                progress.say(
                    f"({progress.done}/{progress.total}) deadlock reference {case.name}:", end=""
                )
                try:
                    record = measure(
                        case,
                        plain,
                        1,
                        options,
                        db.url,
                        progress,
                        duration=options.deadlock_duration,
                        warmup=0.0,
                    )
                except Exception as exc:
                    failures.append(
                        {
                            "profile": "deadlock",
                            "round": 1,
                            "case": case.name,
                            "error": str(exc)[-2000:],
                        }
                    )
                    progress.more(f" FAILED: {str(exc).splitlines()[0][:200]}\n")
                    continue
                record["verdict"] = report.deadlock_verdict(record)
                deadlock_runs.append(record)
                progress.more(_describe(record) + f" -> {record['verdict']}\n")
    machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result: dict[str, Any] = {
        "started": started,
        "command": "scripts/bench " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "quick": options.quick,
        "settings": {
            "rounds": options.rounds,
            "reference_rounds": options.reference_rounds,
            "headline_cases": [c.name for c in cases if c.headline],
            "duration_s": options.duration,
            "warmup_s": options.warmup,
            "deadlock_duration_s": options.deadlock_duration,
            "connections": options.connections,
            "threads": options.threads,
            "timeout_s": options.timeout,
            "pool_size": options.pool_size,
            "max_overflow": 0,
            "pool_timeout_s": options.pool_timeout,
            "threadpool_size": options.threadpool_size,
            "users": options.users,
        },
        "profiles": [{"name": p.name, "title": p.title, "delay_ms": p.delay_ms} for p in profiles],
        "machine": machine,
        # the estimate printed at the start against what the run took
        "timing": {
            "estimate_s": round(estimate),
            "elapsed_s": round(time.monotonic() - progress.started),
        },
        "versions": {**procstat.versions(), "postgresql": postgres_version},
        "summary": report.summarize(runs, [c.name for c in cases]),
        "comparisons": report.comparisons(runs),
        "runs": runs,
        "deadlock": deadlock_runs,
        "failures": failures,
    }
    paths = write_results(result, args.out, quick=options.quick)
    progress.say("wrote " + ", ".join(str(p) for p in paths))
    if result["comparisons"]:
        progress.say("same-round ratios: mean ± half its 95 % interval [low, high]")
    for line in report.summary_lines(result["comparisons"]):
        progress.say(line)
    if failures:
        progress.say(f"{len(failures)} run(s) failed; see 'failures' in the JSON")
    return 1 if failures else 0


def write_results(result: dict[str, Any], out: Path, *, quick: bool) -> list[Path]:
    """<stamp>.json/.md/.png under `out`, and latest.* for a full run (quick-* for --quick)."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = ("quick-" if quick else "") + result["started"].replace(":", "").replace("-", "")
    json_path, md_path, png_path = (out / f"{stamp}.{ext}" for ext in ("json", "md", "png"))
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    md_path.write_text(report.markdown(result))
    written = [json_path, md_path]
    if result["summary"]:
        report.write_chart(result, png_path)
        written.append(png_path)
    if not quick:
        for path in written:
            shutil.copyfile(path, out / f"latest{path.suffix}")
    return written


ROOT = Path(__file__).resolve().parents[1]


def _portable(command: str) -> str:
    """`command` as run from the checkout's root by `python`: without this machine's paths."""
    return command.replace(sys.executable, "python").replace(f"{ROOT}{os.sep}", "")


if __name__ == "__main__":
    sys.exit(main())
