"""Flag propagation: from a flip to the last of N worker processes serving the new mode.

    python -m bench.propagation                       # 200 flips, 4 workers, PostgreSQL
    python -m bench.propagation --load 1000 --duration 60 --flips 100   # flips under wrk load
    python -m bench.propagation --via main            # PUT on the main port, as before

It serves bench.apps.probe:create_app with `gateway serve --workers N` on a
throwaway PostgreSQL database, with GATEWAY_ADMIN_PORT set (which the supervisor serves,
see gateway.serve.relay). Every process appends a line to <probe dir>/<pid>.log with the
wall-clock time at which it applied a change to its in-memory mode table (which the next
request reads: a worker takes the supervisor's board at its next request), so the latency
of a flip is max(applied time over workers) - (time just before the flip was sent). Same
host, same clock.

--via says how the operator flips: `cli` (default) runs the CLI's own code path in-process,
`gateway flags set KEY canary --percent N --url http://127.0.0.1:ADMINPORT` with the token in
GATEWAY_ADMIN_TOKEN; `admin` PUTs on the admin port; `main` PUTs on the main port. One CLI
flip is also timed as a subprocess, to show the interpreter's start apart.

With --load, wrk keeps --load connections on GET /probe (with a per-connection user key)
for --duration seconds while the flips run, and every non-2xx answer or socket error is
reported as a failed request. Meanwhile bench.pg_ping times bare PostgreSQL round trips
from an idle process, and the CPU time the hypervisor stole is read from /proc/stat: the
floor under the flips' own figures on this shared machine. --nice N runs wrk and the server
at niceness N (PostgreSQL and the operator on hosts of their own, as in production).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
import typer
from sqlalchemy.engine import make_url

from bench.apps.probe import PROBE
from bench.pg_ping import percentile
from bench.procstat import process_tree, steal_seconds
from gateway.cli.commands import cli
from gateway.testing import free_port, serve_in_subprocess

APP = "bench.apps.probe:create_app"
ADMIN_TOKEN = "bench-propagation-0123456789"  # given to the server it starts
ADMIN_URL = os.environ.get(
    "GATEWAY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def throwaway_database() -> Iterator[str]:
    name = f"gateway_bench_flags_{uuid.uuid4().hex[:8]}"
    conninfo = make_url(ADMIN_URL).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class WorkerLogs:
    """The per-worker change logs written by the probe app."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.offsets: dict[Path, int] = {}
        self.latest: dict[str, tuple[float, str]] = {}  # pid -> (applied at, "mode percent")
        self.dead: set[str] = set()  # pids that logged and exited

    def read(self) -> None:
        for path in self.directory.glob("*.log"):
            with path.open() as handle:
                handle.seek(self.offsets.get(path, 0))
                text = handle.read()
            complete = text[: text.rfind("\n") + 1]
            self.offsets[path] = self.offsets.get(path, 0) + len(complete.encode())
            if path.stem in self.dead:
                continue
            for line in complete.splitlines():
                stamp, _, rest = line.partition(" ")
                if rest == "started":
                    self.latest.setdefault(path.stem, (float(stamp), "legacy 0"))
                elif rest.startswith(PROBE + "\t"):
                    self.latest[path.stem] = (float(stamp), rest.split("\t", 1)[1])

    def live(self) -> dict[str, tuple[float, str]]:
        """The latest state of every process still running (uvicorn replaces a worker that
        misses its health check; the replacement writes a log of its own)."""
        for pid in list(self.latest):
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                self.dead.add(pid)
                del self.latest[pid]
        return self.latest

    def wait_for(self, state: str, workers: int, timeout: float = 30.0) -> tuple[float, float]:
        """Wait until every worker's latest state is `state`; return (first, last) applied."""
        deadline = time.monotonic() + timeout
        while True:
            self.read()
            latest = self.live()
            if len(latest) >= workers and all(s == state for _, s in latest.values()):
                times = [at for at, _ in latest.values()]
                return min(times), max(times)
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers did not reach {state!r}: {self.latest}")
            time.sleep(0.001)


class Flipper:
    """Sends one flip the way --via says; returns when the answer is in."""

    def __init__(self, via: str, url: str, admin_url: str) -> None:
        self.via = via
        self.base = url if via == "main" else admin_url
        self.client = httpx.Client(timeout=30)
        self.command = typer.main.get_command(cli)  # built once, as the process would

    def flip(self, percent: int) -> None:
        if self.via == "cli":
            args = ["flags", "set", PROBE, "canary", "--percent", str(percent)]
            args += ["--reason", "bench", "--url", self.base]
            with contextlib.redirect_stdout(io.StringIO()):
                self.command.main(args=args, prog_name="gateway", standalone_mode=False)
            return
        response = self.client.put(
            f"{self.base}/_gateway/routes/{quote(PROBE, safe='')}",
            json={"mode": "canary", "percent": percent, "reason": "bench"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        response.raise_for_status()

    def close(self) -> None:
        self.client.close()


def run_flips(flipper: Flipper, logs: WorkerLogs, workers: int, flips: int, pause: float) -> dict:
    propagation, after_commit, answered_in = [], [], []
    for i in range(flips):
        percent = i % 99 + 1  # consecutive flips always differ
        started = time.time()
        flipper.flip(percent)
        answered = time.time()
        first, last = logs.wait_for(f"canary {percent}", workers)
        propagation.append((last - started) * 1000)
        # The process that took the flip applies right after its commit (under gateway
        # serve --workers N with GATEWAY_ADMIN_PORT: the supervisor, which posts it on the
        # board): from there on it is the other workers' turn.
        after_commit.append((last - first) * 1000)
        answered_in.append((answered - started) * 1000)
        time.sleep(pause)
    name = {"main": "flip_to_last_ms", "admin": "admin_flip_to_last_ms"}.get(
        flipper.via, "cli_flip_to_last_ms"
    )
    return {name: propagation, "commit_to_last_ms": after_commit, "put_ms": answered_in}


def cli_subprocess_ms(admin_url: str, logs: WorkerLogs, workers: int) -> tuple[float, float]:
    """One flip by `python -m gateway flags set ...`: (until it exits, until the last worker)."""
    command = [sys.executable, "-m", "gateway", "flags", "set", PROBE, "canary",
               "--percent", "100", "--url", admin_url]  # fmt: skip
    started = time.time()
    subprocess.run(command, check=True, capture_output=True)
    exited = time.time()
    _, last = logs.wait_for("canary 100", workers)
    return (exited - started) * 1000, (last - started) * 1000


def renice_children(niceness: int) -> int:
    """Set every thread of every process below this one to `niceness`; how many threads.

    On Linux a nice value belongs to a thread (threads started later inherit it from the
    thread that starts them), so each task of each descendant is set.
    """
    count = 0
    for pid in process_tree(os.getpid()) - {os.getpid()}:
        for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)
                count += 1
    return count


def wrk(url: str, connections: int, duration: float, out: dict, niceness: int = 0) -> None:
    script = Path(tempfile.mkdtemp()) / "users.lua"
    script.write_text(
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        '  return wrk.format("GET", "/probe", {["X-User-Id"] = "u" .. n})\n'
        "end\n"
    )
    command = [
        "nice", "-n", str(niceness), "wrk", "-t2", f"-c{connections}", f"-d{int(duration)}s",
        "--timeout", "30s",
        "-s", str(script), f"{url}/probe",
    ]  # fmt: skip
    out["output"] = subprocess.run(command, capture_output=True, text=True).stdout
    shutil.rmtree(script.parent, ignore_errors=True)


def parse_wrk(output: str) -> dict[str, int]:
    found = {"requests": 0, "non_2xx": 0, "socket_errors": 0}
    if match := re.search(r"(\d+) requests in", output):
        found["requests"] = int(match.group(1))
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        found["non_2xx"] = int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        found["socket_errors"] = sum(int(g) for g in match.groups())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--flips", type=int, default=200)
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between flips")
    parser.add_argument("--load", type=int, default=0, help="wrk connections during the flips")
    parser.add_argument("--duration", type=float, default=60.0, help="with --load: seconds")
    parser.add_argument(
        "--via", choices=("cli", "admin", "main"), default="cli", help="how the operator flips"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run wrk and the server at this niceness (e.g. 10), so that PostgreSQL and the "
        "operator's command, on hosts of their own in production, are not starved by them",
    )
    args = parser.parse_args()

    probe_dir = Path(tempfile.mkdtemp(prefix="gateway-probe-"))
    admin_port = free_port()
    admin_url = f"http://127.0.0.1:{admin_port}"
    os.environ["GATEWAY_ADMIN_TOKEN"] = ADMIN_TOKEN  # what the CLI reads
    with throwaway_database() as database_url:
        env = {
            "GATEWAY_DATABASE_URL": database_url,
            "GATEWAY_ADMIN_TOKENS": f"ops={ADMIN_TOKEN}",
            "GATEWAY_ADMIN_PORT": str(admin_port),
            "GATEWAY_PROBE_DIR": str(probe_dir),
            "GATEWAY_POOL_SIZE": "5",
            # serve_in_subprocess does not drain the server's output while it runs: keep the
            # per-flip INFO lines out of the pipe so it never fills and blocks a worker.
            "GATEWAY_LOG_LEVEL": "warning",
        }
        with serve_in_subprocess(
            APP, env=env, workers=args.workers, ready_path="/probe", ready_timeout=120
        ) as url:
            logs = WorkerLogs(probe_dir)
            logs.wait_for("legacy 0", args.workers, timeout=60)
            if args.nice:
                print(f"server: {renice_children(args.nice)} threads at nice {args.nice}")
            load: dict = {}
            loader = None
            pause = args.pause
            if args.load:
                loader = threading.Thread(
                    target=wrk, args=(url, args.load, args.duration, load, args.nice)
                )
                loader.start()
                time.sleep(2)  # let wrk open its connections
                pause = max((args.duration - 4) / args.flips, 0.0)
            pinger = None
            if args.load:  # what PostgreSQL answers an idle process meanwhile
                libpq = make_url(database_url).set(drivername="postgresql")
                pinger = subprocess.Popen(
                    [sys.executable, "-m", "bench.pg_ping", "--url",
                     libpq.render_as_string(hide_password=False),
                     "--seconds", str(max(args.duration - 6, 1))],
                    stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
            flipper = Flipper(args.via, url, admin_url)
            stolen, wall = steal_seconds(), time.monotonic()
            try:
                results = run_flips(flipper, logs, args.workers, args.flips, pause)
            finally:
                flipper.close()
            stolen, wall = steal_seconds() - stolen, time.monotonic() - wall
            if loader:
                loader.join()
            floor = json.loads(pinger.communicate()[0]) if pinger is not None else {}
            exited_ms, last_ms = cli_subprocess_ms(admin_url, logs, args.workers)
    shutil.rmtree(probe_dir, ignore_errors=True)

    print(f"{args.flips} flips via {args.via}, {args.workers} workers, PostgreSQL LISTEN/NOTIFY")
    for name, values in results.items():
        print(
            f"  {name:<21} p50 {statistics.median(values):7.1f}  p90 {percentile(values, 90):7.1f}"
            f"  p99 {percentile(values, 99):7.1f}  max {max(values):7.1f}"
        )
    print(
        f"  one CLI flip as a subprocess, after the others: exited in {exited_ms:.0f} ms, "
        f"last worker applied at {last_ms:.0f} ms (the rest is the interpreter's start)"
    )
    print(
        f"  the hypervisor took {stolen:.1f} s of CPU from this machine during the flips "
        f"({100 * stolen / (wall * (os.cpu_count() or 1)):.1f} % of its cores' time)"
    )
    for name, values in floor.items():
        print(
            f"  bare PostgreSQL {name:<11} p50 {values['p50']:7.1f}  p90 {values['p90']:7.1f}"
            f"  p99 {values['p99']:7.1f}  max {values['max']:7.1f}  (bench.pg_ping, meanwhile)"
        )
    if logs.dead:
        print(f"  workers replaced meanwhile (uvicorn's health check): {len(logs.dead)}")
    if args.load:
        counts = parse_wrk(load.get("output", ""))
        print(
            f"  load: {args.load} connections for {args.duration:g} s: {counts['requests']} "
            f"requests, {counts['non_2xx']} non-2xx, {counts['socket_errors']} socket errors"
        )
        if not counts["requests"]:
            print(load.get("output", "(no wrk output)"))


if __name__ == "__main__":
    main()
